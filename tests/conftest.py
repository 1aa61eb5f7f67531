"""Strict test environment: 8 fake CPU devices set before JAX starts."""

import os

# Must happen before jax initialises its backends; importing jax here first
# would be too late for the flag to take effect.
# LLVM's backend optimisations cost ~20% of every compile and buy nothing at test shapes;
# jopt and optax are compiled alike, so parity is unaffected.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

if jax.device_count() < 8:
    raise RuntimeError(
        "tests need 8 fake CPU devices but JAX started with "
        f"{jax.device_count()}; jax was initialised before conftest.py set XLA_FLAGS"
    )
