"""jopt.losses against optax.losses (values and gradients), penalties against NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt import losses

RNG = np.random.default_rng(0)
NAN = float("nan")


def _f(*shape):
    return jnp.asarray(RNG.normal(size=shape), jnp.float32)


def _probs(*shape):
    return jax.nn.softmax(_f(*shape), axis=-1)


def _ints(high, *shape):
    return jnp.asarray(RNG.integers(0, high, size=shape), jnp.int32)


def _mask(*shape):
    mask = RNG.random(shape) > 0.3
    mask[..., 0] = True  # every row keeps a class
    return jnp.asarray(mask)


def _ctc_inputs():
    logits = _f(2, 6, 4)
    logit_paddings = jnp.asarray([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]], jnp.float32)
    labels = jnp.asarray([[1, 2, 2], [3, 1, 0]], jnp.int32)
    label_paddings = jnp.asarray([[0, 0, 0], [0, 0, 1]], jnp.float32)
    return logits, logit_paddings, labels, label_paddings


# (id, name, positional args, keyword args). The first argument is differentiated.
CASES = [
    ("squared_error", "squared_error", (_f(3, 4), _f(3, 4)), {}),
    ("squared_error_no_target", "squared_error", (_f(5),), {}),
    ("l2_loss", "l2_loss", (_f(3, 4), _f(3, 4)), {}),
    ("huber", "huber_loss", (3 * _f(3, 4), _f(3, 4)), {"delta": 0.7}),
    ("huber_no_target", "huber_loss", (3 * _f(6),), {}),
    ("log_cosh", "log_cosh", (_f(3, 4), _f(3, 4)), {}),
    ("log_cosh_large", "log_cosh", (jnp.asarray([1e3, -1e3, 0.5]),), {}),
    ("cosine_similarity", "cosine_similarity", (_f(3, 4), _f(3, 4)), {}),
    ("cosine_similarity_where", "cosine_similarity", (_f(3, 4), _f(3, 4)),
     {"where": _mask(3, 4), "epsilon": 1e-3}),
    ("cosine_distance_axis0", "cosine_distance", (_f(4, 3), _f(4, 3)), {"axis": 0}),
    ("sigmoid_bce", "sigmoid_binary_cross_entropy", (_f(3, 4), _ints(2, 3, 4)), {}),
    ("sigmoid_bce_soft", "sigmoid_binary_cross_entropy", (5 * _f(6), jax.nn.sigmoid(_f(6))), {}),
    ("focal", "sigmoid_focal_loss", (_f(3, 4), _ints(2, 3, 4)), {}),
    ("focal_alpha", "sigmoid_focal_loss", (_f(3, 4), _ints(2, 3, 4)),
     {"alpha": 0.25, "gamma": 1.5}),
    ("hinge", "hinge_loss", (_f(5), 2.0 * _ints(2, 5) - 1), {}),
    ("perceptron", "perceptron_loss", (_f(5), 2.0 * _ints(2, 5) - 1), {}),
    ("multiclass_hinge", "multiclass_hinge_loss", (_f(4, 5), _ints(5, 4)), {}),
    ("multiclass_perceptron", "multiclass_perceptron_loss", (_f(4, 5), _ints(5, 4)), {}),
    ("softmax_ce", "softmax_cross_entropy", (_f(3, 5), _probs(3, 5)), {}),
    ("softmax_ce_axis0", "softmax_cross_entropy", (_f(5, 3), _probs(3, 5).T), {"axis": 0}),
    ("softmax_ce_where", "softmax_cross_entropy", (_f(3, 5), _probs(3, 5)),
     {"where": _mask(3, 5)}),
    ("softmax_ce_axes", "softmax_cross_entropy", (_f(2, 3, 4), _probs(2, 3, 4) / 3),
     {"axis": (1, 2)}),
    ("softmax_ce_int", "softmax_cross_entropy_with_integer_labels", (_f(4, 5), _ints(5, 4)), {}),
    ("softmax_ce_int_axis0", "softmax_cross_entropy_with_integer_labels",
     (_f(5, 4), _ints(5, 4)), {"axis": 0}),
    ("softmax_ce_int_axes", "softmax_cross_entropy_with_integer_labels",
     (_f(2, 3, 4), _ints(12, 2)), {"axis": (1, 2)}),
    ("softmax_ce_int_where", "softmax_cross_entropy_with_integer_labels",
     (_f(4, 5), jnp.zeros(4, jnp.int32)), {"where": _mask(4, 5)}),
    ("safe_softmax_ce", "safe_softmax_cross_entropy",
     (jnp.asarray([[1.0, -jnp.inf, 0.5], [0.2, 0.1, 3.0]]),
      jnp.asarray([[0.5, 0.0, 0.5], [0.0, 0.0, 1.0]])), {}),
    ("poly_loss", "poly_loss_cross_entropy", (_f(3, 5), _probs(3, 5)), {"epsilon": -0.5}),
    ("poly_loss_where", "poly_loss_cross_entropy", (_f(3, 5), _probs(3, 5)),
     {"where": _mask(3, 5)}),
    ("smooth_labels", "smooth_labels", (jax.nn.one_hot(_ints(5, 4), 5), 0.1), {}),
    ("smooth_labels_where", "smooth_labels", (jax.nn.one_hot(_ints(5, 4), 5), 0.2),
     {"where": _mask(4, 5)}),
    ("kl", "kl_divergence", (jnp.log(_probs(3, 4)), _probs(3, 4).at[0, 1].set(0.0)), {}),
    ("kl_where", "kl_divergence", (jnp.log(_probs(3, 4)), _probs(3, 4)), {"where": _mask(3, 4)}),
    ("kl_log_targets", "kl_divergence_with_log_targets",
     (jnp.log(_probs(3, 4)), jnp.log(_probs(3, 4))), {"axis": 0}),
    ("generalized_kl", "generalized_kl_divergence", (_f(3, 4), jnp.exp(_f(3, 4))), {}),
    ("sparsemax", "sparsemax_loss", (2 * _f(6), _ints(2, 6)), {}),
    ("multiclass_sparsemax", "multiclass_sparsemax_loss", (2 * _f(4, 5), _ints(5, 4)), {}),
    ("ntxent", "ntxent", (_f(6, 3), jnp.asarray([0, 0, 1, 1, 2, 2])), {"temperature": 0.5}),
    ("triplet", "triplet_margin_loss", (_f(4, 3), _f(4, 3), _f(4, 3)), {}),
    ("triplet_l1", "triplet_margin_loss", (_f(3, 4), _f(3, 4), _f(3, 4)),
     {"axis": 0, "norm_degree": 1, "margin": 0.5}),
    ("ranking", "ranking_softmax_loss", (_f(3, 5), _ints(3, 3, 5)), {}),
    ("ranking_where_weights", "ranking_softmax_loss", (_f(3, 5), _ints(3, 3, 5)),
     {"where": _mask(3, 5), "weights": jnp.abs(_f(3, 5)), "reduce_fn": None}),
    ("dice", "dice_loss", (_f(2, 3, 3, 4), jax.nn.one_hot(_ints(4, 2, 3, 3), 4)), {}),
    ("dice_tversky", "dice_loss", (_f(2, 3, 3, 4), jax.nn.one_hot(_ints(4, 2, 3, 3), 4)),
     {"alpha": 0.3, "beta": 0.7, "reduction": "sum", "ignore_background": True,
      "class_weights": jnp.asarray([1.0, 2.0, 0.5, 1.0])}),
    ("generalized_dice", "multiclass_generalized_dice_loss",
     (_f(2, 3, 3, 4), jax.nn.one_hot(_ints(4, 2, 3, 3), 4)), {}),
    ("binary_dice", "binary_dice_loss", (_f(2, 4, 4), _ints(2, 2, 4, 4).astype(jnp.float32)), {}),
    ("ctc", "ctc_loss", _ctc_inputs(), {}),
    ("ctc_blank", "ctc_loss", _ctc_inputs(), {"blank_id": 3, "log_epsilon": -1e4}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "args", "kwargs"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_value_and_gradient_match_optax(name, args, kwargs):
    ours_fn, theirs_fn = getattr(losses, name), getattr(optax.losses, name)
    np.testing.assert_allclose(
        ours_fn(*args, **kwargs), theirs_fn(*args, **kwargs), rtol=1e-6, atol=1e-6
    )

    def total(fn):
        return lambda x: jnp.sum(fn(x, *args[1:], **kwargs))

    np.testing.assert_allclose(
        jax.grad(total(ours_fn))(args[0]), jax.grad(total(theirs_fn))(args[0]), rtol=1e-5, atol=1e-6
    )


def test_ctc_forward_probs_and_convex_kl_match_optax():
    inputs = _ctc_inputs()
    ours = losses.ctc_loss_with_forward_probs(*inputs)
    theirs = optax.losses.ctc_loss_with_forward_probs(*inputs)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # optax's convex_kl_divergence only warns and forwards to generalized_kl_divergence.
    args = (_f(3, 4), jnp.exp(_f(3, 4)))
    with pytest.warns(DeprecationWarning, match="use generalized_kl_divergence"):
        ours = losses.convex_kl_divergence(*args)
    np.testing.assert_allclose(ours, optax.losses.generalized_kl_divergence(*args))


def test_fenchel_young_matches_optax_and_cross_entropy():
    scores, targets = _f(3, 5), jax.nn.one_hot(_ints(5, 3), 5)
    ours = losses.make_fenchel_young_loss(jax.scipy.special.logsumexp)
    theirs = optax.losses.make_fenchel_young_loss(jax.scipy.special.logsumexp)
    np.testing.assert_allclose(ours(scores, targets), theirs(scores, targets), rtol=1e-6)
    # With one-hot targets the logsumexp Fenchel-Young loss is the cross entropy.
    np.testing.assert_allclose(
        ours(scores, targets), losses.softmax_cross_entropy(scores, targets), rtol=1e-5
    )


def test_every_optax_loss_exists_with_the_same_signature():
    import inspect

    for name in [n for n in dir(optax.losses) if not n.startswith("_")]:
        assert hasattr(losses, name), f"jopt.losses lacks {name}"
        ours = list(inspect.signature(getattr(losses, name)).parameters.values())
        theirs = list(inspect.signature(getattr(optax.losses, name)).parameters.values())
        assert [(p.name, p.kind, p.default) for p in ours] == [
            (p.name, p.kind, p.default) for p in theirs
        ], name
    assert len(losses.__all__) == len(set(losses.__all__))
    assert jopt.losses is losses


def _penalty_params():
    return {"w": _f(3, 2), "b": [_f(2), jnp.asarray(-0.5, jnp.bfloat16)]}


def test_penalties_match_numpy():
    params = _penalty_params()
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(params)]
    l1 = sum(np.abs(x).sum() for x in leaves)
    l2 = sum((x**2).sum() for x in leaves)
    np.testing.assert_allclose(losses.l1_penalty(params, 0.3), 0.3 * l1, rtol=1e-5)
    np.testing.assert_allclose(losses.l2_penalty(params, 0.3), 0.5 * 0.3 * l2, rtol=1e-5)
    np.testing.assert_allclose(
        losses.elastic_net_penalty(params, 0.2, 0.7), 0.2 * l1 + 0.35 * l2, rtol=1e-5
    )
    assert losses.l2_penalty(params, 1.0).dtype == jnp.float32  # bf16 leaf summed in f32


def test_penalty_masks_and_gradients():
    params = _penalty_params()
    only_w = jax.tree.map(lambda p: p.ndim > 1, params)
    expected = 0.5 * np.sum(np.asarray(params["w"], np.float64) ** 2)
    np.testing.assert_allclose(losses.l2_penalty(params, 1.0, mask=only_w), expected, rtol=1e-6)
    np.testing.assert_allclose(
        losses.l2_penalty(params, 1.0, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
        expected,
        rtol=1e-6,
    )
    # The L2 penalty's gradient is the update of add_decayed_weights: strength * w.
    grads = jax.grad(lambda p: losses.l2_penalty(p, 0.1))(params)
    np.testing.assert_allclose(grads["w"], 0.1 * params["w"], rtol=1e-6)
    grads = jax.grad(lambda p: losses.l1_penalty(p, 0.1))(params)
    np.testing.assert_allclose(grads["w"], 0.1 * np.sign(params["w"]), rtol=1e-6)
    assert float(losses.l1_penalty({}, 1.0)) == 0.0


@pytest.mark.parametrize(
    ("call", "error", "names"),
    [
        (lambda: losses.l1_penalty({"w": jnp.ones(2)}, -1.0), ValueError, "strength"),
        (lambda: losses.elastic_net_penalty({"w": jnp.ones(2)}, 0.1, -2.0), ValueError,
         "l2_strength"),
        (lambda: losses.l2_penalty({"w": jnp.ones(2)}, 1.0, mask={"v": True}), ValueError,
         "mask"),
        (lambda: losses.softmax_cross_entropy(jnp.ones((2, 3), jnp.int32), jnp.ones((2, 3))),
         TypeError, "logits"),
        (lambda: losses.softmax_cross_entropy_with_integer_labels(jnp.ones((2, 3)),
                                                                  jnp.ones(2)),
         TypeError, "labels"),
        (lambda: losses.squared_error(jnp.ones(3), jnp.ones(2)), ValueError, "targets"),
        (lambda: losses.perceptron_loss(jnp.ones(3), jnp.ones(2)), ValueError, "targets"),
        (lambda: losses.smooth_labels(jnp.ones(3), 1.5), ValueError, "alpha"),
        (lambda: losses.kl_divergence(jnp.ones(3), jnp.ones(3, jnp.int32)), TypeError,
         "targets"),
        (lambda: losses.ntxent(jnp.ones((3, 2)), jnp.ones(2)), ValueError, "labels"),
        (lambda: losses.dice_loss(jnp.ones((1, 2, 2)), jnp.ones((1, 2, 2)), reduction="avg"),
         ValueError, "reduction"),
        (lambda: losses.ctc_loss(jnp.ones((2, 3)), jnp.ones(2), jnp.ones((2, 1)),
                                 jnp.ones((2, 1))), ValueError, "logits"),
        (lambda: losses.make_fenchel_young_loss(3.0), TypeError, "max_fun"),
        # hyperparameters, checked when the call's values are concrete
        (lambda: losses.huber_loss(jnp.ones(2), delta=0.0), ValueError, "^delta must be > 0"),
        (lambda: losses.cosine_distance(jnp.ones(2), jnp.ones(2), epsilon=-1.0), ValueError,
         "^epsilon must be >= 0"),
        (lambda: losses.sigmoid_focal_loss(jnp.ones(2), jnp.ones(2), gamma=-1.0), ValueError,
         "^gamma must be >= 0"),
        (lambda: losses.sigmoid_focal_loss(jnp.ones(2), jnp.ones(2), alpha=1.5), ValueError,
         r"^alpha must be in \[0, 1\]"),
        (lambda: losses.ntxent(jnp.ones((2, 3)), jnp.ones(2, int), 0.0), ValueError,
         "^temperature must be > 0"),
        (lambda: losses.triplet_margin_loss(*[jnp.ones((2, 3))] * 3, norm_degree=0), ValueError,
         "^norm_degree must be > 0"),
        (lambda: losses.triplet_margin_loss(*[jnp.ones((2, 3))] * 3, eps=-1.0), ValueError,
         "^eps must be >= 0"),
        (lambda: losses.dice_loss(jnp.ones((1, 2, 2)), jnp.ones((1, 2, 2)), smooth=-1.0),
         ValueError, "^smooth must be >= 0"),
        (lambda: losses.dice_loss(jnp.ones((1, 2, 2)), jnp.ones((1, 2, 2)), beta=-0.5),
         ValueError, "^beta must be >= 0"),
        (lambda: losses.binary_dice_loss(jnp.ones((1, 2)), jnp.ones((1, 2)), smooth=NAN),
         ValueError, "^smooth must be a finite number"),
        (lambda: losses.poly_loss_cross_entropy(jnp.ones((2, 3)), jnp.ones((2, 3)), epsilon=NAN),
         ValueError, "^epsilon must be a finite number"),
        (lambda: losses.ctc_loss(jnp.ones((1, 3, 4)), jnp.zeros((1, 3)), jnp.ones((1, 2), int),
                                 jnp.zeros((1, 2)), blank_id=-1), ValueError, "^blank_id"),
        (lambda: losses.ctc_loss(jnp.ones((1, 3, 4)), jnp.zeros((1, 3)), jnp.ones((1, 2), int),
                                 jnp.zeros((1, 2)), blank_id=4), ValueError,
         r"^blank_id must be < the number of classes \(4\)"),
    ],
)  # fmt: skip
def test_bad_inputs_name_the_argument(call, error, names):
    with pytest.raises(error, match=names):
        call()
