"""One rule for schedules: a schedule may reach the boundary of an open range where a
constant at it is refused (issue 25.7a). optax's getting-started notebook anneals a
clipping threshold to 0 through ``inject_hyperparams``; jopt runs it with optax's numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt


def _annealed_clipping(lib, jit):
    tx = lib.inject_hyperparams(lib.clip_by_global_norm)(
        max_norm=lib.linear_schedule(1.0, 0.0, transition_steps=99)
    )
    grads = {"w": jnp.array([3.0, -4.0]), "b": jnp.array(0.5)}
    state = tx.init(grads)
    update = jax.jit(tx.update) if jit else tx.update
    out = []
    for _ in range(102):  # past the step where the threshold reaches 0
        updates, state = update(grads, state)
        out.append(np.concatenate([np.ravel(u) for u in jax.tree.leaves(updates)]))
    return np.stack(out), np.asarray(state.hyperparams["max_norm"])


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_threshold_annealed_to_zero_runs_as_optax(jit):
    ours, theirs = _annealed_clipping(jopt, jit), _annealed_clipping(optax, jit)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])


def test_threshold_constant_zero_is_refused():
    # optax gives zero updates, and NaN for a zero gradient (0/0): no meaning as a constant.
    with pytest.raises(ValueError, match=r"max_norm must be > 0, got 0.0"):
        jopt.clip_by_global_norm(0.0)
    with pytest.raises(ValueError, match=r"max_norm must be > 0, got 0.0"):
        jopt.inject_hyperparams(jopt.clip_by_global_norm)(max_norm=0.0)


def test_schedule_past_the_boundary_is_refused_at_build_time():
    with pytest.raises(ValueError, match=r"max_norm \(a schedule\) at step 1000 must be >= 0"):
        jopt.inject_hyperparams(jopt.clip_by_global_norm)(
            max_norm=jopt.linear_schedule(1.0, -1.0, 99)
        )
    with pytest.raises(ValueError, match=r"b1 \(a schedule\) at step 1000 must be in \[0, 1\]"):
        jopt.inject_hyperparams(jopt.adam)(1e-3, b1=jopt.linear_schedule(0.9, 1.5, 99))


@pytest.mark.parametrize(
    "build",
    [
        # decays rising to 1 (a constant 1 freezes the average: refused)
        lambda s: jopt.inject_hyperparams(jopt.adam)(learning_rate=1e-3, b2=s(0.9, 1.0)),
        lambda s: jopt.contrib.ademamix(1e-3, b3=s(0.9, 1.0)),
        # thresholds and positive scales annealed to 0
        lambda s: jopt.inject_hyperparams(jopt.clip)(max_delta=s(1.0, 0.0)),
        lambda s: jopt.inject_hyperparams(jopt.clip_by_block_rms)(threshold=s(1.0, 0.0)),
    ],
    ids=["adam-b2", "ademamix-b3", "clip", "clip_by_block_rms"],
)
def test_reaching_the_boundary_is_accepted(build):
    tx = build(lambda start, end: jopt.linear_schedule(start, end, 10))
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    for _ in range(12):
        _, state = tx.update(params, state, params)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: jopt.adam(1e-3, b2=1.0), r"b2 must be in \[0, 1\), got 1.0"),
        (lambda: jopt.contrib.ademamix(1e-3, b3=1.0), r"b3 must be in \[0, 1\), got 1.0"),
        (lambda: jopt.clip(0.0), r"max_delta must be > 0, got 0.0"),
    ],
)
def test_a_constant_at_the_boundary_is_still_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()
