"""``scale_by_zoom_linesearch(verbose=True)`` prints what optax prints (issue 25.7e): on
optax's L-BFGS notebook cell (a badly scaled quartic, ``max_linesearch_steps=20``), the
same INFO blocks and diagnoses, line for line, eager and under jit; only the heading
names jopt."""

import jax
import jax.numpy as jnp
import optax
import pytest

import jopt


def _fun(w):
    ii = jnp.arange(1, len(w) + 1, dtype=w.dtype)
    sum1 = (w**2).sum()
    sum2 = (0.5 * ii * w).sum()
    return sum1 + sum2**2 + sum2**4


def _printed(lib, capsys, jit, steps, max_linesearch_steps=20):
    linesearch = lib.scale_by_zoom_linesearch(
        max_linesearch_steps=max_linesearch_steps, verbose=True, initial_guess_strategy="one"
    )
    opt = lib.lbfgs(scale_init_precond=False, linesearch=linesearch)

    def step(params, state):
        value, grad = jax.value_and_grad(_fun)(params)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=_fun)
        return lib.apply_updates(params, updates), state

    step = jax.jit(step) if jit else step
    params = jnp.array([600.0, 700.0, 200.0, 100.0, 90.0, 1e4])
    state = opt.init(params)
    capsys.readouterr()
    for _ in range(steps):
        params, state = step(params, state)
    jax.effects_barrier()
    return capsys.readouterr().out


@pytest.mark.parametrize("jit, steps", [(False, 3), (True, 12)], ids=["eager", "jit"])
def test_verbose_prints_what_optax_prints(capsys, jit, steps):
    theirs = _printed(optax, capsys, jit, steps)
    ours = _printed(jopt, capsys, jit, steps)
    assert "INFO: optax.scale_by_zoom_linesearch:\nValue at current params:" in theirs
    assert ours.replace("jopt.scale_by_zoom_linesearch", "optax.scale_by_zoom_linesearch") == (
        theirs
    )


def test_quiet_by_default(capsys):
    opt = jopt.lbfgs(scale_init_precond=False)
    params = jnp.array([600.0, 700.0, 200.0, 100.0, 90.0, 1e4])
    value, grad = jax.value_and_grad(_fun)(params)
    capsys.readouterr()
    opt.update(grad, opt.init(params), params, value=value, grad=grad, value_fn=_fun)
    jax.effects_barrier()
    assert capsys.readouterr().out == ""
