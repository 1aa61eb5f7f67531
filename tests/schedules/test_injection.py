"""inject_hyperparams keeps hyperparameters in the state: they match optax's, can be read
and set under jit without retracing, vmapped over, scheduled, and are validated once."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt.testing import assert_trees_close, nested_params
from jopt.testing import bumpy_loss as loss


def _schedule(step):
    return 0.1 / (1.0 + step)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_state_and_numbers_match_optax(dtype):
    params = nested_params(dtype)
    kwargs = {"learning_rate": _schedule, "b1": 0.8}
    ours, theirs = (
        jopt.inject_hyperparams(jopt.adam)(**kwargs),
        optax.inject_hyperparams(optax.adam)(**kwargs),
    )

    def train(tx):
        def step(carry, _):
            params, state = carry
            grads = jax.grad(loss)(params)
            updates, state = tx.update(grads, state, params)
            return (jopt.apply_updates(params, updates), state), None

        return jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), length=6)[0])(params)

    (p_ours, s_ours), (p_theirs, s_theirs) = train(ours), train(theirs)
    tol = {"rtol": 2e-2, "atol": 2e-2} if dtype == jnp.bfloat16 else {}
    assert_trees_close(p_ours, p_theirs, **tol)
    assert s_ours.hyperparams.keys() == s_theirs.hyperparams.keys()
    assert_trees_close(s_ours.hyperparams, s_theirs.hyperparams, rtol=0, atol=0)
    assert float(s_ours.hyperparams["learning_rate"]) == pytest.approx(_schedule(5), rel=1e-2)
    assert int(s_ours.count) == 6 and int(s_ours.hyperparams_states["learning_rate"].count) == 6


def test_state_types_are_optax_s():
    """optax builds InjectStatefulHyperparamsState and never its deprecated InjectHyperparamsState
    (kept so code naming it imports): jopt's isinstance checks and fields answer the same."""
    params = {"w": jnp.zeros(2)}
    ours = jopt.inject_hyperparams(jopt.sgd)(learning_rate=0.1).init(params)
    theirs = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1).init(params)
    for old, new in [
        (jopt.InjectHyperparamsState, optax.InjectHyperparamsState),
        (jopt.InjectStatefulHyperparamsState, optax.InjectStatefulHyperparamsState),
    ]:
        assert old._fields == new._fields
        assert isinstance(ours, old) == isinstance(theirs, new)
    assert type(ours).__name__ == type(theirs).__name__ == "InjectStatefulHyperparamsState"


def test_learning_rate_is_read_and_set_under_jit_without_retracing():
    params = {"w": jnp.array([1.0, -2.0])}
    tx = jopt.inject_hyperparams(jopt.sgd)(learning_rate=0.1)
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(None)
        grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
        updates, state = tx.update(grads, state, params)
        return jopt.apply_updates(params, updates), state, state.hyperparams["learning_rate"]

    state = tx.init(params)
    params1, state, lr = step(params, state)
    assert float(lr) == pytest.approx(0.1)
    state.hyperparams["learning_rate"] = jnp.asarray(0.25, state.hyperparams["learning_rate"].dtype)
    params2, state, lr = step(params1, state)
    assert float(lr) == 0.25
    np.testing.assert_allclose(params2["w"], params1["w"] - 0.25 * 2 * params1["w"], rtol=1e-6)
    state = state._replace(hyperparams={**state.hyperparams, "learning_rate": jnp.float32(0.0)})
    params3, state, _ = step(params2, state)
    np.testing.assert_array_equal(params3["w"], params2["w"])
    assert len(traces) == 1, "changing the learning rate retraced the step"


def test_vmap_over_learning_rates_equals_separate_runs():
    params = nested_params()
    rates = jnp.array([0.01, 0.03, 0.1, 0.3])
    tx = jopt.inject_hyperparams(jopt.adam)(learning_rate=0.01)
    base = tx.init(params)

    def with_rate(lr):
        return base._replace(hyperparams={**base.hyperparams, "learning_rate": lr})

    def train(params, state):
        def step(carry, _):
            params, state = carry
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            return (jopt.apply_updates(params, updates), state), None

        return jax.lax.scan(step, (params, state), length=5)[0][0]

    batched = jax.jit(jax.vmap(train, in_axes=(None, 0)))(params, jax.vmap(with_rate)(rates))
    single = jax.jit(train)
    for i, lr in enumerate(rates):
        assert_trees_close(
            jax.tree.map(lambda x, i=i: x[i], batched), single(params, with_rate(lr))
        )
    # ... and a separate run is plain Adam at that rate (optax as the reference).
    opt = optax.adam(0.3)
    reference, state = params, opt.init(params)
    step = jax.jit(lambda p, s: opt.update(jax.grad(loss)(p), s, p))
    for _ in range(5):
        updates, state = step(reference, state)
        reference = optax.apply_updates(reference, updates)
    assert_trees_close(jax.tree.map(lambda x: x[3], batched), reference, rtol=1e-4, atol=1e-5)


def test_stateful_schedule_receives_the_extra_arguments():
    class HalveOnBadLoss:
        """Halve the rate each time the loss value exceeds 1."""

        def init(self):
            return jnp.asarray(1.0)

        def update(self, state, value=None, **extra):
            return jnp.where(value > 1.0, state * 0.5, state)

        def __call__(self, state, **extra):
            return 0.1 * state

    params = {"w": jnp.ones(2)}
    results = []
    for lib in (jopt, optax):
        tx = lib.inject_hyperparams(lib.sgd)(learning_rate=HalveOnBadLoss())
        state = tx.init(params)
        for value in (2.0, 0.5, 3.0, 0.1):
            _, state = tx.update(params, state, params, value=jnp.asarray(value))
        results.append(state)
    assert float(results[0].hyperparams["learning_rate"]) == pytest.approx(0.025)
    assert_trees_close(results[0].hyperparams, results[1].hyperparams, rtol=0, atol=0)


