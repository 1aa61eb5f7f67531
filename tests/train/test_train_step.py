"""TrainStep (issue 24.1, 24.4): fit runs the step it is given, donates only when the step
does, keeps no compiled program alive past its step, and names a flax TrainState."""

import dataclasses
import functools
import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt.train import Batches, TrainState, TrainStep, fit, fit_compiled, make_train_step


def loss_fn(params, batch):
    return jnp.mean((batch["x"] @ params["w"] - batch["y"]) ** 2)


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 2)).astype(np.float32)
    return Batches({"x": x, "y": x @ np.array([1.0, -1.0], np.float32)}, batch_size=8, seed=0)


def new_state():
    return TrainState.create({"w": jnp.zeros(2)}, jopt.sgd(0.1))


def test_make_train_step_returns_a_frozen_train_step_with_its_settings():
    step = make_train_step(loss_fn, donate=False, skip_nonfinite=True)
    assert isinstance(step, TrainStep)
    assert (step.donate, step.jit, step.skip_nonfinite) == (False, True, True)
    assert step.state_sharding is None and step.batch_sharding is None
    with pytest.raises(AttributeError):
        step.donate = True  # frozen


@pytest.mark.parametrize("run", [fit, fit_compiled])
def test_fit_runs_a_functools_wraps_wrapper_not_the_step_inside_it(run):
    inner = make_train_step(loss_fn, jit=False)

    @functools.wraps(inner)
    def wrapper(state, batch):
        state, metrics = inner(state, batch)
        return state.replace(params={"w": jnp.full(2, 123.0)}), metrics

    result = run(
        new_state(), wrapper, data(), epochs=1, **({"progress": False} if run is fit else {})
    )
    np.testing.assert_array_equal(result.state.params["w"], [123.0, 123.0])


def test_donate_false_leaves_the_callers_state_alive_after_a_call_and_after_fit():
    step = make_train_step(loss_fn, donate=False)
    state = new_state()
    step(state, next(iter(data().epoch(0))))
    fit(state, step, data(), epochs=1, progress=False)
    fit(state, step, data(), epochs=1, progress=False, steps_per_call=2)
    np.testing.assert_array_equal(state.params["w"], [0.0, 0.0])  # not deleted, not changed


def test_a_donating_step_lets_fit_donate():
    state = new_state()
    fit(state, make_train_step(loss_fn), data(), epochs=1, progress=False)
    assert state.params["w"].is_deleted()


def test_a_direct_call_with_skip_nonfinite_keeps_the_state_after_a_bad_batch():
    step = make_train_step(loss_fn, skip_nonfinite=True, donate=False)
    state = new_state()
    bad = {"x": jnp.full((2, 2), jnp.nan), "y": jnp.zeros(2)}
    kept, metrics = step(state, bad)
    assert int(kept.step) == 0 and bool(jnp.isnan(metrics["loss"]))
    np.testing.assert_array_equal(kept.params["w"], state.params["w"])
    applied, _ = make_train_step(loss_fn, donate=False)(state, bad)
    assert int(applied.step) == 1 and bool(jnp.isnan(applied.params["w"]).all())


@pytest.mark.parametrize("plain", [False, True])
def test_no_cache_keeps_a_step_or_its_loss_alive_after_fit(plain):
    def make():
        def closure_loss(params, batch):  # a fresh closure each time, as a user's would be
            return loss_fn(params, batch)

        step = make_train_step(closure_loss, jit=False)
        return (lambda s, b: step(s, b)) if plain else step

    step = make()
    fit(new_state(), step, data(), epochs=1, progress=False, steps_per_call=2)
    gone = weakref.ref(step)
    del step
    gc.collect()
    assert gone() is None


def test_a_flax_train_state_gets_a_named_error_saying_how_to_build_jopts():
    from flax.training import train_state

    flax_state = train_state.TrainState.create(
        apply_fn=lambda p, x: x @ p["w"], params={"w": jnp.zeros(2)}, tx=jopt.sgd(0.1)
    )
    for call in (
        lambda: fit(flax_state, make_train_step(loss_fn), data(), epochs=1, progress=False),
        lambda: make_train_step(loss_fn)(flax_state, next(iter(data().epoch(0)))),
    ):
        with pytest.raises(TypeError, match=r"flax's flax\.training\.train_state\.TrainState"
                           r".*TrainState\.create\(state\.params, state\.tx"):  # fmt: skip
            call()
    # The advice works and keeps the flax state's progress.
    state = flax_state
    built = TrainState.create(state.params, state.tx, apply_fn=state.apply_fn).replace(
        step=state.step, opt_state=state.opt_state
    )
    assert int(fit(built, make_train_step(loss_fn), data(), epochs=1,
                   progress=False).state.step) == 2  # fmt: skip


def test_any_other_object_is_named_as_not_a_train_state():
    with pytest.raises(TypeError, match="state must be a jopt.train.TrainState, got dict"):
        fit({"params": 1}, make_train_step(loss_fn), data(), epochs=1, progress=False)


def test_a_jitted_train_step_can_be_vmapped_through_run():
    step = make_train_step(loss_fn, jit=False)
    states = jax.vmap(lambda w: new_state().replace(params={"w": w}))(jnp.zeros((3, 2)))
    batch = next(iter(data().epoch(0)))
    out, metrics = jax.vmap(step.run, in_axes=(0, None))(states, batch)
    assert metrics["loss"].shape == (3,) and out.params["w"].shape == (3, 2)


@pytest.mark.parametrize("run", [fit, fit_compiled])
def test_a_non_scalar_loss_is_a_type_error_for_every_step(run):
    # make_train_step's loss and a hand-written step's metrics["loss"]: one rule (24.5).
    def per_example(params, batch):
        return (batch["x"] @ params["w"] - batch["y"]) ** 2

    def by_hand(state, batch):
        return state, {"loss": per_example(state.params, batch)}

    extra = {"progress": False} if run is fit else {}
    for step, name in ((make_train_step(per_example), "per_example"), (by_hand, "train_step")):
        with pytest.raises(TypeError, match=f"{name} must return a scalar .*shape \\(8,\\)"):
            run(new_state(), step, data(), epochs=1, **extra)


def test_a_replaced_train_step_starts_with_its_own_cache():
    donating = make_train_step(loss_fn, jit=False)
    fit(new_state(), donating, data(), epochs=1, progress=False)
    assert donating.cache
    kept = dataclasses.replace(donating, donate=False)
    assert kept.cache == {} and not kept.donate
    state = new_state()
    fit(state, kept, data(), epochs=1, progress=False)
    assert not state.params["w"].is_deleted()  # not the donating program compiled before
