"""Dice losses for segmentation: overlap between predicted and target masks."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jopt import _check as check


def _reduce(loss, reduction, axis=None):
    if reduction == "mean":
        return jnp.mean(loss, axis=axis)
    if reduction == "sum":
        return jnp.sum(loss, axis=axis)
    return loss


def dice_loss(
    predictions: jax.Array,
    targets: jax.Array,
    *,
    class_weights: jax.Array | None = None,
    smooth: float = 1.0,
    alpha: float = 0.5,
    beta: float = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
    axis: int | tuple[int, ...] | None = None,
) -> jax.Array:
    r"""Dice (Tversky) loss, :math:`1 - \frac{I + s}{I + \alpha(P - I) + \beta(T - I) + s}`.

    :math:`I = \sum p\,t`, :math:`P = \sum p`, :math:`T = \sum t` over ``axis`` (by
    default the spatial axes, all but the first and the last); :math:`\alpha = \beta
    = 1/2` is the Dice loss, other values the Tversky loss.

    Args:
      predictions: logits (or probabilities with ``apply_softmax=False``),
        ``[batch, ..., classes]``; a single class uses a sigmoid.
      targets: one-hot (or soft) targets of the same shape.
      class_weights: weights ``[classes]``, or None.
      smooth: :math:`s`, added to numerator and denominator, >= 0; default 1.
      alpha: weight of false positives, >= 0; default 0.5.
      beta: weight of false negatives, >= 0; default 0.5.
      apply_softmax: turn logits into probabilities first; default True.
      reduction: ``'mean'``, ``'sum'`` or ``'none'`` over the classes.
      ignore_background: drop class 0; default False.
      axis: the axes summed over, or None for the spatial axes.

    References:
      Milletari et al., `V-Net <https://arxiv.org/abs/1606.04797>`_, 2016;
      Salehi et al., `Tversky loss function <https://arxiv.org/abs/1706.05721>`_, 2017.
    """
    check.one_of("reduction", reduction, ("mean", "sum", "none"))
    check.non_negative("smooth", smooth, "pass a smoothing term >= 0 such as 1.0")
    check.non_negative("alpha", alpha, "pass a weight >= 0 such as 0.5")
    check.non_negative("beta", beta, "pass a weight >= 0 such as 0.5")
    if predictions.ndim == targets.ndim - 1:
        predictions = predictions[..., None]
    if targets.ndim == predictions.ndim - 1:
        targets = targets[..., None]
    check.same_shape("predictions", predictions, "targets", targets)
    if not apply_softmax:
        sums = jnp.sum(predictions, axis=-1)
        if not jnp.allclose(sums, 1.0, rtol=1e-5):
            raise ValueError(
                "predictions must be valid probability distributions (sum to 1 over the class "
                "axis) when apply_softmax=False, got "
                f"sums in [{float(jnp.min(sums)):.6f}, {float(jnp.max(sums)):.6f}]; pass "
                "probabilities, or logits with apply_softmax=True"
            )
    probs = predictions
    if apply_softmax:
        binary = predictions.shape[-1] == 1
        probs = jax.nn.sigmoid(predictions) if binary else jax.nn.softmax(predictions, axis=-1)
    axis = tuple(range(1, probs.ndim - 1)) if axis is None else axis
    intersection = jnp.sum(probs * targets, axis=axis)
    pred_sum = jnp.sum(probs, axis=axis)
    target_sum = jnp.sum(targets, axis=axis)
    denominator = (
        intersection
        + alpha * (pred_sum - intersection)
        + beta * (target_sum - intersection)
        + smooth
    )
    loss = 1.0 - (intersection + smooth) / denominator
    if class_weights is not None:
        if jnp.ndim(class_weights) != 1:
            raise ValueError(
                f"class_weights must be a vector [classes], got shape {jnp.shape(class_weights)}"
            )
        loss = loss * class_weights
    if ignore_background and probs.shape[-1] > 1:
        loss = loss[..., 1:]
    return _reduce(loss, reduction, axis=-1)


def multiclass_generalized_dice_loss(
    predictions: jax.Array,
    targets: jax.Array,
    *,
    smooth: float = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
) -> jax.Array:
    r"""Generalized Dice loss: :func:`dice_loss` with class weights :math:`1/(f_c^2 + 10^{-7})`.

    :math:`f_c` is the class's total target mass; the weights are normalized to
    average 1, so rare classes count as much as common ones.

    Args:
      predictions: logits ``[batch, ..., classes]``.
      targets: one-hot targets of the same shape.
      smooth: added to numerator and denominator; default 1.
      apply_softmax: turn logits into probabilities first; default True.
      ignore_background: drop class 0; default False.

    References:
      Sudre et al., `Generalised Dice overlap as a deep learning loss function
      <https://arxiv.org/abs/1707.03237>`_, 2017.
    """
    check.same_shape("predictions", predictions, "targets", targets)
    frequencies = jnp.sum(targets, axis=tuple(range(targets.ndim - 1)))
    weights = 1.0 / (frequencies**2 + 1e-7)
    weights = weights / jnp.sum(weights) * len(weights)
    return jnp.mean(
        dice_loss(
            predictions,
            targets,
            class_weights=weights,
            smooth=smooth,
            apply_softmax=apply_softmax,
            reduction="none",
            ignore_background=ignore_background,
        )  # fmt: skip
    )


def binary_dice_loss(
    predictions: jax.Array,
    targets: jax.Array,
    *,
    smooth: float = 1.0,
    apply_sigmoid: bool = True,
) -> jax.Array:
    """Dice loss of a binary mask: :func:`dice_loss` with one class and a sigmoid.

    Args:
      predictions: logits ``[batch, ...]`` (or with a trailing axis of 1).
      targets: binary targets of the same shape.
      smooth: added to numerator and denominator; default 1.
      apply_sigmoid: turn logits into probabilities first; default True.
    """
    if predictions.ndim == targets.ndim and predictions.shape[-1] != 1:
        predictions, targets = predictions[..., None], targets[..., None]
    return dice_loss(
        predictions, targets, smooth=smooth, apply_softmax=apply_sigmoid, reduction="mean"
    )
