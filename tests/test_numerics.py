"""Safe norms and gradient scaling: optax's values, and finite gradients where optax's are."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt


@pytest.mark.parametrize("ord_, axis", [(None, None), (1, 0), (2, 1), (jnp.inf, None)])
def test_safe_norm_matches_optax_and_has_finite_gradient_at_zero(ord_, axis):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)), jnp.float32)
    for value in (x, jnp.zeros_like(x)):
        np.testing.assert_allclose(
            jopt.safe_norm(value, 0.5, ord=ord_, axis=axis),
            optax.safe_norm(value, 0.5, ord=ord_, axis=axis),
            rtol=1e-6,
        )
    grad = jax.grad(lambda v: jnp.sum(jopt.safe_norm(v, 1e-3, ord=ord_, axis=axis)))(
        jnp.zeros((3, 4))
    )
    assert bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).sum()) == 0.0


def test_safe_root_mean_squares_matches_optax():
    for x in (jnp.arange(5.0), jnp.zeros(5)):
        np.testing.assert_allclose(
            jopt.safe_root_mean_squares(x, 0.1), optax.safe_root_mean_squares(x, 0.1), rtol=1e-6
        )
    grad = jax.grad(lambda v: jopt.safe_root_mean_squares(v, 0.1))(jnp.zeros(5))
    assert bool(jnp.all(grad == 0))


@pytest.mark.parametrize("scale", [0.0, 1.0, -2.5])
def test_scale_gradient_scales_only_the_backward_pass(scale):
    f = lambda x: jnp.sum(jopt.scale_gradient(x, scale) ** 2)
    x = jnp.array([1.0, -2.0])
    np.testing.assert_allclose(f(x), 5.0)
    np.testing.assert_allclose(jax.grad(f)(x), scale * 2 * x)


def test_safe_int32_increment_saturates():
    top = jnp.asarray(jnp.iinfo(jnp.int32).max, jnp.int32)
    assert int(jopt.safe_int32_increment(top)) == int(top)
    assert int(jopt.safe_increment(jnp.asarray(3, jnp.int32))) == 4
