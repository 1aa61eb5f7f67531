"""Behaviours where jopt once differed from optax 0.2.8 (issue 14), checked against optax."""

import dataclasses
import inspect
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
import jopt.contrib


def _assert_trees_equal(a, b):
    # Compared through their leaves: jopt's and optax's MaskedNode are different classes.
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_masked_pytree_mask_under_tree_map_params():
    params = {"a": (jnp.zeros((1, 2)), jnp.zeros((2, 2))), "c": jnp.zeros((1, 2))}
    mask = {"a": (True, False), "c": True}

    def init(p):
        return {"count": 1, "params": p, "copy": p}

    def make(lib):
        inner = lib.GradientTransformation(init, lambda u, s, p=None: (u, s))
        return lib.masked(inner, mask)

    def bump(v):
        return v + 1 if v.shape[0] == 1 else v

    ours, theirs = make(jopt), make(optax)
    got = jopt.tree_map_params(ours, bump, ours.init(params))
    want = optax.tree.map_params(theirs, bump, theirs.init(params))
    _assert_trees_equal(got.inner_state, want.inner_state)
    expected = jax.tree.map(bump, params)
    assert jax.tree.structure(got) == jax.tree.structure(ours.init(expected))
    _assert_trees_equal(got, ours.init(expected))


def test_incremental_update_accepts_none():
    x = jnp.array([1.0, 2.0, 3.0])
    assert jopt.incremental_update(None, x, 1) is optax.incremental_update(None, x, 1) is None
    tree_new, tree_old = {"a": None, "b": x}, {"a": x, "b": 2 * x}
    got = jopt.incremental_update(tree_new, tree_old, 0.5)
    _assert_trees_equal(got, optax.incremental_update(tree_new, tree_old, 0.5))


class _TotalState(NamedTuple):
    total: jax.Array


class _AddingSchedule:
    """A stateful schedule whose int32 state gets a float added (optax's inject test)."""

    def init(self):
        return _TotalState(total=jnp.zeros([], jnp.int32))

    def update(self, state, **extra):
        return _TotalState(total=state.total + extra["addendum"])

    def __call__(self, state, **extra):
        return state.total


def test_inject_hyperparams_stateful_schedule_changing_dtype():
    grads = (jnp.ones(3), jnp.ones(2))
    extra = {"addendum": 0.3 * jnp.ones((), jnp.float32)}
    results = []
    for lib in (jopt, optax):
        tx = lib.inject_hyperparams(lib.scale)(step_size=_AddingSchedule())
        state = jax.jit(tx.init)(grads)
        for _ in range(2):
            _, state = jax.jit(tx.update)(grads, state, params=grads, **extra)
        results.append((state.hyperparams["step_size"], state.hyperparams_states["step_size"]))
    (lr, total), (optax_lr, optax_total) = results
    np.testing.assert_allclose(lr, optax_lr, atol=0.0)
    np.testing.assert_allclose(lr, 0.3, atol=0.0)
    np.testing.assert_allclose(total.total, optax_total.total, atol=0.0)


@dataclasses.dataclass
class _Module:
    """A callable pytree (like an equinox module): a mask of it is a tree, not a function."""

    w: jax.Array

    def __call__(self, x):
        return self.w.dot(x)


jax.tree_util.register_pytree_node(_Module, lambda m: ((m.w,), None), lambda _, c: _Module(*c))


def test_masked_mask_that_is_a_callable_pytree():
    module = _Module(jnp.array([1.0, 2.0, 3.0]))
    for lib in (jopt, optax):
        tx = lib.masked(lib.sgd(0.1), _Module(False))
        new, _ = tx.update(module, tx.init(module))
        _assert_trees_equal(new, module)


def test_muon_weight_decay_mask_function_returning_a_pytree():
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    grads = jax.tree.map(lambda p: 0.1 * p, params)

    def mask_fn(p):
        return {"w": True, "b": False}

    for lib in (jopt.contrib, optax.contrib):
        tx = lib.muon(0.1, weight_decay=0.5, weight_decay_mask=mask_fn)
        new, _ = tx.update(grads, tx.init(params), params)
        assert jax.tree.structure(new) == jax.tree.structure(params)


def test_learning_rate_annotations_are_types():
    """optax's tests skip optimizers whose learning_rate is not annotated ScalarOrSchedule."""
    for fn in (jopt.adam, jopt.sgd, jopt.contrib.muon, jopt.contrib.prodigy):
        annotation = inspect.signature(fn).parameters["learning_rate"].annotation
        assert annotation is jopt.ScalarOrSchedule, (fn.__name__, annotation)
    assert jopt._UNRESOLVED_ANNOTATIONS == []
    assert not isinstance(inspect.signature(jopt.masked).parameters["mask"].annotation, str)