def test_static_args_are_passed_through_unchanged():
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    mask = lambda p: {"w": True, "b": False}  # noqa: E731 - a callable that is not a schedule
    tx = jopt.inject_hyperparams(jopt.add_decayed_weights, static_args="mask")(0.5, mask)
    state = tx.init(params)
    assert set(state.hyperparams) == {"weight_decay"}
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), state, params)
    np.testing.assert_allclose(updates["w"], 0.5 * params["w"])
    np.testing.assert_allclose(updates["b"], 0.0)


def test_integer_hyperparameters_are_injected():
    params = {"w": jnp.ones(2)}
    ours = jopt.inject_hyperparams(jopt.apply_every)(k=3)
    theirs = optax.inject_hyperparams(optax.apply_every)(k=3)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for i in range(5):
        g = {"w": jnp.full(2, float(i + 1))}
        u_ours, s_ours = jax.jit(ours.update)(g, s_ours)
        u_theirs, s_theirs = jax.jit(theirs.update)(g, s_theirs)
        np.testing.assert_array_equal(u_ours["w"], u_theirs["w"])


def test_hyperparam_dtype_sets_the_state_dtype_but_not_the_updates():
    params = {"w": jnp.ones(2, jnp.bfloat16)}
    tx = jopt.inject_hyperparams(jopt.sgd, hyperparam_dtype=jnp.float32)(
        learning_rate=0.1, momentum=0.9
    )
    state = tx.init(params)
    assert state.hyperparams["learning_rate"].dtype == jnp.float32
    updates, state = tx.update(params, state, params)
    assert updates["w"].dtype == jnp.bfloat16
    assert state.hyperparams["momentum"].dtype == jnp.float32
    assert (
        jopt.inject_stateful_hyperparams(jopt.sgd)(learning_rate=0.1)
        .init(params)
        .hyperparams["learning_rate"]
        .dtype
        == jnp.bfloat16
    )


def test_factory_built_with_tracers_skips_the_checks():
    params = {"w": jnp.ones(2)}
    init = jax.vmap(lambda lr: jopt.inject_hyperparams(jopt.adam)(learning_rate=lr).init(params))
    states = init(jnp.array([0.1, 0.2]))
    np.testing.assert_allclose(states.hyperparams["learning_rate"], [0.1, 0.2])


@pytest.mark.parametrize(
    "kwargs, name",
    [({"learning_rate": -1.0}, "learning_rate"), ({"learning_rate": 0.1, "b1": 1.5}, "b1")],
)
def test_numeric_hyperparameters_are_validated_at_the_call(kwargs, name):
    with pytest.raises(ValueError, match=rf"{name} must be"):
        jopt.inject_hyperparams(jopt.adam)(**kwargs)


def test_static_args_must_name_arguments():
    with pytest.raises(
        ValueError, match=r"static_args must name arguments of inner_factory.*'nope'"
    ):
        jopt.inject_hyperparams(jopt.adam, static_args=("nope", "b1"))


def test_inner_factory_must_be_the_factory():
    with pytest.raises(TypeError, match=r"inner_factory must be a function.*jopt.adam rather"):
        jopt.inject_hyperparams(jopt.adam(0.1))


def test_hyperparam_dtype_must_be_a_dtype():
    with pytest.raises(TypeError, match="hyperparam_dtype must be a dtype"):
        jopt.inject_hyperparams(jopt.adam, hyperparam_dtype="no-such-dtype")


def test_wrapped_schedule_counts_steps():
    schedule = jopt.WrappedSchedule(lambda count: 2.0 * count)
    state = schedule.update(schedule.update(schedule.init()))
    assert float(schedule(state)) == 4.0
    assert isinstance(schedule, jopt.StatefulSchedule)


def test_integer_leaves_do_not_make_the_hyperparameters_integers():
    params = {"step": jnp.zeros([], jnp.int32), "w": jnp.ones(2, jnp.float32)}
    ours = jopt.inject_hyperparams(jopt.sgd)(learning_rate=0.1).init(params)
    theirs = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1).init(params)
    assert ours.hyperparams["learning_rate"].dtype == theirs.hyperparams["learning_rate"].dtype
    assert float(ours.hyperparams["learning_rate"]) == pytest.approx(0.1)


def _tanh_step(learning_rate=0.1, squash=jnp.tanh, dtype=jnp.float32):
    """A factory with a callable default and a dtype default (neither a schedule)."""
    return jopt.stateless(
        lambda u, p: jax.tree.map(lambda g: (-learning_rate * squash(g)).astype(dtype), u)
    )


def test_default_callables_and_dtypes_are_static_but_passed_callables_are_schedules():
    params = {"w": jnp.array([0.5, -3.0])}
    tx = jopt.inject_hyperparams(_tanh_step)(learning_rate=0.2)
    state = tx.init(params)
    assert set(state.hyperparams) == {"learning_rate"}
    updates, _ = tx.update(params, state, params)
    np.testing.assert_allclose(updates["w"], -0.2 * np.tanh([0.5, -3.0]), rtol=1e-6)
    scheduled = jopt.inject_hyperparams(_tanh_step)(learning_rate=lambda step: 0.5 + step)
    assert float(scheduled.init(params).hyperparams["learning_rate"]) == 0.5
