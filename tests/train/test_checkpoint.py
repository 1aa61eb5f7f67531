"""Checkpointer: typed round trips, retention, structure errors, resumption and crash safety,
integrity (every file of a checkpoint flipped, cut and deleted), fallback and dtypes."""

import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt.testing import assert_trees_close
from jopt.train import EarlyStopping, TrainState
from jopt.train.checkpoint import CheckpointCorruptedError, Checkpointer
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


def test_resume_after_damage_falls_back_and_saves_the_damaged_step_again(tmp_path):
    from jopt.train import Batches, fit, make_train_step

    step = make_train_step(lambda p, b: jnp.mean((b["x"] @ p["w"] - 1.0) ** 2), jit=False)
    data = Batches({"x": np.arange(12.0, dtype=np.float32).reshape(4, 3) / 10}, 2, seed=0)

    def state():  # fit donates the state it is given
        return TrainState.create({"w": jnp.zeros(3)}, jopt.adam(0.1))

    run = dict(progress=False)
    with Checkpointer(tmp_path / "run", keep_last=2, async_save=False) as ckpt:
        fit(state(), step, data, epochs=2, checkpointer=ckpt, **run)
        assert ckpt.all_steps() == [2, 4]
        metadata = tmp_path / "run" / "4" / "state" / "_METADATA"
        metadata.write_bytes(metadata.read_bytes()[:-3])
        with pytest.warns(UserWarning) as caught:
            resumed = fit(state(), step, data, epochs=3, checkpointer=ckpt, resume=True, **run)
        messages = [str(w.message) for w in caught]
        assert "checkpoint 4 is damaged: file 'state/_METADATA'" in messages[0]
        assert (
            "cut or grown); skipping it (the folder is kept) for the older checkpoint 2"
            in (messages[0])
        )
        assert "moved it to" in messages[1] and ckpt.all_steps() == [4, 6]
        assert ckpt.intact_steps() == [4, 6]
    (kept,) = os.listdir(tmp_path / "run" / "damaged")  # set aside, not deleted
    assert kept.startswith("4-")
    straight = fit(state(), step, data, epochs=3, **run)
    np.testing.assert_array_equal(resumed.state.params["w"], straight.state.params["w"])
    assert resumed.history["epoch"] == [0, 1, 2]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """Two checkpoints (steps 1 and 2) of a small state, written once for every mutation."""
    folder = tmp_path_factory.mktemp("pristine") / "run"
    first = advanced(new_state(), 1)
    with Checkpointer(folder, keep_last=2, keep_best=1, async_save=False) as ckpt:
        ckpt.save(first, metrics={"val_loss": 1.0}, loop={"sums": [1.5]})
        ckpt.save(advanced(first, 1), metrics={"val_loss": 2.0})
    files = sorted(
        os.path.relpath(os.path.join(root, name), folder / "2").replace(os.sep, "/")
        for root, _, names in os.walk(folder / "2")
        for name in names
    )
    return folder, first, files


def mutate(path, how):
    if how == "delete":
        os.remove(path)
        return
    data = bytearray(path.read_bytes())
    if how == "cut":
        data = data[: len(data) // 2]
    else:
        for fraction in (0.25, 0.5, 0.75):
            data[min(int(len(data) * fraction), len(data) - 1)] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["flip", "cut", "delete"])
def test_every_damaged_file_falls_back_to_the_older_checkpoint_or_names_itself(
    pristine, tmp_path, how
):
    folder, first, files = pristine
    assert len(files) >= 15 and "state/_METADATA" in files and "jopt_manifest.json" in files
    for name in files:
        copy = tmp_path / name.replace("/", "_")
        shutil.copytree(folder, copy)
        mutate(copy / "2" / name, how)
        with Checkpointer(copy, keep_last=2, keep_best=1) as ckpt:
            with pytest.warns(UserWarning, match=f"checkpoint 2 is damaged: file '{name}' of"):
                restored = ckpt.restore(new_state())
            assert restored.step == 1 and restored.loop == {"sums": [1.5]}
            got, want = (
                (s.step, s.params, s.opt_state, jax.random.key_data(s.rng))
                for s in (restored.state, first)
            )
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
                np.testing.assert_array_equal(a, b, err_msg=f"{how} {name}")
            with pytest.raises(CheckpointCorruptedError) as caught:
                ckpt.restore(new_state(), step=2)
        error = caught.value
        assert (error.step, error.file, error.folder) == (2, name, str(copy / "2"))
        assert f"'{copy / '2'}'" in str(error) and "intact steps on disk: [1]" in str(error)
        assert os.path.isdir(copy / "2")  # never deleted