# A hyperparameter at 1 that keeps a running sum (or an EMA that still moves): optax gives it a
# meaning, jopt accepts it and computes the same.
BOUNDARY_CASES = [
    ("trace", {"decay": 1.0}),
    ("sgd", {"learning_rate": 0.1, "momentum": 1.0}),
    ("scale_by_lion", {"b1": 1.0, "b2": 0.99}),
    ("lars", {"learning_rate": 0.1, "momentum": 1.0}),
    ("rmsprop", {"learning_rate": 0.1, "momentum": 1.0}),
    ("scale_by_sm3", {"b2": 1.0}),
]

# A hyperparameter at 1 that freezes a moving average at its initial value: optax accepts it
# (rmsprop(1e-3, decay=1.0) turns a gradient of 0.5 into an update of -5, g / sqrt(eps)); jopt
# refuses it at construction, naming the argument, as the migration guide's table lists.
FROZEN_AVERAGE_CASES = [
    ("ema", {"decay": 1.0, "debias": False}, "decay"),
    ("scale_by_lion", {"b1": 0.9, "b2": 1.0}, "b2"),
    ("lion", {"learning_rate": 0.1, "b2": 1.0}, "b2"),
    ("scale_by_rms", {"decay": 1.0}, "decay"),
    ("scale_by_rms", {"decay": 1.0, "initial_scale": 1.0}, "decay"),
    ("rmsprop", {"learning_rate": 1e-3, "decay": 1.0}, "decay"),
    ("scale_by_stddev", {"decay": 1.0}, "decay"),
    ("scale_by_adadelta", {"rho": 1.0}, "rho"),
    ("adadelta", {"learning_rate": 0.1, "rho": 1.0}, "rho"),
    ("signum", {"learning_rate": 0.1, "beta": 1.0}, "beta"),
    ("adafactor", {"learning_rate": 0.1, "momentum": 1.0}, "momentum"),
]


@pytest.mark.parametrize(("name", "kwargs", "argument"), FROZEN_AVERAGE_CASES)
def test_a_decay_of_one_that_freezes_an_average_is_refused(name, kwargs, argument):
    getattr(optax, name)(**kwargs)  # optax builds it
    with pytest.raises(ValueError, match=rf"^{argument} must be in \[0, 1\), got 1\.0; .*never"):
        getattr(jopt, name)(**kwargs)


def test_boundary_values_optax_accepts():
    params = {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([0.1, -0.2])}
    grads = [jax.tree.map(lambda p, k=k: jnp.sin(p * (k + 1)), params) for k in range(3)]
    for name, kwargs in BOUNDARY_CASES:
        results = []
        for lib in (jopt, optax):
            tx = getattr(lib, name)(**kwargs)
            state, out = tx.init(params), []
            for g in grads:
                u, state = tx.update(g, state, params)
                out.append(u)
            results.append(out)
        for ours, theirs in zip(*results, strict=True):
            for x, y in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
                np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("preconditioning", ["frobenius", "spectral", "aol", "schatten"])
def test_orthogonalize_via_newton_schulz_matches_optax(preconditioning):
    from optax.contrib import _muon as optax_muon  # public in jopt.contrib, private in optax

    x = jax.random.normal(jax.random.key(0), (6, 4))
    coeffs = jnp.array([3.4445, -4.7750, 2.0315])
    ours = jopt.contrib.orthogonalize_via_newton_schulz(x, coeffs, 5, preconditioning)
    theirs = optax_muon.orthogonalize_via_newton_schulz(x, coeffs, 5, preconditioning)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


# The migration guide's "What changes" list: deliberate differences, each pinned against optax so
# that the guide goes stale loudly if either library changes.


def test_inject_hyperparams_keeps_a_bfloat16_leaf_in_bfloat16():
    params = {"w": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float32)}
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    updates = {}
    for lib in (jopt, optax):
        tx = lib.inject_hyperparams(lib.adam)(learning_rate=0.1)
        updates[lib] = jax.jit(tx.update)(grads, tx.init(params), params)[0]
    assert updates[jopt]["w"].dtype == jnp.bfloat16  # the param's dtype, as check_transform asks
    assert updates[optax]["w"].dtype == jnp.float32  # optax promotes to the injected rate's dtype
    assert updates[jopt]["b"].dtype == updates[optax]["b"].dtype == jnp.float32
    np.testing.assert_allclose(
        updates[jopt]["w"].astype(jnp.float32), updates[optax]["w"], rtol=1e-2
    )


def test_multisteps_starts_afresh_after_emitting_a_nan():
    params = {"w": jnp.ones(2)}
    emitted = {}
    for lib in (jopt, optax):
        tx = lib.MultiSteps(lib.sgd(1.0), every_k_schedule=2)
        state, out = tx.init(params), []
        for value in [jnp.nan, 1.0, 1.0, 1.0, 1.0, 1.0]:
            updates, state = tx.update({"w": jnp.full(2, value)}, state, params)
            out.append(float(updates["w"][0]))
        emitted[lib] = out
    # jopt: the NaN window's updates are NaN (optax's masked form: 0 * NaN), then the
    # accumulator is zero again.
    np.testing.assert_array_equal(emitted[jopt], [np.nan, np.nan, 0.0, -1.0, 0.0, -1.0])
    assert np.isnan(emitted[optax]).all()  # optax's accumulator stays NaN for ever
