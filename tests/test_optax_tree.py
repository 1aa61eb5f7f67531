"""Where optax's own tree_utils tests found jopt.tree differing from optax 0.2.8."""

import numpy as np
import optax

import jopt


def test_vdot_of_complex_leaf_rounds_as_optax_eagerly():
    # optax's tree_math_test data: an unfused conj-then-dot was 1 ulp off optax's vdot.
    rng = np.random.RandomState(0)
    rng.randn(20, 10), rng.randn(20, 10), rng.randn(20), rng.randn(20, 10), rng.randn(20)
    x, y = rng.randn(20) + 1j * rng.randn(20), rng.randn(20)
    for a, b in ((x, y), ({"k": x, "r": (y,)}, {"k": y, "r": (y,)})):
        np.testing.assert_array_equal(jopt.tree.vdot(a, b), optax.tree.vdot(a, b))
