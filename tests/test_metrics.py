"""jopt.metrics against scikit-learn on random labels, with and without padding masks."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from jopt import metrics

C = 4
RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, C, size=60)
SCORES = RNG.normal(size=(60, C)).astype(np.float32)
PREDICTIONS = np.where(RNG.random(60) < 0.5, LABELS, SCORES.argmax(-1))  # better than chance
BINARY_LABELS = RNG.integers(0, 2, size=60)
BINARY_PREDICTIONS = np.where(RNG.random(60) < 0.6, BINARY_LABELS, 1 - BINARY_LABELS)
MASK = RNG.random(60) < 0.7


def _masked(mask, *arrays):
    return arrays if mask is None else tuple(a[mask] for a in arrays)


SKLEARN = {
    metrics.precision: skm.precision_score,
    metrics.recall: skm.recall_score,
    metrics.f1_score: skm.f1_score,
}


@pytest.mark.parametrize("mask", [None, MASK], ids=["all", "masked"])
@pytest.mark.parametrize("average", ["binary", "micro", "macro", "weighted"])
@pytest.mark.parametrize("metric", list(SKLEARN), ids=lambda f: f.__name__)
def test_precision_recall_f1_match_sklearn(metric, average, mask):
    if average == "binary":
        predictions, labels, num_classes = BINARY_PREDICTIONS, BINARY_LABELS, None
    else:
        predictions, labels, num_classes = PREDICTIONS, LABELS, C
    got = metric(
        jnp.asarray(predictions),
        jnp.asarray(labels),
        average=average,
        num_classes=num_classes,
        mask=None if mask is None else jnp.asarray(mask),
    )
    y_pred, y_true = _masked(mask, predictions, labels)
    expected = SKLEARN[metric](y_true, y_pred, average=average, zero_division=0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_macro_leaves_out_classes_absent_from_labels_and_predictions():
    labels, predictions = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    got = metrics.f1_score(predictions, labels, average="macro", num_classes=5)
    np.testing.assert_allclose(got, skm.f1_score(labels, predictions, average="macro"), rtol=1e-6)


@pytest.mark.parametrize("mask", [None, MASK], ids=["all", "masked"])
def test_accuracy_top_k_and_confusion_matrix_match_sklearn(mask):
    jmask = None if mask is None else jnp.asarray(mask)
    y_pred, y_true, scores = _masked(mask, PREDICTIONS, LABELS, SCORES)
    np.testing.assert_allclose(
        metrics.accuracy(PREDICTIONS, LABELS, mask=jmask),
        skm.accuracy_score(y_true, y_pred),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        metrics.accuracy(SCORES, LABELS, mask=jmask),  # logits: argmax
        skm.accuracy_score(y_true, scores.argmax(-1)),
        rtol=1e-6,
    )
    for k in (1, 2, 3):
        np.testing.assert_allclose(
            metrics.top_k_accuracy(SCORES, LABELS, k=k, mask=jmask),
            skm.top_k_accuracy_score(y_true, scores, k=k, labels=range(C)),
            rtol=1e-6,
        )
    np.testing.assert_array_equal(
        metrics.confusion_matrix(PREDICTIONS, LABELS, C, mask=jmask),
        skm.confusion_matrix(y_true, y_pred, labels=range(C)),
    )


def test_binary_zero_division():
    labels, never_positive = np.array([0, 1, 1]), np.array([0, 0, 0])
    for value in (0.0, 1.0):
        np.testing.assert_allclose(
            metrics.precision(never_positive, labels, zero_division=value),
            skm.precision_score(labels, never_positive, zero_division=value),
        )


def test_mean_and_running_mean():
    values = RNG.normal(size=60).astype(np.float32)
    np.testing.assert_allclose(metrics.mean(values), values.mean(), rtol=1e-6)
    np.testing.assert_allclose(metrics.mean(values, MASK), values[MASK].mean(), rtol=1e-6)
    assert float(metrics.mean(values, np.zeros(60, bool))) == 0.0
    running = metrics.RunningMean.empty()
    update = jax.jit(lambda r, v, m: r.update(v, m))
    for part in range(3):
        rows = slice(20 * part, 20 * (part + 1))
        running = update(running, values[rows], MASK[rows])
    np.testing.assert_allclose(running.compute(), values[MASK].mean(), rtol=1e-6)
    merged = running.merge(metrics.RunningMean.empty().update(jnp.float32(100.0)))
    expected = (values[MASK].sum() + 100.0) / (MASK.sum() + 1)
    np.testing.assert_allclose(merged.compute(), expected, rtol=1e-6)
    assert float(metrics.RunningMean.empty().compute()) == 0.0


def test_metrics_jit():
    f1 = jax.jit(functools.partial(metrics.f1_score, average="macro", num_classes=C))
    np.testing.assert_allclose(
        f1(PREDICTIONS, LABELS, mask=MASK),
        metrics.f1_score(PREDICTIONS, LABELS, "macro", C, mask=MASK),
        rtol=1e-6,
    )
    top2 = jax.jit(functools.partial(metrics.top_k_accuracy, k=2))
    np.testing.assert_allclose(
        top2(SCORES, LABELS), metrics.top_k_accuracy(SCORES, LABELS, 2), rtol=1e-6
    )


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="average must be one of 'binary', 'micro'"):
        metrics.precision(PREDICTIONS, LABELS, average="samples", num_classes=C)
    with pytest.raises(ValueError, match="num_classes must be given for average='macro'"):
        metrics.recall(PREDICTIONS, LABELS, average="macro")
    with pytest.raises(ValueError, match=r"pos_label must be < num_classes=2, got 3"):
        metrics.f1_score(BINARY_PREDICTIONS, BINARY_LABELS, pos_label=3)
    with pytest.raises(ValueError, match=r"mask must have the labels' shape \(60,\), got \(59,\)"):
        metrics.accuracy(PREDICTIONS, LABELS, mask=MASK[:59])
    with pytest.raises(ValueError, match=r"predictions must be class ids shaped like labels"):
        metrics.accuracy(PREDICTIONS[:10], LABELS)
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        metrics.top_k_accuracy(SCORES, LABELS, k=0)
    with pytest.raises(
        ValueError, match=r"scores must have shape labels.shape \+ \(num_classes,\)"
    ):
        metrics.top_k_accuracy(PREDICTIONS, LABELS)
    with pytest.raises(ValueError, match="zero_division must be in"):
        metrics.precision(BINARY_PREDICTIONS, BINARY_LABELS, zero_division=2.0)
