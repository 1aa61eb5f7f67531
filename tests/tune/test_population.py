"""Population training: 16 learning rates on digits as one program equal 16 sequential runs."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt import tune
from jopt.testing import assert_trees_close
from jopt.train.early_stopping import EarlyStopping
from tests.tune._digits import (
    accuracy,
    cross_entropy,
    digits_split,
    init_mlp,
    stacked_batches,
)

# Up to 0.1: beyond, Adam on this MLP turns chaotic and float32 summation order decides.
LEARNING_RATES = np.geomspace(1e-4, 1e-1, 16)


def _setup():
    x_train, y_train, x_test, y_test = digits_split()
    x_val, y_val = jnp.asarray(x_test), jnp.asarray(y_test)

    def loss_fn(params, batch, hyperparams=None):
        penalty = (hyperparams or {}).get("l2", 0.0) * jopt.tree.l2_norm(params, squared=True)
        return cross_entropy(params, batch["x"], batch["y"]) + penalty

    def eval_fn(params, hyperparams=None):
        return cross_entropy(params, x_val, y_val)

    return loss_fn, eval_fn


def test_population_equals_sequential_runs_and_reports_wall_time(capsys):
    loss_fn, eval_fn = _setup()
    kwargs = dict(
        make_tx=jopt.adam,
        hyperparams={"learning_rate": LEARNING_RATES, "l2": np.full(16, 1e-4)},
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        params=init_mlp(),
        batches=stacked_batches(),
        num_steps=60,
        eval_every=10,
        early_stopping=EarlyStopping(patience=1, min_delta=1e-3),
        with_hyperparams=True,
    )
    start = time.perf_counter()
    together = tune.train_population(**kwargs, vectorize=True)
    jax.block_until_ready(together.params)
    population_s = time.perf_counter() - start
    start = time.perf_counter()
    one_by_one = tune.train_population(**kwargs, vectorize=False)
    jax.block_until_ready(one_by_one.params)
    sequential_s = time.perf_counter() - start
    with capsys.disabled():
        print(f"\npopulation of 16: {population_s:.2f}s, 16 sequential runs: {sequential_s:.2f}s")
    assert_trees_close(together.params, one_by_one.params, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(together.stopping.stopped, one_by_one.stopping.stopped)
    np.testing.assert_allclose(together.history, one_by_one.history, rtol=1e-4, atol=1e-5)
    # Different learning rates really train differently, and some stop early.
    best = np.asarray(together.stopping.best)
    assert best.max() - best.min() > 0.5
    results = together.to_results()
    assert len(results.trials) == 16
    assert 1e-3 <= results.best_config["learning_rate"] <= 1e-1


def test_member_of_population_equals_a_plain_training_loop():
    loss_fn, eval_fn = _setup()
    params, batches = init_mlp(), stacked_batches()
    result = tune.train_population(
        jopt.sgd,
        {"learning_rate": [0.05]},
        loss_fn,
        eval_fn,
        params,
        batches,
        num_steps=12,
        static_kwargs={"momentum": 0.9},
    )
    tx = jopt.sgd(0.05, momentum=0.9)
    state = tx.init(params)
    for step in range(12):
        batch = jax.tree.map(lambda b, step=step: b[step % len(b)], batches)
        grads = jax.grad(loss_fn)(params, batch)
        updates, state = tx.update(grads, state, params)
        params = jopt.apply_updates(params, updates)
    assert_trees_close(jax.tree.map(lambda x: x[0], result.params), params, rtol=1e-5, atol=1e-6)


def test_lr_range_test_suggestion_trains_digits_to_95_percent(tmp_path):
    x_train, y_train, x_test, y_test = digits_split()
    batches = stacked_batches()
    found = tune.lr_range_test(
        jopt.adam,
        lambda p, b: cross_entropy(p, b["x"], b["y"]),
        init_mlp(),
        batches,
        min_lr=1e-5,
        max_lr=10.0,
        num_steps=100,
    )
    assert 1e-4 < found.suggestion < 1.0
    found.plot(str(tmp_path / "lr.png"))
    assert (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"
    tx = jopt.adam(found.suggestion)
    params = init_mlp()
    state = tx.init(params)

    @jax.jit
    def step(params, state, batch):
        grads = jax.grad(cross_entropy)(params, batch["x"], batch["y"])
        updates, state = tx.update(grads, state, params)
        return jopt.apply_updates(params, updates), state

    for i in range(400):
        params, state = step(params, state, jax.tree.map(lambda b, i=i: b[i % len(b)], batches))
    assert float(accuracy(params, jnp.asarray(x_test), jnp.asarray(y_test))) >= 0.95


def test_a_flat_tree_population_trains_like_the_tree_population():
    loss_fn, eval_fn = _setup()
    kwargs = dict(
        make_tx=jopt.adam, hyperparams={"learning_rate": [1e-3, 1e-2]}, loss_fn=loss_fn,
        eval_fn=eval_fn, batches=stacked_batches(), num_steps=12, eval_every=4,
    )  # fmt: skip
    per_leaf = tune.train_population(params=init_mlp(), **kwargs)
    flat = tune.train_population(params=jopt.FlatTree.from_tree(init_mlp()), **kwargs)
    assert isinstance(flat.params, jopt.FlatTree)
    assert_trees_close(jax.vmap(jopt.FlatTree.to_tree)(flat.params), per_leaf.params, rtol=1e-5)
    np.testing.assert_allclose(flat.history, per_leaf.history, rtol=1e-5)


def test_population_calls_loss_fn_as_train_does_and_passes_hyperparams_only_when_asked():
    seen = []

    def loss_fn(params, batch, **kwargs):
        seen.append(sorted(kwargs))
        return jnp.sum((params - batch) ** 2)

    def eval_fn(params, **kwargs):
        seen.append(sorted(kwargs))
        return jnp.sum(params**2)

    common = dict(
        make_tx=jopt.sgd, hyperparams={"learning_rate": [0.1], "l2": [0.5]},
        loss_fn=loss_fn, eval_fn=eval_fn, params=jnp.ones(2), batches=jnp.zeros((1, 2)),
        num_steps=2,
    )  # fmt: skip
    tune.train_population(**common)
    assert seen and all(kwargs == [] for kwargs in seen)
    seen.clear()
    tune.train_population(**common, with_hyperparams=True)
    assert seen and all(kwargs == ["hyperparams"] for kwargs in seen)
    with pytest.raises(TypeError, match="with_hyperparams must be True or False"):
        tune.train_population(**common, with_hyperparams="yes")


def test_a_bad_step_is_skipped_like_fit_skips_it():
    # Batch 1 of 3 gives a NaN loss (and gradient): every member skips it, as fit does.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 2)).astype(np.float32)
    y = (x @ np.array([1.0, -1.0], np.float32)).astype(np.float32)
    x[1, 0, 0] = np.nan
    batches = {"x": jnp.asarray(x), "y": jnp.asarray(y)}

    def loss_fn(params, batch):
        return jnp.mean((batch["x"] @ params["w"] - batch["y"]) ** 2)

    lrs = [0.05, 0.1]
    result = tune.train_population(
        jopt.sgd, {"learning_rate": lrs}, loss_fn, lambda p: jnp.sum(p["w"] ** 2),
        {"w": jnp.zeros(2)}, batches, num_steps=6, eval_every=3,
    )  # fmt: skip
    step = jopt.train.make_train_step(loss_fn, donate=False)
    for k, lr in enumerate(lrs):
        state = jopt.train.TrainState.create({"w": jnp.zeros(2)}, jopt.sgd(lr))
        fitted = jopt.train.fit(
            state, step, [jax.tree.map(lambda b, i=i: b[i], batches) for i in range(3)],
            epochs=2, progress=False, max_nonfinite=None,
        )  # fmt: skip
        assert fitted.skipped_steps == 2
        np.testing.assert_allclose(result.params["w"][k], fitted.state.params["w"], rtol=1e-6)
        assert np.isfinite(result.params["w"][k]).all()
