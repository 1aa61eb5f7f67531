"""Execute notebooks in a fresh kernel and store them with their outputs (``make notebooks``).

    python notebooks/_execute.py                  # every notebook, in place
    python notebooks/_execute.py 03 07_gradient   # those whose name starts with these

Each notebook runs in its own kernel, in a temporary working folder (what it writes is thrown
away), with the repository on ``PYTHONPATH`` and JAX on 8 faked CPU devices, the environment
the tests execute it in (tests/test_notebooks.py imports :func:`execute` from here).
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
NOTEBOOKS = sorted(HERE.glob("[0-9]*.ipynb"))
# Fake devices for the sharding notebook; set before its JAX starts, harmless for the others.
ENVIRONMENT = {
    "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
    "JAX_PLATFORMS": "cpu",
}


def execute(path: pathlib.Path, timeout: int = 120) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` top to bottom in a new kernel; return it with outputs.

    Raises ``nbclient.exceptions.CellExecutionError`` naming the cell if any cell fails.
    """
    notebook = nbformat.read(path, as_version=4)
    saved = {name: os.environ.get(name) for name in [*ENVIRONMENT, "PYTHONPATH"]}
    os.environ.update(ENVIRONMENT)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved["PYTHONPATH"]]))
    try:
        with tempfile.TemporaryDirectory() as folder:
            client = NotebookClient(
                notebook,
                timeout=timeout,
                kernel_name="python3",
                resources={"metadata": {"path": folder}},
            )
            client.execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return notebook


def main(prefixes: list[str]) -> None:
    chosen = [p for p in NOTEBOOKS if not prefixes or any(p.name.startswith(x) for x in prefixes)]
    for path in chosen:
        start = time.perf_counter()
        notebook = execute(path)
        nbformat.write(notebook, path)
        print(f"{path.name}: {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
