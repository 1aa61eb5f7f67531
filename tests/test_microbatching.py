"""jopt.microbatching against optax.microbatching (small batches)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax.microbatching as om
import pytest

import jopt.microbatching as jm

X = jnp.arange(24.0).reshape(8, 3) / 10


def _close(ours, theirs):
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def _fun(x, scale, *, y):
    return {"s": jnp.sum(x * y) * scale, "rows": x.sum(axis=1), "n": jnp.asarray(x.shape[0])}


@pytest.mark.parametrize("kind", ["SUM", "MEAN", "RUNNING_MEAN", "CONCAT"])
def test_microbatch_matches_optax(kind):
    real = 2 if kind == "RUNNING_MEAN" else None
    results = []
    for lib in (jm, om):
        t = getattr(lib.AccumulationType, kind)
        acc = {"s": t, "rows": lib.AccumulationType.CONCAT, "n": lib.AccumulationType.SUM}
        if kind in ("MEAN", "RUNNING_MEAN"):
            acc["n"] = lib.AccumulationType.SUM
        fn = lib.microbatch(_fun, 0, 2, acc, argnames="y", num_real_microbatches=real)
        results.append(jax.jit(fn)(X, 2.0, y=X + 1))
    _close(*results)
    if real is None:
        np.testing.assert_allclose(results[0]["rows"], X.sum(axis=1), rtol=1e-6)


def test_reshape_batch_axis_and_micro_vmap_match_optax():
    _close(jm.reshape_batch_axis(X, 2, 0), om.reshape_batch_axis(X, 2, 0))
    _close(jm.reshape_batch_axis(X.T, 4, 1), om.reshape_batch_axis(X.T, 4, 1))
    f = lambda x, w: jnp.tanh(x @ w)  # noqa: E731
    w = jnp.ones(3)
    for kind in ("CONCAT", "MEAN"):
        ours = jm.micro_vmap(
            f, (0, None), microbatch_size=4, accumulator=getattr(jm.AccumulationType, kind)
        )
        theirs = om.micro_vmap(
            f, (0, None), microbatch_size=4, accumulator=getattr(om.AccumulationType, kind)
        )
        _close(ours(X, w), theirs(X, w))
    _close(jm.micro_vmap(f, (0, None), microbatch_size=4)(X, w), jax.vmap(f, (0, None))(X, w))


def test_micro_grad_matches_optax():
    def loss(params, batch):
        return jnp.mean((batch @ params["w"] + params["b"]) ** 2)

    params = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array(0.1)}

    def clip(g):
        norm = jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(g)))
        return jax.tree.map(lambda x: x / jnp.maximum(norm, 1.0), g)

    def norms(g):
        return jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(g)))

    outs = [
        lib.micro_grad(loss, microbatch_size=4, transform_fn=clip, metrics_fn=norms)(params, X)
        for lib in (jm, om)
    ]
    (g, aux), (og, oaux) = outs
    _close(g, og)
    _close(tuple(aux), tuple(oaux))
    assert aux.values.shape == (8,)


def test_bad_batch_sizes_are_refused():
    with pytest.raises(ValueError, match="divisible"):
        jm.microbatch(lambda x: x.sum(), 0, 3)(X)
    with pytest.raises(ValueError, match="batch size"):
        jm.microbatch(lambda x, y: x.sum(), (0, 1), 2)(X, X[:4])
    assert jm.microbatch(jnp.sum, 0, None) is jnp.sum
