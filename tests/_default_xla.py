"""Run a check in a fresh process with XLA's default optimisations.

``conftest.py`` compiles with ``--xla_backend_optimization_level=0`` (faster compiles,
jopt and optax alike); at that level XLA fuses less, so a difference of rounding that
only fusion shows (a select against ``c * a + (1 - c) * b``, a masked step against a
conditional one) cannot be seen. Bit-equality with optax under ``jit`` is checked here.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_default_xla(code: str, timeout: float = 300) -> str:
    """Run ``code`` (Python) in a subprocess on one CPU device with XLA's default flags;
    return its stdout, or fail the calling test with its stderr."""
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout
    )
    if result.returncode:
        raise AssertionError(f"the check failed at XLA's default flags:\n{result.stderr[-4000:]}")
    return result.stdout
