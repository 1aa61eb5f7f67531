"""A diagonal Gaussian parametrised by its mean and log scale (for perturbation methods)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm


class MultiNormalDiagFromLogScale:
    r"""Independent normals :math:`\mathcal N(\mu, \sigma^2)` with :math:`\sigma = e^{s}`.

    Exposes its parameters ``[loc, log_scale]`` directly so gradient estimators can
    differentiate through them.
    """

    def __init__(self, loc: jax.Array, log_scale: jax.Array):
        self._mean = jnp.asarray(loc)
        self._log_scale = jnp.asarray(log_scale)
        self._scale = jnp.exp(self._log_scale)
        self._param_shape = jax.lax.broadcast_shapes(self._mean.shape, self._scale.shape)

    def sample(self, shape: Sequence[int], key: jax.Array) -> jax.Array:
        """Draw samples of shape ``shape + param_shape``."""
        noise = jax.random.normal(key, tuple(shape) + self._param_shape)
        return noise * self._scale + self._mean

    def log_prob(self, x: jax.Array) -> jax.Array:
        """Log density of ``x``, summed over the parameter axes."""
        per_coordinate = norm.logpdf(x, loc=self._mean, scale=self._scale)
        return jnp.sum(per_coordinate, axis=tuple(-(i + 1) for i in range(len(self._param_shape))))

    @property
    def log_scale(self) -> jax.Array:
        """:math:`s = \\log \\sigma`."""
        return self._log_scale

    @property
    def params(self) -> list[jax.Array]:
        """``[loc, log_scale]``."""
        return [self._mean, self._log_scale]


def multi_normal(loc: jax.Array, log_scale: jax.Array) -> MultiNormalDiagFromLogScale:
    """A diagonal Gaussian with mean ``loc`` and standard deviation ``exp(log_scale)``."""
    return MultiNormalDiagFromLogScale(loc=loc, log_scale=log_scale)
