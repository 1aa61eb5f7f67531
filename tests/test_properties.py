"""Properties for every registered case, on random pytrees (hypothesis).

init and update keep the tree structure, the leaf shapes and dtypes: the updates
are shaped like the params, the state keeps its structure and leaf types, and
applying the updates keeps every parameter's dtype.
"""

import jax
import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, given, settings

import jopt
from jopt.testing import bumpy_loss as loss
from jopt.testing import pytree_pairs
from tests._cases import CASES


def _types(tree):
    return jax.tree.structure(tree), [
        (jnp.shape(x), jnp.result_type(x)) for x in jax.tree.leaves(tree)
    ]


def _shapes(tree):
    return jax.tree.structure(tree), [jnp.shape(x) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_update_keeps_structure_shapes_and_dtypes(case):
    dtypes = (jnp.float32, jnp.bfloat16) if case.bf16 else (jnp.float32,)

    # Few examples a case: the registry is large and each new tree shape compiles.
    @settings(max_examples=2, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(pytree_pairs(dtypes, max_leaves=4))
    def check(pair):
        params, _ = pair
        tx = case.make()
        state = tx.init(params)
        value, grads = jax.value_and_grad(loss)(params)
        kwargs = {"value": value, "grad": grads, "value_fn": loss} if case.extra_args else {}
        updates, new_state = tx.update(grads, state, params, **kwargs)
        assert _shapes(updates) == _shapes(params)
        assert _types(new_state) == _types(state)
        assert _types(jopt.apply_updates(params, updates)) == _types(params)

    check()
