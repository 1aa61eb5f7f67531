"""Every registry case, wrapped, gives the plain transform's numbers.

* ``jopt.inject_hyperparams(factory)(**kwargs)``, wherever the case has float hyperparameters
  to inject (the state's ``hyperparams``, as optax decides), under jit; and eagerly for one
  step on every fourth case;
* ``jopt.MultiSteps(tx, every_k_schedule=1)`` (every mini-step is an update), under jit.

Cost (the CI budget for this file is ~30 s on 2 cores): one compile per case runs the three
transforms together for 2 steps on a 2-leaf tree. Two steps see the state move once (a
schedule reads count 1, MultiSteps starts a group after an emission); a third step takes the
second's path again at +50% compile time, and a third leaf costs +35%. The eager step
(~0.1 s a case) runs where the factory meets concrete arrays instead of tracers, in
inject_hyperparams and the shared validation rules rather than per transform: a fixed sample
of the registry covers it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt.testing import assert_trees_close, bumpy_loss
from tests._cases import CASES

STEPS = 2
EAGER_SAMPLE = CASES[::4]
# Injected hyperparameters are float32 arrays where the plain transform folds Python floats
# in double precision (1 - 0.999 differs by 1.3e-5 relative in float32): a few float32 ulps
# of the moments, not a different rule. A bfloat16 state meets a float32 hyperparameter and
# rounds once where the plain transform, with a weak Python float, rounds twice; the product
# is float32 too (scale_by_novograd's bf16 updates become float32), so those cases compare
# values in the plain transform's dtypes.
EXACT_TOL = {"rtol": 1e-6, "atol": 1e-7}
FLOAT32_TOL = {"rtol": 1e-4, "atol": 1e-6}
BFLOAT16_TOL = {"rtol": 2e-2, "atol": 1e-3}


def _params():
    """A matrix (masks, factored and orthogonalised updates) and a scalar in a nested tree."""
    w = np.random.default_rng(0).normal(size=(2, 3))
    return {"w": jnp.asarray(w, jnp.float32), "v": [jnp.asarray(0.7, jnp.float32)]}


def _float_hyperparams(injected) -> bool:
    """Whether injection put any floating hyperparameter into the state (as optax decides)."""
    if injected is None:
        return False
    state = jax.eval_shape(injected.init, _params())
    return any(jnp.issubdtype(x.dtype, jnp.floating) for x in jax.tree.leaves(state.hyperparams))


def _update(tx, params, state, value, grads, extra_args):
    kwargs = {"value": value, "grad": grads, "value_fn": bumpy_loss} if extra_args else {}
    return tx.update(grads, state, params, **kwargs)


def _run_together(txs, extra_args):
    """One compiled function: every transform of ``txs`` for ``STEPS`` steps on one trajectory.

    All see the gradients of the first transform's params (as ``jopt.testing.assert_matches``
    feeds both sides the same gradients), and each applies its own updates. Returns each
    transform's updates, a list over the steps. The steps are unrolled: XLA compiles a
    ``lax.cond`` (MultiSteps' emission) inside a loop ~2x slower than the copies.
    """

    @jax.jit
    def run(params):
        runs = [(params, tx.init(params)) for tx in txs]
        updates = [[] for _ in txs]
        for _ in range(STEPS):
            value, grads = jax.value_and_grad(bumpy_loss)(runs[0][0])
            for i, (tx, (p, s)) in enumerate(zip(txs, runs, strict=True)):
                u, s = _update(tx, p, s, value, grads, extra_args)
                runs[i] = (jopt.apply_updates(p, u), s)
                updates[i].append(u)
        return updates

    return run(_params())


def _as_plain(updates, plain, bf16: bool):
    """``updates`` in the plain run's dtypes where a case keeps bfloat16 state, else as is."""
    return jax.tree.map(lambda u, p: u.astype(p.dtype), updates, plain) if bf16 else updates


@pytest.mark.parametrize("case", CASES, ids=str)
def test_injected_and_multi_steps_equal_the_plain_transform(case):
    plain, injected = case.make(), case.make_injected()
    multi = jopt.MultiSteps(case.make(), every_k_schedule=1).gradient_transformation()
    inject = _float_hyperparams(injected)
    txs = [plain, multi, injected] if inject else [plain, multi]
    updates = _run_together(txs, case.extra_args)
    bf16 = any(value is jnp.bfloat16 for value in case.kwargs.values())
    # MultiSteps runs the same arithmetic inside a lax.cond, whose fusions round bfloat16
    # intermediates differently.
    assert_trees_close(updates[1], updates[0], **(BFLOAT16_TOL if bf16 else EXACT_TOL))
    if not inject:
        return
    tol = BFLOAT16_TOL if bf16 else FLOAT32_TOL
    assert_trees_close(_as_plain(updates[2], updates[0], bf16), updates[0], **tol)
    if case not in EAGER_SAMPLE:
        return
    # Eagerly the hyperparameters are concrete arrays: the factory's checks and any Python
    # use of them meet arrays, not tracers. One step against the compiled plain run's first.
    params = _params()
    value, grads = jax.value_and_grad(bumpy_loss)(params)
    eager, _ = _update(injected, params, injected.init(params), value, grads, case.extra_args)
    assert_trees_close(_as_plain(eager, updates[0][0], bf16), updates[0][0], **tol)
