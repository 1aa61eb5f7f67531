"""The contract, checked for every registered case: abstract init, stable state, no retrace,
dtypes kept, composition inside jopt.chain and optax.chain."""

import jax
import jax.numpy as jnp
import pytest

import jopt
from jopt.testing import assert_matches, bumpy_loss, nested_params
from tests._cases import CASES


def _structure_and_types(tree):
    return jax.tree.structure(tree), [
        (jnp.shape(x), jnp.result_type(x)) for x in jax.tree.leaves(tree)
    ]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_abstract_init_matches_concrete(case):
    params = nested_params()
    abstract = jax.eval_shape(case.make().init, params)
    concrete = case.make().init(params)
    assert _structure_and_types(abstract) == _structure_and_types(concrete)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_update_keeps_state_structure_and_traces_once(case):
    params = nested_params()
    tx = case.make()
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(None)
        value, grads = jax.value_and_grad(bumpy_loss)(params)
        kwargs = {"value": value, "grad": grads, "value_fn": bumpy_loss} if case.extra_args else {}
        updates, state = tx.update(grads, state, params, **kwargs)
        return jopt.apply_updates(params, updates), state

    state0 = tx.init(params)
    params1, state1 = step(params, state0)
    params2, state2 = step(params1, state1)
    assert _structure_and_types(state1) == _structure_and_types(state0)
    assert _structure_and_types(params2) == _structure_and_types(params)
    assert len(traces) == 1, "the second step retraced: the state changed type or shape"


@pytest.mark.parametrize("case", [c for c in CASES if c.bf16], ids=str)
def test_bfloat16_updates_keep_the_gradient_dtype(case):
    params = nested_params(jnp.bfloat16)
    tx = case.make()
    state = tx.init(params)
    value, grads = jax.value_and_grad(bumpy_loss)(params)
    kwargs = {"value": value, "grad": grads, "value_fn": bumpy_loss} if case.extra_args else {}
    for _ in range(2):
        updates, state = tx.update(grads, state, params, **kwargs)
        for path, leaf in jax.tree_util.tree_flatten_with_path(updates)[0]:
            assert leaf.dtype == jnp.bfloat16, (
                f"update at {jax.tree_util.keystr(path)} is {leaf.dtype}"
            )


@pytest.mark.parametrize("case", CASES, ids=str)
def test_inside_chain_and_optax_chain(case):
    import optax

    # Eager, compared at every step; value/grad/value_fn reach the cases that read them. Two
    # steps thread a chain's state once: four runs of two steps cost what three of three did.
    run = {"steps": 2, "jit": False, "loss": bumpy_loss, "loss_args": case.extra_args}
    exact = {"rtol": 1e-6, "atol": 1e-7, "check_state": False}
    params = nested_params()
    alone = case.make()
    assert_matches(jopt.chain(jopt.identity(), case.make()), alone, params, **run, **exact)
    inner = case.make()
    if case.extra_args:
        # optax.chain forwards extra arguments only to members of its own extra-args class
        # (optax.with_extra_args_support); wrapping the jopt transform in that class is how
        # its user declares that update reads them, as jopt.chain's duck typing does itself.
        inner = optax.GradientTransformationExtraArgs(inner.init, inner.update)
    assert_matches(optax.chain(optax.identity(), inner), alone, params, **run, **exact)
