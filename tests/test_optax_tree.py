"""Where optax's own tree_utils tests found jopt.tree differing from optax 0.2.8."""

import jax
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


def test_add_scale_and_cast_like_on_python_number_leaves_as_optax():
    x, y = {"a": 1.0, "b": (2.0, 3)}, {"a": 2.0, "b": (1.0, 5)}
    for ours, theirs in (
        (jopt.tree.add_scale(x, 0.5, y), optax.tree.add_scale(x, 0.5, y)),
        (jopt.tree.cast_like(x, y), optax.tree.cast_like(x, y)),
    ):
        assert jax.tree.structure(ours) == jax.tree.structure(theirs)
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
            assert type(a) is type(b) and np.asarray(a).dtype == np.asarray(b).dtype
            np.testing.assert_array_equal(a, b)
