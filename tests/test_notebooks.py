"""Executes every notebook in notebooks/ end to end, so they never rot: one with ``jupyter nbconvert
--execute`` as a user types it, the others with nbclient.

Each runs as Jupyter runs it: the kernel's working directory is ``notebooks/``
and nothing puts the repository on ``PYTHONPATH`` (the notebooks load the
repository's configs by path, ``../configs/...``). The notebooks use tiny
sizes; each runs in seconds on a CPU, on generated data
(``RNNLAB_DATA`` points at an empty folder, so the real datasets are never
read). A notebook that raises fails its test with the failing cell's
traceback. Each declares in its metadata (``"rnnlab": {"images": N}``) the
figures it shows; the executed notebook must hold exactly that many inline
images, and no progress bars or warnings (nothing on stderr). They are stored
without outputs, which is checked too.
"""

import pathlib
import subprocess
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {
        "01_cells_as_a_library.ipynb",
        "02_negation_and_gates.ipynb",
        "03_gru_vs_lstm.ipynb",
        "04_your_own_cell.ipynb",
        "05_real_data.ipynb",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name} is stored with outputs"


# The notebook that test_notebook_runs_with_jupyter_nbconvert runs as a user types it (one run each)
NBCONVERT_NOTEBOOK = ROOT / "notebooks" / "02_negation_and_gates.ipynb"  # loads a repository config by path
NBCLIENT_NOTEBOOKS = [p for p in NOTEBOOKS if p != NBCONVERT_NOTEBOOK]


def _as_jupyter_runs_it(tmp_path, tmp_path_factory, monkeypatch) -> None:
    """The environment of a notebook run: no PYTHONPATH, the inline figure backend, runs in ``tmp_path``,
    generated datasets in a folder shared by every notebook run (data prep is locked), no real data."""
    monkeypatch.delenv("PYTHONPATH", raising=False)  # as Jupyter runs it: nothing puts the repository on the path
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows figures
    monkeypatch.setenv("RNNLAB_NOTEBOOK_DATA", str(tmp_path_factory.getbasetemp().parent / "notebook_data"))
    monkeypatch.setenv("RNNLAB_NOTEBOOK_WORKDIR", str(tmp_path))
    (tmp_path / "no_real_data").mkdir()
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "no_real_data"))


def _check_outputs(notebook, path) -> None:
    """An executed notebook: no error, the figures its metadata promises inline, nothing on stderr, quiet."""
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert outputs and not errors, f"{path.name}: {[o.get('evalue') for o in errors]}"
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == notebook.metadata["rnnlab"]["images"], f"{path.name}: {len(images)} images"
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr: {stderr[0][:500]}"
    printed = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "%|" not in printed and "Shuffling" not in printed
    assert "Downloading and preparing" not in printed and "downloaded and prepared" not in printed


@pytest.mark.parametrize("path", NBCLIENT_NOTEBOOKS, ids=[p.stem for p in NBCLIENT_NOTEBOOKS])
@pytest.mark.slow
def test_notebook_runs(path, tmp_path, tmp_path_factory, monkeypatch):
    # Given a notebook, run from notebooks/ with no PYTHONPATH, as Jupyter runs it; its runs go to a
    # scratch folder, its generated datasets to a folder shared by the notebooks (and pytest-xdist
    # workers: data prep is locked)
    notebook = nbformat.read(path, as_version=4)
    _as_jupyter_runs_it(tmp_path, tmp_path_factory, monkeypatch)
    client = nbclient.NotebookClient(  # the kernel's working directory is the notebook's folder, as in Jupyter
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    # When it is executed, Then no cell raises, it shows the figures it promises, inline, and it is
    # quiet: no warnings or progress bars on stderr
    client.execute()
    _check_outputs(notebook, path)


@pytest.mark.slow
def test_notebook_runs_with_jupyter_nbconvert(tmp_path, tmp_path_factory, monkeypatch):
    # Given the command a user types, from the repository root, with no PYTHONPATH (the generated data
    # shared with the other notebook runs)
    _as_jupyter_runs_it(tmp_path, tmp_path_factory, monkeypatch)
    path = NBCONVERT_NOTEBOOK
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
               "--output-dir", str(tmp_path), str(path)]
    # When nbconvert executes it (the kernel starts in notebooks/)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    # Then it succeeds and writes the executed notebook, with no error output in it
    assert done.returncode == 0, done.stderr[-2000:]
    # and the executed notebook passes the checks of test_notebook_runs (this is its only run)
    _check_outputs(nbformat.read(tmp_path / path.name, as_version=4), path)
