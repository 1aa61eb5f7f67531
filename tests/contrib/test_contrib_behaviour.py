"""Behaviour of jopt.contrib that the registry's parity runs do not reach."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib

import jopt
from jopt import contrib
from jopt.testing import assert_trees_close, nested_params
from jopt.testing import bumpy_loss as loss
from tests._runs import run


def test_schedule_free_eval_params_match_optax():
    params = nested_params()
    ours_params, ours_state = run(contrib.schedule_free_adamw(0.05, warmup_steps=3), params, 6)
    theirs_params, theirs_state = run(
        optax.contrib.schedule_free_adamw(0.05, warmup_steps=3), params, 6
    )
    assert_trees_close(
        contrib.schedule_free_eval_params(ours_state, ours_params),
        optax.contrib.schedule_free_eval_params(theirs_state, theirs_params),
    )


def test_schedule_free_eval_params_is_the_average_iterate():
    # x = (y - (1 - b1) z) / b1, by hand on one leaf.
    params = {"w": jnp.array([1.0, -2.0])}
    tx = contrib.schedule_free_sgd(0.1, b1=0.8)
    y, state = run(tx, params, 3)
    expected = (np.asarray(y["w"]) - 0.2 * np.asarray(state.z["w"])) / 0.8
    np.testing.assert_allclose(contrib.schedule_free_eval_params(state, y)["w"], expected, 1e-6)


def _sam(lib, contrib_lib, rho, lr, **kw):
    adv = lib.chain(contrib_lib.normalize(), lib.sgd(rho))
    return contrib_lib.sam(lib.sgd(lr), adv, **kw)


def test_sam_transparent_steps_ascend_then_descend_from_the_cache():
    rho, lr = 0.1, 0.05
    x0 = {"w": jnp.array([0.3, -1.2, 0.7])}
    tx = _sam(jopt, contrib, rho, lr)
    state = tx.init(x0)
    grad = jax.grad(loss)

    # Inner step: x1 = x0 + rho g0 / |g0| (ascent on the normalised gradient).
    g0 = np.asarray(grad(x0)["w"])
    updates, state = tx.update(grad(x0), state, x0)
    x1 = jopt.apply_updates(x0, updates)
    np.testing.assert_allclose(x1["w"], np.asarray(x0["w"]) + rho * g0 / np.linalg.norm(g0), 1e-6)
    assert int(state.steps_since_sync) == 1

    # Outer step: back to the cached x0, minus lr times the gradient at the adversarial x1.
    g1 = np.asarray(grad(x1)["w"])
    updates, state = tx.update(grad(x1), state, x1)
    x2 = jopt.apply_updates(x1, updates)
    np.testing.assert_allclose(x2["w"], np.asarray(x0["w"]) - lr * g1, rtol=1e-6, atol=1e-7)
    assert int(state.steps_since_sync) == 0


def test_sam_opaque_mode_matches_optax():
    params = nested_params()
    grad_fn = jax.grad(lambda p, i: loss(p))

    def train(tx):
        p, state = params, tx.init(params)
        step = jax.jit(lambda p, s: tx.update(grad_fn(p, 0), s, p, grad_fn=grad_fn))
        for _ in range(4):
            updates, state = step(p, state)
            p = jopt.apply_updates(p, updates)
        return p

    ours = train(_sam(jopt, contrib, 0.05, 0.05, opaque_mode=True, sync_period=3))
    theirs = train(_sam(optax, optax.contrib, 0.05, 0.05, opaque_mode=True, sync_period=3))
    assert_trees_close(ours, theirs)


def test_ademamix_keeps_bfloat16_moments():
    params = nested_params()
    _, state = run(contrib.scale_by_ademamix(mu_dtype=jnp.bfloat16), params, 2)
    for leaf in jax.tree.leaves((state.m1, state.m2, state.nu)):
        assert leaf.dtype == jnp.bfloat16


def test_sophia_with_hutchinson_matches_optax():
    params = nested_params()

    def train(tx):
        p, state = params, tx.init(params)
        step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p, obj_fn=loss))
        for _ in range(4):
            updates, state = step(p, state)
            p = jopt.apply_updates(p, updates)
        return p

    ours = train(contrib.sophia(0.05, update_interval=2))
    theirs = train(optax.contrib.sophia(0.05, update_interval=2))
    assert_trees_close(ours, theirs)


def test_dpsgd_matches_optax_on_per_example_gradients():
    batch = {"w": jnp.arange(12.0).reshape(4, 3) / 5, "b": jnp.linspace(-1, 1, 4)[:, None]}
    ours = contrib.dpsgd(0.1, l2_norm_clip=1.0, noise_multiplier=0.5, seed=3, momentum=0.9)
    theirs = optax.chain(
        optax.contrib.differentially_private_aggregate(1.0, 0.5, key=jax.random.key(3)),
        optax.trace(decay=0.9),
        optax.scale_by_learning_rate(0.1),
    )
    params = {"w": jnp.zeros(3), "b": jnp.zeros(1)}
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for _ in range(2):
        u_ours, s_ours = ours.update(batch, s_ours, params)
        u_theirs, s_theirs = theirs.update(batch, s_theirs, params)
        assert_trees_close(u_ours, u_theirs)


def test_split_real_and_imaginary_matches_optax_on_complex_params():
    params = {"z": jnp.array([1.0 + 2.0j, -0.5 + 0.1j]), "x": jnp.array([0.3])}
    grads = {"z": jnp.array([0.2 - 1.0j, 0.7 + 0.3j]), "x": jnp.array([-0.4])}
    ours = contrib.split_real_and_imaginary(jopt.adam(0.1))
    theirs = optax.contrib.split_real_and_imaginary(optax.adam(0.1))
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for _ in range(3):
        u_ours, s_ours = ours.update(grads, s_ours, params)
        u_theirs, s_theirs = theirs.update(grads, s_theirs, params)
    assert u_ours["z"].dtype == jnp.complex64
    np.testing.assert_allclose(u_ours["z"], u_theirs["z"], rtol=1e-6)
    np.testing.assert_allclose(u_ours["x"], u_theirs["x"], rtol=1e-6)


def test_muon_with_dimension_numbers_on_a_tensor_matches_optax():
    # A (batch, in, out) tensor gets Muon per batch entry; the vector gets AdamW.
    rng = np.random.default_rng(1)
    params = {"conv": jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32), "b": jnp.ones(3)}

    def dims(lib):
        return {"conv": lib.MuonDimensionNumbers(reduction_axis=1, output_axis=2), "b": None}

    ours, _ = run(contrib.muon(0.05, muon_weight_dimension_numbers=dims(contrib)), params, 4, True)
    theirs, _ = run(
        optax.contrib.muon(0.05, muon_weight_dimension_numbers=dims(optax.contrib)), params, 4, True
    )
    assert_trees_close(ours, theirs)


# Numeric hyperparameters that inject_hyperparams turns into traced state entries.
INJECTABLE = [
    (contrib.acprop, {"learning_rate": 0.1, "b1": 0.9, "b2": 0.99, "weight_decay": 0.1}),
    (contrib.ademamix, {"learning_rate": 0.1, "b3": 0.99, "alpha": 2.0}),
    (contrib.adopt, {"learning_rate": 0.1, "b1": 0.9, "b2": 0.99}),
    (contrib.cocob, {"learning_rate": 1.0, "alpha": 50.0}),
    (contrib.dadapt_adamw, {"learning_rate": 1.0, "estim_lr0": 1e-3}),
    (contrib.dog, {"learning_rate": 1.0, "eps": 1e-6}),
    (contrib.dowg, {"learning_rate": 1.0, "eps": 1e-3}),
    # rank and update_proj_gap set shapes and periods: they must stay static.
    (contrib.galore, {"learning_rate": 0.1, "scale": 0.5}, ("rank", "update_proj_gap")),
    (contrib.madgrad, {"learning_rate": 0.1, "momentum": 0.8}),
    (contrib.momo, {"learning_rate": 0.1, "beta": 0.8, "weight_decay": 0.1}),
    (contrib.momo_adam, {"learning_rate": 0.1, "b1": 0.8, "lower_bound": -1.0}),
    (contrib.muon, {"learning_rate": 0.1, "beta": 0.9, "weight_decay": 0.1}),
    (contrib.prodigy, {"learning_rate": 1.0, "estim_lr_coef": 2.0}),
    (contrib.schedule_free_adamw, {"learning_rate": 0.1, "b1": 0.9, "b2": 0.99}),
    (contrib.schedule_free_sgd, {"learning_rate": 0.1, "b1": 0.9}),
    (contrib.simplified_ademamix, {"learning_rate": 0.1, "alpha": 1.0}),
    (contrib.sophia, {"learning_rate": 0.1, "gamma": 0.02}),
]


def test_factories_trace_under_inject_hyperparams():
    # Tracing is enough: any Python branch on a traced hyperparameter fails here.
    params = nested_params()
    grads = jax.grad(loss)(params)
    extra = {"value": loss(params), "obj_fn": loss}
    for factory, kwargs, *static in INJECTABLE:
        tx = jopt.inject_hyperparams(factory, static_args=static[0] if static else ())(**kwargs)
        state = jax.eval_shape(tx.init, params)
        update = functools.partial(tx.update, grads, params=params, **extra)
        updates, _ = jax.eval_shape(update, state)
        assert jax.tree.structure(updates) == jax.tree.structure(params), factory.__name__


def test_newton_schulz_matches_optax_for_every_preconditioning():
    from optax.contrib import _muon as optax_muon  # noqa: PLC0415 - the private reference

    from jopt.contrib._newton_schulz import orthogonalize_via_newton_schulz  # noqa: PLC0415

    x = jnp.asarray(np.random.default_rng(2).normal(size=(5, 3)), jnp.float32)
    coeffs = jnp.asarray((3.4445, -4.7750, 2.0315))
    for preconditioning in ("frobenius", "spectral", "aol", "schatten"):
        ours = orthogonalize_via_newton_schulz(x, coeffs, 5, preconditioning)
        theirs = optax_muon.orthogonalize_via_newton_schulz(x, coeffs, 5, preconditioning)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=preconditioning)
