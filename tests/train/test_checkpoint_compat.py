"""Checkpoints written by the first release of jopt.train (main before issue 24) restore,
and a run resumed from one ends as the run that was never stopped (issue 24.2)."""

import shutil

import jax
import numpy as np
import pytest

from tests.train.fixtures import make_checkpoint_v1 as v1


@pytest.fixture
def old_run(tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(v1.FOLDER, folder)  # resuming writes: never into the fixture
    return folder


def test_the_first_releases_checkpoint_restores_with_renamed_early_stopping_fields(old_run):
    from jopt.train.checkpoint import Checkpointer

    kwargs = v1.run_kwargs()
    stopper = kwargs["early_stopping"]
    fresh = v1.new_state()
    with Checkpointer(old_run, **v1.checkpointer_kwargs()) as ckpt:
        record = ckpt.restore_progress(_progress(fresh, stopper.init(fresh.params)))
    assert (record.epoch, record.batch, int(record.state.step)) == (1, 4, 7)
    es = record.early_stopping_state
    assert type(es).__name__ == "EarlyStoppingState"
    assert int(es.best_epoch) == 0 and int(es.stopped_epoch) == -1 and not bool(es.stopped)
    # One skipped step in epoch 0 (before the epoch in progress), one in epoch 1's totals.
    assert record.skipped == 1 and record.totals["skipped"] == 1 and record.skipped_steps == 2
    assert [row["epoch"] for row in record.history] == [0]


def _progress(state, es_state):
    from jopt.train._progress import Progress

    return Progress(state, es_state, seed=0)


def test_a_run_resumed_from_the_first_releases_checkpoint_matches_one_never_stopped(old_run):
    from jopt.train import fit
    from jopt.train.checkpoint import Checkpointer

    straight = fit(v1.new_state(), epochs=3, **v1.run_kwargs())
    with Checkpointer(old_run, **v1.checkpointer_kwargs()) as ckpt:
        resumed = fit(v1.new_state(), epochs=3, checkpointer=ckpt, resume=True, **v1.run_kwargs())
    # 3 epochs of 5 batches, batch 0 of each bad: 3 skipped (not 4: the mid-epoch count
    # saved in the checkpoint is counted once).
    assert straight.skipped_steps == resumed.skipped_steps == 3
    assert int(resumed.state.step) == int(straight.state.step) == 12
    assert [r["step"] for r in resumed.history] == [r["step"] for r in straight.history]
    for a, b in zip(straight.history, resumed.history, strict=True):
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-6)
        np.testing.assert_allclose(a["val_loss"], b["val_loss"], rtol=1e-6)
    assert int(resumed.early_stopping_state.best_epoch) == int(
        straight.early_stopping_state.best_epoch
    )
    # Equal alone; within the suite's process (8 fake devices) at most an ulp apart.
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6)  # noqa: E731
    jax.tree.map(close, straight.state.params, resumed.state.params)
