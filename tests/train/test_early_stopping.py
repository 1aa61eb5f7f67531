"""EarlyStopping against a plain-Python transcription of Keras' rule, eager, jitted and scanned."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.training import early_stopping as flax_early_stopping

from jopt.train.early_stopping import EarlyStopping


def keras_reference(metrics, mode="min", min_delta=0.0, patience=0, baseline=None, start=0):
    """Keras' EarlyStopping.on_epoch_end in plain Python: (stop_epoch, best_epoch, best)."""
    # Keras negates min_delta for "min", so an improvement is current + min_delta < best.
    better = (lambda a, b: a + min_delta < b) if mode == "min" else (lambda a, b: a - min_delta > b)
    best, best_epoch, wait = (math.inf if mode == "min" else -math.inf), -1, 0
    for epoch, current in enumerate(metrics):
        if epoch < start:
            continue
        if not math.isfinite(current):
            return epoch, best_epoch, best
        wait += 1
        if better(current, best):
            best, best_epoch = current, epoch
            if baseline is None or better(current, baseline):
                wait = 0
            continue
        if wait >= patience:
            return epoch, best_epoch, best
    return None, best_epoch, best


def run_eager(stopper, metrics):
    state = stopper.init()
    for step, m in enumerate(metrics):
        state = stopper.update(state, m, step)
        if bool(state.stopped):
            break
    return state


def run_scan(stopper, metrics):
    def body(state, xs):
        step, m = xs
        return stopper.update(state, m, step), None

    steps = jnp.arange(len(metrics))
    return jax.lax.scan(body, stopper.init(), (steps, jnp.asarray(metrics, jnp.float32)))[0]


def summary(state):
    stopped = int(state.stopped_epoch) if bool(state.stopped) else None
    return stopped, int(state.best_epoch), float(state.best)


CONFIGS = [
    dict(mode="min", patience=0),
    dict(mode="min", patience=2),
    dict(mode="min", patience=2, min_delta=0.25),
    dict(mode="max", patience=1, min_delta=0.1),
    dict(mode="min", patience=3, baseline=0.5),
    dict(mode="max", patience=2, start=3),
]


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_matches_keras_reference_eager_and_scanned(config):
    rng = np.random.default_rng(0)
    kwargs = {k: v for k, v in config.items() if k != "start"}
    stopper = EarlyStopping(start_from_epoch=config.get("start", 0), **kwargs)
    # Quarter steps make ties and exact-min_delta boundaries frequent.
    sequences = np.round(rng.uniform(0, 2, size=(24, 12)) * 4) / 4
    expected = [keras_reference(list(m), **config) for m in sequences]
    for metrics, want in list(zip(sequences, expected, strict=True))[:4]:
        assert summary(run_eager(stopper, list(metrics))) == want, metrics
    scanned = jax.jit(jax.vmap(lambda m: run_scan(stopper, m)))(jnp.asarray(sequences, jnp.float32))
    for i, want in enumerate(expected):
        assert summary(jax.tree.map(lambda x, i=i: x[i], scanned)) == want, sequences[i]


def test_boundary_exactly_patience_and_min_delta():
    # An improvement of exactly min_delta does not count (0.875 is 0.125 below 1.0).
    stopper = EarlyStopping(patience=2, min_delta=0.125)
    metrics = [1.0, 0.875, 0.875, 0.5]
    assert summary(run_eager(stopper, metrics)) == (2, 0, 1.0)
    # patience=2: two non-improving evaluations after the best stop on the second.
    stopper = EarlyStopping(patience=2)
    assert summary(run_eager(stopper, [3.0, 2.0, 2.0, 2.5, 1.0])) == (3, 1, 2.0)


def flax_stop_epoch(metrics, min_delta, patience):
    state = flax_early_stopping.EarlyStopping(min_delta=min_delta, patience=patience)
    for epoch, m in enumerate(metrics):
        state = state.update(m)
        if state.should_stop:
            return epoch
    return None


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_flax_stops_one_evaluation_later(patience):
    metrics = [4.0, 3.0] + [3.0] * 6
    ours = run_eager(EarlyStopping(min_delta=1e-3, patience=patience), metrics)
    keras_stop = keras_reference(metrics, min_delta=1e-3, patience=patience)[0]
    assert int(ours.stopped_epoch) == keras_stop == 1 + max(patience, 1)
    assert flax_stop_epoch(metrics, 1e-3, patience) == keras_stop + (patience > 0)
    # flax's own docstring sequence: it runs through a plateau of 2 that Keras stops on.
    docs = [4.0, 3.0, 3.0, 3.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.0]
    if patience == 2:
        assert flax_stop_epoch(docs, 1e-3, 2) == 7
        assert int(run_eager(EarlyStopping(min_delta=1e-3, patience=2), docs).stopped_epoch) == 3


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_metric_stops_and_keeps_best(bad):
    stopper = EarlyStopping(patience=5)
    state = run_eager(stopper, [1.0, 0.5, bad, 0.1])
    assert summary(state) == (2, 1, 0.5)


