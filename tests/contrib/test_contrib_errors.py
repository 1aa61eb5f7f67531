"""Every hyperparameter of jopt.contrib is validated at construction; the message names it."""

import jax
import jax.numpy as jnp
import pytest

import jopt
from jopt import contrib
from tests._runs import flat_params

_SGD = jopt.sgd(0.1)
NAN = float("nan")

# (factory, kwargs, the argument the message must name, exception type)
BAD = [
    (contrib.acprop, {"learning_rate": -1.0}, "learning_rate", ValueError),
    (contrib.acprop, {"learning_rate": 0.1, "b1": 1.0}, "b1", ValueError),
    (contrib.acprop, {"learning_rate": 0.1, "b2": -0.1}, "b2", ValueError),
    (contrib.acprop, {"learning_rate": 0.1, "eps": -1.0}, "eps", ValueError),
    (contrib.acprop, {"learning_rate": 0.1, "eps_root": -1.0}, "eps_root", ValueError),
    (contrib.ademamix, {"learning_rate": 0.1, "b3": 1.5}, "b3", ValueError),
    (contrib.ademamix, {"learning_rate": 0.1, "alpha": -1.0}, "alpha", ValueError),
    (contrib.ademamix, {"learning_rate": 0.1, "mu_dtype": "nope"}, "mu_dtype", TypeError),
    (contrib.simplified_ademamix, {"learning_rate": 0.1, "b1": 1.0}, "b1", ValueError),
    (contrib.simplified_ademamix, {"learning_rate": 0.1, "eps_root": -1.0}, "eps_root",
     ValueError),
    (contrib.adopt, {"learning_rate": 0.1, "b2": 1.0}, "b2", ValueError),
    (contrib.adopt, {"learning_rate": 0.1, "nesterov": 1}, "nesterov", TypeError),
    (contrib.adopt, {"learning_rate": 0.1, "use_clipping": None}, "use_clipping", TypeError),
    (contrib.adopt, {"learning_rate": 0.1, "clip_value_fn": 0.25}, "clip_value_fn", TypeError),
    (contrib.cocob, {"alpha": 0.0}, "alpha", ValueError),
    (contrib.cocob, {"eps": 0.0}, "eps", ValueError),
    (contrib.cocob, {"learning_rate": -1.0}, "learning_rate", ValueError),
    (contrib.dadapt_adamw, {"betas": (0.9, 1.0)}, "betas[1]", ValueError),
    (contrib.dadapt_adamw, {"betas": 0.9}, "betas", TypeError),
    (contrib.dadapt_adamw, {"estim_lr0": 0.0}, "estim_lr0", ValueError),
    (contrib.dadapt_adamw, {"weight_decay": -0.1}, "weight_decay", ValueError),
    (contrib.dog, {"init_step": ("guess", 1e-6)}, "init_step[0]", ValueError),
    (contrib.dog, {"init_step": ("distance", 0.0)}, "init_step[1]", ValueError),
    (contrib.dog, {"init_step": 1e-6}, "init_step", TypeError),
    (contrib.dog, {"weight_decay": -1.0}, "weight_decay", ValueError),
    (contrib.dog, {"eps": -1.0}, "eps", ValueError),
    (contrib.dowg, {"init_estim_sq_dist": 0.0}, "init_estim_sq_dist", ValueError),
    (contrib.dowg, {"eps": 0.0}, "eps", ValueError),
    (contrib.madgrad, {"learning_rate": 0.1, "momentum": 1.0}, "momentum", ValueError),
    (contrib.madgrad, {"learning_rate": 0.1, "weight_decay": -1.0}, "weight_decay", ValueError),
    (contrib.mechanize, {"base_optimizer": jopt.sgd}, "base_optimizer", TypeError),
    (contrib.mechanize, {"base_optimizer": _SGD, "s_init": 0.0}, "s_init", ValueError),
    (contrib.mechanize, {"base_optimizer": _SGD, "num_betas": 0}, "num_betas", ValueError),
    (contrib.mechanize, {"base_optimizer": _SGD, "num_betas": 2.0}, "num_betas", TypeError),
    (contrib.momo, {"beta": 1.0}, "beta", ValueError),
    (contrib.momo, {"lower_bound": float("nan")}, "lower_bound", ValueError),
    (contrib.momo, {"adapt_lower_bound": "yes"}, "adapt_lower_bound", TypeError),
    (contrib.momo_adam, {"b2": 1.0}, "b2", ValueError),
    (contrib.momo_adam, {"eps": -1.0}, "eps", ValueError),
    (contrib.muon, {"learning_rate": 0.1, "ns_coeffs": "fast"}, "ns_coeffs", ValueError),
    (contrib.muon, {"learning_rate": 0.1, "ns_coeffs": (1.0, 2.0)}, "ns_coeffs", ValueError),
    (contrib.muon, {"learning_rate": 0.1, "ns_coeffs": "dion", "ns_steps": 3}, "ns_steps",
     ValueError),
    (contrib.muon, {"learning_rate": 0.1, "beta": 1.0}, "beta", ValueError),
    (contrib.muon, {"learning_rate": 0.1, "preconditioning": "qr"}, "preconditioning",
     ValueError),
    (contrib.muon, {"learning_rate": 0.1, "adam_b2": 1.0}, "adam_b2", ValueError),
    (contrib.muon, {"learning_rate": 0.1, "adam_learning_rate": -1.0}, "adam_learning_rate",
     ValueError),
    (contrib.muon, {"learning_rate": 0.1, "consistent_rms": -0.2}, "consistent_rms", ValueError),
    (contrib.prodigy, {"beta3": 1.0}, "beta3", ValueError),
    (contrib.prodigy, {"estim_lr_coef": 0.0}, "estim_lr_coef", ValueError),
    (contrib.prodigy, {"safeguard_warmup": 1}, "safeguard_warmup", TypeError),
    (contrib.sam, {"optimizer": _SGD, "adv_optimizer": None}, "adv_optimizer", TypeError),
    (contrib.sam, {"optimizer": _SGD, "adv_optimizer": _SGD, "sync_period": 0}, "sync_period",
     ValueError),
    (contrib.sam, {"optimizer": _SGD, "adv_optimizer": _SGD, "batch_axis_name": 0},
     "batch_axis_name", TypeError),
    (contrib.schedule_free, {"base_optimizer": _SGD, "learning_rate": 0.1, "b1": 0.0}, "b1",
     ValueError),
    (contrib.schedule_free, {"base_optimizer": _SGD, "learning_rate": 0.1,
                             "weight_lr_power": -1.0}, "weight_lr_power", ValueError),
    (contrib.schedule_free, {"base_optimizer": _SGD, "learning_rate": 0.1, "state_dtype": 3},
     "state_dtype", TypeError),
    (contrib.schedule_free_sgd, {"warmup_steps": 0}, "warmup_steps", ValueError),
    (contrib.schedule_free_sgd, {"learning_rate": lambda t: 0.1, "warmup_steps": 5},
     "learning_rate", TypeError),
    (contrib.schedule_free_adamw, {"b2": 1.0}, "b2", ValueError),
    (contrib.sophia, {"learning_rate": 0.1, "b1": 1.0}, "b1", ValueError),
    (contrib.sophia, {"learning_rate": 0.1, "gamma": -1.0}, "gamma", ValueError),
    (contrib.sophia, {"learning_rate": 0.1, "clip_threshold": 0.0}, "clip_threshold",
     ValueError),
    (contrib.sophia, {"learning_rate": 0.1, "update_interval": 0}, "update_interval",
     ValueError),
    (contrib.sophia, {"learning_rate": 0.1, "hessian_diagonal_fn": "hutchinson"},
     "hessian_diagonal_fn", TypeError),
    (contrib.sophia, {"learning_rate": 0.1, "verbose": True}, "print_win_rate_every_n_steps",
     ValueError),
    (contrib.galore, {"learning_rate": 0.1, "rank": 0}, "rank", ValueError),
    (contrib.galore, {"learning_rate": 0.1, "rank": 1.5}, "rank", TypeError),
    (contrib.galore, {"learning_rate": 0.1, "update_proj_gap": 0}, "update_proj_gap",
     ValueError),
    (contrib.galore, {"learning_rate": 0.1, "base_optimizer": jopt.adam}, "base_optimizer",
     TypeError),
    (contrib.dpsgd, {"learning_rate": 0.1, "l2_norm_clip": -1.0, "noise_multiplier": 1.0,
                     "seed": 0}, "l2_norm_clip", ValueError),
    (contrib.dpsgd, {"learning_rate": 0.1, "l2_norm_clip": 1.0, "noise_multiplier": -1.0,
                     "seed": 0}, "noise_multiplier", ValueError),
    (contrib.dpsgd, {"learning_rate": 0.1, "l2_norm_clip": 1.0, "noise_multiplier": 1.0,
                     "seed": 0, "momentum": 1.5}, "momentum", ValueError),
    (contrib.differentially_private_aggregate, {"l2_norm_clip": 1.0, "noise_multiplier": 1.0,
                                                "key": 1, "seed": 2}, "seed", ValueError),
    (contrib.split_real_and_imaginary, {"inner": 3}, "inner", TypeError),
    (contrib.muon, {"learning_rate": 0.1, "ns_steps": 2.5}, "ns_steps", ValueError),
    (contrib.scale_by_muon, {"ns_coeffs": ("a", "b", "c")}, "ns_coeffs", TypeError),
    (contrib.scale_by_muon, {"ns_coeffs": (NAN, 1.0, 1.0)}, "ns_coeffs", ValueError),
    (contrib.scale_by_muon, {"weight_dimension_numbers": 3}, "weight_dimension_numbers",
     TypeError),
    (contrib.muon, {"learning_rate": 0.1, "muon_weight_dimension_numbers": {"w": (0, 1)}},
     "muon_weight_dimension_numbers", TypeError),
    (contrib.muon, {"learning_rate": 0.1, "weight_decay_mask": "x"}, "weight_decay_mask",
     TypeError),
    (contrib.galore, {"learning_rate": 0.1, "weight_dimension_numbers": "rows"},
     "weight_dimension_numbers", TypeError),
    (contrib.sophia, {"learning_rate": 0.1, "weight_decay_mask": 1}, "weight_decay_mask",
     TypeError),
    (contrib.sophia, {"learning_rate": 0.1, "print_win_rate_every_n_steps": -1},
     "print_win_rate_every_n_steps", ValueError),
    (contrib.scale_by_sophia, {"print_win_rate_every_n_steps": 2.5},
     "print_win_rate_every_n_steps", TypeError),
    (contrib.differentially_private_aggregate, {"l2_norm_clip": 0.0, "noise_multiplier": 1.0},
     "l2_norm_clip", ValueError),
    (contrib.differentially_private_aggregate, {"l2_norm_clip": 1.0, "noise_multiplier": 1.0,
                                                "key": "k"}, "key", TypeError),
    (contrib.dpsgd, {"learning_rate": 0.1, "l2_norm_clip": 0.0, "noise_multiplier": 1.0,
                     "seed": 0}, "l2_norm_clip", ValueError),
    (contrib.dpsgd, {"learning_rate": 0.1, "l2_norm_clip": 1.0, "noise_multiplier": 1.0,
                     "seed": "3"}, "seed", TypeError),
    (contrib.hutchinson_estimator_diag_hessian, {"random_seed": 0}, "random_seed", TypeError),
]  # fmt: skip


