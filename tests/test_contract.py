"""The contract, checked for every registered case: abstract init, stable state, no retrace,
dtypes kept, composition inside jopt.chain and optax.chain."""

import jax
import jax.numpy as jnp
import pytest

import jopt
from tests._cases import CASES
from tests._harness import assert_trees_close, loss, nested_params, run


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
        value, grads = jax.value_and_grad(loss)(params)
        kwargs = {"value": value, "grad": grads, "value_fn": loss} if case.extra_args else {}
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
    value, grads = jax.value_and_grad(loss)(params)
    kwargs = {"value": value, "grad": grads, "value_fn": loss} if case.extra_args else {}
    for _ in range(2):
        updates, state = tx.update(grads, state, params, **kwargs)
        for path, leaf in jax.tree_util.tree_flatten_with_path(updates)[0]:
            assert leaf.dtype == jnp.bfloat16, (
                f"update at {jax.tree_util.keystr(path)} is {leaf.dtype}"
            )


@pytest.mark.parametrize("case", CASES, ids=str)
def test_inside_chain_and_optax_chain(case):
    import optax

    params = nested_params()
    alone, _ = run(case.make(), params, steps=3, extra_args=case.extra_args)
    in_chain, _ = run(jopt.chain(jopt.identity(), case.make()), params, 3, False, case.extra_args)
    assert_trees_close(in_chain, alone, rtol=1e-6, atol=1e-7)
    if case.extra_args:
        # optax.chain adapts any transform that is not optax's own ExtraArgs class and drops
        # value/grad/value_fn on the way; nothing on jopt's side can reach through that.
        return
    in_optax, _ = run(optax.chain(optax.identity(), case.make()), params, 3, False, case.extra_args)
    assert_trees_close(in_optax, alone, rtol=1e-6, atol=1e-7)
