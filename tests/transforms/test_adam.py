"""scale_by_adam's ``nu_dtype`` (optax has no twin) against a NumPy Adam in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt


def _numpy_adam(grads, b1=0.9, b2=0.999, eps=1e-8):
    mu = nu = np.zeros_like(grads[0])
    for t, g in enumerate(grads, start=1):
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        update = (mu / (1 - b1**t)) / (np.sqrt(nu / (1 - b2**t)) + eps)
    return update, nu


@pytest.mark.parametrize("nesterov", [False, True])
def test_float32_second_moment_for_bfloat16_params(nesterov):
    rng = np.random.default_rng(0)
    grads = [jnp.asarray(rng.normal(size=8) * 10.0 ** rng.integers(-3, 2), jnp.bfloat16)
             for _ in range(6)]  # fmt: skip
    tx = jopt.scale_by_adam(nu_dtype=jnp.float32, nesterov=nesterov)
    state = tx.init(jnp.zeros(8, jnp.bfloat16))
    assert state.nu.dtype == jnp.float32 and state.mu.dtype == jnp.bfloat16
    step = jax.jit(tx.update)
    for g in grads:
        updates, state = step(g, state)
    assert updates.dtype == jnp.bfloat16, "a float32 nu must not widen bfloat16 updates"
    assert state.nu.dtype == jnp.float32 and state.mu.dtype == jnp.bfloat16
    g64 = [np.asarray(g, np.float64) for g in grads]
    expected_update, expected_nu = _numpy_adam(g64)
    # nu is accumulated from exact bfloat16 gradients in float32: float32 accuracy,
    # far better than the ~4e-3 a bfloat16 nu would give.
    np.testing.assert_allclose(np.asarray(state.nu, np.float64), expected_nu, rtol=1e-5)
    if not nesterov:
        np.testing.assert_allclose(
            np.asarray(updates, np.float64), expected_update, rtol=2e-2, atol=2e-3
        )


def test_nu_dtype_with_mu_dtype_float32_gives_float32_moments_and_updates():
    tx = jopt.adam(0.1, mu_dtype=jnp.float32, nu_dtype=jnp.float32)
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    state = tx.init(params)
    updates, state = tx.update(params, state, params)
    assert state[0].mu["w"].dtype == state[0].nu["w"].dtype == jnp.float32
    assert jopt.apply_updates(params, updates)["w"].dtype == jnp.bfloat16


def test_nu_dtype_none_is_optax_default():
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    assert jopt.scale_by_adam().init(params).nu["w"].dtype == jnp.bfloat16