@pytest.mark.parametrize(
    "factory, kwargs, name, error", BAD, ids=[f"{f.__name__}-{n}" for f, _, n, _ in BAD]
)
def test_bad_hyperparameter_is_named(factory, kwargs, name, error):
    with pytest.raises(error) as info:
        factory(**kwargs)
    assert str(info.value).startswith(name + " "), str(info.value)


def test_valid_edge_values_are_accepted():
    # Values optax handles meaningfully must not be rejected.
    contrib.adopt(0.1, b1=0.0)
    contrib.ademamix(0.0, alpha=0.0, b3=lambda t: 0.99)
    contrib.schedule_free_sgd(b1=1.0, weight_decay=0.0, weight_lr_power=0.0)
    contrib.dowg(init_estim_sq_dist=1.0, eps=0.0)
    contrib.muon(jnp.asarray(0.1), ns_coeffs="standard", ns_steps=0)
    contrib.dpsgd(0.1, 1.0, 0.0, seed=jax.random.PRNGKey(0))  # a legacy raw key
    contrib.hutchinson_estimator_diag_hessian(jax.random.key(1))
    contrib.scale_by_muon(weight_dimension_numbers={"w": contrib.MuonDimensionNumbers(), "b": None})


@pytest.mark.parametrize(
    "tx", [contrib.prodigy(), contrib.dadapt_adamw(), contrib.scale_by_cocob(),
           contrib.scale_by_dog(("heuristic", 1e-6)), contrib.scale_by_madgrad(0.1),
           contrib.momo()],
    ids=["prodigy", "dadapt_adamw", "cocob", "dog", "madgrad", "momo"],
)  # fmt: skip
def test_update_without_params_names_params(tx):
    params = flat_params()
    with pytest.raises(ValueError, match="^params must be passed"):
        jopt.with_extra_args_support(tx).update(params, tx.init(params), None, value=jnp.zeros([]))


@pytest.mark.parametrize("factory", [contrib.momo, contrib.momo_adam])
def test_momo_without_value_names_value(factory):
    tx = factory()
    params = flat_params()
    with pytest.raises(TypeError, match="^value must be passed"):
        tx.update(params, tx.init(params), params)


def test_opaque_sam_without_grad_fn_names_grad_fn():
    tx = contrib.sam(_SGD, _SGD, opaque_mode=True)
    params = flat_params()
    with pytest.raises(ValueError, match="^grad_fn must be passed"):
        tx.update(params, tx.init(params), params)


def test_schedule_free_eval_params_rejects_other_states():
    tx = jopt.sgd(0.1)
    params = flat_params()
    with pytest.raises(ValueError, match="^state must be a ScheduleFreeState"):
        contrib.schedule_free_eval_params(tx.init(params), params)


def test_hutchinson_without_obj_fn_names_obj_fn():
    tx = contrib.hutchinson_estimator_diag_hessian()
    params = flat_params()
    with pytest.raises(ValueError, match="^obj_fn must be passed"):
        tx.update(params, tx.init(params), params)
