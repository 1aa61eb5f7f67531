"""Every schedule gives optax's values and dtypes, step by step, eagerly and under jit + vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt

# Each config builds the same schedule from a module (jopt.schedules or optax.schedules).
# Lengths are short so that a range of steps covers before, during and after every phase.
CONFIGS = {
    "constant_float": lambda m: m.constant_schedule(0.5),
    "constant_int": lambda m: m.constant_schedule(3),
    "polynomial": lambda m: m.polynomial_schedule(1.0, 0.01, 2, 10),
    "polynomial_begin_sqrt": lambda m: m.polynomial_schedule(1.0, 0.1, 0.5, 7, 5),
    "polynomial_ints": lambda m: m.polynomial_schedule(1, 0, 1, 4),
    "linear": lambda m: m.linear_schedule(1.0, 0.1, 10),
    "linear_up_begin": lambda m: m.linear_schedule(0.0, 1.0, 6, transition_begin=3),
    "piecewise_constant": lambda m: m.piecewise_constant_schedule(1.0, {5: 0.1, 2: 0.5}),
    "piecewise_constant_none": lambda m: m.piecewise_constant_schedule(0.3),
    "piecewise_constant_zero": lambda m: m.piecewise_constant_schedule(2.0, {0: 0.5, 3: 0.0}),
    "exponential": lambda m: m.exponential_decay(1.0, 5, 0.5),
    "exponential_staircase": lambda m: m.exponential_decay(1.0, 4, 0.5, staircase=True),
    "exponential_begin_end": lambda m: m.exponential_decay(
        1.0, 3, 0.5, transition_begin=4, end_value=0.2
    ),
    "exponential_growth_end": lambda m: m.exponential_decay(0.5, 2, 2.0, end_value=4.0),
    "exponential_all": lambda m: m.exponential_decay(2.0, 3, 0.7, 2, True, 0.9),
    "cosine": lambda m: m.cosine_decay_schedule(1.0, 10),
    "cosine_alpha_exponent": lambda m: m.cosine_decay_schedule(0.5, 12, alpha=0.1, exponent=2.0),
    "cosine_float_steps": lambda m: m.cosine_decay_schedule(1.0, 10.0, 0.2),
    "warmup_constant": lambda m: m.warmup_constant_schedule(0.0, 1.0, 5),
    "warmup_cosine": lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 3, 12),
    "warmup_cosine_end_exponent": lambda m: m.warmup_cosine_decay_schedule(
        0.1, 1.0, 4, 15, end_value=0.05, exponent=1.5
    ),
    "warmup_cosine_no_warmup": lambda m: m.warmup_cosine_decay_schedule(0.0, 0.5, 0, 10, 0.1),
    "warmup_cosine_zero_peak": lambda m: m.warmup_cosine_decay_schedule(0.0, 0.0, 2, 8, 0.1),
    "warmup_exponential": lambda m: m.warmup_exponential_decay_schedule(0.0, 1.0, 3, 4, 0.5),
    "warmup_exponential_all": lambda m: m.warmup_exponential_decay_schedule(
        0.2, 1.0, 4, 3, 0.5, transition_begin=2, staircase=True, end_value=0.3
    ),
    "warmup_exponential_no_warmup": lambda m: m.warmup_exponential_decay_schedule(
        0.0, 1.0, 0, 5, 0.8
    ),
    "linear_onecycle": lambda m: m.linear_onecycle_schedule(20, 1.0),
    "linear_onecycle_custom": lambda m: m.linear_onecycle_schedule(10, 0.5, 0.2, 0.7, 10.0, 100.0),
    "cosine_onecycle": lambda m: m.cosine_onecycle_schedule(20, 1.0),
    "cosine_onecycle_custom": lambda m: m.cosine_onecycle_schedule(10, 0.5, 0.25, 10.0, 100.0),
    "interpolate_linear": lambda m: m.piecewise_interpolate_schedule(
        "linear", 1.0, {4: 0.1, 8: 0.01}
    ),
    "interpolate_cosine": lambda m: m.piecewise_interpolate_schedule(
        "cosine", 1.0, {8: 0.01, 4: 0.1}
    ),
    "interpolate_none": lambda m: m.piecewise_interpolate_schedule("linear", 0.7),
    "interpolate_zero_boundary": lambda m: m.piecewise_interpolate_schedule(
        "cosine", 1.0, {0: 0.5, 3: 2.0}
    ),
    "sgdr": lambda m: m.sgdr_schedule(
        [
            dict(init_value=0.0, peak_value=1.0, warmup_steps=2, decay_steps=6),
            dict(init_value=0.5, peak_value=0.8, warmup_steps=0, decay_steps=5, end_value=0.1),
        ]
    ),
    "join": lambda m: m.join_schedules(
        [m.linear_schedule(0.0, 1.0, 4), m.constant_schedule(1.0), m.cosine_decay_schedule(1.0, 6)],
        [4, 9],
    ),
}

# Before 0, every step of the first 25 (phases end at step <= 20), and far past the end.
STEPS = [*range(-3, 25), 100, 12345]


def _kind(x):
    """What a result is: its Python type, or its dtype and weak type."""
    if isinstance(x, jax.Array):
        return (str(x.dtype), x.weak_type)
    return type(x).__name__


def _both(name):
    return CONFIGS[name](jopt.schedules), CONFIGS[name](optax.schedules)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_eager_python_ints_match_optax(name):
    ours, theirs = _both(name)
    for step in STEPS:
        a, b = ours(step), theirs(step)
        assert _kind(a) == _kind(b), f"step {step}: result kind {_kind(a)} vs optax {_kind(b)}"
        np.testing.assert_array_equal(a, b, err_msg=f"step {step}")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_jit_vmap_over_int32_steps_matches_optax(name):
    ours, theirs = _both(name)
    steps = jnp.asarray(STEPS, jnp.int32)
    # jit + vmap: how a schedule is plotted, and how a traced int32 count reaches it.
    a = jax.jit(jax.vmap(ours))(steps)
    b = jax.jit(jax.vmap(theirs))(steps)
    assert a.shape == steps.shape
    assert (a.dtype, a.weak_type) == (b.dtype, b.weak_type)
    # optax's polynomial gives NaN at the end of a fractional-power transition under jit
    # (see test_polynomial_end_is_not_nan_under_jit); elsewhere the values must agree.
    assert not np.isnan(a).any()
    finite = ~np.isnan(b)
    np.testing.assert_allclose(a[finite], b[finite], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_eager_int32_and_float_steps_match_optax(name):
    ours, theirs = _both(name)
    for step in [jnp.int32(0), jnp.int32(7), 2.5, 7.25, jnp.float32(11.5)]:
        a, b = ours(step), theirs(step)
        assert _kind(a) == _kind(b), f"step {step!r}: {_kind(a)} vs optax {_kind(b)}"
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"step {step!r}")


def test_polynomial_end_is_not_nan_under_jit():
    """A deliberate fix: with XLA's fast reciprocal division, optax's 1 - T/T can come out
    slightly negative and a fractional power of it NaN, from the end of the transition on
    (whether it does depends on XLA's optimisation level). jopt clamps the base at 0."""
    steps = jnp.arange(10, 16)
    ours = jax.jit(jax.vmap(jopt.polynomial_schedule(1.0, 0.1, 0.5, 7, 5)))(steps)
    np.testing.assert_allclose(ours[2:], 0.1)


def test_boundaries_exactly():
    """Spot values from the formulas at the transitions, independent of optax."""
    s = jopt.schedules
    assert float(s.linear_schedule(1.0, 0.0, 10, 5)(5)) == 1.0
    assert float(s.linear_schedule(1.0, 0.0, 10, 5)(15)) == 0.0
    assert float(s.exponential_decay(1.0, 4, 0.5, staircase=True)(7)) == 0.5
    assert float(s.exponential_decay(1.0, 4, 0.5, staircase=True)(8)) == 0.25
    assert float(s.exponential_decay(1.0, 4, 0.5, 2)(2)) == 1.0
    np.testing.assert_allclose(s.exponential_decay(1.0, 4, 0.5, 2)(4), 0.5**0.5, rtol=1e-6)
    assert float(s.piecewise_constant_schedule(1.0, {3: 0.5})(2)) == 1.0
    assert float(s.piecewise_constant_schedule(1.0, {3: 0.5})(3)) == 0.5
    np.testing.assert_allclose(s.cosine_decay_schedule(2.0, 10, 0.1)(5), 2.0 * 0.55, rtol=1e-6)
    warm = s.warmup_cosine_decay_schedule(0.0, 1.0, 4, 14, 0.1)
    np.testing.assert_allclose([warm(2), warm(4), warm(9), warm(14), warm(99)],
                               [0.5, 1.0, 0.55, 0.1, 0.1], rtol=1e-6)  # fmt: skip


@pytest.mark.parametrize("name", ["warmup_cosine_end_exponent", "exponential_all", "sgdr"])
def test_through_scale_by_schedule(name):
    ours, theirs = _both(name)
    params = {"w": jnp.ones(3)}

    def trajectory(tx):
        def step(state, _):
            updates, state = tx.update(params, state)
            return state, updates["w"][0]

        return jax.lax.scan(step, tx.init(params), length=20)[1]

    a = jax.jit(lambda: trajectory(jopt.scale_by_schedule(ours)))()
    b = jax.jit(lambda: trajectory(optax.scale_by_schedule(theirs)))()
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", jopt.schedules.__all__)
def test_signature_matches_optax(name):
    import inspect

    ours = inspect.signature(getattr(jopt.schedules, name)).parameters
    theirs = inspect.signature(getattr(optax.schedules, name)).parameters
    assert [(p.name, p.default, p.kind) for p in ours.values()] == [
        (p.name, p.default, p.kind) for p in theirs.values()
    ]
