"""The notebook runner (benchmarks/optax_notebooks.py) extracts code cells, skips what
cannot run offline, resolves ``optax`` to jopt in its worker, and tells equal from different."""

import json
import subprocess
import sys

import numpy as np

from benchmarks import optax_notebooks as runner


def _notebook(*sources):
    cells = [{"cell_type": "markdown", "source": ["# title"]}]
    cells += [{"cell_type": "code", "source": [s]} for s in sources]
    return {"cells": cells}


def test_code_cells_drop_shell_lines_and_magics():
    cells = runner.code_cells(_notebook("!pip install x\nimport jax", "%matplotlib inline\nx = 1"))
    assert cells == ["import jax", "x = 1"]


def test_downloads_and_missing_packages_are_skipped_with_the_reason():
    assert runner.why_skipped(["import tensorflow_datasets as tfds"]).startswith("downloads")
    assert "not_a_real_package_xyz" in runner.why_skipped(["import not_a_real_package_xyz"])
    assert runner.why_skipped(["import jax\nfrom optax import contrib"]) is None


def test_compare_tells_bit_equal_close_and_different():
    theirs = {"printed": ["optax.adam 1.0\n"], "arrays": {
        "same": [np.ones(3)], "near": [np.ones(3)], "far": [np.ones(3)]}}  # fmt: skip
    ours = {"printed": ["jopt.adam 1.0\n"], "arrays": {
        "same": [np.ones(3)], "near": [np.ones(3) + 1e-9], "far": [np.ones(3) * 2]}}  # fmt: skip
    result = runner.compare(theirs, ours)
    assert result["cells_printing_differently"] == {}
    assert result["arrays_equal"] == 1 and result["arrays_close"] == ["near"]
    assert result["arrays_differ"] == {"far": 1.0}


def test_the_worker_runs_cells_on_jopt_as_optax(tmp_path):
    cells = tmp_path / "nb.cells.json"
    cells.write_text(json.dumps([
        "import optax\nfrom optax import contrib\nfrom optax._src import base\n"
        "print(optax.__name__)",
        "raise ValueError('a failing cell')",
        "import jax.numpy as jnp\ntx = optax.sgd(0.1)\n"
        "x = tx.update(jnp.ones(2), tx.init(jnp.ones(2)))[0]",
    ]))  # fmt: skip
    out = tmp_path / "out.pkl"
    code = "from benchmarks.optax_notebooks import worker; worker(*__import__('sys').argv[1:])"
    args = [sys.executable, "-c", code, str(cells), "jopt", str(out)]
    subprocess.run(args, check=True, capture_output=True, cwd=runner.ROOT)
    result = __import__("pickle").loads(out.read_bytes())
    assert result["printed"][0] == "jopt\n"
    assert result["errors"] == {1: "ValueError: a failing cell"}
    np.testing.assert_array_equal(result["arrays"]["x"][0], np.float32([-0.1, -0.1]))
