"""Regression losses and similarities, elementwise or along an axis."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jopt import _check as check

_FLOAT = "cast it with .astype(jnp.float32)"


def _errors(predictions, targets):
    check.array_dtype("predictions", predictions, jnp.floating, _FLOAT)
    return predictions if targets is None else predictions - targets


def squared_error(predictions: jax.Array, targets: jax.Array | None = None) -> jax.Array:
    r"""Elementwise squared error, :math:`(\hat y - y)^2`.

    Args:
      predictions: floating array.
      targets: array of the same shape (no broadcasting), or None for zeros.
    """
    check.array_dtype("predictions", predictions, jnp.floating, _FLOAT)
    if targets is not None:
        check.same_shape("predictions", predictions, "targets", targets)
    return _errors(predictions, targets) ** 2


def l2_loss(predictions: jax.Array, targets: jax.Array | None = None) -> jax.Array:
    r"""Half the squared error, :math:`\tfrac12 (\hat y - y)^2`, elementwise.

    Args:
      predictions: floating array.
      targets: array of the same shape, or None for zeros.
    """
    return 0.5 * squared_error(jnp.asarray(predictions), targets)


def huber_loss(
    predictions: jax.Array, targets: jax.Array | None = None, *, delta: float = 1.0
) -> jax.Array:
    r"""Huber loss: quadratic near zero, linear beyond ``delta``, elementwise.

    .. math::
      \ell(e) = \begin{cases} \tfrac12 e^2 & |e| \le \delta \\
      \tfrac12\delta^2 + \delta(|e| - \delta) & |e| > \delta \end{cases}

    Args:
      predictions: floating array.
      targets: array broadcastable with ``predictions``, or None for zeros.
      delta: :math:`\delta > 0`; default 1.

    References:
      Huber, `Robust Estimation of a Location Parameter
      <https://doi.org/10.1214/aoms/1177703732>`_, 1964.
    """
    check.positive("delta", delta, "pass the threshold of the linear part, such as 1.0")
    abs_errors = jnp.abs(_errors(predictions, targets))
    quadratic = jnp.minimum(abs_errors, delta)
    # |e| - min(|e|, delta) rather than max(|e| - delta, 0): at |e| = delta the
    # latter would add a second subgradient and double the gradient.
    return 0.5 * quadratic**2 + delta * (abs_errors - quadratic)


def log_cosh(predictions: jax.Array, targets: jax.Array | None = None) -> jax.Array:
    r"""Elementwise :math:`\log\cosh(\hat y - y)`: like L2 near zero, like L1 far away.

    Computed as :math:`\operatorname{logaddexp}(e, -e) - \log 2`, which does not overflow.

    Args:
      predictions: floating array.
      targets: array broadcastable with ``predictions``, or None for zeros.
    """
    errors = _errors(predictions, targets)
    return jnp.logaddexp(errors, -errors) - jnp.log(2.0).astype(errors.dtype)


def cosine_similarity(
    predictions: jax.Array,
    targets: jax.Array,
    *,
    epsilon: float = 0.0,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""Cosine of the angle between vectors along ``axis``.

    .. math::
      \frac{\langle a, b\rangle}{\sqrt{\max(\|a\|^2, \epsilon)}\sqrt{\max(\|b\|^2, \epsilon)}}

    Args:
      predictions: floating array.
      targets: floating array broadcastable with ``predictions``.
      epsilon: lower bound on the squared norms, >= 0 (guards zero vectors); default 0.
      axis: axis or axes of the vectors; default -1.
      where: boolean mask of the entries that count, broadcastable with the inputs.
    """
    check.array_dtype("predictions", predictions, jnp.floating, _FLOAT)
    check.array_dtype("targets", targets, jnp.floating, _FLOAT)
    check.non_negative("epsilon", epsilon, "pass a small bound such as 1e-12, or 0")
    a_norm = jnp.sqrt(jnp.square(predictions).sum(axis, where=where, keepdims=True).clip(epsilon))
    b_norm = jnp.sqrt(jnp.square(targets).sum(axis, where=where, keepdims=True).clip(epsilon))
    return ((predictions / a_norm) * (targets / b_norm)).sum(axis, where=where)


def cosine_distance(
    predictions: jax.Array,
    targets: jax.Array,
    *,
    epsilon: float = 0.0,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.Array | None = None,
) -> jax.Array:
    r"""One minus :func:`cosine_similarity`: 0 for parallel vectors, 2 for opposite ones.

    Args:
      predictions: floating array.
      targets: floating array broadcastable with ``predictions``.
      epsilon: lower bound on the squared norms, >= 0; default 0.
      axis: axis or axes of the vectors; default -1.
      where: boolean mask of the entries that count.
    """
    return 1.0 - cosine_similarity(predictions, targets, epsilon=epsilon, axis=axis, where=where)
