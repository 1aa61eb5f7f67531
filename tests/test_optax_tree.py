"""Where optax's own tree_utils tests found jopt.tree differing from optax 0.2.8."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt


def test_vdot_of_complex_leaf_rounds_as_optax_eagerly():
    # optax's tree_math_test data: an unfused conj-then-dot was 1 ulp off optax's vdot.
    rng = np.random.RandomState(0)
    rng.randn(20, 10), rng.randn(20, 10), rng.randn(20), rng.randn(20, 10), rng.randn(20)
    x, y = rng.randn(20) + 1j * rng.randn(20), rng.randn(20)
    for a, b in ((x, y), ({"k": x, "r": (y,)}, {"k": y, "r": (y,)})):
        np.testing.assert_array_equal(jopt.tree.vdot(a, b), optax.tree.vdot(a, b))


def test_safe_increment_refuses_bool_and_complex_as_optax():
    from optax._src import numerics  # optax's safe_increment is private to numerics

    for dtype in ("bool", "complex64"):
        count = jnp.asarray(1, dtype)
        with pytest.raises(ValueError):
            numerics.safe_increment(count)
        with pytest.raises(ValueError, match="count must have an integer or real floating"):
            jopt.tree.safe_increment(count)
