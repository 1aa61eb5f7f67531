"""The notebooks are stored executed (numbered, with inline plots, no errors) and still run.

``make notebooks`` re-executes them in place (notebooks/_execute.py); here each one runs again
top to bottom in a fresh kernel, which fails on any error, and its outputs must have the same
kinds (text, PNG, ...) cell by cell as the stored ones: a loose check that the stored outputs
come from the current code.
"""

import importlib.util
import pathlib

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("_execute", ROOT / "notebooks" / "_execute.py")
_execute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_execute)
NOTEBOOKS = _execute.NOTEBOOKS


def code_cells(notebook):
    return [c for c in notebook.cells if c.cell_type == "code"]


def output_kinds(cell) -> list[str]:
    """What a cell shows, ignoring the values: 'stdout', 'image/png', 'text', 'error'.

    stderr is left out: library warnings there depend on the environment, not on the code.
    """
    kinds = set()
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            if output["name"] == "stdout":
                kinds.add("stdout")
        elif output["output_type"] in ("display_data", "execute_result"):
            kinds.add("image/png" if "image/png" in output["data"] else "text")
        else:
            kinds.add(output["output_type"])
    return sorted(kinds)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 14, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_executed(path):
    cells = code_cells(nbformat.read(path, as_version=4))
    counts = [c.get("execution_count") for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name} cells are numbered {counts}; run `make notebooks` to store it executed"
    )
    errors = [i for i, c in enumerate(cells) if "error" in output_kinds(c)]
    assert not errors, f"{path.name} is stored with errors in code cells {errors}"
    assert any("image/png" in output_kinds(c) for c in cells), f"{path.name} shows no inline plot"


def test_an_unexecuted_notebook_fails_the_check(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    nbformat.write(notebook, tmp_path / "00_unexecuted.ipynb")
    with pytest.raises(AssertionError, match="run `make notebooks`"):
        test_notebook_is_stored_executed(tmp_path / "00_unexecuted.ipynb")


def test_a_failing_cell_fails_the_execution(tmp_path):
    cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError(x)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "00_failing.ipynb")
    with pytest.raises(CellExecutionError, match="ValueError"):
        _execute.execute(tmp_path / "00_failing.ipynb")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path):
    stored = code_cells(nbformat.read(path, as_version=4))
    fresh = code_cells(_execute.execute(path))  # raises CellExecutionError on a failing cell
    changed = [
        (i, output_kinds(old), output_kinds(new))
        for i, (old, new) in enumerate(zip(stored, fresh, strict=True))
        if output_kinds(old) != output_kinds(new)
    ]
    assert not changed, (
        f"{path.name}: outputs differ from the stored ones (cell, stored, now): {changed}"
    )
