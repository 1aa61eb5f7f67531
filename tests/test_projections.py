"""jopt.projections against optax.projections, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import optax.projections as op
import pytest

import jopt.projections as jp

TREE = {"a": jnp.array([0.5, -1.2, 2.0]), "b": jnp.array([[0.3, -0.1], [1.5, 0.0]])}
OTHER = {"a": jnp.array([1.0, 0.5, -0.3]), "b": jnp.array([[0.2, 1.0], [-0.4, 0.7]])}

CASES = [
    ("projection_non_negative", ()),
    ("projection_box", (-0.5, 1.0)),
    ("projection_hypercube", (0.8,)),
    ("projection_simplex", ()),
    ("projection_simplex", (3.0,)),
    ("projection_l1_sphere", (2.0,)),
    ("projection_l1_ball", (2.0,)),
    ("projection_l1_ball", (100.0,)),
    ("projection_l2_sphere", (1.5,)),
    ("projection_l2_ball", (1.5,)),
    ("projection_l2_ball", (100.0,)),
    ("projection_linf_ball", (0.7,)),
    ("projection_vector", (OTHER,)),
    ("projection_hyperplane", (OTHER, 0.5)),
    ("projection_halfspace", (OTHER, 0.5)),
    ("projection_halfspace", (OTHER, 50.0)),
]


@pytest.mark.parametrize("name, args", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_matches_optax(name, args):
    ours = getattr(jp, name)(TREE, *args)
    if name == "projection_box":  # optax needs tree bounds for a tree of several leaves
        args = tuple(jax.tree.map(lambda x, b=b: jnp.full_like(x, b), TREE) for b in args)
    if name == "projection_hypercube":  # and its hypercube works on one array only
        ours, theirs = (
            jp.projection_hypercube(TREE["b"], *args),
            op.projection_hypercube(TREE["b"], *args),
        )
    else:
        theirs = getattr(op, name)(TREE, *args)
    for x, y in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["projection_simplex", "projection_l1_ball"])
def test_gradients_match_optax(name):
    weights = jnp.arange(1.0, 8.0)

    def loss(project, x):
        return jnp.dot(weights, jax.flatten_util.ravel_pytree(project(x))[0] ** 2)

    ours = jax.grad(lambda x: loss(getattr(jp, name), x))(TREE)
    theirs = jax.grad(lambda x: loss(getattr(op, name), x))(TREE)
    for x, y in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_simplex_under_jit_sums_to_scale():
    x = jax.random.normal(jax.random.key(0), (50,))
    p = jax.jit(jp.projection_simplex)(x, 2.0)
    np.testing.assert_allclose(p.sum(), 2.0, rtol=1e-5)
    assert (p >= 0).all()
