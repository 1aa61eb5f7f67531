"""Batching order, resumption and feature scaling against scikit-learn."""

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from jopt.train.data import (
    Batches,
    epoch_permutation,
    fit_normalize,
    fit_standardize,
    normalize,
    standardize,
)


def data(n=10):
    return {"x": np.arange(n * 2).reshape(n, 2), "y": np.arange(n)}


def test_each_epoch_is_a_permutation_that_depends_on_seed_and_epoch():
    batches = Batches(data(), batch_size=3, seed=1)
    seen = [np.concatenate([b["y"] for b in batches.epoch(e)]) for e in range(3)]
    for order in seen:
        assert sorted(order) == list(range(10))
    assert not np.array_equal(seen[0], seen[1])
    np.testing.assert_array_equal(seen[0], batches.order(0))
    np.testing.assert_array_equal(batches.order(2), np.asarray(epoch_permutation(1, 2, 10)))
    assert not np.array_equal(Batches(data(), 3, seed=2).order(0), seen[0])
    # x rows follow y: one gather for the whole tree.
    first = next(batches.epoch(0))
    np.testing.assert_array_equal(first["x"][:, 0], 2 * first["y"])


def test_resume_mid_epoch_continues_the_same_order():
    batches = Batches(data(), batch_size=3, seed=4)
    full = [b["y"] for b in batches.epoch(5)]
    resumed = [b["y"] for b in Batches(data(), batch_size=3, seed=4).epoch(5, start=2)]
    assert len(resumed) == 2
    for a, b in zip(full[2:], resumed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_drop_remainder_and_no_shuffle():
    assert len(Batches(data(), 3)) == 4
    kept = Batches(data(), 3, shuffle=False, drop_remainder=True)
    assert len(kept) == 3
    ys = [b["y"].tolist() for b in kept.epoch(7)]
    assert ys == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        (dict(data=data(), batch_size=0), ValueError, "batch_size must be an integer >= 1"),
        (dict(data=data(), batch_size=11, drop_remainder=True), ValueError, "batch_size must"),
        (dict(data={"x": np.zeros(3), "y": np.zeros(4)}, batch_size=1), ValueError, "same leading"),
        (dict(data={}, batch_size=1), ValueError, "data has no arrays"),
        (dict(data=data(), batch_size=2, seed=-1), ValueError, "seed must be an integer >= 0"),
    ],
)
def test_validation(kwargs, error, text):
    with pytest.raises(error, match=text):
        Batches(**kwargs)


def test_scaling_matches_scikit_learn_and_uses_train_statistics():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(50, 4))
    train[:, 2] = 5.0  # a constant feature
    test = rng.normal(3.0, 2.0, size=(7, 4))
    stats = fit_standardize(train)
    np.testing.assert_allclose(
        standardize(test, stats), StandardScaler().fit(train).transform(test), rtol=1e-5, atol=1e-5
    )
    stats = fit_normalize(train)
    np.testing.assert_allclose(
        normalize(test, stats), MinMaxScaler().fit(train).transform(test), rtol=1e-5, atol=1e-5
    )
