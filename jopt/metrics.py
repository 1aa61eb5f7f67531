"""Classification metrics and running averages: pure, jit-able, with masks for padding.

Arguments follow :mod:`jopt.losses`: ``(predictions, labels)``. ``predictions`` are
either class ids shaped like ``labels`` or scores/logits with one more (last) axis,
reduced by ``argmax``. ``mask`` (True for real examples, False for padding, shaped
like ``labels``) leaves padded rows out of every count. Results match
scikit-learn's metrics of the same names on the unmasked rows.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from jopt import _check

__all__ = [
    "RunningMean",
    "accuracy",
    "confusion_matrix",
    "f1_score",
    "mean",
    "precision",
    "recall",
    "top_k_accuracy",
]

Average = Literal["binary", "micro", "macro", "weighted"]
_AVERAGES = ("binary", "micro", "macro", "weighted")


def _class_ids(predictions: jax.Array, labels: jax.Array) -> jax.Array:
    predictions, labels = jnp.asarray(predictions), jnp.asarray(labels)
    if predictions.ndim == labels.ndim + 1:
        return jnp.argmax(predictions, axis=-1)
    if predictions.shape != labels.shape:
        raise ValueError(
            f"predictions must be class ids shaped like labels {labels.shape} or scores of "
            f"shape {labels.shape} + (num_classes,), got shape {predictions.shape}"
        )
    return predictions


def _weights(mask: jax.Array | None, labels: jax.Array) -> jax.Array:
    if mask is None:
        return jnp.ones(jnp.shape(labels), jnp.float32)
    mask = jnp.asarray(mask)
    if mask.shape != jnp.shape(labels):
        raise ValueError(
            f"mask must have the labels' shape {jnp.shape(labels)}, got {mask.shape}; pass "
            "one boolean per example, True for real rows and False for padding"
        )
    return mask.astype(bool).astype(jnp.float32)


def _safe_divide(numerator: jax.Array, denominator: jax.Array, zero_division: float):
    return jnp.where(
        denominator > 0, numerator / jnp.where(denominator > 0, denominator, 1), zero_division
    )


def mean(values: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """The mean of ``values`` over the rows where ``mask`` is True (0 if there are none).

    Args:
      values: an array of per-example values.
      mask: booleans shaped like ``values``, or None (every row counts).
    """
    values = jnp.asarray(values, jnp.float32)
    weights = _weights(mask, values)
    return _safe_divide(jnp.sum(values * weights), jnp.sum(weights), 0.0)


def accuracy(predictions: jax.Array, labels: jax.Array, mask: jax.Array | None = None):
    """The fraction of rows whose predicted class equals the label (0 if none count).

    Args:
      predictions: class ids shaped like ``labels``, or scores with a class axis last.
      labels: integer class ids.
      mask: booleans shaped like ``labels``, or None.
    """
    correct = (_class_ids(predictions, labels) == jnp.asarray(labels)).astype(jnp.float32)
    return mean(correct, mask)


def top_k_accuracy(
    scores: jax.Array, labels: jax.Array, k: int = 5, mask: jax.Array | None = None
) -> jax.Array:
    """The fraction of rows whose label is among the ``k`` highest-scored classes.

    A label counts as a hit when fewer than ``k`` classes score strictly higher
    (ties favour the label), which needs no sort.

    Args:
      scores: scores or logits of shape ``labels.shape + (num_classes,)``.
      labels: integer class ids.
      k: number of top classes that count, >= 1.
      mask: booleans shaped like ``labels``, or None.
    """
    _check.integer("k", k, minimum=1)
    scores, labels = jnp.asarray(scores), jnp.asarray(labels)
    if scores.ndim != labels.ndim + 1:
        raise ValueError(
            f"scores must have shape labels.shape + (num_classes,) = {labels.shape} + (C,), "
            f"got {scores.shape}"
        )
    true_score = jnp.take_along_axis(scores, labels[..., None], axis=-1)
    higher = jnp.sum(scores > true_score, axis=-1)
    return mean((higher < k).astype(jnp.float32), mask)


def confusion_matrix(
    predictions: jax.Array, labels: jax.Array, num_classes: int, mask: jax.Array | None = None
) -> jax.Array:
    """Counts of (label, prediction) pairs: row ``i`` is true class ``i``, column ``j`` the
    predicted class ``j`` (scikit-learn's layout). int32 of shape (num_classes, num_classes).

    Args:
      predictions: class ids shaped like ``labels``, or scores with a class axis last.
      labels: integer class ids in [0, num_classes).
      num_classes: the number of classes (a Python int: it fixes the shape).
      mask: booleans shaped like ``labels``, or None.
    """
    _check.integer("num_classes", num_classes, minimum=1)
    predicted = _class_ids(predictions, labels).reshape(-1)
    labels = jnp.asarray(labels).reshape(-1)
    counts = _weights(mask, labels).astype(jnp.int32)
    matrix = jnp.zeros((num_classes, num_classes), jnp.int32)
    return matrix.at[labels, predicted].add(counts)


def _scores(
    kind: str, predictions, labels, average, num_classes, pos_label, zero_division, mask
) -> jax.Array:
    """Precision, recall or F1 from the confusion matrix, averaged as scikit-learn does."""
    _check.one_of("average", average, _AVERAGES)
    if num_classes is None:
        if average != "binary":
            raise ValueError(
                f"num_classes must be given for average={average!r} (a Python int that fixes "
                "the shapes under jit), e.g. num_classes=10"
            )
        num_classes = 2
    _check.integer("num_classes", num_classes, minimum=2)
    _check.integer("pos_label", pos_label, minimum=0)
    if pos_label >= num_classes:
        raise ValueError(f"pos_label must be < num_classes={num_classes}, got {pos_label}")
    _check.closed_unit_interval("zero_division", zero_division)
    matrix = confusion_matrix(predictions, labels, num_classes, mask).astype(jnp.float32)
    tp = jnp.diagonal(matrix)
    predicted = jnp.sum(matrix, axis=0)  # tp + fp
    support = jnp.sum(matrix, axis=1)  # tp + fn
    if average == "micro":
        tp, predicted, support = jnp.sum(tp), jnp.sum(predicted), jnp.sum(support)
    per_class = {
        "precision": lambda: _safe_divide(tp, predicted, zero_division),
        "recall": lambda: _safe_divide(tp, support, zero_division),
        "f1": lambda: _safe_divide(2 * tp, predicted + support, zero_division),
    }[kind]()
    if average in ("binary", "micro"):
        return per_class[pos_label] if average == "binary" else per_class
    if average == "weighted":
        return _safe_divide(jnp.sum(per_class * support), jnp.sum(support), zero_division)
    # Like scikit-learn, a class absent from both labels and predictions is left out.
    present = ((support + predicted) > 0).astype(jnp.float32)
    return _safe_divide(jnp.sum(per_class * present), jnp.sum(present), zero_division)


def precision(
    predictions: jax.Array,
    labels: jax.Array,
    average: Average = "binary",
    num_classes: int | None = None,
    pos_label: int = 1,
    zero_division: float = 0.0,
    mask: jax.Array | None = None,
) -> jax.Array:
    r"""Precision :math:`\mathrm{tp} / (\mathrm{tp} + \mathrm{fp})`, averaged over classes.

    Args:
      predictions: class ids shaped like ``labels``, or scores with a class axis last.
      labels: integer class ids.
      average: ``"binary"`` (class ``pos_label`` only), ``"micro"`` (pooled counts),
        ``"macro"`` (unweighted mean over classes present in labels or predictions) or
        ``"weighted"`` (mean weighted by each class's number of labels).
      num_classes: a Python int; required unless ``average="binary"`` (then 2).
      pos_label: the positive class of ``average="binary"``.
      zero_division: the value where a denominator is 0, in [0, 1].
      mask: booleans shaped like ``labels``, or None.
    """
    return _scores(
        "precision", predictions, labels, average, num_classes, pos_label, zero_division, mask
    )


def recall(
    predictions: jax.Array,
    labels: jax.Array,
    average: Average = "binary",
    num_classes: int | None = None,
    pos_label: int = 1,
    zero_division: float = 0.0,
    mask: jax.Array | None = None,
) -> jax.Array:
    r"""Recall :math:`\mathrm{tp} / (\mathrm{tp} + \mathrm{fn})`, averaged over classes.

    Args are those of :func:`precision`.
    """
    return _scores(
        "recall", predictions, labels, average, num_classes, pos_label, zero_division, mask
    )


def f1_score(
    predictions: jax.Array,
    labels: jax.Array,
    average: Average = "binary",
    num_classes: int | None = None,
    pos_label: int = 1,
    zero_division: float = 0.0,
    mask: jax.Array | None = None,
) -> jax.Array:
    r"""F1 :math:`2\,\mathrm{tp} / (2\,\mathrm{tp} + \mathrm{fp} + \mathrm{fn})`, averaged over
    classes (the harmonic mean of precision and recall per class).

    Args are those of :func:`precision`.
    """
    return _scores("f1", predictions, labels, average, num_classes, pos_label, zero_division, mask)


class RunningMean(NamedTuple):
    """A mean accumulated over batches: a pure pytree, updated functionally.

    Example:
      >>> import jax.numpy as jnp
      >>> from jopt.metrics import RunningMean
      >>> running = RunningMean.empty().update(jnp.array([1.0, 2.0]))
      >>> float(running.update(jnp.array([6.0, 0.0]), mask=jnp.array([True, False])).compute())
      3.0
    """

    total: jax.Array  # float32 scalar, sum of the values counted so far
    count: jax.Array  # float32 scalar, number of values counted so far

    @classmethod
    def empty(cls) -> RunningMean:
        """Nothing counted yet."""
        return cls(jnp.zeros([], jnp.float32), jnp.zeros([], jnp.float32))

    def update(self, values: jax.Array, mask: jax.Array | None = None) -> RunningMean:
        """Count every value (a scalar counts once) where ``mask`` is True."""
        values = jnp.asarray(values, jnp.float32)
        weights = _weights(mask, values)
        return RunningMean(self.total + jnp.sum(values * weights), self.count + jnp.sum(weights))

    def merge(self, other: RunningMean) -> RunningMean:
        """Combine two running means (e.g. from two devices or hosts)."""
        return RunningMean(self.total + other.total, self.count + other.count)

    def compute(self) -> jax.Array:
        """The mean so far (0 if nothing was counted)."""
        return _safe_divide(self.total, self.count, 0.0)
