"""8/4-bit Adam states (issue 27): maps, codes and trajectories against torchao 0.18 (the
fixture of ``tests/fixtures/make_lowbit_reference.py``), one step against float32 AdamW in
NumPy on the dequantized state, bytes a parameter, checkpoints, sharding, bf16 and wrappers."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import jopt
from jopt.contrib import _quantize as quant
from jopt.testing import assert_trees_close
from jopt.train import Batches, TrainState, fit, make_train_step
from jopt.train.checkpoint import CheckpointCorruptedError, Checkpointer
from jopt.train.sharding import batch_sharding, create_sharded_state, make_mesh, shard_batch
from tests.fixtures import make_lowbit_reference as ref

FIXTURE = np.load(pathlib.Path(ref.__file__).with_name("lowbit_reference.npz"))
MAPS = {
    "signed8": quant.dynamic_map(signed=True),
    "unsigned8": quant.dynamic_map(signed=False),
    "signed4": quant.dynamic_map(True, 3, 4),
    "unsigned4": quant.linear_map_without_zero(4),
}
SIZES = ("block_size", "min_size")  # they fix shapes: static under inject_hyperparams
OPTIMIZERS = {8: jopt.contrib.adamw_8bit, 4: jopt.contrib.adamw_4bit}


@pytest.mark.parametrize("name", list(ref.MAPS))
def test_maps_are_torchaos_bit_for_bit(name):
    np.testing.assert_array_equal(MAPS[name], FIXTURE[f"map_{name}"])
    assert MAPS[name].dtype == np.float32 and np.all(np.diff(MAPS[name]) > 0)


@pytest.mark.parametrize("name", list(ref.MAPS))
def test_codes_and_scales_are_torchaos_bit_for_bit(name):
    bits, signed, block = ref.MAPS[name]
    stored = quant.quantize(jnp.asarray(ref.quantization_values(signed)), MAPS[name], block)
    assert stored.codes.dtype == jnp.uint8
    assert stored.codes.size == (16384 if bits == 8 else 8192)  # 4 bits: two codes a byte
    np.testing.assert_array_equal(np.asarray(stored.codes).reshape(-1), FIXTURE[f"codes_{name}"])
    np.testing.assert_array_equal(stored.scales, FIXTURE[f"scales_{name}"])


@pytest.mark.parametrize("name", list(ref.MAPS))
def test_the_table_encoder_follows_the_nearest_rule_at_every_boundary(name):
    qmap = MAPS[name]
    rng = np.random.default_rng(3)
    spread = 10.0 ** rng.uniform(-12, 0, 20000) * rng.choice([-1.0, 1.0], 20000)
    edges = [qmap, (qmap[:-1] + qmap[1:]) / 2, spread, [0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30]]
    x = np.concatenate(edges).astype(np.float32)
    x = np.concatenate([x, np.nextafter(x, np.inf), np.nextafter(x, -np.inf)])
    x = np.clip(x, -1, 1) if qmap[0] < 0 else np.clip(np.abs(x), 0, 1)
    got = jax.jit(lambda v: quant._nearest_codes(v, qmap))(jnp.asarray(x))
    np.testing.assert_array_equal(got, quant.nearest_codes_reference(x, qmap))


@pytest.mark.parametrize("name", list(ref.MAPS))
def test_dequantized_values_are_the_nearest_map_entry_times_the_block_scale(name):
    bits, signed, block = ref.MAPS[name]
    x = ref.quantization_values(signed)
    stored = quant.quantize(jnp.asarray(x), MAPS[name], block)
    back = np.asarray(quant.dequantize(stored, MAPS[name], x.shape))
    scales = np.repeat(np.asarray(stored.scales), block)
    # NumPy's own nearest entry (float64 distances): the error can be no smaller.
    normalised = x.astype(np.float64) / scales
    nearest = MAPS[name][np.argmin(np.abs(normalised[:, None] - MAPS[name][None, :]), axis=1)]
    np.testing.assert_allclose(np.abs(back - x), np.abs(nearest * scales - x), atol=1e-9)


@pytest.mark.parametrize(
    "run",
    # Some coordinates of the stream have a second moment below the map's smallest step
    # (stored as 0): they step by m / eps and reach |w| ~ 10, where one float32 ulp is 1e-6.
    # With weight decay torchao decays the params before its step while jopt adds the decay
    # to the update: another rounding, which can flip a code (measured up to 4.8e-6).
    ["8bit_wd0", "8bit_wd1e-2", "4bit_wd0", "4bit_wd1e-2"],
)
def test_fifty_steps_follow_torchao(run):
    _, weight_decay = ref.RUNS[run]
    tx = OPTIMIZERS[int(run[0])](ref.LEARNING_RATE, weight_decay=weight_decay)
    params = jax.tree.map(jnp.asarray, ref.initial_params())

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return jopt.apply_updates(params, updates), state

    state = tx.init(params)
    for t in range(ref.STEPS):
        params, state = step(params, state, jax.tree.map(jnp.asarray, ref.gradient(t)))
    for key, value in params.items():
        atol = 1e-6 if weight_decay == 0 else 1e-5
        np.testing.assert_allclose(value, FIXTURE[f"params_{run}_{key}"], rtol=1e-6, atol=atol,
                                   err_msg=key)  # fmt: skip
    adam = state[0]
    assert isinstance(adam.mu["w"], jopt.contrib.QuantizedArray)
    assert isinstance(adam.nu["v"], jopt.contrib.QuantizedArray)
    assert adam.mu["b"].dtype == adam.mu["odd"].dtype == jnp.float32  # small / not divisible


def _numpy_adam(g, m, v, count, b1=0.9, b2=0.999, eps=1e-8):
    """Adam from the paper's formula in float64, with float32 bias corrections (as optax and
    torchao compute them: 1 - 0.999**t in float32 is off by 1e-5 relative at t = 4)."""
    g, m, v = (np.asarray(a, np.float64) for a in (g, m, v))
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g**2
    c1, c2 = (np.float32(1) - np.float32(b) ** np.float32(count) for b in (b1, b2))
    u = (m / np.float64(c1)) / (np.sqrt(v / np.float64(c2)) + eps)
    return u, m, v


@pytest.mark.parametrize("bits", [8, 4])
def test_one_step_is_float32_adam_on_the_dequantized_state(bits):
    tx = jopt.contrib.scale_by_adam_quantized(bits=bits)
    signed, unsigned = (MAPS["signed8"], MAPS["unsigned8"]) if bits == 8 else (
        MAPS["signed4"], MAPS["unsigned4"])  # fmt: skip
    update = jax.jit(tx.update)
    params = jnp.zeros((64, 128))
    state = tx.init(params)
    for t in range(3):
        _, state = update(jnp.asarray(ref.gradient(t)["w"]), state, params)
    m = quant.dequantize(state.mu, signed, params.shape)
    v = quant.dequantize(state.nu, unsigned, params.shape)
    g = jnp.asarray(ref.gradient(3)["w"])
    u, new_state = update(g, state, params)
    want_u, want_m, want_v = _numpy_adam(g, m, v, count=4)
    np.testing.assert_allclose(u, want_u, rtol=2e-6, atol=1e-7)
    # The new state holds the new moments, requantized.
    for stored, qmap, want, block in (
        (new_state.mu, signed, want_m, 256 // (8 // bits)),
        (new_state.nu, unsigned, want_v, 256 // (8 // bits)),
    ):
        got = np.asarray(quant.dequantize(stored, qmap, params.shape))
        scale = np.repeat(np.asarray(stored.scales), block).reshape(params.shape)
        # At most the map's covering radius: half its widest gap, or the distance from the
        # ends of the range (-1 or 0, and 1) to its end entries (0 to 1/16 without zero).
        low = -1.0 if qmap is signed else 0.0
        radius = max(np.max(np.diff(qmap)) / 2, qmap[0] - low, 1 - qmap[-1])
        assert np.all(np.abs(got - want) <= radius * scale * (1 + 1e-4))


@pytest.mark.parametrize("bits", [8, 4])
def test_the_initial_state_dequantizes_to_exactly_zero(bits):
    state = jopt.contrib.scale_by_adam_quantized(bits=bits).init(jnp.ones((64, 128)))
    for moment, qmap in ((state.mu, MAPS[f"signed{bits}"]), (state.nu, MAPS[f"unsigned{bits}"])):
        assert not np.any(np.asarray(moment.scales)) and not np.any(np.asarray(moment.codes))
        assert not np.any(np.asarray(quant.dequantize(moment, qmap, (64, 128))))


@pytest.mark.parametrize(("bits", "bound"), [(8, 2.04), (4, 1.07)])
def test_state_bytes_a_parameter(bits, bound):
    params = {"w": jax.ShapeDtypeStruct((1024, 1024), jnp.float32)}
    state = jax.eval_shape(OPTIMIZERS[bits](1e-3).init, params)
    nbytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
    per_param = (nbytes - 4) / 2**20  # less the int32 count
    assert per_param == pytest.approx(2 + 8 / 256 if bits == 8 else 1 + 8 / 128)
    assert per_param <= bound


def _trained_state(tx, steps=3):
    params = {"w": jnp.asarray(ref.initial_params()["w"]), "b": jnp.zeros(10)}
    state = TrainState.create(params, tx)
    for t in range(steps):
        grads = {"w": jnp.asarray(ref.gradient(t)["w"]), "b": jnp.ones(10)}
        state = state.apply_gradients(grads)
    return state


@pytest.mark.parametrize("bits", [8, 4])
def test_checkpoint_round_trip_is_exact_and_integrity_checked(tmp_path, bits):
    tx = OPTIMIZERS[bits](1e-2)
    state = _trained_state(tx)
    with Checkpointer(tmp_path / "run", async_save=False) as ckpt:
        ckpt.save(state)
        restored = ckpt.restore(TrainState.create(state.params, tx)).state
    want, got = jax.tree.leaves(state.opt_state), jax.tree.leaves(restored.opt_state)
    assert jax.tree.structure(restored.opt_state) == jax.tree.structure(state.opt_state)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert isinstance(restored.opt_state[0].mu["w"], jopt.contrib.QuantizedArray)
    # Damage the largest data file: the restore names the damage instead of loading it.
    files = [f for f in (tmp_path / "run").rglob("*") if f.is_file() and "state" in f.parts]
    biggest = max(files, key=lambda f: f.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    biggest.write_bytes(bytes(data))
    with Checkpointer(tmp_path / "run") as ckpt, pytest.raises(CheckpointCorruptedError):
        ckpt.restore(TrainState.create(state.params, tx), step=3)


def _loss(params, batch):
    hidden = jnp.tanh(batch["x"] @ params["w1"])
    return jnp.mean((hidden @ params["w2"] - batch["y"]) ** 2)


@pytest.mark.parametrize("bits", [8, 4])
def test_sharded_on_eight_devices_equals_one_device(bits):
    rng = np.random.default_rng(0)
    params = {"w1": jnp.asarray(rng.normal(size=(16, 64)) * 0.3, jnp.float32),
              "w2": jnp.asarray(rng.normal(size=(64, 4)) * 0.3, jnp.float32)}  # fmt: skip
    batch = {"x": jnp.asarray(rng.normal(size=(32, 16)), jnp.float32),
             "y": jnp.asarray(rng.normal(size=(32, 4)), jnp.float32)}  # fmt: skip
    tx = OPTIMIZERS[bits](1e-2, block_size=16, min_size=64)

    def create():
        return TrainState.create(params, tx)

    one = jax.device_put(create(), jax.devices()[0])
    one_step = make_train_step(_loss)
    mesh = make_mesh({"data": 2, "model": 4})
    sharded, shardings = create_sharded_state(create, mesh, axis="model", min_size=64)
    step = make_train_step(_loss, state_sharding=shardings, batch_sharding=batch_sharding(mesh))
    for _ in range(3):
        one, _ = one_step(one, batch)
        sharded, _ = step(sharded, shard_batch(batch, mesh))
    # Rounding only (XLA splits the sums of the sharded matmuls otherwise).
    assert_trees_close(sharded.params, one.params, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(sharded.opt_state), jax.tree.leaves(one.opt_state),
                    strict=True):  # fmt: skip
        assert a.dtype == b.dtype and a.shape == b.shape
        if a.dtype == jnp.uint8:  # a value on a rounding boundary may take the next code
            assert np.mean(np.asarray(a) != np.asarray(b)) < 0.01
    if bits == 8:  # codes keep the param's shape, so they take its sharding
        assert sharded.opt_state[0].mu["w1"].codes.sharding.spec == P(None, "model")


def test_bfloat16_params_keep_their_dtype_and_moments_stay_quantized():
    tx = jopt.contrib.adamw_8bit(1e-2)
    params = {
        "w": jnp.asarray(ref.initial_params()["w"], jnp.bfloat16),
        "b": jnp.ones(10, jnp.bfloat16),
    }
    state = tx.init(params)
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    updates, state = jax.jit(tx.update)(grads, state, params)
    new = jopt.apply_updates(params, updates)
    assert updates["w"].dtype == new["w"].dtype == new["b"].dtype == jnp.bfloat16
    adam = state[0]
    assert adam.mu["w"].scales.dtype == jnp.float32 and adam.mu["b"].dtype == jnp.float32
    # step 1 of Adam moves every coordinate by lr (the bf16 rounding of it)
    np.testing.assert_allclose(np.asarray(updates["w"], np.float32), -1e-2 - 1e-2 * 1e-4 *
                               np.asarray(params["w"], np.float32), rtol=1e-2)  # fmt: skip


def test_inject_hyperparams_and_multi_steps():
    grads = [{"w": jnp.asarray(ref.gradient(t)["w"])} for t in range(4)]
    params = {"w": jnp.asarray(ref.initial_params()["w"])}

    def run(tx, gs):
        state = tx.init(params)
        p = params
        update = jax.jit(tx.update)
        for g in gs:
            u, state = update(g, state, p)
            p = jopt.apply_updates(p, u)
        return p, state

    plain, _ = run(jopt.contrib.adamw_4bit(1e-2), grads)
    injected_4bit = jopt.inject_hyperparams(jopt.contrib.adamw_4bit, static_args=SIZES)
    injected, state = run(injected_4bit(learning_rate=1e-2), grads)
    # Injected, b1 and b2 are float32 arrays: 1 - b1 rounds otherwise (measured 2.7e-7).
    np.testing.assert_allclose(injected["w"], plain["w"], rtol=0, atol=1e-6)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(1e-2)
    # MultiSteps(k=2) fed each gradient twice takes the inner steps once each.
    twice = [g for g in grads for _ in range(2)]
    multi = jopt.MultiSteps(jopt.contrib.adamw_4bit(1e-2), every_k_schedule=2)
    stepped, _ = run(multi.gradient_transformation(), twice)
    # MultiSteps averages the two copies with a rounding of its own (measured 2.7e-7).
    np.testing.assert_allclose(stepped["w"], plain["w"], rtol=0, atol=1e-6)


def test_fit_trains_with_low_bit_states():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 16)).astype(np.float32)
    data = {"x": x, "y": np.tanh(x @ rng.normal(size=(16, 4))).astype(np.float32)}
    params = {"w1": jnp.asarray(rng.normal(size=(16, 256)) * 0.1, jnp.float32),
              "w2": jnp.asarray(rng.normal(size=(256, 4)) * 0.1, jnp.float32)}  # fmt: skip
    tx = jopt.contrib.adamw_8bit(1e-2, min_size=1024)
    result = fit(TrainState.create(params, tx), make_train_step(_loss),
                 Batches(data, batch_size=16, seed=0), epochs=5, progress=False)  # fmt: skip
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert isinstance(result.state.opt_state[0].mu["w1"], jopt.contrib.QuantizedArray)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bits": 3}, "bits must be one of 8, 4, got 3"),
        ({"block_size": 3}, "block_size must be even, got 3"),
        ({"block_size": 0}, "block_size must be an integer >= 2, got 0"),
        ({"min_size": -1}, "min_size must be an integer >= 0, got -1"),
        ({"b2": 1.0}, "b2 must be in"),
        ({"eps": -1.0}, "eps must be >= 0"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jopt.contrib.scale_by_adam_quantized(**kwargs)


def test_the_benchmark_tree_meets_the_issues_bytes_a_parameter():
    from benchmarks import lowbit  # noqa: PLC0415 - the benchmark's own tree and count

    per_param = lowbit.state_bytes_per_param(lowbit.gpt2_shapes())  # 110M params, abstract
    assert per_param["optax adamw"] == pytest.approx(8.0, abs=1e-6)
    assert per_param["adamw_8bit"] <= 2.1 and per_param["adamw_4bit"] <= 1.1
