"""The fast path equals the per-leaf path (to rounding), keeps few buffers, inits abstractly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt.testing import nested_params
from tests._runs import run

ELEMENTWISE = {
    "adam": lambda: jopt.adam(0.05),
    "adamw_nu32": lambda: jopt.adamw(0.05, weight_decay=0.1, nu_dtype=jnp.float32),
    "sgd_nesterov": lambda: jopt.sgd(0.03, momentum=0.9, nesterov=True),
    "lion": lambda: jopt.lion(0.01),
    "adagrad": lambda: jopt.adagrad(0.1),
}


def _mixed_params():
    params = nested_params()
    params["half"] = {"w": jnp.linspace(-1, 1, 6, dtype=jnp.bfloat16).reshape(2, 3)}
    return params


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_flat_state_equals_per_leaf_to_float_rounding(name):
    # Same operations, same order; XLA vectorises a long buffer differently from a short
    # leaf (FMA contraction, vector tails), which moves results by at most an ulp or two.
    params = _mixed_params()
    per_leaf, _ = run(ELEMENTWISE[name](), params, steps=10, jit=True)
    flat, state = run(jopt.flat_state(ELEMENTWISE[name]()), params, steps=10, jit=True)
    for a, b in zip(jax.tree.leaves(per_leaf), jax.tree.leaves(flat), strict=False):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(
            np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=1e-6, atol=1e-7
        )


def test_state_holds_one_buffer_per_dtype_and_keeps_large_leaves_apart():
    params = _mixed_params()
    state = jopt.flat_state(jopt.adam(1e-3), max_leaf_size=8).init(params)
    mu = state.inner_state[0].mu.buffers
    # The (4, 3) matrix has 12 > 8 elements: it keeps a buffer of its own, as it is.
    large = [k for k in mu if k.startswith("leaf/")]
    assert sorted(k for k in mu if k.startswith("flat/")) == ["flat/bfloat16", "flat/float32"]
    assert [mu[k].shape for k in large] == [(4, 3)]
    small_f32 = [x for x in jax.tree.leaves(params) if x.dtype == jnp.float32 and x.size <= 8]
    assert mu["flat/float32"].shape == (sum(x.size for x in small_f32),)
    abstract = jax.eval_shape(jopt.flat_state(jopt.adam(1e-3)).init, params)
    assert abstract.inner_state[0].mu.buffers["flat/bfloat16"].shape == (6,)


def test_large_leaves_give_the_same_result_as_all_flat():
    params = _mixed_params()
    split, _ = run(jopt.flat_state(jopt.adam(0.05), max_leaf_size=4), params, steps=5, jit=True)
    merged, _ = run(jopt.flat_state(jopt.adam(0.05)), params, steps=5, jit=True)
    for a, b in zip(jax.tree.leaves(split), jax.tree.leaves(merged), strict=True):
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=1e-6)
    with pytest.raises(ValueError, match="max_leaf_size"):
        jopt.flat_state(jopt.adam(0.05), max_leaf_size=-1)


def test_empty_tree():
    tx = jopt.flat_state(jopt.adam(1e-3))
    updates, _ = tx.update({}, tx.init({}), {})
    assert updates == {}


def test_lamb_gives_the_per_leaf_result_and_adafactor_is_refused():
    params = _mixed_params()
    per_leaf, _ = run(jopt.lamb(0.05), params, steps=5, jit=True)
    flat, _ = run(jopt.flat_state(jopt.lamb(0.05)), params, steps=5, jit=True)
    for a, b in zip(jax.tree.leaves(per_leaf), jax.tree.leaves(flat), strict=True):
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=1e-5)
    with pytest.raises(ValueError, match="flat_state: scale_by_factored_rms cannot run"):
        jopt.flat_state(jopt.adafactor(0.05)).init(params)