def test_restore_best_keeps_params_and_jits():
    stopper = EarlyStopping(mode="max", patience=1, restore_best=True)
    params = {"w": jnp.zeros(2)}
    state = stopper.init(params)
    update = jax.jit(stopper.update)
    for step, acc in enumerate([0.1, 0.5, 0.4, 0.3]):
        state = update(state, acc, step, {"w": jnp.full(2, float(step))})
    assert bool(state.stopped) and int(state.stopped_epoch) == 2
    np.testing.assert_array_equal(state.best_params["w"], [1.0, 1.0])
    with pytest.raises(ValueError, match="params must be given"):
        stopper.init()


def test_state_frozen_after_stop():
    stopper = EarlyStopping(patience=0)
    state = stopper.init()
    for step, m in enumerate([1.0, 2.0, 0.1, 0.05]):
        state = stopper.update(state, m, step)
    assert summary(state) == (1, 0, 1.0)


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        (dict(patience=-1), ValueError, "patience must be an integer >= 0"),
        (dict(patience=1.5), TypeError, "patience must be an integer"),
        (dict(min_delta=-0.1), ValueError, "min_delta must be >= 0"),
        (dict(mode="auto"), ValueError, "mode must be one of 'min', 'max'"),
        (dict(baseline="x"), TypeError, "baseline must be a number"),
        (dict(start_from_epoch=-2), ValueError, "start_from_epoch must be an integer >= 0"),
        (dict(restore_best=1), TypeError, "restore_best must be True or False"),
        (dict(monitor=""), TypeError, "monitor must be a non-empty metric name"),
        (dict(min_delta=lambda step: 0.1), TypeError, "min_delta must be a number, not a sched"),
        (dict(baseline=lambda step: 0.1), TypeError, "baseline must be a number, not a sched"),
        (dict(stopping_threshold="low"), TypeError, "stopping_threshold must be a number"),
    ],
)
def test_validation_messages(kwargs, error, text):
    with pytest.raises(error, match=text):
        EarlyStopping(**kwargs)


def test_min_delta_given_a_schedule_names_it_and_the_fix():
    import jopt

    with pytest.raises(TypeError, match=r"min_delta must be a number, not a schedule.*e\.g\. 1e-3"):
        EarlyStopping(min_delta=jopt.constant_schedule(0.1))


def test_update_takes_the_epoch_by_name():
    stopper = EarlyStopping(patience=0, start_from_epoch=2)
    state = stopper.update(stopper.init(), 1.0, epoch=1)  # ignored: before start_from_epoch
    assert int(state.best_epoch) == -1
    state = stopper.update(state, 1.0, epoch=2)
    assert int(state.best_epoch) == 2


@pytest.mark.parametrize("mode, values, stop_at", [
    ("min", [0.5, 0.2, 0.1, 0.1001, 0.05], 2),  # reaches 0.1 exactly at epoch 2
    ("max", [0.5, 0.8, 0.89, 0.9, 0.95], 3),
])  # fmt: skip
def test_stopping_threshold_stops_the_evaluation_it_is_reached_exactly(mode, values, stop_at):
    threshold = 0.1 if mode == "min" else 0.9
    stopper = EarlyStopping(
        monitor="grad_norm", mode=mode, patience=100, stopping_threshold=threshold
    )
    state = stopper.init()
    for epoch, value in enumerate(values):
        state = stopper.update(state, value, epoch)
        assert bool(state.stopped) == (epoch >= stop_at), epoch
    assert int(state.stopped_epoch) == stop_at


def test_stopping_threshold_in_a_scan_equals_eager():
    stopper = EarlyStopping(monitor="grad_norm", patience=5, stopping_threshold=1e-2)
    values = jnp.asarray([1.0, 0.3, 0.05, 0.011, 0.0099, 0.001], jnp.float32)

    def body(state, xs):
        epoch, value = xs
        return stopper.update(state, value, epoch), None

    scanned, _ = jax.lax.scan(body, stopper.init(), (jnp.arange(6), values))
    eager = stopper.init()
    for epoch, value in enumerate(values):
        eager = stopper.update(eager, value, epoch)
    assert int(scanned.stopped_epoch) == int(eager.stopped_epoch) == 4
