"""jopt.perturbations against optax.perturbations for the same key: values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import optax.perturbations as op
import pytest

import jopt.perturbations as jp


def _argmax_one_hot(x):
    return {"y": jax.nn.one_hot(jnp.argmax(x["a"]), 3), "s": jnp.sum(jnp.maximum(x["b"], 0.0))}


@pytest.mark.parametrize("noise, use_baseline", [("Gumbel", True), ("Normal", False)])
def test_values_and_gradients_match_optax(noise, use_baseline):
    x = {"a": jnp.array([0.2, 0.1, -0.3]), "b": jnp.array([0.05, -0.02])}
    key = jax.random.key(3)
    fns = [
        lib.make_perturbed_fun(_argmax_one_hot, 64, 0.5, getattr(lib, noise)(), use_baseline)
        for lib in (jp, op)
    ]
    values = [jax.jit(f)(key, x) for f in fns]
    grads = [
        jax.jit(jax.grad(lambda k, x, f=f: f(k, x)["s"] + f(k, x)["y"][0], 1))(key, x) for f in fns
    ]
    for ours, theirs in (values, grads):
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_distributions_match_optax():
    key, z = jax.random.key(0), jnp.linspace(-2.0, 2.0, 5)
    for name in ("Gumbel", "Normal"):
        ours, theirs = getattr(jp, name)(), getattr(op, name)()
        np.testing.assert_allclose(ours.sample(key, (4,)), theirs.sample(key, (4,)))
        np.testing.assert_allclose(ours.log_prob(z), theirs.log_prob(z), rtol=1e-6)
