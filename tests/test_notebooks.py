"""Executes every notebook in notebooks/ end to end (nbclient), so they never rot.

The notebooks use tiny sizes; each runs in seconds on a CPU. A notebook that
raises fails its test with the failing cell's traceback. They are stored
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
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("RNNLAB_NOTEBOOK_WORKDIR", str(tmp_path))
    client = nbclient.NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    # When it is executed, Then no cell raises
    client.execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
