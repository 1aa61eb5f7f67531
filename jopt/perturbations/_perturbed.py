"""Smoothing a function by random perturbations of its input (:func:`make_perturbed_fun`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jopt import _check as check
from jopt import tree as jtree


class Normal:
    r"""The standard normal distribution, :math:`\log p(z) = -z^2/2 + \text{const}`."""

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = (), dtype: Any = float):
        """Draw ``sample_shape`` standard normal values."""
        return jax.random.normal(key, sample_shape, dtype)

    def log_prob(self, inputs: jax.Array) -> jax.Array:
        """The log-density up to a constant, :math:`-z^2/2`."""
        return -0.5 * inputs**2


class Gumbel:
    r"""The standard Gumbel distribution, :math:`\log p(z) = -z - e^{-z}`."""

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = (), dtype: Any = float):
        """Draw ``sample_shape`` standard Gumbel values."""
        return jax.random.gumbel(key, sample_shape, dtype)

    def log_prob(self, inputs: jax.Array) -> jax.Array:
        """The log-density, :math:`-z - e^{-z}`."""
        return -inputs - jnp.exp(-inputs)


def _magic_box(x: jax.Array) -> jax.Array:
    # Equals 1, but its derivative is x's derivative times 1 (DiCE's operator): it turns
    # a sample's log-probability into the score-function weight at every order.
    return jnp.exp(x - jax.lax.stop_gradient(x))


def make_perturbed_fun(
    fun: Callable[[Any], Any],
    num_samples: int = 1000,
    sigma: Any = 0.1,
    noise: Any = Gumbel(),  # noqa: B008 - stateless, as optax's default
    use_baseline: bool = True,
) -> Callable[[jax.Array, Any], Any]:
    r"""A differentiable Monte-Carlo estimate of ``fun`` smoothed by input noise.

    .. math::  f_\sigma(x) = \mathbb{E}_{z\sim\mu}\, f(x + \sigma z), \qquad
        \nabla f_\sigma(x) = \mathbb{E}\big[(f(x+\sigma z) - f(x))\,
        \nabla_x \log \mu\big(\tfrac{(x + \sigma z) - x}{\sigma}\big)\big]

    The returned ``g(key, x)`` averages ``num_samples`` perturbed values; its JAX
    derivatives of every order are unbiased estimates of :math:`f_\sigma`'s (score
    function through the "magic box"), using only values of ``fun``, which need not be
    differentiable. The draws are those of ``optax.perturbations`` for the same key.

    Args:
      fun: a function from a tree of arrays to a tree of arrays.
      num_samples: the number of perturbations averaged, >= 1.
      sigma: :math:`\sigma`, the noise scale.
      noise: an object with ``sample(key, shape, dtype)`` and ``log_prob(z)``, e.g.
        :class:`Gumbel` (default) or :class:`Normal`.
      use_baseline: subtract :math:`f(x)` inside the score term (variance reduction).

    Returns:
      ``g(key, x)``, with ``fun``'s output structure.

    References:
      Berthet et al., `Learning with Differentiable Perturbed Optimizers
      <https://arxiv.org/abs/2002.08676>`_, 2020; Foerster et al., `DiCE
      <https://arxiv.org/abs/1802.05098>`_, 2018.
    """
    check.function("fun", fun, "a function of the params, e.g. lambda x: jnp.argmax(x)")
    check.integer("num_samples", num_samples, minimum=1)

    def one_sample(key, x, baseline):
        z = jtree.random_like(key, x, sampler=noise.sample)
        perturbed = jax.lax.stop_gradient(jax.tree.map(lambda xi, zi: xi + sigma * zi, x, z))
        # z rebuilt from x so that its log-probability carries x's derivative.
        z = jax.tree.map(lambda xi, yi: (yi - xi) / sigma, x, perturbed)
        weight = _magic_box(jtree.sum(jax.tree.map(noise.log_prob, z)))
        value = jtree.scale(weight, fun(perturbed))
        return value if baseline is None else jtree.add_scale(value, 1 - weight, baseline)

    def perturbed_fun(key: jax.Array, x: Any) -> Any:
        baseline = fun(jax.lax.stop_gradient(x)) if use_baseline else None
        keys = jax.random.split(key, num_samples)
        values = jax.vmap(one_sample, in_axes=(0, None, None))(keys, x, baseline)
        return jax.tree.map(lambda v: jnp.mean(v, axis=0), values)

    return perturbed_fun
