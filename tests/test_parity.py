"""Every case with an optax twin gives optax's numbers, eagerly and under jit.

The comparison is the public :func:`jopt.testing.assert_matches`: updates, params and (where
the case keeps optax's layout) the state, at every step, on a nested pytree.
"""

import jax.numpy as jnp
import pytest

from jopt import testing
from tests._cases import CASES

TWINNED = [c for c in CASES if c.optax is not None]


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("case", TWINNED, ids=str)
def test_matches_optax(case, jit):
    # The nested tree has dicts, lists, tuples, an empty subtree, matrices and a scalar.
    testing.assert_matches(
        case.make(),
        case.make_optax(),
        testing.nested_params(),
        steps=case.steps if jit or case.eager_steps is None else case.eager_steps,
        loss=testing.bumpy_loss,
        loss_args=case.extra_args,
        jit=jit,
        rtol=case.rtol,
        atol=case.atol,
        # users reach into states: state[0].mu, tree_get(state, "count")
        check_state=case.same_state,
        state_layout=case.same_state,
    )


@pytest.mark.parametrize("case", [c for c in TWINNED if c.bf16], ids=str)
def test_matches_optax_bfloat16(case):
    testing.assert_matches(
        case.make(),
        case.make_optax(),
        testing.nested_params(jnp.bfloat16),
        steps=10,
        loss=testing.bumpy_loss,
        loss_args=case.extra_args,
        # bfloat16 keeps ~3 significant digits; the params' dtypes are compared exactly.
        rtol=2e-2,
        atol=2e-2,
        check_state=case.same_state,
        state_layout=case.same_state,  # the state's dtypes too (moments, counts, schedules)
        update_dtypes=False,  # optax promotes some bf16 updates to float32; jopt keeps bf16
    )
