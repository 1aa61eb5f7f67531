"""One process of the multi-host test: data-parallel training over 2 processes x 2 CPU devices.

Run by tests/train/test_multihost.py as
``python _multihost_worker.py PROCESS_ID PORT OUT_DIR``. Each process feeds its own
half of the global batch, trains a few steps, saves one orbax checkpoint jointly
with the other process, restores it, and writes its results to OUT_DIR.
"""

import os
import sys

# Before jax starts: 2 local CPU devices per process.
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import numpy as np  # noqa: E402

STEPS = 3


def main(process_id: int, port: int, out_dir: str) -> None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=2,
        process_id=process_id,
        initialization_timeout=30,
    )
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    import orbax.checkpoint as ocp

    from jopt.train import make_train_step
    from jopt.train.sharding import batch_sharding, create_sharded_state, make_mesh, shard_batch
    from tests.train.test_multihost import create_state, global_batch, loss

    assert jax.process_count() == 2 and jax.device_count() == 4 and jax.local_device_count() == 2
    mesh = make_mesh({"data": -1})
    state, shardings = create_sharded_state(create_state, mesh)
    step = make_train_step(loss, state_sharding=shardings, batch_sharding=batch_sharding(mesh))
    batch = global_batch()
    half = len(batch["y"]) // 2
    local = jax.tree.map(lambda x: x[process_id * half : (process_id + 1) * half], batch)
    sharded = shard_batch(local, mesh)
    for _ in range(STEPS):
        state, metrics = step(state, sharded)

    saved = {"step": state.step, "params": state.params, "opt_state": state.opt_state}
    path = os.path.join(out_dir, "checkpoint")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, saved)
    checkpointer.wait_until_finished()
    target = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), saved
    )
    restored = checkpointer.restore(path, target)
    checkpointer.close()
    same = all(
        np.array_equal(np.asarray(a.addressable_data(0)), np.asarray(b.addressable_data(0)))
        for a, b in zip(jax.tree.leaves(saved), jax.tree.leaves(restored), strict=True)
    )
    params = {k: np.asarray(v.addressable_data(0)) for k, v in state.params.items()}
    np.savez(
        os.path.join(out_dir, f"result_{process_id}.npz"),
        restored_equal=same,
        loss=np.asarray(metrics["loss"].addressable_data(0)),
        step=np.asarray(restored["step"].addressable_data(0)),
        **params,
    )
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
