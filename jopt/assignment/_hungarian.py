"""The linear assignment problem, solved by the Hungarian algorithm with potentials."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _augment(costs, state, row):
    """Add ``row`` (1-based) to the matching along a shortest augmenting path.

    Dijkstra over the columns with reduced costs ``c[i, j] - u[i] - v[j]``; column 0 is a
    dummy holding the new row. ``match[j]`` is the row matched to column j (0: none).
    """
    u, v, match = state
    m = v.shape[0]
    match = match.at[0].set(row)
    start = (jnp.zeros(m, bool), jnp.full(m, jnp.inf, costs.dtype), jnp.zeros(m, int), 0, u, v)

    def not_done(carry):
        used, _, _, column, _, _ = carry
        return match[column] != 0

    def grow(carry):
        used, slack, way, column, u, v = carry
        used = used.at[column].set(True)
        reduced = costs[match[column]] - u[match[column]] - v
        closer = ~used & (reduced < slack)
        slack = jnp.where(closer, reduced, slack)
        way = jnp.where(closer, column, way)
        free_slack = jnp.where(used, jnp.inf, slack)
        nearest = jnp.argmin(free_slack)
        delta = free_slack[nearest]
        u = u.at[match].add(jnp.where(used, delta, 0))
        v = jnp.where(used, v - delta, v)
        slack = jnp.where(used, slack, slack - delta)
        return used, slack, way, nearest, u, v

    _, _, way, column, u, v = jax.lax.while_loop(
        not_done, grow, (*start[:3], jnp.asarray(0), *start[4:])
    )

    def flip(carry):
        match, column = carry
        previous = way[column]
        return match.at[column].set(match[previous]), previous

    match, _ = jax.lax.while_loop(lambda c: c[1] != 0, flip, (match, column))
    return u, v, match


def _solve_wide(cost_matrix):
    """Rows <= columns: ``(i, j)`` in optax's order (see :func:`hungarian_algorithm`)."""
    n, m = cost_matrix.shape
    # 1-based with a zero row and column in front, as the augmenting search expects.
    costs = jnp.zeros((n + 1, m + 1), cost_matrix.dtype).at[1:, 1:].set(cost_matrix)
    state = (jnp.zeros(n + 1, costs.dtype), jnp.zeros(m + 1, costs.dtype), jnp.zeros(m + 1, int))
    _, _, match = jax.lax.fori_loop(1, n + 1, lambda r, s: _augment(costs, s, r), state)
    row_plus_one = match[1:]  # per column: its row + 1, 0 where unmatched
    if n == m:
        return row_plus_one - 1, jnp.arange(m)
    # The n matched columns, by decreasing row (unmatched ones hold 0 and come last).
    rows, columns = jax.lax.top_k(row_plus_one, n)
    return rows - 1, columns


def hungarian_algorithm(cost_matrix: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""A minimum-cost assignment of rows to columns of an :math:`n\times m` cost matrix.

    .. math::  \min_{\pi} \sum_{k} C_{i_k, \pi(i_k)}

    over one-to-one pairings of :math:`\min(n, m)` rows with as many columns. Solved
    exactly by the Hungarian algorithm with row and column potentials (successive
    shortest augmenting paths, :math:`O(\min(n,m)^2 \max(n,m))`); jit- and vmap-safe.

    Args:
      cost_matrix: an :math:`n\times m` array of costs.

    Returns:
      ``(i, j)``, integer arrays of length :math:`\min(n, m)`, in optax's order (code
      indexes by it): a square matrix gives ``j = arange(n)`` and each column's row in
      ``i``; a wide one (:math:`n < m`) gives the rows in decreasing order with their
      columns; a tall one the columns in decreasing order with their rows. The cost is
      ``cost_matrix[i, j].sum()``.

    References:
      Kuhn, `The Hungarian method for the assignment problem
      <https://doi.org/10.1002/nav.3800020109>`_, 1955; Crouse, `On implementing 2D
      rectangular assignment algorithms <https://doi.org/10.1109/TAES.2016.140952>`_, 2016.
    """
    cost_matrix = jnp.asarray(cost_matrix)
    n, m = cost_matrix.shape
    if n == 0 or m == 0:
        return jnp.zeros(0, int), jnp.zeros(0, int)
    costs = cost_matrix.astype(jnp.result_type(float, cost_matrix.dtype))
    if n <= m:
        return _solve_wide(costs)
    columns, rows = _solve_wide(costs.T)
    return rows, columns


def base_hungarian_algorithm(cost_matrix: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""The assignment of :func:`hungarian_algorithm`, by increasing row, as optax's
    ``base_hungarian_algorithm`` orders it (optax keeps two implementations).

    .. math::  \min_{\pi} \sum_{k} C_{i_k, \pi(i_k)}

    Args:
      cost_matrix: an :math:`n\times m` array of costs.

    Returns:
      ``(i, j)`` with ``i`` increasing. Where several assignments are optimal (ties),
      optax's second implementation may pick another one; the cost is the same.

    References:
      Kuhn, `The Hungarian method for the assignment problem
      <https://doi.org/10.1002/nav.3800020109>`_, 1955.
    """
    i, j = hungarian_algorithm(cost_matrix)
    order = jnp.argsort(i)
    return i[order], j[order]
