"""Every ``jopt.tree`` helper against NumPy on a nested tree (and its edge cases)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt import tree

RNG = np.random.default_rng(0)


def _tree(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "a": rng.normal(size=(3, 2)).astype(np.float32),
        "b": [rng.normal(size=4).astype(np.float32), (np.float32(rng.normal()),)],
        "empty": {},
    }


X, Y, Z = _tree(0), _tree(1), _tree(2)


def _leaves(t):
    return [np.asarray(x, np.float64) for x in jax.tree.leaves(t)]


def _check(actual, expected, rtol=1e-6):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(
            np.asarray(a, np.float64), np.asarray(e, np.float64), rtol=rtol, atol=1e-7
        )


def _np_map(f, *trees):
    return jax.tree.map(lambda *xs: f(*[np.asarray(x, np.float64) for x in xs]), *trees)


@pytest.mark.parametrize(
    "name, ours, reference",
    [
        ("add", lambda: tree.add(X, Y, Z), lambda: _np_map(lambda x, y, z: x + y + z, X, Y, Z)),
        ("sub", lambda: tree.sub(X, Y), lambda: _np_map(np.subtract, X, Y)),
        ("mul", lambda: tree.mul(X, Y), lambda: _np_map(np.multiply, X, Y)),
        ("div", lambda: tree.div(X, Y), lambda: _np_map(np.divide, X, Y)),
        ("scale", lambda: tree.scale(-2.5, X), lambda: _np_map(lambda x: -2.5 * x, X)),
        (
            "add_scale",
            lambda: tree.add_scale(X, 0.3, Y),
            lambda: _np_map(lambda x, y: x + 0.3 * y, X, Y),
        ),
        (
            "clip",
            lambda: tree.clip(X, -0.5, 0.7),
            lambda: _np_map(lambda x: np.clip(x, -0.5, 0.7), X),
        ),
        ("where", lambda: tree.where(False, X, Y), lambda: Y),
        ("zeros_like", lambda: tree.zeros_like(X), lambda: _np_map(np.zeros_like, X)),
        ("ones_like", lambda: tree.ones_like(X), lambda: _np_map(np.ones_like, X)),
        (
            "full_like",
            lambda: tree.full_like(X, 3.0),
            lambda: _np_map(lambda x: np.full_like(x, 3.0), X),
        ),
        (
            "update_moment",
            lambda: tree.update_moment(X, Y, 0.9, 2),
            lambda: _np_map(lambda g, m: 0.1 * g**2 + 0.9 * m, X, Y),
        ),
        (
            "update_moment_per_elem_norm",
            lambda: tree.update_moment_per_elem_norm(X, Y, 0.8, 3),
            lambda: _np_map(lambda g, m: 0.2 * g**3 + 0.8 * m, X, Y),
        ),
        (
            "update_infinity_moment",
            lambda: tree.update_infinity_moment(X, Y, 0.9, 1e-3),
            lambda: _np_map(lambda g, m: np.maximum(np.abs(g) + 1e-3, 0.9 * m), X, Y),
        ),
        (
            "bias_correction",
            lambda: tree.bias_correction(X, 0.9, jnp.asarray(3)),
            lambda: _np_map(lambda m: m / (1 - 0.9**3), X),
        ),
        ("cast", lambda: tree.cast(X, jnp.bfloat16), lambda: _np_map(lambda x: x, X)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_elementwise_helpers_match_numpy(name, ours, reference):
    _check(ours(), reference(), rtol=1e-2 if name == "cast" else 1e-6)


def test_reductions_match_numpy():
    flat = np.concatenate([x.ravel() for x in _leaves(X)])
    flat_y = np.concatenate([x.ravel() for x in _leaves(Y)])
    np.testing.assert_allclose(tree.sum(X), flat.sum(), rtol=1e-6)
    np.testing.assert_allclose(tree.vdot(X, Y), flat @ flat_y, rtol=1e-6)
    np.testing.assert_allclose(tree.max(X), flat.max())
    np.testing.assert_allclose(tree.min(X), flat.min())
    np.testing.assert_allclose(tree.l2_norm(X), np.linalg.norm(flat), rtol=1e-6)
    np.testing.assert_allclose(tree.l2_norm(X, squared=True), flat @ flat, rtol=1e-6)
    np.testing.assert_allclose(tree.l1_norm(X), np.abs(flat).sum(), rtol=1e-6)
    np.testing.assert_allclose(tree.linf_norm(X), np.abs(flat).max())
    for ord_, expected in [(None, np.linalg.norm(flat)), (2, np.linalg.norm(flat)),
                           (1, np.abs(flat).sum()), (np.inf, np.abs(flat).max()),
                           ("inf", np.abs(flat).max())]:  # fmt: skip
        np.testing.assert_allclose(tree.norm(X, ord_), expected, rtol=1e-6)
    np.testing.assert_allclose(tree.norm(X, 1, squared=True), np.abs(flat).sum() ** 2, rtol=1e-6)
    assert tree.size(X) == flat.size == 11
    assert tree.bytes_size(X) == 44
    abstract = jax.eval_shape(lambda t: t, X)
    assert tree.size(abstract) == 11 and tree.bytes_size(abstract) == 44


def test_complex_norm_and_vdot_use_the_modulus_and_conjugate():
    z = {"z": jnp.asarray([3 + 4j, 1j], jnp.complex64)}
    np.testing.assert_allclose(tree.l2_norm(z), np.sqrt(25 + 1), rtol=1e-6)
    np.testing.assert_allclose(tree.vdot(z, z), 26.0, rtol=1e-6)
    moment = tree.update_moment_per_elem_norm(z, {"z": jnp.zeros(2)}, 0.5, 2)
    np.testing.assert_allclose(moment["z"], [12.5, 0.5], rtol=1e-6)


def test_complex_squared_modulus_rounds_as_optax_does():
    """Moments use optax's conj(z) * z and the norm optax's Re^2 + Im^2, to the last bit
    eagerly, where the two round differently (2,000 draws, ~0.5 s of eager dispatch)."""
    optax = pytest.importorskip("optax")
    rng = np.random.default_rng(3)
    z = {"a": jnp.asarray(rng.normal(size=2000) + 1j * rng.normal(size=2000), jnp.complex64)}
    zeros = {"a": jnp.zeros(2000)}
    ours = tree.update_moment_per_elem_norm(z, zeros, 0.5, 2)
    np.testing.assert_array_equal(
        ours["a"], optax.tree.update_moment_per_elem_norm(z, zeros, 0.5, 2)["a"]
    )
    parts = {"a": z["a"][:7], "b": z["a"][7:20].reshape(13, 1)}
    assert tree.l2_norm(parts) == optax.tree.norm(parts)


def test_max_min_skip_empty_leaves_and_keep_dtype():
    t = {"empty": jnp.zeros((0, 3)), "x": jnp.asarray([1.0, -2.0], jnp.bfloat16)}
    assert float(tree.max(t)) == 1.0 and float(tree.min(t)) == -2.0
    assert tree.max(t).dtype == jnp.bfloat16
    assert float(tree.max({})) == -np.inf and float(tree.min({})) == np.inf
    assert float(tree.linf_norm({"e": jnp.zeros(0), "x": jnp.asarray([-3.0])})) == 3.0


def test_none_leaves_stay_none():
    t = {"a": None, "b": jnp.ones(2)}
    assert tree.add(t, t)["a"] is None
    assert tree.update_moment(t, t, 0.5, 2)["a"] is None
    assert tree.scale(2.0, t)["a"] is None


def test_safe_increment_saturates():
    assert int(tree.safe_increment(jnp.asarray(5, jnp.int32))) == 6
    top = jnp.iinfo(jnp.int32).max
    assert int(tree.safe_increment(jnp.asarray(top, jnp.int32))) == top
    assert tree.safe_increment(jnp.asarray(top, jnp.int32)).dtype == jnp.int32
    big = jnp.finfo(jnp.float32).max
    assert float(tree.safe_increment(jnp.asarray(big, jnp.float32))) == big


def test_bias_correction_keeps_bfloat16_and_does_not_divide_by_zero():
    m = {"m": jnp.ones(2, jnp.bfloat16)}
    out = tree.bias_correction(m, 0.999, jnp.asarray(1))
    assert out["m"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out["m"], np.float64), 1000.0, rtol=1e-2)


def test_cast_and_cast_like():
    t = {"a": jnp.ones(2), "b": jnp.ones(2, jnp.int32)}
    assert tree.cast(t, None) is t
    assert {x.dtype for x in jax.tree.leaves(tree.cast(t, jnp.float16))} == {jnp.dtype("float16")}
    like = tree.cast_like({"a": jnp.ones(2, jnp.int32), "b": jnp.ones(2)}, t)
    assert like["a"].dtype == jnp.float32 and like["b"].dtype == jnp.int32
    assert tree.zeros_like(t, jnp.bfloat16)["b"].dtype == jnp.bfloat16


def test_dtype_handlers_follow_promotion_order():
    same = {"a": jnp.ones(2), "b": jnp.ones(1)}
    assert tree.dtype(same) == jnp.float32
    assert tree.dtype({}) == jnp.float32
    mixed = {"a": jnp.ones(2, jnp.int32), "b": jnp.ones(2, jnp.float16)}
    with pytest.raises(ValueError, match="mixed_dtype_handler"):
        tree.dtype(mixed)
    assert tree.dtype(mixed, "promote") == jnp.float16
    assert tree.dtype(mixed, "highest") == jnp.float16  # int32 promotes to float16
    assert tree.dtype(mixed, "lowest") == jnp.int32
    odd = {"a": jnp.ones(2, jnp.bfloat16), "b": jnp.ones(2, jnp.float16)}
    with pytest.raises(ValueError, match="do not promote to one another"):
        tree.dtype(odd, "highest")
    with pytest.raises(ValueError, match="mixed_dtype_handler must be one of"):
        tree.dtype(mixed, "biggest")


def test_norm_rejects_unknown_order():
    with pytest.raises(ValueError, match="ord must be one of"):
        tree.norm(X, 3)


def test_top_level_aliases_are_the_tree_functions():
    assert jopt.bias_correction is tree.bias_correction
    assert jopt.safe_increment is tree.safe_increment
