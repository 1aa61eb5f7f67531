"""Validation messages and behaviour of the further optax-twinned blocks and optimizers
that the case registry does not check (paths, key handling, shapes, warnings)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt.testing import assert_trees_close
from tests._runs import flat_params, run

# (factory, keyword arguments, the argument the message must name)
BAD = [
    (jopt.scale_by_belief, {"b1": 1.0}, "b1"),
    (jopt.scale_by_belief, {"b2": -0.1}, "b2"),
    (jopt.scale_by_belief, {"eps": -1.0}, "eps"),
    (jopt.scale_by_belief, {"eps_root": -1.0}, "eps_root"),
    (jopt.scale_by_belief, {"nesterov": 1}, "nesterov"),
    (jopt.scale_by_yogi, {"b1": 1.5}, "b1"),
    (jopt.scale_by_yogi, {"b2": 1.0}, "b2"),
    (jopt.scale_by_yogi, {"eps": -1e-3}, "eps"),
    (jopt.scale_by_yogi, {"eps_root": float("nan")}, "eps_root"),
    (jopt.scale_by_yogi, {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
    (jopt.scale_by_adan, {"b1": 1.0}, "b1"),
    (jopt.scale_by_adan, {"b2": 2.0}, "b2"),
    (jopt.scale_by_adan, {"b3": -0.5}, "b3"),
    (jopt.scale_by_adan, {"eps": -1.0}, "eps"),
    (jopt.scale_by_adan, {"eps_root": -1.0}, "eps_root"),
    (jopt.scale_by_novograd, {"b1": 1.0}, "b1"),
    (jopt.scale_by_novograd, {"b2": 1.0}, "b2"),
    (jopt.scale_by_novograd, {"eps": -1.0}, "eps"),
    (jopt.scale_by_novograd, {"eps_root": -1.0}, "eps_root"),
    (jopt.scale_by_novograd, {"weight_decay": -0.1}, "weight_decay"),
    (jopt.scale_by_novograd, {"weight_decay": lambda c: 0.1}, "weight_decay"),
    (jopt.scale_by_novograd, {"mu_dtype": "float31"}, "mu_dtype"),
    (jopt.scale_by_factored_rms, {"factored": "yes"}, "factored"),
    (jopt.scale_by_factored_rms, {"decay_rate": -0.8}, "decay_rate"),
    (jopt.scale_by_factored_rms, {"step_offset": "3"}, "step_offset"),
    (jopt.scale_by_factored_rms, {"min_dim_size_to_factor": 2.5}, "min_dim_size_to_factor"),
    (jopt.scale_by_factored_rms, {"min_dim_size_to_factor": -1}, "min_dim_size_to_factor"),
    (jopt.scale_by_factored_rms, {"epsilon": -1e-30}, "epsilon"),
    (jopt.scale_by_factored_rms, {"decay_rate_fn": 0.8}, "decay_rate_fn"),
    (jopt.scale_by_sm3, {"b1": 1.0}, "b1"),
    (jopt.scale_by_sm3, {"b2": 1.5}, "b2"),
    (jopt.scale_by_sm3, {"eps": -1.0}, "eps"),
    (jopt.scale_by_trust_ratio, {"min_norm": -1.0}, "min_norm"),
    (jopt.scale_by_trust_ratio, {"trust_coefficient": -1.0}, "trust_coefficient"),
    (jopt.scale_by_trust_ratio, {"eps": -1.0}, "eps"),
    (jopt.scale_by_param_block_norm, {"min_scale": -1.0}, "min_scale"),
    (jopt.scale_by_param_block_rms, {"min_scale": float("inf")}, "min_scale"),
    (jopt.scale_by_polyak, {"f_min": None}, "f_min"),
    (jopt.scale_by_polyak, {"max_learning_rate": -1.0}, "max_learning_rate"),
    (jopt.scale_by_polyak, {"eps": -1.0}, "eps"),
    (jopt.scale_by_polyak, {"variant": "sps-"}, "variant"),
    (jopt.scale_by_rprop, {"learning_rate": 0.0}, "learning_rate"),
    (jopt.scale_by_rprop, {"learning_rate": lambda c: 0.1}, "learning_rate"),
    (jopt.scale_by_rprop, {"learning_rate": 0.1, "eta_minus": 1.5}, "eta_minus"),
    (jopt.scale_by_rprop, {"learning_rate": 0.1, "eta_plus": 0.9}, "eta_plus"),
    (jopt.scale_by_rprop, {"learning_rate": 0.1, "min_step_size": -1.0}, "min_step_size"),
    (jopt.scale_by_rprop, {"learning_rate": 0.1, "min_step_size": 1.0, "max_step_size": 0.5},
     "max_step_size"),
    (jopt.scale_by_optimistic_gradient, {"alpha": "1"}, "alpha"),
    (jopt.scale_by_optimistic_gradient, {"beta": lambda c: 1.0}, "beta"),
    (jopt.scale_by_distance_over_gradients, {"reps_rel": 0.0}, "reps_rel"),
    (jopt.scale_by_distance_over_gradients, {"eps": -1.0}, "eps"),
    (jopt.scale_by_distance_over_gradients, {"param_dtype": "f33"}, "param_dtype"),
    (jopt.scale_by_distance_over_gradients, {"global_scale": None}, "global_scale"),
    (jopt.add_noise, {"eta": -0.01, "gamma": 0.55}, "eta"),
    (jopt.add_noise, {"eta": 0.01, "gamma": -1.0}, "gamma"),
    (jopt.add_noise, {"eta": 0.01, "gamma": 0.55, "key": "seed"}, "key"),
    (jopt.add_noise, {"eta": 0.01, "gamma": 0.55, "key": 1.5}, "key"),
    (jopt.add_noise, {"eta": 0.01, "gamma": 0.55, "key": np.zeros((3, 2), np.uint32)}, "key"),
    (jopt.normalize_by_update_norm, {"scale_factor": "1"}, "scale_factor"),
    (jopt.normalize_by_update_norm, {"eps": -1.0}, "eps"),
    # optimizers: their own argument names, and the blocks' names passed through
    (jopt.adabelief, {"learning_rate": -1.0}, "learning_rate"),
    (jopt.adabelief, {"learning_rate": 0.1, "b1": 1.0}, "b1"),
    (jopt.adafactor, {"decay_offset": None}, "decay_offset"),
    (jopt.adafactor, {"eps": -1.0}, "eps"),
    (jopt.adafactor, {"clipping_threshold": 0.0}, "clipping_threshold"),
    (jopt.adafactor, {"momentum": 1.5}, "momentum"),
    (jopt.adafactor, {"dtype_momentum": "f7"}, "dtype_momentum"),
    (jopt.adafactor, {"weight_decay_rate": -0.1}, "weight_decay_rate"),
    (jopt.adafactor, {"multiply_by_parameter_scale": None}, "multiply_by_parameter_scale"),
    (jopt.adafactor, {"min_dim_size_to_factor": 1.5}, "min_dim_size_to_factor"),
    (jopt.adafactor, {"learning_rate": -0.1}, "learning_rate"),
    (jopt.adan, {"learning_rate": 0.1, "b3": 1.0}, "b3"),
    (jopt.adan, {"learning_rate": 0.1, "weight_decay": -1.0}, "weight_decay"),
    (jopt.fromage, {"learning_rate": -0.1}, "learning_rate"),
    (jopt.fromage, {"learning_rate": 0.1, "min_norm": -1.0}, "min_norm"),
    (jopt.lamb, {"learning_rate": 0.1, "b2": 1.0}, "b2"),
    (jopt.lamb, {"learning_rate": 0.1, "weight_decay": -0.1}, "weight_decay"),
    (jopt.lars, {"learning_rate": 0.1, "momentum": 1.5}, "momentum"),
    (jopt.lars, {"learning_rate": 0.1, "trust_coefficient": -1.0}, "trust_coefficient"),
    (jopt.lars, {"learning_rate": -0.1}, "learning_rate"),
    (jopt.noisy_sgd, {"learning_rate": 0.1, "eta": -1.0}, "eta"),
    (jopt.noisy_sgd, {"learning_rate": -0.1}, "learning_rate"),
    (jopt.novograd, {"learning_rate": 0.1, "b2": 1.0}, "b2"),
    (jopt.optimistic_gradient_descent, {"learning_rate": 0.1, "alpha": None}, "alpha"),
    (jopt.optimistic_adam_v2, {"learning_rate": 0.1, "beta": "x"}, "beta"),
    (jopt.optimistic_adam_v2, {"learning_rate": -0.1}, "learning_rate"),
    (jopt.polyak_sgd, {"scaling": -1.0}, "scaling"),
    (jopt.polyak_sgd, {"variant": "sgd"}, "variant"),
    (jopt.rprop, {"learning_rate": -0.1}, "learning_rate"),
    (jopt.sign_sgd, {"learning_rate": float("nan")}, "learning_rate"),
    (jopt.signum, {"learning_rate": 0.1, "beta": 1.5}, "beta"),
    (jopt.sm3, {"learning_rate": 0.1, "momentum": 1.0}, "momentum"),
    (jopt.sm3, {"learning_rate": -0.1}, "learning_rate"),
    (jopt.yogi, {"learning_rate": 0.1, "eps": -1.0}, "eps"),
    # counts: whole numbers in range; masks: pytrees of bools
    (jopt.scale_by_factored_rms, {"step_offset": 2.5}, "step_offset"),
    (jopt.scale_by_factored_rms, {"step_offset": -1}, "step_offset"),
    (jopt.scale_by_factored_rms, {"min_dim_size_to_factor": 0}, "min_dim_size_to_factor"),
    (jopt.adafactor, {"decay_offset": -10}, "decay_offset"),
    (jopt.adafactor, {"decay_offset": 0.5}, "decay_offset"),
    (jopt.adafactor, {"min_dim_size_to_factor": 0}, "min_dim_size_to_factor"),
    (jopt.adafactor, {"weight_decay_rate": 0.1, "weight_decay_mask": "all"}, "weight_decay_mask"),
    (jopt.adadelta, {"weight_decay_mask": 3}, "weight_decay_mask"),
    (jopt.lars, {"learning_rate": 0.1, "weight_decay_mask": "yes"}, "weight_decay_mask"),
    (jopt.lars, {"learning_rate": 0.1, "trust_ratio_mask": None}, "trust_ratio_mask"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("factory", "kwargs", "name"), BAD, ids=[f"{f.__name__}-{n}" for f, _, n in BAD]
)
def test_bad_hyperparameter_names_the_argument(factory, kwargs, name):
    with pytest.raises((ValueError, TypeError)) as info:
        factory(**kwargs)
    assert str(info.value).startswith(name), str(info.value)


def test_optimistic_adam_rejects_schedules_and_warns():
    with pytest.warns(DeprecationWarning, match="optimistic_adam_v2"):
        with pytest.raises(TypeError, match="^learning_rate"):
            jopt.optimistic_adam(lambda c: 0.1)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="^optimism"):
        jopt.optimistic_adam(0.1, optimism=float("inf"))


@pytest.mark.parametrize(
    "tx",
    [
        jopt.scale_by_trust_ratio(),
        jopt.scale_by_param_block_norm(),
        jopt.scale_by_param_block_rms(),
        jopt.scale_by_factored_rms(),
        jopt.scale_by_novograd(),
        jopt.scale_by_distance_over_gradients(),
        jopt.keep_params_nonnegative(),
        jopt.fromage(0.1),
    ],
    ids=lambda tx: "tx",
)
def test_blocks_that_read_params_say_so(tx):
    params = flat_params()
    with pytest.raises(ValueError, match="^params must be passed"):
        tx.update(params, tx.init(params))


def test_polyak_needs_the_loss_value():
    tx = jopt.scale_by_polyak()
    params = flat_params()
    with pytest.raises(TypeError, match="^value must be passed"):
        tx.update(params, tx.init(params), params)


def test_sm3_rejects_complex_params():
    with pytest.raises(ValueError, match="^params must be real"):
        jopt.scale_by_sm3().init({"z": jnp.ones(2, jnp.complex64)})


# --- adafactor: both paths, on tiny shapes by lowering min_dim_size_to_factor -------------


def _matrix_params():
    rng = np.random.default_rng(1)
    return {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
            "v": jnp.asarray(rng.normal(size=(4,)), jnp.float32)}  # fmt: skip


@pytest.mark.parametrize("min_dim", [2, 3, 4])
def test_factored_rms_factors_only_big_enough_matrices(min_dim):
    params = _matrix_params()
    state = jopt.scale_by_factored_rms(min_dim_size_to_factor=min_dim).init(params)
    factored = min_dim <= 3  # the second largest axis of (3, 4) is 3
    assert state.v_row["w"].shape == ((3,) if factored else (1,))
    assert state.v_col["w"].shape == ((4,) if factored else (1,))
    assert state.v["w"].shape == ((1,) if factored else (3, 4))
    assert state.v["v"].shape == (4,)  # vectors are never factored
    ours, _ = run(jopt.adafactor(0.1, min_dim_size_to_factor=min_dim), params, 5)
    theirs, _ = run(optax.adafactor(0.1, min_dim_size_to_factor=min_dim), params, 5)
    assert_trees_close(ours, theirs)


def test_factored_rms_matches_the_paper_formula_on_one_step():
    g = jnp.asarray(np.random.default_rng(2).normal(size=(3, 4)), jnp.float32)
    tx = jopt.scale_by_factored_rms(min_dim_size_to_factor=2, epsilon=0.0)
    u, _ = tx.update(g, tx.init(g), g)
    # step 0: decay 1 - 1**-0.8 = 0, so R = row means of g^2, C = column means of g^2.
    g2 = np.asarray(g, np.float64) ** 2
    r, c = g2.mean(axis=1), g2.mean(axis=0)
    expected = np.asarray(g) / np.sqrt(np.outer(r, c) / r.mean())
    np.testing.assert_allclose(np.asarray(u), expected, rtol=1e-5)


# --- SM3 on scalar leaves, DoG, zero_nans, keep_params_nonnegative ------------------------


def test_sm3_scalar_leaf_behaves_like_a_one_vector():
    tx = jopt.sm3(0.1)
    scalar, _ = run(tx, {"s": jnp.asarray(0.7)}, 5)
    vector, _ = run(tx, {"s": jnp.asarray([0.7])}, 5)
    assert scalar["s"].shape == ()
    np.testing.assert_allclose(scalar["s"], vector["s"][0], rtol=1e-6)


def test_distance_over_gradients_matches_optax_without_scalar_leaves():
    params = _matrix_params()
    kw = {"reps_rel": 1e-2, "global_scale": -1.0}
    ours, _ = run(jopt.scale_by_distance_over_gradients(**kw), params, 10, jit=True)
    theirs, _ = run(optax.scale_by_distance_over_gradients(**kw), params, 10, jit=True)
    assert_trees_close(ours, theirs)


def test_distance_over_gradients_keeps_scalar_shapes():
    params = {"s": jnp.asarray(1.0)}
    out, _ = run(jopt.scale_by_distance_over_gradients(global_scale=-1.0), params, 2)
    assert out["s"].shape == ()


def test_zero_nans_zeroes_and_records():
    tx = jopt.zero_nans()
    grads = {"a": jnp.array([1.0, jnp.nan]), "b": jnp.array([jnp.inf])}
    updates, state = tx.update(grads, tx.init(grads))
    np.testing.assert_array_equal(updates["a"], [1.0, 0.0])
    np.testing.assert_array_equal(updates["b"], [jnp.inf])
    assert bool(state.found_nan["a"]) and not bool(state.found_nan["b"])


def test_keep_params_nonnegative_stops_at_zero():
    tx = jopt.keep_params_nonnegative()
    params = jnp.array([1.0, 0.5, -0.2])
    updates, _ = tx.update(jnp.array([-2.0, 0.1, 0.1]), tx.init(params), params)
    np.testing.assert_allclose(jopt.apply_updates(params, updates), [0.0, 0.6, 0.0])


# --- add_noise / noisy_sgd key handling: the same key gives optax's noise ------------------


@pytest.mark.parametrize(
    "key", [0, 7, np.int32(3), jax.random.key(5), jax.random.PRNGKey(9)], ids=str
)
def test_add_noise_key_forms_match_optax(key):
    params = flat_params()
    optax_key = jax.random.wrap_key_data(key) if getattr(key, "shape", ()) == (2,) else key
    ours, state = run(jopt.noisy_sgd(0.1, eta=0.5, key=key), params, 3)
    theirs, _ = run(optax.noisy_sgd(0.1, eta=0.5, key=optax_key), params, 3)
    assert_trees_close(ours, theirs)
    noiseless, _ = run(jopt.sgd(0.1), params, 3)
    assert not np.allclose(ours["x"], noiseless["x"])  # the noise is really there


def test_add_noise_default_key_and_deprecated_seed():
    params = flat_params()
    default, _ = run(jopt.add_noise(0.5, 0.55), params, 2)
    with pytest.warns(DeprecationWarning, match="seed is deprecated"):
        seeded = jopt.add_noise(0.5, 0.55, seed=0)
    by_seed, _ = run(seeded, params, 2)
    assert_trees_close(by_seed, default, rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="only one of key and seed"):
            jopt.add_noise(0.5, 0.55, key=1, seed=1)


def test_rprop_skips_the_step_after_a_sign_change():
    tx = jopt.scale_by_rprop(0.1)
    state = tx.init(jnp.zeros(2))
    steps = []
    for g in ([1.0, -1.0], [1.0, 1.0], [1.0, 1.0]):
        u, state = tx.update(jnp.array(g), state)
        steps.append(np.asarray(u))
    # optax's convention: each update is the step decided on the previous call.
    np.testing.assert_allclose(steps, [[0.0, 0.0], [0.1, 0.0], [0.12, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(state.step_sizes, [0.144, 0.05], rtol=1e-6)


# --- edge inputs the smooth registry loss never produces, one update each -----------------

_EDGE = {
    "zero": jnp.zeros((2, 3)),
    "tiny": jnp.full((3,), 1e-5),
    "scalar": jnp.asarray(-0.3),
    "mixed": jnp.array([0.0, 2.0, -1.0]),
}
_EDGE_GRADS = {
    "zero": jnp.ones((2, 3)),
    "tiny": jnp.zeros((3,)),
    "scalar": jnp.asarray(0.5),
    "mixed": jnp.array([0.0, -3.0, 0.25]),
}


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("scale_by_trust_ratio", {}),
        ("scale_by_trust_ratio", {"min_norm": 1e-3, "eps": 1e-6}),
        ("scale_by_param_block_norm", {}),
        ("scale_by_param_block_rms", {}),
        ("centralize", {}),
        ("normalize_by_update_norm", {}),
        ("keep_params_nonnegative", {}),
        ("scale_by_polyak", {}),
    ],
    ids=str,
)
def test_blocks_match_optax_on_edge_inputs(name, kwargs):
    ours, theirs = getattr(jopt, name)(**kwargs), getattr(optax, name)(**kwargs)
    extra = {"value": jnp.asarray(2.0)} if name == "scale_by_polyak" else {}
    u_ours, _ = ours.update(_EDGE_GRADS, ours.init(_EDGE), _EDGE, **extra)
    u_theirs, _ = theirs.update(_EDGE_GRADS, theirs.init(_EDGE), _EDGE, **extra)
    assert_trees_close(u_ours, u_theirs, rtol=0, atol=0)


def test_polyak_step_is_zero_for_a_zero_gradient():
    tx = jopt.scale_by_polyak()
    zero = {"x": jnp.zeros(3)}
    updates, _ = tx.update(zero, tx.init(zero), zero, value=1.0)
    np.testing.assert_array_equal(updates["x"], np.zeros(3))


# --- every factory can be wrapped by inject_hyperparams (hyperparameters become arrays) ----


@pytest.mark.parametrize(
    ("factory", "kwargs", "static"),
    [
        (jopt.sm3, {"learning_rate": 0.05, "momentum": 0.5}, ()),
        (jopt.rprop, {"learning_rate": 0.05, "max_step_size": 1.0}, ()),
        (jopt.fromage, {"learning_rate": 0.05}, ()),
        (jopt.novograd, {"learning_rate": 0.05, "weight_decay": 0.1}, ()),
        (jopt.noisy_sgd, {"learning_rate": 0.05, "key": 1}, ()),
        (jopt.optimistic_adam_v2, {"learning_rate": 0.05, "alpha": 0.5}, ()),
        # shapes depend on min_dim_size_to_factor and jnp.float32 is callable: both static
        (jopt.adafactor, {"learning_rate": 0.05, "min_dim_size_to_factor": 2, "momentum": 0.5},
         ("min_dim_size_to_factor", "dtype_momentum")),
    ],
    ids=lambda v: getattr(v, "__name__", "") if callable(v) else "",
)  # fmt: skip
def test_wrappable_by_inject_hyperparams(factory, kwargs, static):
    params = _matrix_params()
    injected = jopt.inject_hyperparams(factory, static_args=static)(**kwargs)
    ours, _ = run(injected, params, 3, jit=True)
    plain, _ = run(factory(**kwargs), params, 3, jit=True)
    assert_trees_close(ours, plain)
