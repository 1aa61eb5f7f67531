"""Every schedule rejects nonsense at construction, naming the argument, value and fix,
and accepts the edge values optax gives a meaningful result for."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jopt import schedules as s

NAN, INF = float("nan"), float("inf")
CYCLE = dict(init_value=0.0, peak_value=1.0, warmup_steps=2, decay_steps=10)

# (id, call, exception, substrings the message must contain: the argument and the value)
BAD = [
    ("constant_nan", lambda: s.constant_schedule(NAN), ValueError, ["value", "nan"]),
    ("constant_str", lambda: s.constant_schedule("0.1"), TypeError, ["value", "'0.1'"]),
    ("constant_array_inf", lambda: s.constant_schedule(jnp.array([1.0, INF])), ValueError,
     ["value", "finite"]),
    ("poly_init_nan", lambda: s.polynomial_schedule(NAN, 0.0, 1, 10), ValueError, ["init_value"]),
    ("poly_end_inf", lambda: s.polynomial_schedule(1.0, INF, 1, 10), ValueError, ["end_value"]),
    ("poly_power_zero", lambda: s.polynomial_schedule(1.0, 0.0, 0, 10), ValueError,
     ["power", "> 0", "got 0"]),
    ("poly_power_negative", lambda: s.polynomial_schedule(1.0, 0.0, -1.0, 10), ValueError,
     ["power", "-1.0"]),
    ("poly_steps_fraction", lambda: s.polynomial_schedule(1.0, 0.0, 2, 2.5), ValueError,
     ["transition_steps", "got 2.5", "constant_schedule"]),
    ("poly_begin_negative", lambda: s.polynomial_schedule(1.0, 0.0, 2, 10, -3), ValueError,
     ["transition_begin", "-3"]),
    ("linear_steps_nan", lambda: s.linear_schedule(1.0, 0.0, NAN), ValueError,
     ["transition_steps", "nan"]),
    ("linear_steps_false", lambda: s.linear_schedule(1.0, 0.0, False), TypeError,
     ["transition_steps", "False"]),
    ("linear_steps_bool", lambda: s.linear_schedule(1.0, 0.0, True), TypeError,
     ["transition_steps", "True"]),
    ("linear_begin_negative", lambda: s.linear_schedule(1.0, 0.0, 5, -1), ValueError,
     ["transition_begin", "-1"]),
    ("piecewise_not_dict", lambda: s.piecewise_constant_schedule(1.0, [(10, 0.1)]), TypeError,
     ["boundaries_and_scales", "[(10, 0.1)]"]),
    ("piecewise_negative_scale", lambda: s.piecewise_constant_schedule(1.0, {10: -0.1}),
     ValueError, ["boundaries_and_scales[10]", "-0.1", ">= 0"]),
    ("piecewise_nan_scale", lambda: s.piecewise_constant_schedule(1.0, {10: NAN}), ValueError,
     ["boundaries_and_scales[10]", "nan"]),
    ("piecewise_negative_boundary", lambda: s.piecewise_constant_schedule(1.0, {-5: 0.1}),
     ValueError, ["boundaries_and_scales", "-5"]),
    ("piecewise_init_nan", lambda: s.piecewise_constant_schedule(NAN), ValueError,
     ["init_value"]),
    ("exp_rate_negative", lambda: s.exponential_decay(1.0, 10, -0.5), ValueError,
     ["decay_rate", "-0.5"]),
    ("exp_rate_nan", lambda: s.exponential_decay(1.0, 10, NAN), ValueError, ["decay_rate", "nan"]),
    ("exp_begin_negative", lambda: s.exponential_decay(1.0, 10, 0.5, -2), ValueError,
     ["transition_begin", "-2"]),
    ("exp_staircase_str", lambda: s.exponential_decay(1.0, 10, 0.5, staircase="yes"), TypeError,
     ["staircase", "'yes'"]),
    ("exp_end_nan", lambda: s.exponential_decay(1.0, 10, 0.5, end_value=NAN), ValueError,
     ["end_value"]),
    ("exp_init_inf", lambda: s.exponential_decay(INF, 10, 0.5), ValueError, ["init_value"]),
    ("cosine_steps_zero", lambda: s.cosine_decay_schedule(1.0, 0), ValueError,
     ["decay_steps", "got 0"]),
    ("cosine_steps_negative", lambda: s.cosine_decay_schedule(1.0, -10), ValueError,
     ["decay_steps", "-10"]),
    ("cosine_alpha_high", lambda: s.cosine_decay_schedule(1.0, 10, alpha=1.5), ValueError,
     ["alpha", "[0, 1]", "1.5"]),
    ("cosine_alpha_negative", lambda: s.cosine_decay_schedule(1.0, 10, alpha=-0.1), ValueError,
     ["alpha", "-0.1"]),
    ("cosine_exponent_nan", lambda: s.cosine_decay_schedule(1.0, 10, exponent=NAN), ValueError,
     ["exponent", "nan"]),
    ("warm_constant_zero", lambda: s.warmup_constant_schedule(0.0, 1.0, 0), ValueError,
     ["warmup_steps", "got 0", "constant_schedule(peak_value)"]),
    ("warm_constant_peak_nan", lambda: s.warmup_constant_schedule(0.0, NAN, 5), ValueError,
     ["peak_value"]),
    ("warm_cosine_negative", lambda: s.warmup_cosine_decay_schedule(0.0, 1.0, -1, 10),
     ValueError, ["warmup_steps", "-1"]),
    ("warm_cosine_decay_short", lambda: s.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10),
     ValueError, ["decay_steps", "warmup_steps", "got 10", "warmup included"]),
    ("warm_cosine_decay_zero", lambda: s.warmup_cosine_decay_schedule(0.0, 1.0, 0, 0),
     ValueError, ["decay_steps", "got 0"]),
    ("warm_cosine_end_nan", lambda: s.warmup_cosine_decay_schedule(0.0, 1.0, 2, 10, NAN),
     ValueError, ["end_value"]),
    ("warm_cosine_exponent_inf", lambda: s.warmup_cosine_decay_schedule(0.0, 1.0, 2, 10, 0, INF),
     ValueError, ["exponent"]),
    ("warm_cosine_init_nan", lambda: s.warmup_cosine_decay_schedule(NAN, 1.0, 2, 10),
     ValueError, ["init_value"]),
    ("warm_exp_negative", lambda: s.warmup_exponential_decay_schedule(0.0, 1.0, -2, 10, 0.5),
     ValueError, ["warmup_steps", "-2"]),
    ("warm_exp_steps_zero", lambda: s.warmup_exponential_decay_schedule(0.0, 1.0, 2, 0, 0.5),
     ValueError, ["transition_steps", "got 0"]),
    ("warm_exp_rate_zero", lambda: s.warmup_exponential_decay_schedule(0.0, 1.0, 2, 10, 0.0),
     ValueError, ["decay_rate", "got 0.0"]),
    ("warm_exp_begin", lambda: s.warmup_exponential_decay_schedule(0.0, 1.0, 2, 10, 0.5, -1),
     ValueError, ["transition_begin", "-1"]),
    ("warm_exp_staircase", lambda: s.warmup_exponential_decay_schedule(
        0.0, 1.0, 2, 10, 0.5, staircase=None), TypeError, ["staircase", "None"]),
    ("warm_exp_end_inf", lambda: s.warmup_exponential_decay_schedule(
        0.0, 1.0, 2, 10, 0.5, end_value=-INF), ValueError, ["end_value"]),
    ("linear_cycle_steps", lambda: s.linear_onecycle_schedule(0, 1.0), ValueError,
     ["transition_steps", "got 0"]),
    ("linear_cycle_pct_start_zero", lambda: s.linear_onecycle_schedule(100, 1.0, 0.0),
     ValueError, ["pct_start", "(0, 1)", "got 0.0"]),
    ("linear_cycle_pct_start_high", lambda: s.linear_onecycle_schedule(100, 1.0, 1.2),
     ValueError, ["pct_start", "1.2"]),
    ("linear_cycle_pct_final_one", lambda: s.linear_onecycle_schedule(100, 1.0, 0.3, 1.0),
     ValueError, ["pct_final", "1.0"]),
    ("linear_cycle_pct_final_before", lambda: s.linear_onecycle_schedule(100, 1.0, 0.5, 0.4),
     ValueError, ["pct_final", "0.4", "pct_start=0.5"]),
    ("linear_cycle_too_short", lambda: s.linear_onecycle_schedule(3, 1.0, 0.5, 0.6), ValueError,
     ["pct_final", "transition_steps=3", "more transition_steps"]),
    ("linear_cycle_div_zero", lambda: s.linear_onecycle_schedule(100, 1.0, div_factor=0.0),
     ValueError, ["div_factor", "got 0.0"]),
    ("linear_cycle_final_div", lambda: s.linear_onecycle_schedule(
        100, 1.0, final_div_factor=-1.0), ValueError, ["final_div_factor", "-1.0"]),
    ("linear_cycle_peak_nan", lambda: s.linear_onecycle_schedule(100, NAN), ValueError,
     ["peak_value"]),
    ("cosine_cycle_steps", lambda: s.cosine_onecycle_schedule(-1, 1.0), ValueError,
     ["transition_steps", "-1"]),
    ("cosine_cycle_pct_start", lambda: s.cosine_onecycle_schedule(100, 1.0, 1.0), ValueError,
     ["pct_start", "1.0"]),
    ("cosine_cycle_div_zero", lambda: s.cosine_onecycle_schedule(100, 1.0, div_factor=0),
     ValueError, ["div_factor", "got 0"]),
    ("cosine_cycle_final_div", lambda: s.cosine_onecycle_schedule(100, 1.0, final_div_factor=0),
     ValueError, ["final_div_factor", "got 0"]),
    ("interp_type", lambda: s.piecewise_interpolate_schedule("quadratic", 1.0), ValueError,
     ["interpolate_type", "'linear'", "'cosine'", "'quadratic'"]),
    ("interp_negative_scale", lambda: s.piecewise_interpolate_schedule("linear", 1.0, {4: -1.0}),
     ValueError, ["boundaries_and_scales[4]", "-1.0"]),
    ("interp_negative_boundary", lambda: s.piecewise_interpolate_schedule(
        "cosine", 1.0, {-4: 0.5}), ValueError, ["boundaries_and_scales", "-4"]),
    ("interp_init_nan", lambda: s.piecewise_interpolate_schedule("linear", NAN), ValueError,
     ["init_value"]),
    ("sgdr_empty", lambda: s.sgdr_schedule([]), ValueError, ["cosine_kwargs", "at least one"]),
    ("sgdr_no_decay_steps", lambda: s.sgdr_schedule([dict(init_value=0.0, peak_value=1.0,
     warmup_steps=2)]), ValueError, ["cosine_kwargs[0]", "decay_steps"]),
    ("sgdr_bad_cycle", lambda: s.sgdr_schedule([CYCLE, {**CYCLE, "warmup_steps": 20}]),
     ValueError, ["cosine_kwargs[1]", "decay_steps", "warmup_steps"]),
    ("sgdr_unknown_key", lambda: s.sgdr_schedule([{**CYCLE, "alpha": 0.1}]), TypeError,
     ["cosine_kwargs[0]", "alpha"]),
    ("join_empty", lambda: s.join_schedules([], []), ValueError, ["schedules", "at least one"]),
    ("join_not_callable", lambda: s.join_schedules([s.constant_schedule(1.0), 0.5], [3]),
     TypeError, ["schedules[1]", "0.5"]),
    ("join_too_many_boundaries", lambda: s.join_schedules([s.constant_schedule(1.0)] * 2, [3, 5]),
     ValueError, ["boundaries", "one step fewer", "got 2", "[3, 5]"]),
    ("join_too_few_boundaries", lambda: s.join_schedules([s.constant_schedule(1.0)] * 3, [3]),
     ValueError, ["boundaries", "got 1"]),
    ("join_unsorted", lambda: s.join_schedules([s.constant_schedule(1.0)] * 3, [5, 3]),
     ValueError, ["boundaries", "increasing", "[5, 3]"]),
    ("join_negative", lambda: s.join_schedules([s.constant_schedule(1.0)] * 2, [-1]), ValueError,
     ["boundaries[0]", "-1"]),
    # step counts are whole numbers (1e4 passes, 2.5 does not); exponents are > 0
    ("linear_steps_fraction", lambda: s.linear_schedule(1.0, 0.0, 2.5), ValueError,
     ["transition_steps", "whole number >= 1", "2.5"]),
    ("poly_begin_fraction", lambda: s.polynomial_schedule(1.0, 0.0, 2, 10, 0.5), ValueError,
     ["transition_begin", "0.5"]),
    ("exp_steps_fraction", lambda: s.exponential_decay(1.0, 2.5, 0.5), ValueError,
     ["transition_steps", "2.5"]),
    ("cosine_steps_fraction", lambda: s.cosine_decay_schedule(1.0, 10.5), ValueError,
     ["decay_steps", "10.5"]),
    ("cosine_exponent_zero", lambda: s.cosine_decay_schedule(1.0, 10, exponent=0.0), ValueError,
     ["exponent", "> 0", "0.0"]),
    ("cosine_exponent_negative", lambda: s.cosine_decay_schedule(1.0, 10, exponent=-1.0),
     ValueError, ["exponent", "-1.0"]),
    ("warm_cosine_exponent_negative", lambda: s.warmup_cosine_decay_schedule(
        0.0, 1.0, 2, 10, 0.0, -2.0), ValueError, ["exponent", "-2.0"]),
    ("warm_constant_fraction", lambda: s.warmup_constant_schedule(0.0, 1.0, 2.5), ValueError,
     ["warmup_steps", "2.5"]),
    ("warm_cosine_fraction", lambda: s.warmup_cosine_decay_schedule(0.0, 1.0, 2.5, 10),
     ValueError, ["warmup_steps", "2.5"]),
    ("warm_exp_fraction", lambda: s.warmup_exponential_decay_schedule(0.0, 1.0, 2, 0.5, 0.5),
     ValueError, ["transition_steps", "0.5"]),
    ("cycle_steps_fraction", lambda: s.cosine_onecycle_schedule(100.5, 1.0), ValueError,
     ["transition_steps", "100.5"]),
    ("piecewise_fraction_boundary", lambda: s.piecewise_constant_schedule(1.0, {2.5: 0.1}),
     ValueError, ["boundaries_and_scales", "2.5"]),
    ("join_fraction", lambda: s.join_schedules([s.constant_schedule(1.0)] * 2, [2.5]),
     ValueError, ["boundaries[0]", "2.5"]),
    ("join_boundaries_int", lambda: s.join_schedules([s.constant_schedule(1.0)] * 2, 3),
     TypeError, ["boundaries must be a list", "3"]),
    ("join_schedules_callable", lambda: s.join_schedules(s.constant_schedule(1.0), []),
     TypeError, ["schedules must be a list"]),
]  # fmt: skip


@pytest.mark.parametrize("call,error,needles", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_names_argument_value_and_fix(call, error, needles):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} missing from: {message}"
    if error is ValueError and "must be one of" not in message:
        # A wrong value, not a wrong type or option: the message says what to do.
        assert "; " in message and ("pass" in message or "use" in message), message


# Edge values optax handles meaningfully: accepted, and equal to optax.
GOOD = [
    lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 0, 10),
    lambda m: m.warmup_exponential_decay_schedule(0.0, 1.0, 0, 10, 0.5),
    lambda m: m.warmup_constant_schedule(0.0, 1.0, 1),
    lambda m: m.exponential_decay(1.0, 10, 1.0),
    lambda m: m.exponential_decay(1.0, 10, 3.0, end_value=5.0),
    lambda m: m.cosine_decay_schedule(1.0, 10, alpha=0.0),
    lambda m: m.cosine_decay_schedule(1.0, 10, alpha=1.0),
    lambda m: m.cosine_decay_schedule(0.0, 10),
    lambda m: m.piecewise_constant_schedule(1.0, {0: 0.0}),
    lambda m: m.piecewise_constant_schedule(1.0, {}),
    lambda m: m.piecewise_interpolate_schedule("linear", 1.0, {}),
    lambda m: m.polynomial_schedule(0.0, 0.0, 3, 1),
    lambda m: m.linear_schedule(-1.0, 1.0, 1),
    lambda m: m.linear_schedule(jnp.float32(1.0), np.float64(0.5), np.int64(4)),
    lambda m: m.constant_schedule(jnp.array([0.1, 0.2])),
    lambda m: m.linear_onecycle_schedule(4, 1.0),
    lambda m: m.join_schedules([m.constant_schedule(1.0), m.constant_schedule(2.0)], [0]),
    lambda m: m.join_schedules([m.constant_schedule(1.0)], []),
    lambda m: m.linear_schedule(1.0, 0.0, 1e1),
    lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 2.0, 1e1, exponent=0.5),
]


@pytest.mark.parametrize("build", GOOD, ids=range(len(GOOD)))
def test_meaningful_edge_values_are_accepted(build):
    ours, theirs = build(s), build(optax.schedules)
    for step in [-1, 0, 1, 5, 10, 20]:
        np.testing.assert_allclose(ours(step), theirs(step), rtol=1e-6)


def test_traced_hyperparameters_pass_validation():
    """Under jit (inject_hyperparams calls factories there) values cannot be checked."""

    @jax.jit
    def value(init_value, decay_rate, peak_value):
        return (
            s.linear_schedule(init_value, 0.0, 10)(3)
            + s.exponential_decay(init_value, 5, decay_rate, end_value=0.1)(7)
            + s.warmup_cosine_decay_schedule(0.0, peak_value, 2, 10, 0.1)(6)
        )

    expected = (
        optax.linear_schedule(1.0, 0.0, 10)(3)
        + optax.exponential_decay(1.0, 5, 0.5, end_value=0.1)(7)
        + optax.warmup_cosine_decay_schedule(0.0, 2.0, 2, 10, 0.1)(6)
    )
    np.testing.assert_allclose(value(1.0, 0.5, 2.0), expected, rtol=1e-6)
    # A peak of 0 takes optax's alpha = 0 branch, without branching on the traced value.
    np.testing.assert_allclose(
        value(1.0, 0.5, 0.0),
        optax.linear_schedule(1.0, 0.0, 10)(3)
        + optax.exponential_decay(1.0, 5, 0.5, end_value=0.1)(7),
        rtol=1e-6,
    )


@pytest.mark.parametrize("steps", [0, -5])
def test_a_transition_of_no_steps_holds_init_value_as_optax_documents(steps):
    import optax  # noqa: PLC0415

    for ours, theirs in ((s.polynomial_schedule(2.0, 0.5, 2, steps),
                          optax.polynomial_schedule(2.0, 0.5, 2, steps)),
                         (s.linear_schedule(2.0, 0.5, steps),
                          optax.linear_schedule(2.0, 0.5, steps)),
                         (s.exponential_decay(2.0, steps, 0.5),
                          optax.exponential_decay(2.0, steps, 0.5)),
                         (s.exponential_decay(2.0, 10, 0.0),
                          optax.exponential_decay(2.0, 10, 0.0))):  # fmt: skip
        assert [ours(t) for t in (0, 3, 100)] == [theirs(t) for t in (0, 3, 100)] == [2.0] * 3
