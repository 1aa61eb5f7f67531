"""Every validation of the core blocks and classic optimizers: the message names the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt

NAN = float("nan")

# (factory call, expected exception, text the message must contain)
BAD = [
    # learning rates: negative, NaN, wrong type
    (lambda: jopt.sgd(-0.1), ValueError, "learning_rate must be >= 0"),
    (lambda: jopt.adam(NAN), ValueError, "learning_rate must be a finite number"),
    (lambda: jopt.adamw(-1.0), ValueError, "learning_rate"),
    (lambda: jopt.nadam(-1.0), ValueError, "learning_rate"),
    (lambda: jopt.nadamw(-1.0), ValueError, "learning_rate"),
    (lambda: jopt.amsgrad(-1.0), ValueError, "learning_rate"),
    (lambda: jopt.adamax(-1.0), ValueError, "learning_rate"),
    (lambda: jopt.adamaxw(-1.0), ValueError, "learning_rate"),
    (lambda: jopt.radam(-1.0), ValueError, "learning_rate"),
    (lambda: jopt.rmsprop(-1.0), ValueError, "learning_rate"),
    (lambda: jopt.adagrad(-1.0), ValueError, "learning_rate"),
    (lambda: jopt.adadelta(-1.0), ValueError, "learning_rate"),
    (lambda: jopt.lion(-1.0), ValueError, "learning_rate"),
    (lambda: jopt.sgd("0.1"), TypeError, "learning_rate must be a number"),
    (lambda: jopt.scale_by_learning_rate(-0.1), ValueError, "learning_rate must be >= 0"),
    (lambda: jopt.scale_by_learning_rate(0.1, flip_sign=1), TypeError, "flip_sign"),
    (lambda: jopt.scale(NAN), ValueError, "step_size must be a finite number"),
    (lambda: jopt.scale_by_schedule(0.1), TypeError, "step_size_fn must be a callable"),
    # decay rates outside [0, 1)
    (lambda: jopt.scale_by_adam(b1=1.0), ValueError, "b1 must be in [0, 1), got 1.0"),
    (lambda: jopt.scale_by_adam(b2=-0.1), ValueError, "b2 must be in [0, 1)"),
    (lambda: jopt.scale_by_adam(b1=NAN), ValueError, "b1 must be a finite number"),
    (lambda: jopt.adam(0.1, b1=1.5), ValueError, "b1 must be in [0, 1), got 1.5"),
    (lambda: jopt.adamw(0.1, b2=1.0), ValueError, "b2 must be in [0, 1)"),
    (lambda: jopt.scale_by_amsgrad(b1=2.0), ValueError, "b1"),
    (lambda: jopt.scale_by_adamax(b2=1.0), ValueError, "b2"),
    (lambda: jopt.scale_by_radam(b2=1.0), ValueError, "b2"),
    (lambda: jopt.scale_by_lion(b1=1.5), ValueError, "b1 must be in [0, 1]"),
    (lambda: jopt.scale_by_lion(b2=-1.0), ValueError, "b2"),
    (lambda: jopt.trace(decay=1.5), ValueError, "decay must be in [0, 1]"),
    (lambda: jopt.ema(decay=-0.5), ValueError, "decay must be in [0, 1)"),
    (lambda: jopt.scale_by_rms(1.0, bias_correction=True), ValueError, "decay must be in [0, 1)"),
    (lambda: jopt.scale_by_stddev(decay=1.2), ValueError, "decay"),
    (lambda: jopt.scale_by_adadelta(rho=1.5), ValueError, "rho must be in [0, 1)"),
    (lambda: jopt.rmsprop(0.1, decay=1.5), ValueError, "decay"),
    (lambda: jopt.adadelta(rho=1.5), ValueError, "rho"),
    # momentum outside [0, 1)
    (lambda: jopt.sgd(0.1, momentum=1.5), ValueError, "momentum must be in [0, 1]"),
    (lambda: jopt.sgd(0.1, momentum=-0.1), ValueError, "momentum must be in [0, 1]"),
    (lambda: jopt.rmsprop(0.1, momentum=1.5), ValueError, "momentum must be in [0, 1]"),
    # eps, eps_root, initial values
    (lambda: jopt.scale_by_adam(eps=-1e-8), ValueError, "eps must be >= 0"),
    (lambda: jopt.scale_by_adam(eps_root=-1.0), ValueError, "eps_root must be >= 0"),
    (lambda: jopt.adam(0.1, eps=-1.0), ValueError, "eps must be >= 0"),
    (lambda: jopt.scale_by_rms(eps=-1.0), ValueError, "eps must be >= 0"),
    (lambda: jopt.scale_by_rms(initial_scale=-1.0), ValueError, "initial_scale must be >= 0"),
    (
        lambda: jopt.scale_by_rss(initial_accumulator_value=-1.0),
        ValueError,
        "initial_accumulator_value must be >= 0",
    ),
    (lambda: jopt.adagrad(0.1, eps=-1.0), ValueError, "eps must be >= 0"),
    (lambda: jopt.scale_by_adadelta(eps=-1.0), ValueError, "eps must be >= 0"),
    (lambda: jopt.scale_by_radam(threshold=NAN), ValueError, "threshold"),
    (lambda: jopt.radam(0.1, threshold=-1.0), ValueError, "threshold"),
    (lambda: jopt.scale_by_lion(mode="soft"), ValueError, "mode must be one of"),
    (lambda: jopt.scale_by_lion(mode="smooth", smooth_beta=0.0), ValueError, "smooth_beta"),
    # booleans
    (lambda: jopt.trace(0.9, nesterov="yes"), TypeError, "nesterov"),
    (lambda: jopt.sgd(0.1, 0.9, nesterov=None), TypeError, "nesterov"),
    (lambda: jopt.ema(0.9, debias=0), TypeError, "debias"),
    (lambda: jopt.scale_by_rms(eps_in_sqrt=None), TypeError, "eps_in_sqrt"),
    (lambda: jopt.scale_by_stddev(bias_correction="no"), TypeError, "bias_correction"),
    (lambda: jopt.rmsprop(0.1, centered=1), TypeError, "centered"),
    (lambda: jopt.scale_by_amsgrad(bias_correction_mu=None), TypeError, "bias_correction_mu"),
    # clipping thresholds
    (lambda: jopt.clip(0.0), ValueError, "max_delta must be > 0"),
    (lambda: jopt.clip(-1.0), ValueError, "max_delta must be > 0"),
    (lambda: jopt.clip_by_global_norm(0.0), ValueError, "max_norm must be > 0"),
    (lambda: jopt.clip_by_global_norm(NAN), ValueError, "max_norm must be a finite number"),
    (lambda: jopt.clip_by_block_rms(-1.0), ValueError, "threshold must be > 0"),
    (lambda: jopt.adaptive_grad_clip(0.0), ValueError, "clipping must be > 0"),
    (lambda: jopt.adaptive_grad_clip(0.1, eps=-1.0), ValueError, "eps must be >= 0"),
    (
        lambda: jopt.per_example_global_norm_clip([jnp.ones((2, 3))], -1.0),
        ValueError,
        "l2_norm_clip must be >= 0",
    ),
    (
        lambda: jopt.per_example_layer_norm_clip([jnp.ones((2, 3))], -1.0),
        ValueError,
        "global_l2_norm_clip must be >= 0",
    ),
    (
        lambda: jopt.per_example_global_norm_clip([jnp.ones(2), jnp.ones((3, 1))], 1.0),
        ValueError,
        "batch dimension",
    ),
    (
        lambda: jopt.unitwise_clip(jnp.ones(2), jnp.ones(3), jnp.ones(2)),
        ValueError,
        "unitwise_clip needs g_norm, max_norm and grad of one shape",
    ),
    (lambda: jopt.unitwise_norm(jnp.ones((2,) * 6)), ValueError, "pass axis="),
    # weight decay and proximal strengths
    (lambda: jopt.add_decayed_weights(-1e-4), ValueError, "weight_decay must be >= 0"),
    (lambda: jopt.adamw(0.1, weight_decay=-0.1), ValueError, "weight_decay must be >= 0"),
    (lambda: jopt.lion(0.1, weight_decay=NAN), ValueError, "weight_decay"),
    (lambda: jopt.add_l1_proximal(-1.0, 0.1), ValueError, "l1_strength must be >= 0"),
    (lambda: jopt.add_l1_proximal(1.0, -0.1), ValueError, "learning_rate must be >= 0"),
    (lambda: jopt.add_elastic_net_proximal(0.1, -1.0, 0.1), ValueError, "l2_strength must be >= 0"),
    # dtypes
    (lambda: jopt.scale_by_adam(mu_dtype="float33"), TypeError, "mu_dtype must be a dtype"),
    (lambda: jopt.scale_by_adam(nu_dtype=object()), TypeError, "nu_dtype must be a dtype"),
    (lambda: jopt.adam(0.1, nu_dtype="nope"), TypeError, "nu_dtype"),
    (lambda: jopt.trace(0.9, accumulator_dtype="nope"), TypeError, "accumulator_dtype"),
    (lambda: jopt.sgd(0.1, 0.9, accumulator_dtype="nope"), TypeError, "accumulator_dtype"),
    (lambda: jopt.ema(0.9, accumulator_dtype="nope"), TypeError, "accumulator_dtype"),
    (lambda: jopt.scale_by_lion(mu_dtype="nope"), TypeError, "mu_dtype"),
    # combinators
    (lambda: jopt.masked(jopt.adam, lambda p: p), TypeError, "inner must be a"),
    (lambda: jopt.partition([jopt.adam(0.1)], lambda p: p), TypeError, "transforms must be"),
    (lambda: jopt.partition({"a": 3}, lambda p: "a"), TypeError, "transforms['a'] must be a"),
    (lambda: jopt.partition({"a": jopt.sgd(0.1)}, None), TypeError, "param_labels must be"),
    (lambda: jopt.chain(jopt.sgd(0.1), 3), TypeError, "transforms[1] must be a"),
    (lambda: jopt.named_chain(("a", 3)), TypeError, "transforms[0][1] must be a"),
    (lambda: jopt.named_chain(jopt.sgd(0.1)), TypeError, "transforms[0] must be a (name, t"),
    (lambda: jopt.with_extra_args_support(3), TypeError, "tx must be a GradientTransformation"),
    (lambda: jopt.stateless(3), TypeError, "f must be a function"),
    (lambda: jopt.stateless_with_tree_map(None), TypeError, "f must be a function"),
    (lambda: jopt.inject_hyperparams(jopt.adam, static_args=3), TypeError, "static_args must"),
    # masks: the structure is checked at init, the leaves at construction
    (lambda: jopt.masked(jopt.sgd(0.1), None), TypeError, "mask must be a pytree of bools"),
    (lambda: jopt.masked(jopt.sgd(0.1), {"w": "yes"}), TypeError, "at ['w']: 'yes'"),
    (lambda: jopt.freeze(1), TypeError, "mask must be a pytree of bools"),
    (lambda: jopt.selective_transform(jopt.sgd(0.1), freeze_mask=None), TypeError,
     "freeze_mask must be a pytree of bools"),
    (lambda: jopt.selective_transform(jopt.sgd(0.1), freeze_mask=lambda p: p), TypeError,
     "freeze_mask must be a bool or a pytree of bools, not a function"),
    (lambda: jopt.add_decayed_weights(0.1, mask="w"), TypeError, "mask must be a pytree"),
    (lambda: jopt.adamw(0.1, mask=[1, 0]), TypeError, "mask must be a pytree of bools"),
]  # fmt: skip


@pytest.mark.parametrize("make, error, text", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_hyperparameter_is_named(make, error, text):
    with pytest.raises(error) as info:
        make()
    assert text in str(info.value)


def test_valid_edge_values_are_accepted():
    # values optax handles meaningfully must not be rejected
    jopt.scale_by_adam(b1=0.0, b2=0.0, eps=0.0)
    jopt.sgd(0.0, momentum=None)
    jopt.sgd(0.1, momentum=0.0)
    jopt.adamw(0.1, weight_decay=0.0)
    jopt.clip_by_global_norm(float("inf"))
    jopt.per_example_global_norm_clip([jnp.ones((2, 3))], 0.0)
    jopt.adam(lambda step: 0.1, b1=jnp.asarray(0.9))
    jopt.scale_by_learning_rate(None)
    jopt.masked(jopt.sgd(0.1), {"a": jnp.asarray(True), "b": np.bool_(False), "c": [True]})
    jopt.freeze(lambda params: jax.tree.map(lambda p: p.ndim > 1, params))
    jopt.named_chain(["a", jopt.sgd(0.1)])


def test_traced_hyperparameters_pass_validation():
    # inject_hyperparams-style: the factory is called with tracers inside jit
    params = {"w": jnp.ones(3)}

    @jax.jit
    def step(lr, b1, wd):
        tx = jopt.adamw(lr, b1=b1, weight_decay=wd)
        updates, _ = tx.update(params, tx.init(params), params)
        return updates

    assert step(0.1, 0.9, 0.01)["w"].shape == (3,)


PARAMS = {"dense": {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}, "scale": jnp.ones(())}


def test_mask_structure_mismatch_names_path_and_fix():
    tx = jopt.masked(jopt.scale_by_adam(), {"dense": {"w": True}, "scale": False})
    with pytest.raises(ValueError) as info:
        tx.init(PARAMS)
    message = str(info.value)
    assert "mask has structure" in message and "['dense']" in message
    assert "jax.tree.map(lambda p: p.ndim > 1, params)" in message


def test_mask_structure_mismatch_in_add_decayed_weights_and_adamw():
    with pytest.raises(ValueError, match="mask has structure"):
        jopt.adamw(0.1, mask={"dense": True}).init(PARAMS)
    with pytest.raises(ValueError, match="mask has structure"):
        jopt.add_decayed_weights(0.1, mask=[True, False]).init(PARAMS)


def test_mask_prefix_is_accepted():
    tx = jopt.masked(jopt.scale_by_adam(), {"dense": True, "scale": False})
    state = tx.init(PARAMS)
    updates, _ = tx.update(PARAMS, state, PARAMS)
    assert updates["scale"] == 1.0  # passed through untouched


def test_partition_labels_errors():
    tx = jopt.partition({"a": jopt.sgd(0.1)}, {"dense": "a", "scale": "b"})
    with pytest.raises(ValueError, match=r"param_labels has labels \['b'\] with no transform"):
        tx.init(PARAMS)
    tx = jopt.partition({"a": jopt.sgd(0.1)}, {"dense": {"w": "a"}, "scale": "a"})
    with pytest.raises(ValueError, match="param_labels has structure"):
        tx.init(PARAMS)


def test_transforms_that_need_params_say_so():
    grads = {"w": jnp.ones(3)}
    for tx, name in [
        (jopt.add_decayed_weights(0.1), "add_decayed_weights"),
        (jopt.add_l1_proximal(0.1, 0.1), "add_l1_proximal"),
        (jopt.add_elastic_net_proximal(0.1, 0.1, 0.1), "add_elastic_net_proximal"),
        (jopt.adaptive_grad_clip(0.1), "adaptive_grad_clip"),
    ]:
        with pytest.raises(ValueError, match=f"{name} needs the params"):
            tx.update(grads, tx.init(grads))
