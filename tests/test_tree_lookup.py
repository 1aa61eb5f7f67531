"""jopt.tree's state lookups, random trees and complex helpers against optax.tree."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt


def _states():
    params = {"w": jnp.arange(3.0), "b": jnp.ones(2)}
    make = lambda lib: lib.inject_hyperparams(lib.adam)(learning_rate=0.1)  # noqa: E731
    return make(jopt).init(params), make(optax).init(params)


def _paths(found):
    return [jax.tree_util.keystr(p) for p, _ in found]


@pytest.mark.parametrize("key", ["learning_rate", "count", "mu", "ScaleByAdamState", "missing"])
def test_get_all_with_path_matches_optax(key):
    ours, theirs = _states()
    got, want = jopt.tree.get_all_with_path(ours, key), optax.tree.get_all_with_path(theirs, key)
    assert _paths(got) == _paths(want)
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert jopt.tree.allclose(jax.tree.leaves(a), jax.tree.leaves(b))


def test_get_with_filtering_and_default():
    ours, theirs = _states()
    adam_only = lambda path, _: (
        isinstance(path[-1], jopt.tree.NamedTupleKey)
        and (  # noqa: E731
            path[-1].tuple_name == "ScaleByAdamState"
        )
    )
    assert int(jopt.tree.get(ours, "count", filtering=adam_only)) == 0
    assert jopt.tree.get(ours, "missing", default=7) == optax.tree.get(theirs, "missing", 7) == 7
    with pytest.raises(KeyError, match="multiple"):
        jopt.tree.get(ours, "count")
    assert str(jopt.tree.NamedTupleKey("S", "mu")) == str(optax.tree_utils.NamedTupleKey("S", "mu"))


def test_set_matches_optax_and_refuses_unknown_keys():
    ours, theirs = _states()
    got = jopt.tree.set(ours, learning_rate=jnp.asarray(0.5))
    want = optax.tree.set(theirs, learning_rate=jnp.asarray(0.5))
    assert list(got.hyperparams) == list(want.hyperparams)
    assert jopt.tree.allclose(got.hyperparams, want.hyperparams)
    with pytest.raises(KeyError):
        jopt.tree.set(ours, nonexistent=1.0)


def test_random_and_complex_helpers_match_optax():
    key = jax.random.key(1)
    tree = {"a": jnp.zeros((2, 3)), "b": jnp.zeros(4, jnp.bfloat16)}
    for sampler in (jax.random.normal, jax.random.uniform):
        a = jopt.tree.random_like(key, tree, sampler)
        b = optax.tree.random_like(key, tree, sampler)
        assert jax.tree.map(lambda x: x.dtype, a) == jax.tree.map(lambda x: x.dtype, b)
        assert jopt.tree.allclose(jax.tree.leaves(a), jax.tree.leaves(b))
    keys = jopt.tree.split_key_like(key, tree)
    np.testing.assert_array_equal(
        jax.tree.leaves(jopt.tree.unwrap_random_key_data(keys)),
        jax.tree.leaves(optax.tree.unwrap_random_key_data(optax.tree.split_key_like(key, tree))),
    )
    z = {"c": jnp.array([1 + 2j, 3 - 1j]), "r": jnp.array([2.0])}
    for name in ("conj", "real"):
        assert jopt.tree.allclose(getattr(jopt.tree, name)(z), getattr(optax.tree, name)(z))
    np.testing.assert_array_equal(jopt.tree.abs_sq(z["c"]), [5.0, 10.0])
    assert jopt.tree.batch_shape(z, (2,))["c"].shape == optax.tree.batch_shape(z, (2,))["c"].shape
    assert not jopt.tree.allclose(z, jopt.tree.conj(z)) and not optax.tree.allclose(
        z, optax.tree.conj(z)
    )
    assert jopt.tree.allclose({"a": jnp.nan}, {"a": jnp.nan}, equal_nan=True)


def test_sum_associative_reduction():
    tree = [jnp.full(3, float(i)) for i in range(9)]
    np.testing.assert_allclose(
        jopt.tree.sum(tree, associative_reduction=True), optax.tree.sum(tree)
    )
