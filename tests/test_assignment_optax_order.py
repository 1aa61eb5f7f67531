"""``assignment.hungarian_algorithm`` returns exactly what optax 0.2.8 returns, pairs and
order, on many random problems: square, wide and tall, continuous costs and integer ones
full of ties, eager and under jit (issue 25.7b: code indexes by that order)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax.assignment as oa
import pytest

import jopt.assignment as ja

_JOPT = jax.jit(jax.vmap(ja.hungarian_algorithm))
_OPTAX = jax.jit(jax.vmap(oa.hungarian_algorithm))
SHAPES = [(1, 1), (2, 2), (5, 5), (8, 8), (3, 7), (7, 3), (1, 4), (4, 1), (6, 9), (9, 6)]


def _problems(kind, n, m, count=12):
    keys = jax.random.split(jax.random.key(100 * n + m), count)
    if kind == "ties":  # few distinct values: many optimal assignments
        return [jax.random.randint(k, (n, m), 0, 3).astype(jnp.float32) for k in keys]
    return [jax.random.normal(k, (n, m)) for k in keys]


@pytest.mark.parametrize("kind", ["continuous", "ties"])
@pytest.mark.parametrize("n, m", SHAPES)
def test_same_pairs_in_the_same_order_as_optax_under_jit(kind, n, m):
    # One compiled program per shape and library, vmapped over many problems.
    batch = jnp.stack(_problems(kind, n, m, count=24))
    i, j = _JOPT(batch)
    oi, oj = _OPTAX(batch)
    np.testing.assert_array_equal(i, oi)
    np.testing.assert_array_equal(j, oj)


@pytest.mark.parametrize("n, m", [(4, 4), (3, 5), (5, 3)])
def test_same_pairs_in_the_same_order_as_optax_eager(n, m):
    for costs in _problems("ties", n, m, count=2):
        i, j = ja.hungarian_algorithm(costs)
        oi, oj = oa.hungarian_algorithm(costs)
        np.testing.assert_array_equal(i, oi)
        np.testing.assert_array_equal(j, oj)


@pytest.mark.parametrize("n, m", [(5, 5), (3, 7), (7, 3)])
def test_base_version_in_optax_base_order(n, m):
    # Unique optima: optax's second implementation returns the same pairs by row.
    for costs in _problems("continuous", n, m, count=2):
        i, j = ja.base_hungarian_algorithm(costs)
        oi, oj = oa.base_hungarian_algorithm(costs)
        np.testing.assert_array_equal(i, oi)
        np.testing.assert_array_equal(j, oj)
