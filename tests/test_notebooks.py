"""Executes every notebook in notebooks/ end to end (nbclient), so they never rot.

The notebooks use tiny sizes; each runs in seconds on a CPU, on generated data
(``RNNLAB_DATA`` points at an empty folder, so the real datasets are never
read). A notebook that raises fails its test with the failing cell's
traceback. Each declares in its metadata (``"rnnlab": {"images": N}``) the
figures it shows; the executed notebook must hold exactly that many inline
images, and no progress bars or warnings (nothing on stderr). They are stored
without outputs, which is checked too.
"""

import os
import pathlib

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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, tmp_path_factory, monkeypatch):
    # Given a notebook, run in a scratch folder (anything it writes lands there), with generated
    # datasets in a folder shared by the notebooks (and pytest-xdist workers: data prep is locked)
    notebook = nbformat.read(path, as_version=4)
    monkeypatch.setenv("RNNLAB_NOTEBOOK_DATA", str(tmp_path_factory.getbasetemp().parent / "notebook_data"))
    env_root = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), env_root])))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows figures
    (tmp_path / "no_real_data").mkdir()
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "no_real_data"))
    monkeypatch.setenv("RNNLAB_NOTEBOOK_WORKDIR", str(tmp_path))
    client = nbclient.NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    # When it is executed, Then no cell raises
    client.execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors
    # And it shows the figures it promises, inline
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == notebook.metadata["rnnlab"]["images"], f"{path.name}: {len(images)} images"
    # And it is quiet: no warnings or progress bars on stderr, a few printed lines per cell at most
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr: {stderr[0][:500]}"
    printed = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "%|" not in printed and "Shuffling" not in printed
    assert "Downloading and preparing" not in printed and "downloaded and prepared" not in printed
