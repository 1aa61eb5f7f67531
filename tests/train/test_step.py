"""TrainState and the jitted train/eval steps: plain pytrees, Flax NNX and Linen models,
extra arguments for line searches, and the errors users see."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt.train import TrainState, make_eval_step, make_train_step

RNG = np.random.default_rng(0)
X = jnp.asarray(RNG.normal(size=(16, 3)), jnp.float32)
Y = jnp.asarray(X @ np.array([1.0, -2.0, 0.5]) + 0.3, jnp.float32)
BATCH = {"x": X, "y": Y}


def _sgd(learning_rate):
    """A reference SGD written here, independent of the optimizers under test elsewhere."""
    return jopt.stateless(lambda g, p: jax.tree.map(lambda x: -learning_rate * x, g))


def _linear_loss(params, batch):
    pred = batch["x"] @ params["w"] + params["b"]
    return jnp.mean((pred - batch["y"]) ** 2)


def _params():
    return {"w": jnp.zeros(3, jnp.float32), "b": jnp.zeros([], jnp.float32)}


def test_plain_pytree_matches_numpy_gradient_descent():
    state = TrainState.create(_params(), _sgd(0.1))
    step = make_train_step(_linear_loss)
    x, y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    w, b = np.zeros(3), 0.0
    for i in range(3):
        state, metrics = step(state, BATCH)
        r = x @ w + b - y
        np.testing.assert_allclose(metrics["loss"], np.mean(r**2), rtol=1e-5)
        w, b = w - 0.1 * 2 * x.T @ r / len(y), b - 0.1 * 2 * np.mean(r)
        assert int(state.step) == i + 1
    np.testing.assert_allclose(state.params["w"], w, rtol=1e-5)
    np.testing.assert_allclose(state.params["b"], b, rtol=1e-5)
    assert step.jitted._cache_size() == 1  # no retrace on later calls


def test_state_is_a_pytree_with_static_tx():
    tx = _sgd(0.1)
    state = TrainState.create(_params(), tx, rng=1, extras={"n": jnp.ones(2)})
    assert len(jax.tree.leaves(state)) == 5  # step, w, b, rng, n
    assert (
        state.tx is tx
        and jax.tree.unflatten(jax.tree.structure(state), jax.tree.leaves(state)).tx is tx
    )
    abstract = jax.eval_shape(lambda p: TrainState.create(p, tx), _params())
    assert abstract.params["w"].shape == (3,) and abstract.step.dtype == jnp.int32
    assert state.replace(step=jnp.asarray(4)).step == 4 and state.step == 0


def test_create_rejects_an_uncalled_factory():
    with pytest.raises(TypeError, match="tx must be a GradientTransformation"):
        TrainState.create(_params(), _sgd)


def test_donation_frees_the_old_state():
    state = TrainState.create(_params(), _sgd(0.1))
    old_w = state.params["w"]
    new_state, _ = make_train_step(_linear_loss)(state, BATCH)
    assert old_w.is_deleted() and not new_state.params["w"].is_deleted()
    kept = TrainState.create(_params(), _sgd(0.1))
    make_train_step(_linear_loss, donate=False)(kept, BATCH)
    assert not kept.params["w"].is_deleted()


def _recording_tx():
    """Scales by -0.1 and records the extra arguments it receives in its state."""

    def init(params):
        return {
            "value": jnp.zeros([]),
            "value_fn_at_params": jnp.zeros([]),
            "grad_dot_updates": jnp.zeros([]),
        }

    def update(updates, state, params=None, *, value, grad, value_fn, **extra):
        del state, extra
        record = {
            "value": value,
            "value_fn_at_params": value_fn(params),
            "grad_dot_updates": jopt.tree.vdot(grad, updates),
        }
        return jopt.tree.scale(-0.1, updates), record

    return jopt.GradientTransformationExtraArgs(init, update)


def test_transform_receives_value_grad_and_value_fn():
    state = TrainState.create(_params(), _recording_tx())
    step = make_train_step(_linear_loss)
    start = state.params
    expected_value = _linear_loss(start, BATCH)
    grads = jax.grad(_linear_loss)(start, BATCH)
    state, metrics = step(state, BATCH)
    record = state.opt_state
    np.testing.assert_allclose(record["value"], expected_value, rtol=1e-6)
    np.testing.assert_allclose(record["value_fn_at_params"], expected_value, rtol=1e-6)
    np.testing.assert_allclose(record["grad_dot_updates"], jopt.tree.vdot(grads, grads), rtol=1e-5)
    np.testing.assert_allclose(metrics["loss"], expected_value, rtol=1e-6)


def test_extra_args_reach_a_chain_member():
    state = TrainState.create(_params(), jopt.chain(jopt.identity(), _recording_tx()))
    state, _ = make_train_step(_linear_loss)(state, BATCH)
    np.testing.assert_allclose(state.opt_state[1]["value"], _linear_loss(_params(), BATCH))


def test_apply_gradients_forwards_extra_args():
    state = TrainState.create(_params(), _recording_tx())
    grads = jax.grad(_linear_loss)(state.params, BATCH)
    state = state.apply_gradients(
        grads, value=jnp.asarray(7.0), grad=grads, value_fn=lambda p: _linear_loss(p, BATCH)
    )
    assert int(state.step) == 1 and float(state.opt_state["value"]) == 7.0


def test_aux_dict_is_merged_and_rng_changes_each_step():
    def loss_fn(params, batch, rng):
        noise = jax.random.normal(rng, ())
        return _linear_loss(params, batch), {"noise": noise}

    state = TrainState.create(_params(), _sgd(0.1), rng=jax.random.key(3))
    step = make_train_step(loss_fn, has_aux=True, with_rng=True)
    noises = []
    for i in range(2):
        state, metrics = step(state, BATCH)
        assert set(metrics) == {"loss", "noise"}
        expected = jax.random.normal(jax.random.fold_in(jax.random.key(3), i), ())
        np.testing.assert_allclose(metrics["noise"], expected)
        noises.append(float(metrics["noise"]))
    assert noises[0] != noises[1]


def test_non_dict_aux_is_reported_under_aux():
    state = TrainState.create(_params(), _sgd(0.1))
    step = make_train_step(lambda p, b: (_linear_loss(p, b), jnp.ones(2)), has_aux=True)
    _, metrics = step(state, BATCH)
    assert metrics["aux"].shape == (2,)


def test_eval_step():
    state = TrainState.create(_params(), _sgd(0.1))
    evaluate = make_eval_step(lambda p, b: {"mse": _linear_loss(p, b)})
    np.testing.assert_allclose(evaluate(state, BATCH)["mse"], _linear_loss(_params(), BATCH))
    scalar = make_eval_step(_linear_loss)(state, BATCH)
    assert set(scalar) == {"loss"}
    with pytest.raises(
        TypeError, match=r"eval_fn must return a dict of metrics or a scalar.*\(16,\)"
    ):
        make_eval_step(lambda p, b: b["y"])(state, BATCH)


# --- errors -------------------------------------------------------------------


def _step_once(loss_fn, **kwargs):
    state = TrainState.create(_params(), _sgd(0.1), rng=kwargs.pop("rng", None))
    return make_train_step(loss_fn, **kwargs)(state, BATCH)


def test_non_scalar_loss_names_the_shape_and_the_fix():
    def per_example(params, batch):
        return (batch["x"] @ params["w"] - batch["y"]) ** 2

    with pytest.raises(
        TypeError, match=r"per_example must return a scalar loss.*\(16,\).*jnp.mean"
    ):
        _step_once(per_example)


def test_aux_returned_without_has_aux():
    with pytest.raises(TypeError, match="has_aux=False.*pass has_aux=True"):
        _step_once(lambda p, b: (_linear_loss(p, b), {"a": 1.0}))


def test_has_aux_without_aux():
    with pytest.raises(TypeError, match=r"must return \(loss, aux\) because has_aux=True"):
        _step_once(_linear_loss, has_aux=True)


def test_with_extras_without_new_extras():
    def loss_fn(params, extras, batch):
        return _linear_loss(params, batch)

    with pytest.raises(TypeError, match=r"\(loss, new_extras\) because with_extras=True"):
        _step_once(loss_fn, with_extras=True)


def test_with_extras_and_aux_needs_a_nested_pair():
    def loss_fn(params, extras, batch):
        return _linear_loss(params, batch), extras

    with pytest.raises(TypeError, match=r"\(loss, \(new_extras, aux\)\).*got \(loss, a NoneType\)"):
        _step_once(loss_fn, with_extras=True, has_aux=True)


def test_with_rng_needs_a_key_in_the_state():
    with pytest.raises(ValueError, match="with_rng=True but the state has rng=None.*rng=0"):
        _step_once(lambda p, b, rng: _linear_loss(p, b), with_rng=True)


def test_aux_may_not_shadow_the_loss():
    with pytest.raises(ValueError, match="'loss' key"):
        _step_once(lambda p, b: (_linear_loss(p, b), {"loss": 1.0}), has_aux=True)


def test_flags_must_be_bool():
    with pytest.raises(TypeError, match="has_aux must be True or False"):
        make_train_step(_linear_loss, has_aux="yes")
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        make_train_step(3)


# --- Flax models ----------------------------------------------------------------


def _classification_batch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    return {"x": jnp.asarray(x), "y": jnp.asarray(labels)}


def _cross_entropy(logits, labels):
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def test_flax_nnx_model_with_batch_norm_trains():
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.dense1 = nnx.Linear(4, 8, rngs=rngs)
            self.norm = nnx.BatchNorm(8, rngs=rngs)
            self.dense2 = nnx.Linear(8, 2, rngs=rngs)

        def __call__(self, x):
            return self.dense2(nnx.relu(self.norm(self.dense1(x))))

    graphdef, params, extras = nnx.split(MLP(nnx.Rngs(0)), nnx.Param, ...)

    def loss_fn(params, extras, batch):
        # copy=True: NNX refuses to mutate variables created outside the gradient's trace.
        model = nnx.merge(graphdef, params, extras, copy=True)
        loss = _cross_entropy(model(batch["x"]), batch["y"])
        return loss, nnx.split(model, nnx.Param, ...)[2]

    state = TrainState.create(params, _sgd(0.3), extras=extras)
    step = make_train_step(loss_fn, with_extras=True)
    batch = _classification_batch()
    losses = []
    for _ in range(15):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.7 * losses[0]
    mean = state.extras["norm"]["mean"][...]
    assert float(jnp.abs(mean).sum()) > 0  # batch statistics moved


def test_flax_linen_model_with_batch_stats_trains():
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            x = nn.relu(nn.BatchNorm(use_running_average=not train)(nn.Dense(8)(x)))
            return nn.Dense(2)(x)

    model = MLP()
    batch = _classification_batch()
    variables = model.init(jax.random.key(0), batch["x"], train=False)

    def loss_fn(params, extras, batch):
        logits, updates = model.apply(
            {"params": params, **extras}, batch["x"], train=True, mutable=["batch_stats"]
        )
        return _cross_entropy(logits, batch["y"]), (updates, {"logit_mean": logits.mean()})

    def eval_fn(params, extras, batch):
        logits = model.apply({"params": params, **extras}, batch["x"], train=False)
        return {"accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["y"])}

    state = TrainState.create(
        variables["params"],
        _sgd(0.3),
        extras={"batch_stats": variables["batch_stats"]},
        apply_fn=model.apply,
    )
    step = make_train_step(loss_fn, has_aux=True, with_extras=True)
    first = None
    for _ in range(15):
        state, metrics = step(state, batch)
        first = float(metrics["loss"]) if first is None else first
    assert float(metrics["loss"]) < 0.7 * first and "logit_mean" in metrics
    assert float(make_eval_step(eval_fn, with_extras=True)(state, batch)["accuracy"]) > 0.8
    assert state.apply_fn == model.apply


def test_line_search_optimizer_matches_optax_manual_loop():
    import optax

    state = TrainState.create(_params(), jopt.lbfgs())
    step = make_train_step(_linear_loss)
    params, opt = _params(), optax.lbfgs()
    opt_state = opt.init(params)
    value_fn = lambda p: _linear_loss(p, BATCH)

    @jax.jit
    def reference_step(params, opt_state):
        value, grad = jax.value_and_grad(value_fn)(params)
        updates, opt_state = opt.update(
            grad, opt_state, params, value=value, grad=grad, value_fn=value_fn
        )
        return optax.apply_updates(params, updates), opt_state, value

    for _ in range(3):
        state, metrics = step(state, BATCH)
        params, opt_state, value = reference_step(params, opt_state)
        np.testing.assert_allclose(metrics["loss"], value, rtol=1e-5)
    for key in params:
        np.testing.assert_allclose(state.params[key], params[key], rtol=1e-4, atol=1e-6)
    assert float(value_fn(state.params)) < 0.05 * float(_linear_loss(_params(), BATCH))
    assert step.jitted._cache_size() == 1  # weakly typed init scalars were made strong by create


def test_aliased_and_weakly_typed_state_leaves():
    def init(params):
        return (params, params, jnp.asarray(0.0))

    def update(updates, state, params=None):
        return jopt.tree.scale(-0.1, updates), (state[0], state[1], state[2] + 1.0)

    state = TrainState.create(_params(), jopt.GradientTransformation(init, update))
    assert not state.opt_state[2].weak_type
    step = make_train_step(_linear_loss)
    for _ in range(2):  # XLA rejects a buffer donated twice
        state, _ = step(state, BATCH)
    assert int(state.step) == 2 and step.jitted._cache_size() == 1


def test_grad_norm_metric_is_the_global_norm_of_the_gradient():
    state = TrainState.create(_params(), _sgd(0.1))
    step = make_train_step(_linear_loss, grad_norm=True, donate=False)
    grads = jax.grad(_linear_loss)(state.params, BATCH)
    expected = np.sqrt(sum(float(np.sum(np.square(g))) for g in jax.tree.leaves(grads)))
    _, metrics = step(state, BATCH)
    np.testing.assert_allclose(metrics["grad_norm"], expected, rtol=1e-6)
    _, plain = make_train_step(_linear_loss, donate=False)(state, BATCH)
    assert "grad_norm" not in plain


def test_grad_norm_refuses_an_aux_key_it_would_shadow():
    state = TrainState.create(_params(), _sgd(0.1))
    loss = lambda p, b: (_linear_loss(p, b), {"grad_norm": 0.0})  # noqa: E731
    with pytest.raises(ValueError, match="'grad_norm' key.*rename it"):
        make_train_step(loss, has_aux=True, grad_norm=True)(state, BATCH)


def test_make_train_step_has_no_tx_argument_that_could_disagree_with_the_state():
    with pytest.raises(TypeError):
        make_train_step(_linear_loss, jopt.sgd(0.1))
    with pytest.raises(TypeError):
        make_train_step(_linear_loss, tx=jopt.sgd(0.1))


@pytest.mark.parametrize("build", [make_train_step, make_eval_step])
def test_steps_name_a_state_that_is_not_a_train_state(build):
    with pytest.raises(
        TypeError,
        match=r"state must be a jopt.train.TrainState, got dict.*"
        r"TrainState.create\(params, tx\)",
    ):
        build(_linear_loss)(_params(), BATCH)


def test_integer_params_are_named_by_leaf_path_before_jax_grad():
    params = {"w": jnp.zeros(3, jnp.float32), "layer": {"count": jnp.zeros([], jnp.int32)}}
    state = TrainState.create(params, _sgd(0.1))
    with pytest.raises(
        TypeError,
        match=r"state.params must have float leaves, got int32 at "
        r"\['layer'\]\['count'\].*TrainState.extras",
    ):
        make_train_step(lambda p, b: jnp.sum(p["w"]))(state, BATCH)


def test_create_names_swapped_arguments_and_bad_rng():
    with pytest.raises(
        TypeError, match="params must be a pytree of arrays.*create\\(params, tx\\)"
    ):
        TrainState.create(jopt.sgd(0.1), jopt.sgd(0.1))
    with pytest.raises(TypeError, match="tx must be a GradientTransformation"):
        TrainState.create(_params(), "adam")
    with pytest.raises(TypeError, match="rng must be an int seed or a jax.random.key"):
        TrainState.create(_params(), _sgd(0.1), rng="seed")
    with pytest.raises(TypeError, match="apply_fn must be a function"):
        TrainState.create(_params(), _sgd(0.1), apply_fn=3)


def test_apply_gradients_names_the_missing_key_and_a_wrong_shape():
    state = TrainState.create(_params(), _sgd(0.1))
    with pytest.raises(
        ValueError,
        match=r"grads has structure.*missing leaf \['w'\].*"
        r"jax.grad\(loss_fn\)\(state.params, batch\)",
    ):
        state.apply_gradients({"b": jnp.ones([])})
    with pytest.raises(ValueError, match=r"grads has shape \(2,\) at \['w'\].*shape \(3,\)"):
        state.apply_gradients({"w": jnp.ones(2), "b": jnp.ones([])})
    stepped = state.apply_gradients(jax.tree.map(jnp.ones_like, state.params))
    np.testing.assert_allclose(stepped.params["w"], -0.1 * np.ones(3))


def test_a_loss_that_is_not_an_array_is_named():
    state = TrainState.create({"w": jnp.zeros(2)}, jopt.sgd(0.1))
    with pytest.raises(TypeError, match="must return a scalar loss array, got a dict; return"):
        make_train_step(lambda p, b: {"loss": 0.0}, jit=False)(state, None)
