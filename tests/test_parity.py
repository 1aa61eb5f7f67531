"""Every case with an optax twin gives optax's numbers, eagerly and under jit."""

import jax.numpy as jnp
import pytest

from tests._cases import CASES
from tests._harness import assert_trees_close, nested_params, run, state_layout

TWINNED = [c for c in CASES if c.optax is not None]


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("case", TWINNED, ids=str)
def test_matches_optax(case, jit):
    # The nested tree has dicts, lists, tuples, an empty subtree, matrices and a scalar.
    params = nested_params()
    steps = case.steps if jit or case.eager_steps is None else case.eager_steps
    ours, our_state = run(case.make(), params, steps, jit, case.extra_args)
    theirs, their_state = run(case.make_optax(), params, steps, jit, case.extra_args)
    assert_trees_close(ours, theirs, case.rtol, case.atol)
    if case.same_state:  # users reach into states: state[0].mu, tree_get(state, "count")
        assert state_layout(our_state) == state_layout(their_state)


@pytest.mark.parametrize("case", [c for c in TWINNED if c.bf16], ids=str)
def test_matches_optax_bfloat16(case):
    params = nested_params(jnp.bfloat16)
    ours, our_state = run(case.make(), params, 10, jit=True, extra_args=case.extra_args)
    theirs, their_state = run(case.make_optax(), params, 10, jit=True, extra_args=case.extra_args)
    # bfloat16 keeps ~3 significant digits; the dtype check inside is exact.
    assert_trees_close(ours, theirs, rtol=2e-2, atol=2e-2)
    if case.same_state:  # the state's dtypes too (moments, counts, schedule values)
        assert state_layout(our_state) == state_layout(their_state)
