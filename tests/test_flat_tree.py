"""FlatTree, the fast path: exact round trip, one gradient concatenation, per-leaf results."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt.testing import bumpy_loss as loss
from jopt.testing import nested_params
from jopt.train import TrainState, make_eval_step, make_train_step
from jopt.train.checkpoint import Checkpointer
from jopt.transforms._flat_masking import element_mask
from tests._cases import CASES
from tests._runs import run


def _mixed_params():
    params = nested_params()
    params["half"] = {"w": jnp.linspace(-1, 1, 6, dtype=jnp.bfloat16).reshape(2, 3)}
    params["big"] = jnp.linspace(-2.0, 2.0, 40)
    return params


def _assert_trees_close(a, b, rtol=1e-6, atol=1e-7):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_allclose(
            np.asarray(x, np.float32), np.asarray(y, np.float32), rtol=rtol, atol=atol
        )


def test_round_trip_is_exact_and_groups_small_leaves_by_dtype():
    params = _mixed_params()
    flat = jopt.FlatTree.from_tree(params, max_leaf_size=32)
    assert sorted(flat.buffers) == ["flat/bfloat16", "flat/float32", "leaf/000000"]
    assert flat.buffers["flat/bfloat16"].shape == (6,)
    assert flat.buffers["flat/float32"].shape == (12 + 3 + 2 + 4 + 1 + 1,)
    assert flat.buffers["leaf/000000"] is not None and flat.buffers["leaf/000000"].shape == (40,)
    back = flat.to_tree()
    assert jax.tree.structure(back) == jax.tree.structure(params)
    for x, y in zip(jax.tree.leaves(back), jax.tree.leaves(params), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x, np.float32), np.asarray(y, np.float32))


def test_leaves_are_the_buffers_with_readable_key_paths():
    flat = jopt.FlatTree.from_tree(_mixed_params(), max_leaf_size=32)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(flat)[0]]
    assert paths == ["['flat/bfloat16']", "['flat/float32']", "['leaf/000000']"]
    doubled = jax.tree.map(lambda x: 2 * x, flat)
    assert isinstance(doubled, jopt.FlatTree) and doubled.layout == flat.layout
    np.testing.assert_allclose(doubled.to_tree()["scale"], 2 * _mixed_params()["scale"])


def test_gradient_through_to_tree_is_the_flattened_per_leaf_gradient():
    params = _mixed_params()
    flat = jopt.FlatTree.from_tree(params, max_leaf_size=32)
    grads = jax.jit(jax.grad(lambda f: loss(f.to_tree())))(flat)
    expected = jopt.FlatTree.from_tree(jax.grad(loss)(params), max_leaf_size=32)
    assert grads.layout == expected.layout
    _assert_trees_close(grads.buffers, expected.buffers)


ELEMENTWISE = {
    "adam": lambda: jopt.adam(0.05),
    "adamw": lambda: jopt.adamw(0.05, weight_decay=0.1),
    "sgd_nesterov": lambda: jopt.sgd(0.03, momentum=0.9, nesterov=True),
    "rmsprop": lambda: jopt.rmsprop(0.01),
    "lion": lambda: jopt.lion(0.01),
    "adagrad": lambda: jopt.adagrad(0.1),
    "optax_adam": lambda: optax.adam(0.05),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_training_a_flat_tree_equals_training_the_tree_to_float_rounding(name):
    # Same operations in the same order; XLA vectorises a long buffer differently from
    # a short leaf (FMA contraction, vector tails), which moves results by an ulp or two.
    params = _mixed_params()
    per_leaf, per_leaf_state = run(ELEMENTWISE[name](), params, steps=10, jit=True)
    tx = ELEMENTWISE[name]()
    flat = jopt.FlatTree.from_tree(params, max_leaf_size=32)
    state = tx.init(flat)

    @jax.jit
    def step(flat, state):
        grads = jax.grad(lambda f: loss(f.to_tree()))(flat)
        updates, state = tx.update(grads, state, flat)
        return jopt.apply_updates(flat, updates), state

    for _ in range(10):
        flat, state = step(flat, state)
    # The state holds a moment per buffer (3), not per leaf (8).
    assert len(jax.tree.leaves(state)) < len(jax.tree.leaves(per_leaf_state))
    _assert_trees_close(flat.to_tree(), per_leaf, rtol=2e-6, atol=1e-6)


def _regression_batch():
    rng = np.random.default_rng(1)
    return {"x": jnp.asarray(rng.normal(size=(8, 3)), jnp.float32), "y": jnp.ones(8)}


def _model_loss(params, batch):
    hidden = jnp.tanh(batch["x"] @ params["w"] + params["b"]) * params["scale"]
    return jnp.mean((hidden.sum(-1) - batch["y"]) ** 2)


def _model_params():
    return {"w": jnp.full((3, 4), 0.1), "b": jnp.zeros(4), "scale": jnp.ones(())}


def test_train_and_eval_steps_hand_the_tree_to_the_loss_and_match_per_leaf_training():
    batch = _regression_batch()
    step = make_train_step(_model_loss)
    evaluate = make_eval_step(_model_loss)
    tree_state = TrainState.create(_model_params(), jopt.adam(0.05))
    flat_state = TrainState.create(jopt.FlatTree.from_tree(_model_params()), jopt.adam(0.05))
    for _ in range(5):
        tree_state, tree_metrics = step(tree_state, batch)
        flat_state, flat_metrics = step(flat_state, batch)
        np.testing.assert_allclose(flat_metrics["loss"], tree_metrics["loss"], rtol=1e-6)
    assert isinstance(flat_state.params, jopt.FlatTree)
    assert list(flat_state.params.buffers) == ["flat/float32"]
    _assert_trees_close(flat_state.params.to_tree(), tree_state.params, rtol=1e-5)
    np.testing.assert_allclose(
        evaluate(flat_state, batch)["loss"], evaluate(tree_state, batch)["loss"], rtol=1e-5
    )


def test_a_checkpointed_flat_state_restores_as_a_flat_tree(tmp_path):
    state = TrainState.create(jopt.FlatTree.from_tree(_model_params()), jopt.adam(0.05))
    state, _ = make_train_step(_model_loss)(state, _regression_batch())
    with Checkpointer(tmp_path / "run", async_save=False) as ckpt:
        ckpt.save(state)
        fresh = TrainState.create(jopt.FlatTree.from_tree(_model_params()), jopt.adam(0.05))
        restored = ckpt.restore(fresh).state
    assert isinstance(restored.params, jopt.FlatTree)
    assert restored.params.layout == state.params.layout
    _assert_trees_close(restored.params.to_tree(), state.params.to_tree(), rtol=0, atol=0)
    _assert_trees_close(restored.opt_state, state.opt_state, rtol=0, atol=0)


def test_builds_under_eval_shape_and_vmaps():
    abstract = jax.eval_shape(jopt.FlatTree.from_tree, _model_params())
    assert abstract.buffers["flat/float32"].shape == (17,)
    scaled = lambda s: jopt.FlatTree.from_tree(jax.tree.map(lambda x: s * x, _model_params()))  # noqa: E731
    stacked = jax.vmap(scaled)(jnp.arange(3.0))
    assert stacked.buffers["flat/float32"].shape == (3, 17)


def test_bad_max_leaf_size_is_named():
    with pytest.raises(ValueError, match="max_leaf_size"):
        jopt.FlatTree.from_tree(_model_params(), max_leaf_size=-1)
    with pytest.raises(TypeError, match="max_leaf_size"):
        jopt.FlatTree.from_tree(_model_params(), max_leaf_size=2.5)


# --- every case of the registry: the per-leaf result on a FlatTree, or a refusal ----------


def _model_tree():
    """An ordinary model: dense and conv kernels, two biases of one width, a norm scale and a
    scalar, in the structure of :func:`jopt.testing.nested_params` (masks of the registry's
    cases are written for it)."""
    rng = np.random.default_rng(3)

    def arr(*shape):
        return jnp.asarray(rng.normal(size=shape), jnp.float32)

    return {
        "dense": {"w": arr(8, 4), "b": arr(4)},
        "layers": [arr(4), (arr(3, 3, 2, 4), arr())],
        "scale": arr(8),
        "empty": {},
    }


def _tree_loss(params):
    return loss(params.to_tree() if isinstance(params, jopt.FlatTree) else params)


def _five_steps(tx, extra_args):
    def step(_, carry):
        params, state = carry
        value, grads = jax.value_and_grad(_tree_loss)(params)
        kwargs = {"value": value, "grad": grads, "value_fn": _tree_loss} if extra_args else {}
        updates, state = tx.update(grads, state, params, **kwargs)
        return jopt.apply_updates(params, updates), state

    # One compiled program runs both paths: one compilation a case.
    @jax.jit
    def both(tree_run, flat_run):
        return (jax.lax.fori_loop(0, 5, step, tree_run), jax.lax.fori_loop(0, 5, step, flat_run))

    return both


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_case_on_a_flat_tree_equals_the_tree_or_is_refused_at_init(case):
    tx = case.make()
    params = _model_tree()
    flat = jopt.FlatTree.from_tree(params)
    try:
        flat_state = tx.init(flat)
    except ValueError as refusal:
        assert "FlatTree" in str(refusal) and "keep the parameters as a tree" in str(refusal)
        return
    (tree_params, _), (flat_params, _) = _five_steps(tx, case.extra_args)(
        (params, tx.init(params)), (flat, flat_state)
    )
    # Rounding only (another summation order), amplified where a block scale grows the
    # params to ~1e3 and the loss's sin(3x) with them; the differences this test exists for
    # are 4e-2 to 1e3 relative.
    _assert_trees_close(flat_params.to_tree(), tree_params, rtol=1e-4, atol=2e-5)


def test_a_refusal_names_the_transform_flat_tree_and_the_fix():
    flat = jopt.FlatTree.from_tree(_model_tree())
    with pytest.raises(ValueError, match=r"chain: scale_by_factored_rms cannot run on a FlatTree"):
        jopt.adafactor(0.1).init(flat)
    with pytest.raises(ValueError, match=r"TrainState.create: .*declare_elementwise"):
        TrainState.create(flat, optax.adam(0.1))  # optax's transforms are unknown to jopt
    with pytest.raises(ValueError, match=r"optax's chain is not a transform jopt"):
        jopt.partition({"a": optax.sgd(0.1)}, lambda p: jax.tree.map(lambda _: "a", p)).init(flat)


def test_declared_elementwise_transforms_run_on_a_flat_tree():
    params = _model_tree()
    tx = jopt.chain(jopt.declare_elementwise(optax.scale_by_adam()), jopt.scale(-0.05))
    flat = jopt.FlatTree.from_tree(params)
    (tree_params, _), (flat_params, _) = _five_steps(tx, False)(
        (params, tx.init(params)), (flat, tx.init(flat))
    )
    _assert_trees_close(flat_params.to_tree(), tree_params, rtol=2e-5, atol=2e-5)


def test_layout_packs_equal_sizes_together_largest_first():
    flat = jopt.FlatTree.from_tree(_model_tree())
    layout = flat.layout
    # 72 (conv kernel), 32 (dense kernel), 8 (norm scale), two biases of 4, a scalar.
    assert layout.runs("flat/float32") == ((0, 1, 72), (72, 1, 32), (104, 1, 8), (112, 2, 4),
                                           (120, 1, 1))  # fmt: skip
    keep = element_mask(jax.tree.map(lambda p: p.ndim > 1, _model_tree()), flat)
    assert keep["flat/float32"].tolist() == [True] * 104 + [False] * 17


@pytest.mark.parametrize(
    "make",
    [
        lambda: jopt.MultiSteps(optax.adam(0.1), 2).gradient_transformation(),
        lambda: jopt.inject_hyperparams(optax.adam)(learning_rate=0.1),
        lambda: jopt.apply_if_finite(optax.sgd(0.1), 3),
        lambda: jopt.masked(optax.scale_by_adam(), lambda p: jax.tree.map(bool, p)),
        lambda: jopt.inject_hyperparams(jopt.adafactor)(learning_rate=0.1),
        lambda: jopt.contrib.scale_by_muon(),
        lambda: jopt.centralize(),
    ],
    ids=[
        "multi_steps",
        "inject",
        "apply_if_finite",
        "masked",
        "inject_adafactor",
        "muon",
        "centralize",
    ],
)
def test_jopt_wrappers_refuse_unknown_inner_transforms_and_bare_shape_transforms_refuse(make):
    with pytest.raises(ValueError, match="FlatTree"):
        make().init(jopt.FlatTree.from_tree(_model_tree()))


def test_floored_block_norms_have_finite_gradients_at_zero_leaves():
    params = {"w": jnp.zeros((2, 3)), "b": jnp.ones(3)}
    tx = jopt.chain(jopt.scale_by_param_block_norm(), jopt.scale_by_trust_ratio(min_norm=0.1))

    def moved(flat):
        updates, _ = tx.update(jax.tree.map(lambda x: x + 1.0, flat), tx.init(flat), flat)
        return jnp.sum(jopt.apply_updates(flat, updates).buffers["flat/float32"])

    grads = jax.grad(moved)(jopt.FlatTree.from_tree(params))
    assert np.isfinite(np.asarray(grads.buffers["flat/float32"])).all()


def test_every_jopt_transform_in_the_registry_is_classified():
    from jopt._flat import _capability as capability  # noqa: PLC0415

    known = (
        capability._ELEMENTWISE
        | capability._PER_LEAF
        | capability._COMBINATORS
        | set(capability._LEAF_SHAPES)
        | set(capability._USER_FUNCTIONS)
    )
    unclassified = set()

    def visit(tx):
        name, is_jopt = capability._factory_name(tx)
        if is_jopt and name not in known:
            unclassified.add(name)
        for inner in capability._inner_of(tx):
            if hasattr(inner, "update"):
                visit(inner)

    for case in CASES:
        visit(case.make())
    assert not unclassified
