"""Run optax's own example notebooks on optax and on jopt, and compare what they produce.

Each notebook is read from a checkout of optax's repository (``git show`` of its
``examples/`` and ``docs/getting_started.ipynb``; nothing of optax is copied into this
repository), its code cells are written to a temporary directory outside the repository
and executed twice in fresh processes: once with real optax, once with ``optax`` (and its
submodules) resolving to jopt, i.e. ``import jopt as optax``. Shell lines (``!pip``) and
IPython magics are dropped; matplotlib draws on the Agg backend; NumPy's and Python's
global generators are seeded before each cell (some cells draw from them unseeded). The
printed output of every cell and every array (or pytree of arrays) left in the notebook's
namespace are compared: bit-equal, close (relative difference < 1e-6), or different by how much.

Notebooks that download a data set (tensorflow_datasets) or import a package that is not
installed are skipped and say why, as are those sized for an accelerator (``HEAVY``)
unless ``--heavy`` is given.

Usage::

    python -m benchmarks.optax_notebooks --optax-repo /path/to/optax/.git [--only sam,lbfgs]
        [--out results.json] [--timeout 1200]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import pickle
import re
import subprocess
import sys
import tempfile
import time

NOTEBOOKS = (
    "docs/getting_started.ipynb",
    "examples/adversarial_training.ipynb",
    "examples/cifar10_resnet.ipynb",
    "examples/contrib/differentially_private_sgd.ipynb",
    "examples/contrib/muon.ipynb",
    "examples/contrib/reduce_on_plateau.ipynb",
    "examples/contrib/rosenbrock_ademamix.ipynb",
    "examples/contrib/sam.ipynb",
    "examples/flax_example.ipynb",
    "examples/freezing_parameters.ipynb",
    "examples/gradient_accumulation.ipynb",
    "examples/gradient_accumulation_and_microbatching.ipynb",
    "examples/lbfgs.ipynb",
    "examples/linear_assignment_problem.ipynb",
    "examples/lookahead_mnist.ipynb",
    "examples/meta_learning.ipynb",
    "examples/mlp_mnist.ipynb",
    "examples/nanolm.ipynb",
    "examples/ogda_example.ipynb",
    "examples/perturbations.ipynb",
)
DOWNLOADS = ("tensorflow_datasets",)  # data sets fetched from the network
# Notebooks sized for an accelerator, skipped unless --heavy is given.
HEAVY = {
    "examples/gradient_accumulation_and_microbatching.ipynb": (
        "trains a 12-layer transformer (width 512, 32x256 tokens) for 3x16 steps and prints "
        "wall times: hours on a 2-core CPU (run it with --heavy on an accelerator)"
    ),
}
ROOT = pathlib.Path(__file__).resolve().parents[1]


def code_cells(notebook: dict) -> list[str]:
    """The code cells' sources, without shell lines and IPython magics."""
    cells = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("!", "%"))]
        cells.append("\n".join(lines))
    return cells


def why_skipped(cells: list[str]) -> str | None:
    """Why a notebook cannot run offline here (None when it can)."""
    imported = set()
    for cell in cells:
        imported |= set(re.findall(r"^\s*(?:import|from)\s+([\w]+)", cell, re.M))
    downloads = sorted(imported & set(DOWNLOADS))
    if downloads:
        return f"downloads a data set ({', '.join(downloads)})"
    missing = sorted(m for m in imported if importlib.util.find_spec(m) is None)
    return f"needs {', '.join(missing)} (not installed)" if missing else None


# ---- the worker: runs in a fresh process, one notebook, one library -------------------


