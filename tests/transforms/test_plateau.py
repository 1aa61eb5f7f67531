"""reduce_on_plateau follows optax.contrib.reduce_on_plateau step by step; mode="max" is
optax on the negated metric; bad hyperparameters are rejected with a clear message."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt

# Improvements, exact plateaus, an improvement below rtol, noise, and negative values.
VALUES = np.concatenate(
    [
        np.linspace(5.0, 3.0, 5),
        np.full(6, 3.0),
        [2.9999],
        np.linspace(2.9, 2.0, 4),
        np.full(8, 2.0),
        2.0 + 0.3 * np.sin(np.arange(10)),
        np.linspace(0.5, -1.0, 4),
        np.full(5, -1.0),
        [-1.05, -1.0, -1.2, -1.2, -1.2, -1.2],
    ]
).astype(np.float32)

CONFIGS = {
    "defaults": {},
    "patience2": dict(factor=0.5, patience=2),
    "cooldown": dict(factor=0.5, patience=3, cooldown=2),
    "min_scale": dict(factor=0.1, patience=1, min_scale=0.005),
    "accumulation": dict(factor=0.5, patience=2, accumulation_size=3),
    "atol_only": dict(factor=0.5, patience=2, rtol=0.0, atol=0.05),
    "everything": dict(
        factor=0.3, patience=2, rtol=0.1, cooldown=1, accumulation_size=2, min_scale=0.01
    ),
}
PARAMS = {"w": jnp.ones(2), "b": jnp.ones(())}


def _trajectory(tx, values, params=PARAMS):
    """All states and the first update leaf after each value, in one jitted scan."""

    def step(state, value):
        updates, state = tx.update(params, state, params, value=value)
        return state, (state, updates["w"][0])

    return jax.jit(lambda v: jax.lax.scan(step, tx.init(params), v)[1])(values)


def _assert_states_equal(ours, theirs, negate=()):
    assert type(ours).__name__ == type(theirs).__name__ == "ReduceLROnPlateauState"
    assert ours._fields == theirs._fields
    for field in ours._fields:
        a, b = getattr(ours, field), getattr(theirs, field)
        assert a.dtype == b.dtype, f"{field}: {a.dtype} vs {b.dtype}"
        b = -b if field in negate else b
        np.testing.assert_array_equal(a, b, err_msg=field)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_trajectory_matches_optax_under_jit(name):
    (ours, ours_u), (theirs, theirs_u) = (
        _trajectory(lib(**CONFIGS[name]), VALUES)
        for lib in (jopt.reduce_on_plateau, optax.contrib.reduce_on_plateau)
    )
    _assert_states_equal(ours, theirs)
    np.testing.assert_array_equal(ours_u, theirs_u)
    # The sequence really exercises the schedule: the scale moves at least once.
    assert len(np.unique(ours.scale)) > 1 or name == "defaults"


def test_eager_matches_optax_with_bfloat16_and_mixed_params():
    params = {"w": jnp.ones(2, jnp.bfloat16), "b": jnp.ones((), jnp.float32)}
    ours = jopt.reduce_on_plateau(factor=0.5, patience=1, cooldown=1)
    theirs = optax.contrib.reduce_on_plateau(factor=0.5, patience=1, cooldown=1)
    a, b = ours.init(params), theirs.init(params)
    _assert_states_equal(a, b)
    # Few steps: optax's eager lax.cond compiles its branches again on every call.
    for value in VALUES[4:10]:
        ua, a = ours.update(params, a, params, value=value)
        ub, b = theirs.update(params, b, params, value=value)
        _assert_states_equal(a, b)
        for x, y in zip(jax.tree.leaves(ua), jax.tree.leaves(ub), strict=True):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
    assert float(a.scale) < 1.0


@pytest.mark.parametrize("name", ["patience2", "cooldown", "everything"])
def test_mode_max_is_optax_on_the_negated_metric(name):
    ours, _ = _trajectory(jopt.reduce_on_plateau(**CONFIGS[name], mode="max"), -VALUES)
    theirs, _ = _trajectory(optax.contrib.reduce_on_plateau(**CONFIGS[name]), VALUES)
    _assert_states_equal(ours, theirs, negate=("best_value", "avg_value"))


def test_keras_semantics_by_hand():
    """Independent of optax: patience 2, factor 0.5, cooldown 1, on a hand-made sequence."""
    tx = jopt.reduce_on_plateau(factor=0.5, patience=2, cooldown=1)
    values = [3.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0]
    # improve, improve, plateau 1, plateau 2: halve and cool down; cooldown; plateau 1,
    # plateau 2: halve and cool down; improve during the cooldown; plateau 1, plateau 2: halve.
    expected = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]
    state, scales = tx.init(PARAMS), []
    for value in values:
        _, state = tx.update(PARAMS, state, PARAMS, value=value)
        scales.append(float(state.scale))
    assert scales == expected


def test_inside_chain_receives_value():
    tx = jopt.chain(jopt.identity(), jopt.reduce_on_plateau(factor=0.5, patience=1))
    state = tx.init(PARAMS)
    for value in [1.0, 1.0, 1.0]:
        updates, state = tx.update(PARAMS, state, PARAMS, value=value)
    np.testing.assert_allclose(updates["w"], 0.25)


BAD = [
    (dict(factor=1.0), ValueError, ["factor", "(0, 1)", "1.0"]),
    (dict(factor=0.0), ValueError, ["factor", "0.0"]),
    (dict(factor=float("nan")), ValueError, ["factor", "nan"]),
    (dict(patience=0), ValueError, ["patience", ">= 1", "got 0"]),
    (dict(patience=2.5), TypeError, ["patience", "2.5"]),
    (dict(rtol=-1e-4), ValueError, ["rtol", "-0.0001"]),
    (dict(rtol=1.5), ValueError, ["rtol", "1.5"]),
    (dict(atol=-1.0), ValueError, ["atol", "-1.0"]),
    (dict(rtol=0.0, atol=0.0), ValueError, ["rtol", "atol", "both"]),
    (dict(cooldown=-1), ValueError, ["cooldown", "-1"]),
    (dict(accumulation_size=0), ValueError, ["accumulation_size", "got 0"]),
    (dict(min_scale=-0.1), ValueError, ["min_scale", "-0.1"]),
    (dict(min_scale=2.0), ValueError, ["min_scale", "2.0"]),
    (dict(mode="maximize"), ValueError, ["mode", "'min'", "'max'", "'maximize'"]),
]


@pytest.mark.parametrize("kwargs,error,needles", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_hyperparameters(kwargs, error, needles):
    with pytest.raises(error) as info:
        jopt.reduce_on_plateau(**kwargs)
    for needle in needles:
        assert needle in str(info.value), f"{needle!r} missing from: {info.value}"


def test_array_hyperparameters_as_inject_hyperparams_passes_them():
    ints = {k: jnp.asarray(v) for k, v in dict(patience=2, cooldown=1, accumulation_size=2).items()}
    ours, _ = _trajectory(jopt.reduce_on_plateau(factor=0.5, **ints), VALUES)
    theirs, _ = _trajectory(optax.contrib.reduce_on_plateau(factor=0.5, **ints), VALUES)
    _assert_states_equal(ours, theirs)


def test_signature_is_optax_plus_mode():
    import inspect

    ours = list(inspect.signature(jopt.reduce_on_plateau).parameters.values())
    theirs = list(inspect.signature(optax.contrib.reduce_on_plateau).parameters.values())
    assert [(p.name, p.default) for p in ours] == [(p.name, p.default) for p in theirs] + [
        ("mode", "min")
    ]
    assert jopt.contrib.reduce_on_plateau is jopt.reduce_on_plateau
    assert jopt.ReduceLROnPlateauState._fields == optax.contrib.ReduceLROnPlateauState._fields


def test_traced_hyperparameters_as_inside_inject_hyperparams():
    """inject_hyperparams builds the transform inside jit: checks must let tracers through."""
    kwargs = dict(factor=0.5, patience=2, min_scale=0.2, cooldown=1, rtol=1e-4)
    arrays = {k: jnp.asarray(v) for k, v in kwargs.items()}

    @jax.jit
    def step(state, value, hyperparams):
        return jopt.reduce_on_plateau(**hyperparams).update(PARAMS, state, PARAMS, value=value)

    ours = jopt.reduce_on_plateau(**kwargs).init(PARAMS)
    theirs = optax.contrib.reduce_on_plateau(**kwargs).init(PARAMS)
    for value in VALUES[:20]:
        _, ours = step(ours, value, arrays)
        _, theirs = optax.contrib.reduce_on_plateau(**kwargs).update(
            PARAMS, theirs, PARAMS, value=value
        )
    np.testing.assert_array_equal(ours.scale, theirs.scale)
    assert ours.scale == np.float32(0.2)  # the traced min_scale stopped the decay