def test_no_intact_checkpoint_and_unverified_checkpoints(pristine, tmp_path):
    folder, first, _ = pristine
    copy = tmp_path / "run"
    shutil.copytree(folder, copy)
    for step in ("1", "2"):
        mutate(copy / step / "meta" / "metadata", "flip")
    with Checkpointer(copy, keep_last=2) as ckpt:
        with pytest.warns(UserWarning, match="checkpoint 2 is damaged"):
            with pytest.raises(
                CheckpointCorruptedError, match=r"checkpoint 1 .* steps on disk: \[\]"
            ):
                ckpt.restore(new_state())
    # checksums=False writes no manifest; orbax's own read errors still name the checkpoint.
    with Checkpointer(tmp_path / "plain", checksums=False, async_save=False) as ckpt:
        ckpt.save(first)
        assert not os.path.exists(tmp_path / "plain" / "1" / "jopt_manifest.json")
        assert_trees_close(ckpt.restore(new_state()).state.params, first.params)
        os.remove(tmp_path / "plain" / "1" / "state" / "_METADATA")
        with pytest.raises(CheckpointCorruptedError, match="checkpoint 1 is damaged: .*plain/1"):
            ckpt.restore(new_state(), step=1)


def test_loop_state_round_trip_and_checkpoints_written_before_it(tmp_path):
    loop = {"sums": {"loss": 2.5}, "count": 3, "iterator": {"next_index": 7}}
    with Checkpointer(tmp_path / "run", checksums=False, async_save=False) as ckpt:
        ckpt.save(new_state(), loop=loop)
        assert ckpt.restore(new_state()).loop == loop
        with pytest.raises(TypeError, match="loop must be a JSON-serialisable dict, got .*"):
            ckpt.save(new_state(), loop={"sums": jnp.ones(2)})
        meta = tmp_path / "run" / "0" / "meta" / "metadata"
        old = {
            k: v for k, v in json.loads(meta.read_text()).items() if k in "epoch batch seed history"
        }
        meta.write_text(json.dumps(old))  # what jopt wrote before loop state and checksums
        assert ckpt.restore(new_state()).loop == {}


def test_dtypes_come_back_as_saved_or_the_error_names_leaf_and_dtypes(tmp_path):
    params = {"a": jnp.full(3, 1.001, jnp.float32), "b": jnp.ones(2, jnp.float32)}
    narrow = {"a": jnp.zeros(3, jnp.bfloat16), "b": jnp.zeros(2, jnp.float32)}
    with Checkpointer(tmp_path / "run", async_save=False) as ckpt:
        ckpt.save(TrainState.create(params, jopt.sgd(0.1)))
        template = TrainState.create(narrow, jopt.sgd(0.1))
        with pytest.raises(
            ValueError, match=r"dtype float32 at params/a .* has bfloat16, .*cast=True"
        ):
            ckpt.restore(template)
        cast = ckpt.restore(template, cast=True).state.params["a"]
        assert cast.dtype == jnp.bfloat16 and float(cast[0]) == float(jnp.bfloat16(1.001))
        exact = ckpt.restore(TrainState.create(params, jopt.sgd(0.1))).state.params["a"]
        assert exact.dtype == jnp.float32 and float(exact[0]) == np.float32(1.001)
    # bf16 + f32 params with inject_hyperparams(adam): after one step a moment is float32
    # (as in optax), so a template fresh from TrainState.create no longer matches it.
    tx = jopt.inject_hyperparams(jopt.adam)(learning_rate=1e-3)
    mixed = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float32)}
    stepped = TrainState.create(mixed, tx).apply_gradients(mixed)
    with Checkpointer(tmp_path / "mixed", async_save=False) as ckpt:
        ckpt.save(stepped)
        with pytest.raises(
            ValueError, match=r"float32 at opt_state/inner_state/0/mu/a .* bfloat16"
        ):
            ckpt.restore(TrainState.create(mixed, tx))
        restored = ckpt.restore(stepped).state.opt_state.inner_state[0].mu["a"]
        assert restored.dtype == jnp.float32


def test_tiny_checkpoint_benchmark_prints_every_measure(capsys, tmp_path):
    from benchmarks import checkpoint

    checkpoint.main(["--width", "8", "--layers", "1", "--vocab", "16", "--repetitions", "1",
                     "--warmup", "0", "--dir", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    for measure in ("save", "restore", "async save, blocking", "async save, total", "hashing"):
        assert measure in out
    assert os.listdir(tmp_path) == []  # the benchmark removes what it wrote


def test_a_callers_error_during_restore_propagates_instead_of_falling_back(tmp_path, monkeypatch):
    # Only a damaged file may send a restore to an older checkpoint (issue 24.5).
    import warnings

    from jopt.train import _integrity

    with Checkpointer(tmp_path / "run", keep_last=2, async_save=False) as ckpt:
        ckpt.save(new_state())
        ckpt.save(advanced(new_state(), 1))

        def buggy(step):
            raise TypeError("a bug in the caller's code")

        monkeypatch.setattr(ckpt._manager, "item_metadata", buggy)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "skipping it" fallback warning either
            with pytest.raises(TypeError, match="a bug in the caller's code"):
                ckpt.restore(new_state())
    assert _integrity.is_damage(FileNotFoundError("gone"))
    assert _integrity.is_damage(json.JSONDecodeError("bad", "{", 0))
    assert _integrity.is_damage(ValueError('DATA_LOSS: Error reading "step/.zarray"'))
    assert not _integrity.is_damage(ValueError("shapes do not match"))
    assert not _integrity.is_damage(KeyError("params"))
