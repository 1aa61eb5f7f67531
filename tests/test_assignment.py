"""jopt.assignment: optimal costs equal optax's and scipy's, shapes, jit and vmap."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax.assignment as oa
import pytest
import scipy.optimize

import jopt.assignment as ja


@pytest.mark.parametrize("n, m", [(0, 3), (1, 1), (3, 5), (5, 3), (6, 6)])
def test_optimal_cost_matches_scipy_and_optax(n, m):
    costs = jax.random.normal(jax.random.key(n * 10 + m), (n, m))
    rows, cols = scipy.optimize.linear_sum_assignment(np.asarray(costs))
    for fn in (ja.hungarian_algorithm, ja.base_hungarian_algorithm):
        i, j = fn(costs)
        assert i.shape == j.shape == (min(n, m),)
        assert jnp.issubdtype(i.dtype, jnp.integer) and jnp.issubdtype(j.dtype, jnp.integer)
        assert len(set(i.tolist())) == len(set(j.tolist())) == min(n, m)
        if fn is ja.base_hungarian_algorithm:  # the other follows optax's order
            assert (np.diff(np.asarray(i)) > 0).all()
        np.testing.assert_allclose(costs[i, j].sum(), costs[rows, cols].sum(), rtol=1e-5, atol=1e-6)
    oi, oj = oa.hungarian_algorithm(costs)
    np.testing.assert_allclose(costs[i, j].sum(), costs[oi, oj].sum(), rtol=1e-5, atol=1e-6)


def test_integer_costs_against_brute_force():
    cost = jnp.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 2, 8]])
    i, j = ja.hungarian_algorithm(cost)
    brute = min(sum(int(cost[r, c]) for r, c in zip(rows, range(3), strict=True))
                for rows in itertools.permutations(range(4), 3))  # fmt: skip
    assert int(cost[i, j].sum()) == brute


def test_jit_and_vmap():
    costs = jax.random.uniform(jax.random.key(1), (4, 3, 5))
    i, j = jax.jit(jax.vmap(ja.hungarian_algorithm))(costs)
    for k in range(4):
        rows, cols = scipy.optimize.linear_sum_assignment(np.asarray(costs[k]))
        np.testing.assert_allclose(
            costs[k][i[k], j[k]].sum(), costs[k][rows, cols].sum(), rtol=1e-5
        )
