"""fit and fit_compiled: the same run, early stopping, non-finite losses, history files."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt.train import Batches, EarlyStopping, TrainState, fit, fit_compiled, make_train_step


def problem(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=n)).astype(np.float32)
    return {"x": x, "y": y}


def loss_fn(params, batch):
    pred = batch["x"] @ params["w"] + params["b"]
    return jnp.mean((pred - batch["y"]) ** 2)


def eval_fn(params, batch):
    err = batch["x"] @ params["w"] + params["b"] - batch["y"]
    return {"loss": jnp.mean(err**2), "mae": jnp.mean(jnp.abs(err))}


def new_state(lr=0.05):
    params = {"w": jnp.zeros(3), "b": jnp.zeros([])}
    return TrainState.create(params, jopt.chain(jopt.clip_by_global_norm(1.0), jopt.adam(lr)))


STEP = make_train_step(loss_fn, jit=False)
EVAL = jopt.train.make_eval_step(eval_fn)


def test_fit_and_fit_compiled_agree():
    train = Batches(problem(), batch_size=16, seed=3)  # 16 + 16 + 8: a remainder batch
    val = problem(24, seed=1)
    stopper = EarlyStopping(patience=2, min_delta=1e-2, restore_best=True)
    kwargs = dict(epochs=30, eval_step=EVAL, eval_data=val, early_stopping=stopper)
    host = fit(new_state(), STEP, train, progress=False, **kwargs)
    compiled = fit_compiled(new_state(), STEP, train, **kwargs)
    assert host.stop_reason == compiled.stop_reason == "early_stopping"
    assert len(host.history) == len(compiled.history) < 30
    assert int(host.early_stopping.stopped_step) == int(compiled.early_stopping.stopped_step)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        host.state.params,
        compiled.state.params,
    )
    assert int(host.state.step) == int(compiled.state.step) == 3 * len(host.history)
    for a, b in zip(host.history, compiled.history, strict=True):
        assert a["epoch"] == b["epoch"] and a["step"] == b["step"]
        for key in ("loss", "val_loss", "val_mae"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5)
    # restore_best: the returned params are those of the best epoch, not the last.
    best = int(host.early_stopping.best_step)
    assert best < len(host.history) - 1
    assert host.history["val_loss"][best] == pytest.approx(float(host.early_stopping.best))
    restored_loss = float(eval_fn(host.state.params, val)["loss"])
    assert restored_loss == pytest.approx(host.history["val_loss"][best], rel=1e-5)


def nan_loss_fn(params, batch):
    # Batches whose first target is negative give NaN: the step must be skipped.
    return loss_fn(params, batch) + jnp.where(batch["y"][0] < 0, jnp.nan, 0.0)


def test_nonfinite_steps_are_skipped_then_stop():
    data = problem()
    train = Batches(data, batch_size=4, seed=0)
    step = make_train_step(nan_loss_fn, jit=False)
    host = fit(new_state(), step, train, epochs=2, progress=False, max_nonfinite=None)
    compiled = fit_compiled(new_state(), step, train, epochs=2, max_nonfinite=None)
    skipped = sum(int(b["y"][0] < 0) for e in range(2) for b in train.epoch(e))
    assert 0 < skipped < 20 and int(host.state.step) == 20 - skipped == int(compiled.state.step)
    assert all(np.isfinite(host.history["loss"]))
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        host.state.params,
        compiled.state.params,
    )
    always_nan = make_train_step(lambda p, b: loss_fn(p, b) * jnp.nan, jit=False)
    host = fit(new_state(), always_nan, train, epochs=5, progress=False, max_nonfinite=3)
    compiled = fit_compiled(new_state(), always_nan, train, epochs=5, max_nonfinite=3)
    assert host.stop_reason == compiled.stop_reason == "nonfinite"
    assert len(host.history) == len(compiled.history) == 1
    assert int(host.state.step) == 0


def test_history_files_and_epoch_callback(tmp_path):
    rows = []
    result = fit(
        new_state(),
        STEP,
        Batches(problem(), 8, seed=0),
        epochs=3,
        progress=True,
        eval_step=EVAL,
        eval_data=Batches(problem(10, 2), 4),
        on_epoch_end=rows.append,
    )
    assert rows == result.history.rows and result.stop_reason == "epochs"
    assert result.history.keys[:3] == ["epoch", "step", "loss"]
    assert result.history["loss"][-1] < result.history["loss"][0]
    result.history.to_json(tmp_path / "h.json")
    assert json.loads((tmp_path / "h.json").read_text())[2]["epoch"] == 2
    result.history.to_csv(tmp_path / "h.csv")
    assert (tmp_path / "h.csv").read_text().splitlines()[0].startswith("epoch,step,loss")
    result.history.plot(tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        (dict(epochs=0), ValueError, "epochs must be an integer >= 1"),
        (dict(epochs=1, eval_step=EVAL), ValueError, "eval_step and eval_data must be given"),
        (dict(epochs=1, max_nonfinite=0), ValueError, "max_nonfinite must be an integer >= 1"),
        (
            dict(epochs=1, early_stopping=EarlyStopping(monitor="val_acc")),
            ValueError,
            "early_stopping.monitor is 'val_acc'",
        ),
        (dict(epochs=1, resume=True), ValueError, "resume=True needs a checkpointer"),
    ],
)
def test_fit_validation(kwargs, error, text):
    with pytest.raises(error, match=text):
        fit(new_state(), STEP, Batches(problem(), 8), progress=False, **kwargs)
    with pytest.raises(TypeError, match="train_data must be a jopt.train.Batches"):
        fit(new_state(), STEP, problem(), epochs=1)
