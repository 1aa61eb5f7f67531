"""Distributed Shampoo against precondition-opt 0.3.0's ``distributed_shampoo``.

The reference trajectories were made by ``tests/fixtures/make_shampoo_reference.py``
(jitted, float32), one fixture per JAX minor release CI runs (0.10.2 and 0.12.1); this test
replays the same problem with :func:`jopt.contrib.shampoo`, jitted, and compares the params
after steps 1, 2, 6, 11, 20 and 30 with the fixture of the running JAX. Under the tests' XLA
flags (those the fixtures were made with) they agree bit for bit; the bound is the issue's
1e-5. On a JAX with no fixture of its own the nearest older one is used, with the bound the
reference itself moves by between JAX releases (5.3e-4 from 0.10.2 to 0.12.1 on the
default-ridge configuration, up to 2.6e-5 on the others).
"""

from __future__ import annotations

import pathlib

import jax
import numpy as np
import pytest

import jopt
from tests.fixtures import make_shampoo_reference as ref

_MADE_WITH = ("0.10.2", "0.12.1")  # the JAX releases the fixtures were made with
_ACROSS_RELEASES = 1e-3  # the bound on a JAX that has no fixture of its own


def _fixture_for(jax_version: str) -> tuple[pathlib.Path, float]:
    """The fixture to compare with and its bound: this JAX minor's, else the nearest older."""
    minor = lambda v: tuple(int(x) for x in v.split(".")[:2])  # noqa: E731
    same = [v for v in _MADE_WITH if minor(v) == minor(jax_version)]
    if same:
        return ref.fixture_path(same[0]), 1e-5
    older = [v for v in _MADE_WITH if minor(v) < minor(jax_version)] or [_MADE_WITH[0]]
    return ref.fixture_path(older[-1]), _ACROSS_RELEASES


def test_every_fixture_is_there():
    for version in _MADE_WITH:
        assert ref.fixture_path(version).is_file(), version


@pytest.fixture(scope="module")
def reference_and_bound():
    path, tolerance = _fixture_for(jax.__version__)
    with np.load(path) as data:
        return dict(data), tolerance


def _jopt_shampoo(config: dict):
    kwargs = {
        "block_size": 16,
        "start_preconditioning_step": 1,
        "preconditioning_compute_steps": 5,
        **config,
    }
    kwargs["graft_type"] = kwargs["graft_type"].lower()
    return jopt.contrib.shampoo(kwargs.pop("learning_rate", ref.LEARNING_RATE), **kwargs)


@pytest.mark.parametrize("name", sorted(ref.CONFIGS))
def test_trajectory_equals_precondition_opt(reference_and_bound, name):
    reference, tolerance = reference_and_bound
    got = ref.trajectory(_jopt_shampoo(ref.CONFIGS[name]), reference)
    assert set(got) == {k[len(name) + 1 :] for k in reference if k.startswith(f"{name}/")}
    for key, value in got.items():
        error = float(np.max(np.abs(value - reference[f"{name}/{key}"]))) if value.size else 0.0
        assert error <= tolerance, f"{name} {key}: max|dp| = {error:.2e} > {tolerance:.0e}"
