"""freeze and selective_transform hold the masked parameters constant, like optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jopt
from jopt.testing import assert_trees_close

PARAMS = {"encoder": {"w": jnp.ones((2, 2))}, "head": jnp.array([1.0, -1.0])}
MASK = {"encoder": True, "head": False}


def _run(lib, tx, steps=3):
    params, state = PARAMS, tx.init(PARAMS)
    for _ in range(steps):
        grads = jax.tree.map(lambda p: 2.0 * p + 0.5, params)
        updates, state = tx.update(grads, state, params)
        params = lib.apply_updates(params, updates)
    return params, state


def test_freeze_matches_optax_and_holds_masked_leaves():
    ours, _ = _run(jopt, jopt.chain(jopt.adam(0.1), jopt.freeze(MASK)))
    theirs, _ = _run(optax, optax.chain(optax.adam(0.1), optax.freeze(MASK)))
    assert_trees_close(ours, theirs)
    np.testing.assert_array_equal(ours["encoder"]["w"], PARAMS["encoder"]["w"])
    assert not np.allclose(ours["head"], PARAMS["head"])


def test_selective_transform_matches_optax_and_keeps_no_state_for_frozen_leaves():
    ours, state = _run(jopt, jopt.selective_transform(jopt.adam(0.1), freeze_mask=MASK))
    theirs, _ = _run(optax, optax.selective_transform(optax.adam(0.1), freeze_mask=MASK))
    assert_trees_close(ours, theirs)
    np.testing.assert_array_equal(ours["encoder"]["w"], PARAMS["encoder"]["w"])
    n_array_leaves = sum(getattr(x, "ndim", 0) > 0 for x in jax.tree.leaves(state))
    assert n_array_leaves == 2  # mu and nu of the head only


def test_freeze_everything_with_one_bool():
    out, _ = _run(jopt, jopt.chain(jopt.sgd(0.1), jopt.freeze(True)))
    assert_trees_close(out, PARAMS, rtol=0, atol=0)