class _AliasFinder:
    """Resolve ``optax`` and ``optax.<sub>`` to ``jopt`` and ``jopt.<sub>``.

    optax's private ``optax._src.<module>`` (one notebook imports ``optax._src.base``)
    resolves to ``jopt.<module>``: jopt has the same public module there.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "optax" and not name.startswith("optax."):
            return None
        import importlib.machinery

        target = "jopt" + name[len("optax") :].replace("._src.", ".")
        return importlib.machinery.ModuleSpec(name, _AliasLoader(target))


class _AliasLoader:
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        import importlib
        import types

        if self.target == "jopt._src":  # a package holding the modules named above
            module = types.ModuleType(spec.name)
            module.__path__ = []
            return module
        return importlib.import_module(self.target)

    def exec_module(self, module):
        pass


def _numeric(leaf) -> bool:
    import jax
    import numpy as np

    if not isinstance(leaf, (np.ndarray, jax.Array, float)):
        return False
    try:
        return np.asarray(leaf).dtype.kind in "biufc"
    except Exception:  # noqa: BLE001 - e.g. a PRNG key array
        return False


def _arrays(namespace: dict) -> dict:
    """Every array or pytree of arrays in the namespace, as lists of NumPy leaves."""
    import jax
    import numpy as np

    found = {}
    for name, value in namespace.items():
        if name.startswith("_") or callable(value) or isinstance(value, type(sys)):
            continue
        try:
            leaves = jax.tree.leaves(value)
        except Exception:  # noqa: BLE001 - not a pytree: nothing to compare
            continue
        arrays = [leaf for leaf in leaves if _numeric(leaf)]
        if arrays and len(arrays) == len(leaves):
            try:
                found[name] = [np.asarray(leaf) for leaf in arrays]
            except Exception:  # noqa: BLE001 - e.g. a PRNG key array
                continue
    return found


def worker(cells_file: str, library: str, out_file: str) -> None:
    """Execute the cells (going on after a failing one, as ``nbclient --allow-errors``);
    pickle ``{"printed": [...], "arrays": {...}, "errors": {cell: message}}``."""
    import contextlib
    import io
    import traceback

    if library == "jopt":
        import jopt

        sys.modules["optax"] = jopt
        sys.meta_path.insert(0, _AliasFinder())
        for name in ("contrib", "schedules", "transforms", "losses", "tree", "tree_utils",
                     "projections", "assignment", "perturbations", "microbatching"):  # fmt: skip
            __import__(f"optax.{name}")
    import matplotlib.pyplot as plt

    plt.show = lambda *args, **kwargs: plt.close("all")
    cells = json.loads(pathlib.Path(cells_file).read_text())
    import random

    import numpy as np

    namespace = {"__name__": "__main__"}
    printed, errors = [], {}
    for index, source in enumerate(cells):
        buffer = io.StringIO()
        # Cells that draw from NumPy's or Python's global generator unseeded: seed each cell
        # (imports on one side may have drawn from the generator before).
        random.seed(index)
        np.random.seed(index)
        try:
            with contextlib.redirect_stdout(buffer):
                exec(compile(source, f"<cell {index}>", "exec"), namespace)  # noqa: S102
                import jax

                jax.effects_barrier()  # jax.debug.print output belongs to its cell
        except Exception as exc:  # noqa: BLE001 - reported with the cell's number
            errors[index] = f"{type(exc).__name__}: {exc}"[:600]
            traceback.print_exc()
        printed.append(buffer.getvalue())
        plt.close("all")
    result = {"printed": printed, "arrays": _arrays(namespace), "errors": errors}
    pathlib.Path(out_file).write_bytes(pickle.dumps(result))


# ---- the comparison -----------------------------------------------------------------


def _run(cells_file: pathlib.Path, library: str, timeout: float) -> tuple[dict | None, float]:
    out = cells_file.with_suffix(f".{library}.pkl")
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    # A fixed hash seed: networkx lays out a set of nodes, whose order follows str hashes.
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": path, "PYTHONHASHSEED": "0"}
    args = [sys.executable, "-m", "benchmarks.optax_notebooks", "--worker", str(cells_file)]
    start = time.perf_counter()
    try:
        subprocess.run(
            [*args, library, str(out)], env=env, cwd=cells_file.parent, timeout=timeout,
            capture_output=True, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start
    seconds = time.perf_counter() - start
    return (pickle.loads(out.read_bytes()) if out.exists() else None), seconds


def compare(theirs: dict, ours: dict) -> dict:
    """Printed cells that differ, and the arrays: bit-equal, close, or how far apart."""
    import numpy as np

    cells = {}
    for index, (a, b) in enumerate(zip(theirs["printed"], ours["printed"], strict=True)):
        a, b = a.replace("optax.", "jopt.").splitlines(), b.replace("optax.", "jopt.").splitlines()
        if a != b:
            pairs = enumerate(zip(a, b, strict=False))
            first = next((k for k, (x, y) in pairs if x != y), min(len(a), len(b)))
            cells[index] = {"optax": a[first : first + 2], "jopt": b[first : first + 2]}
    equal, close, differ = [], [], {}
    for name, leaves in theirs["arrays"].items():
        other = ours["arrays"].get(name)
        shapes = [np.shape(x) for x in leaves]
        if other is None or [np.shape(x) for x in other] != shapes:
            differ[name] = "structure"
            continue
        gaps = [
            float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0))
            for a, b in zip(leaves, other, strict=True)
            if np.asarray(a).dtype.kind in "biufc"
        ]
        if all(np.array_equal(a, b, equal_nan=True) for a, b in zip(leaves, other, strict=True)):
            equal.append(name)
        elif all(
            np.allclose(a, b, rtol=1e-6, atol=0, equal_nan=True)
            for a, b in zip(leaves, other, strict=True)
        ):
            close.append(name)
        else:
            differ[name] = max(gaps, default=float("nan"))
    return {"cells_printing_differently": cells, "arrays_equal": len(equal),
            "arrays_close": close, "arrays_differ": differ}  # fmt: skip


def run_notebook(
    repo: str, path: str, workdir: pathlib.Path, timeout: float, heavy: bool = False
) -> dict:
    """Extract, run on both libraries, compare; one row of the report."""
    if path in HEAVY and not heavy:
        return {"notebook": path, "outcome": "skipped", "why": HEAVY[path]}
    text = subprocess.run(
        ["git", "-C", repo, "show", f"HEAD:{path}"], capture_output=True, text=True, check=True
    ).stdout
    cells = code_cells(json.loads(text))
    reason = why_skipped(cells)
    if reason:
        return {"notebook": path, "outcome": "skipped", "why": reason}
    cells_file = workdir / (pathlib.Path(path).stem + ".cells.json")
    cells_file.write_text(json.dumps(cells))
    (theirs, t_optax), (ours, t_jopt) = (
        _run(cells_file, "optax", timeout),
        _run(cells_file, "jopt", timeout),
    )
    row = {"notebook": path, "seconds": {"optax": round(t_optax), "jopt": round(t_jopt)}}
    if theirs is None or ours is None:
        return {**row, "outcome": "timed out" if theirs is None else "jopt timed out"}
    row.update(errors={"optax": theirs["errors"], "jopt": ours["errors"]}, **compare(theirs, ours))
    same = not (row["cells_printing_differently"] or row["arrays_close"] or row["arrays_differ"])
    same = same and theirs["errors"] == ours["errors"]
    row["outcome"] = "equal" if same else "differs"
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optax-repo", required=True, help="optax's git directory")
    parser.add_argument("--only", default="", help="comma-separated notebook names")
    parser.add_argument("--out", default="", help="write the rows as JSON here")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per run")
    parser.add_argument("--heavy", action="store_true", help="also run " + ", ".join(HEAVY))
    args = parser.parse_args(argv)
    chosen = [p for p in NOTEBOOKS if not args.only or pathlib.Path(p).stem in args.only.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="optax-notebooks-") as workdir:
        for path in chosen:
            row = run_notebook(
                args.optax_repo, path, pathlib.Path(workdir), args.timeout, args.heavy
            )
            print(json.dumps(row), flush=True)
            rows.append(row)
            if args.out:
                pathlib.Path(args.out).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(*sys.argv[2:5])
    else:
        main()
