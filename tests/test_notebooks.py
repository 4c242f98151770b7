"""Every notebook runs top to bottom, offline, with no key; the repo's copies carry no outputs."""

import json
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds: modest, so a hang fails fast


def _work_around_nbclient_output_widget_hang():
    """jupyter/nbclient#312: a cell whose Output widget captures a display can wait for the whole
    timeout, because OutputWidget.sync_state sends a comm message while the execute reply is
    awaited. Skipping that sync (test runner only) keeps the saved widget state intact."""
    import nbclient.output_widget as output_widget

    output_widget.OutputWidget.sync_state = lambda self: None


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_offline(path, tmp_path):
    from nbclient import NotebookClient

    _work_around_nbclient_output_widget_hang()
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    nbformat.write(nb, tmp_path / path.name)
    # the explorer's audio travels over the comm channel, never into the notebook: its outputs and
    # the saved widget state stay small
    explorer_cells = [c for c in nb.cells if c.cell_type == "code" and "explore(" in c.source]
    footprint = len(json.dumps(nb.metadata.get("widgets", {}))) + sum(len(json.dumps(c.outputs)) for c in explorer_cells)
    assert footprint < 2_000_000 * max(1, len(explorer_cells))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebooks_carry_no_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        assert not cell.get("outputs"), f"{path.name}: strip the outputs"
        assert cell.get("execution_count") is None, f"{path.name}: strip the execution counts"


def test_the_readme_lists_exactly_the_notebooks_there_are():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed = set(re.findall(r"`notebooks/([^`]+\.ipynb)`", readme))
    assert listed == {p.name for p in NOTEBOOKS} and listed
