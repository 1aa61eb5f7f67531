"""Many hosts on one machine: 2 processes on loopback (gloo CPU collectives), 2 devices
each, train data-parallel and checkpoint with orbax; the result equals one process
with 4 devices."""

import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt.train import TrainState, make_train_step
from jopt.train.sharding import batch_sharding, create_sharded_state, make_mesh, shard_batch

STEPS = 3  # as in _multihost_worker.py
WORKER = os.path.join(os.path.dirname(__file__), "_multihost_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# The model, data and optimizer are shared with the worker processes.
def global_batch():
    rng = np.random.default_rng(0)
    return {
        "x": rng.normal(size=(16, 6)).astype(np.float32),
        "y": rng.normal(size=(16, 2)).astype(np.float32),
    }


def create_state():
    rng = np.random.default_rng(1)
    params = {"w": jnp.asarray(rng.normal(size=(6, 2)), jnp.float32), "b": jnp.zeros(2)}
    return TrainState.create(params, jopt.adamw(0.05, weight_decay=1e-2))


def loss(params, batch):
    return jnp.mean((jnp.tanh(batch["x"] @ params["w"] + params["b"]) - batch["y"]) ** 2)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_process_four_devices():
    mesh = make_mesh({"data": 4}, devices=jax.devices()[:4])
    state, shardings = create_sharded_state(create_state, mesh)
    step = make_train_step(loss, state_sharding=shardings, batch_sharding=batch_sharding(mesh))
    batch = shard_batch(global_batch(), mesh)
    for _ in range(STEPS):
        state, metrics = step(state, batch)
    return jax.tree.map(np.asarray, state.params), float(metrics["loss"])


def test_two_processes_equal_one_process(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = ROOT
    workers = [
        subprocess.Popen(
            [sys.executable, WORKER, str(i), str(port), str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outputs = [w.communicate(timeout=60)[0] for w in workers]
    except subprocess.TimeoutExpired:
        for w in workers:
            w.kill()
        pytest.fail("multi-host workers did not finish within 60 s")
    for i, (w, out) in enumerate(zip(workers, outputs, strict=True)):
        assert w.returncode == 0, f"worker {i} failed:\n{out[-3000:]}"
    params, final_loss = _one_process_four_devices()
    for i in range(2):
        result = np.load(tmp_path / f"result_{i}.npz")
        assert bool(result["restored_equal"]) and int(result["step"]) == STEPS
        np.testing.assert_allclose(result["loss"], final_loss, rtol=1e-6)
        for name, value in params.items():
            np.testing.assert_allclose(result[name], value, rtol=1e-6, atol=1e-7)
