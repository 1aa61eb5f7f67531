"""Checkpointer: typed round trips, retention, structure errors, resumption and crash safety."""

import os
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt.train import EarlyStopping, TrainState
from jopt.train.checkpoint import Checkpointer
from tests._harness import assert_trees_close
from tests.train import _resumable_run


def new_state(params=None):
    params = params or {"w": jnp.arange(3.0), "b": jnp.ones([])}
    tx = jopt.chain(jopt.clip_by_global_norm(1.0), jopt.adamw(1e-2))
    return TrainState.create(params, tx, rng=1)


def advanced(state, steps=3):
    grads = jax.tree.map(jnp.ones_like, state.params)
    for _ in range(steps):
        state = state.apply_gradients(grads)
    return state


def test_round_trip_keeps_namedtuple_types_rng_and_early_stopping(tmp_path):
    state = advanced(new_state())
    stopper = EarlyStopping(restore_best=True)
    es_state = stopper.update(stopper.init(state.params), 0.5, 0, state.params)
    with Checkpointer(tmp_path / "run") as ckpt:
        ckpt.save(
            state,
            early_stopping=es_state,
            epoch=2,
            batch=1,
            seed=5,
            history=[{"epoch": 0, "loss": 1.5}],
        )
        fresh = new_state()
        restored = ckpt.restore(fresh, early_stopping=stopper.init(fresh.params))
    assert jax.tree.structure(restored.state.opt_state) == jax.tree.structure(state.opt_state)
    adam_state = restored.state.opt_state[1][0]
    assert type(adam_state) is type(state.opt_state[1][0]) and hasattr(adam_state, "mu")
    assert_trees_close(restored.state.opt_state, state.opt_state)
    assert_trees_close(restored.state.params, state.params)
    assert int(restored.state.step) == 3 and restored.step == 3
    np.testing.assert_array_equal(
        jax.random.key_data(restored.state.rng), jax.random.key_data(state.rng)
    )
    assert type(restored.early_stopping) is type(es_state)
    assert_trees_close(restored.early_stopping, es_state)
    assert (restored.epoch, restored.batch, restored.seed) == (2, 1, 5)
    assert restored.history == [{"epoch": 0, "loss": 1.5}]


def test_keeps_last_k_and_best_k(tmp_path):
    state = new_state()
    losses = [0.9, 0.2, 0.8, 0.7, 0.6, 0.5]
    with Checkpointer(tmp_path / "run", keep_last=2, keep_best=1) as ckpt:
        for loss in losses:
            state = advanced(state, 1)
            ckpt.save(state, metrics={"val_loss": loss})
        ckpt.wait()
        assert ckpt.all_steps() == [2, 5, 6] and ckpt.latest_step() == 6 and ckpt.best_step() == 2
        best = ckpt.restore(new_state(), step="best")
    assert int(best.state.step) == 2
    assert_trees_close(best.state.params, advanced(new_state(), 2).params)
    with Checkpointer(
        tmp_path / "max",
        keep_last=1,
        keep_best=2,
        mode="max",
        metric="val_accuracy",
        async_save=False,
    ) as ckpt:
        for step, acc in enumerate([0.5, 0.9, 0.7, 0.8, 0.1], 1):
            ckpt.save(new_state().replace(step=jnp.asarray(step)), metrics={"val_accuracy": acc})
        assert ckpt.all_steps() == [2, 4, 5] and ckpt.best_step() == 2


def test_structure_and_shape_mismatch_name_the_path(tmp_path):
    with Checkpointer(tmp_path / "run") as ckpt:
        ckpt.save(new_state())
        other = new_state({"w": jnp.arange(3.0), "bias": jnp.ones([])})
        with pytest.raises(ValueError, match=r"checkpoint 0 does not match .*'opt_state/1/0/mu/b'"):
            ckpt.restore(other)
        wider = new_state({"w": jnp.arange(4.0), "b": jnp.ones([])})
        with pytest.raises(ValueError, match=r"shape \(3,\) at opt_state/1/0/mu/w .* has \(4,\)"):
            ckpt.restore(wider)
        with pytest.raises(ValueError, match="step must be one of"):
            ckpt.restore(new_state(), step=7)


def test_folder_with_unrelated_files_and_validation(tmp_path):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="holds files that are not jopt checkpoints .*notes.txt"):
        Checkpointer(tmp_path)
    with pytest.raises(FileNotFoundError, match="no latest checkpoint"):
        Checkpointer(tmp_path / "empty").restore(new_state())
    for kwargs, text in [
        (dict(keep_last=0), "keep_last must be an integer >= 1"),
        (dict(every_steps=0), "every_steps must be an integer >= 1"),
        (dict(mode="best"), "mode must be one of 'min', 'max'"),
    ]:
        with pytest.raises(ValueError, match=text):
            Checkpointer(tmp_path / "x", **kwargs)


def run_child(directory, out, crash_step=None):
    args = [sys.executable, os.path.abspath(_resumable_run.__file__), str(directory), str(out)]
    env = dict(os.environ, PYTHONPATH=os.getcwd(), JAX_PLATFORMS="cpu", XLA_FLAGS="")
    if crash_step is None:
        subprocess.run(args, env=env, check=True, capture_output=True, timeout=120)
        return None
    return subprocess.Popen(args + [str(crash_step)], env=env, stdout=subprocess.PIPE, text=True)


def test_kill_during_save_then_resume_matches_uninterrupted_run(tmp_path):
    directory = tmp_path / "ckpt"
    child = run_child(directory, tmp_path / "unused.npy", crash_step=12)
    try:
        assert child.stdout.readline().strip() == "SAVING"
        # The step-12 checkpoint is fully written to a temporary folder, not yet renamed.
        assert any(".orbax-checkpoint-tmp" in name for name in os.listdir(directory))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    with Checkpointer(directory) as ckpt:
        assert ckpt.latest_step() == 8  # the last complete save survived the crash
        assert 12 not in ckpt.all_steps()
    run_child(directory, tmp_path / "resumed.npy")
    uninterrupted = _resumable_run.run(tmp_path / "fresh")
    final = uninterrupted.state.params
    expected = np.concatenate([final["w"], final["b"][None]])
    np.testing.assert_allclose(np.load(tmp_path / "resumed.npy"), expected, rtol=1e-6, atol=1e-7)
    assert int(uninterrupted.state.step) == 20


def test_fit_refuses_to_overwrite_a_run_without_resume(tmp_path):
    from jopt.train import Batches, fit, make_train_step

    step = make_train_step(lambda p, b: jnp.mean((b["x"] * p["w"] - 1.0) ** 2), jit=False)
    data = Batches({"x": np.ones((4, 3), np.float32)}, batch_size=2, seed=0)
    state = TrainState.create({"w": jnp.zeros(3)}, jopt.sgd(0.1))
    with Checkpointer(tmp_path / "run", async_save=False) as ckpt:
        fit(state, step, data, epochs=1, checkpointer=ckpt, progress=False)
        assert ckpt.all_steps() == [2]
        with pytest.raises(ValueError, match="already holds checkpoints .* pass resume=True"):
            fit(state, step, data, epochs=2, checkpointer=ckpt, progress=False)
        resumed = fit(state, step, data, epochs=2, checkpointer=ckpt, resume=True, progress=False)
    assert int(resumed.state.step) == 4 and resumed.history["epoch"] == [0, 1]
