"""A small training run with checkpoints, used by test_checkpoint's crash test as a subprocess.

``python _resumable_run.py DIR OUT.npy [CRASH_STEP]``: trains (resuming from DIR if it
holds checkpoints), saves the final params to OUT.npy. With CRASH_STEP, the save of
that step stops just before orbax renames its temporary folder, prints SAVING and waits
to be killed.
"""

import asyncio
import sys

import jax.numpy as jnp
import numpy as np

import jopt
from jopt.train import Batches, EarlyStopping, TrainState, fit, make_eval_step, make_train_step
from jopt.train.checkpoint import Checkpointer


def data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return {"x": x, "y": (x @ np.array([1.0, -1.0, 2.0, 0.5]) > 0).astype(np.float32)}


def loss_fn(params, batch):
    logits = batch["x"] @ params["w"] + params["b"]
    return jnp.mean(jnp.logaddexp(0.0, logits) - batch["y"] * logits)


def run(directory, crash_step=None):
    if crash_step is not None:
        from orbax.checkpoint._src.path import atomicity

        original = atomicity.AtomicRenameTemporaryPath.finalize

        async def finalize(self):
            if self._final_path.name == str(crash_step):
                print("SAVING", flush=True)
                await asyncio.sleep(120)
            return await original(self)

        atomicity.AtomicRenameTemporaryPath.finalize = finalize
    params = {"w": jnp.zeros(4), "b": jnp.zeros([])}
    tx = jopt.chain(jopt.clip_by_global_norm(1.0), jopt.adamw(0.05, weight_decay=1e-3))
    state = TrainState.create(params, tx, rng=0)
    with Checkpointer(directory, every_epochs=None, every_steps=4, keep_last=2) as ckpt:
        result = fit(
            state,
            make_train_step(loss_fn, jit=False),
            Batches(data(48, 0), 10, seed=7),
            epochs=4,
            eval_step=make_eval_step(lambda p, b: {"loss": loss_fn(p, b)}),
            eval_data=data(20, 1),
            early_stopping=EarlyStopping(patience=10, restore_best=True),
            checkpointer=ckpt,
            resume=True,
            progress=False,
        )
    return result


if __name__ == "__main__":
    result = run(sys.argv[1], int(sys.argv[3]) if len(sys.argv) > 3 else None)
    np.save(sys.argv[2], np.concatenate([result.state.params["w"], result.state.params["b"][None]]))
