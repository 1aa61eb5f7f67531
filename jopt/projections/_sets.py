"""Euclidean projections onto convex sets, for projected gradient methods.

Each function returns :math:`\\operatorname{argmin}_{p \\in C} \\|x - p\\|_2^2` for its set
:math:`C`, treating the whole tree :math:`x` as one vector. A projected gradient step
is ``params = projection(jopt.apply_updates(params, updates))``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jopt import tree as jtree


def projection_non_negative(tree: Any) -> Any:
    r"""Projection onto the non-negative orthant, :math:`p = \max(x, 0)`.

    .. math::  \operatorname{argmin}_p \|x - p\|_2^2 \ \text{s.t.}\ p \ge 0

    Args:
      tree: the tree to project.

    References:
      Boyd & Vandenberghe, Convex Optimization, section 8.1 (2004).
    """
    return jax.tree.map(jax.nn.relu, tree)


def projection_box(tree: Any, lower: Any, upper: Any) -> Any:
    r"""Projection onto a box, :math:`p = \min(\max(x, \text{lower}), \text{upper})`.

    .. math::  \operatorname{argmin}_p \|x - p\|_2^2 \ \text{s.t.}\ l \le p \le u

    Args:
      tree: the tree to project.
      lower: :math:`l`, a scalar or a tree like ``tree`` of lower bounds.
      upper: :math:`u`, a scalar or a tree like ``tree`` of upper bounds.

    References:
      Boyd & Vandenberghe, Convex Optimization, section 8.1 (2004).
    """
    # A scalar bound applies to every leaf (optax 0.2.8 needs a tree unless ``tree`` is one array).
    lower, upper = (_broadcast(bound, tree) for bound in (lower, upper))
    return jax.tree.map(jnp.clip, tree, lower, upper)


def _broadcast(bound: Any, tree: Any) -> Any:
    if jax.tree_util.treedef_is_leaf(jax.tree.structure(bound)):
        return jax.tree.map(lambda _: bound, tree)
    return bound


def projection_hypercube(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the hypercube :math:`[0, \text{scale}]^n` (a :func:`projection_box`).

    .. math::  \operatorname{argmin}_p \|x - p\|_2^2 \ \text{s.t.}\ 0 \le p \le \text{scale}

    Args:
      tree: the tree to project.
      scale: the side, a scalar or a tree like ``tree`` (default 1).

    References:
      Boyd & Vandenberghe, Convex Optimization, section 8.1 (2004).
    """
    return projection_box(tree, lower=0, upper=scale)


def _unit_simplex(values: jax.Array) -> jax.Array:
    # Sort-based threshold: with u sorted in decreasing order, rho is the number of
    # j with u_j > (u_1 + ... + u_j - 1) / j; p = max(v - theta, 0) with
    # theta = (u_1 + ... + u_rho - 1) / rho. Differentiable through sort and gather.
    descending = -jnp.sort(-values)
    partial_sums = jnp.cumsum(descending)
    ranks = jnp.arange(1, values.shape[0] + 1, dtype=values.dtype)
    support = jnp.count_nonzero(descending * ranks > partial_sums - 1)
    theta = (partial_sums[support - 1] - 1) / support.astype(values.dtype)
    return jax.nn.relu(values - theta)


def projection_simplex(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the simplex of total ``scale``.

    .. math::  \operatorname{argmin}_p \|x - p\|_2^2 \ \text{s.t.}\ p \ge 0,\ \sum_i p_i = s

    Solved exactly: :math:`p = \max(x - \theta, 0)` with the threshold :math:`\theta`
    found from the sorted entries.

    Args:
      tree: the tree to project (all its leaves form one vector).
      scale: :math:`s > 0`, the sum of the result (default 1, the probability simplex).

    References:
      Duchi et al., `Efficient projections onto the l1-ball for learning in high
      dimensions <https://doi.org/10.1145/1390156.1390191>`_, ICML 2008.
    """
    values, unravel = ravel_pytree(tree)
    return unravel(scale * _unit_simplex(values / scale))


def projection_l1_sphere(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the l1 sphere: sign(x) times the simplex projection of :math:`|x|`.

    .. math::  \operatorname{argmin}_p \|x - p\|_2^2 \ \text{s.t.}\ \|p\|_1 = s

    Args:
      tree: the tree to project.
      scale: :math:`s`, the radius (default 1).

    References:
      Duchi et al., `Efficient projections onto the l1-ball for learning in high
      dimensions <https://doi.org/10.1145/1390156.1390191>`_, ICML 2008.
    """
    magnitudes = projection_simplex(jax.tree.map(jnp.abs, tree), scale)
    return jtree.mul(jax.tree.map(jnp.sign, tree), magnitudes)


def projection_l1_ball(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the l1 ball: :math:`x` if inside, else :func:`projection_l1_sphere`.

    .. math::  \operatorname{argmin}_p \|x - p\|_2^2 \ \text{s.t.}\ \|p\|_1 \le s

    Args:
      tree: the tree to project.
      scale: :math:`s`, the radius (default 1).

    References:
      Duchi et al., `Efficient projections onto the l1-ball for learning in high
      dimensions <https://doi.org/10.1145/1390156.1390191>`_, ICML 2008.
    """
    inside = jtree.norm(tree, ord=1) <= scale
    return jax.lax.cond(inside, lambda t: t, lambda t: projection_l1_sphere(t, scale), tree)


def projection_l2_sphere(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the l2 sphere, :math:`p = s\,x / \|x\|_2`.

    .. math::  \operatorname{argmin}_p \|x - p\|_2^2 \ \text{s.t.}\ \|p\|_2 = s

    Args:
      tree: the tree to project.
      scale: :math:`s`, the radius (default 1).

    References:
      Boyd & Vandenberghe, Convex Optimization, section 8.1 (2004).
    """
    return jtree.scale(scale / jtree.norm(tree), tree)


def projection_l2_ball(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the l2 ball, :math:`p = x \cdot s / \max(\|x\|_2, s)`.

    .. math::  \operatorname{argmin}_p \|x - p\|_2^2 \ \text{s.t.}\ \|p\|_2 \le s

    Args:
      tree: the tree to project.
      scale: :math:`s`, the radius (default 1).

    References:
      Boyd & Vandenberghe, Convex Optimization, section 8.1 (2004).
    """
    squared = jtree.norm(tree, squared=True)
    return jtree.scale(scale / jnp.sqrt(jnp.maximum(squared, scale**2)), tree)


def projection_linf_ball(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the l-infinity ball: each entry clipped to :math:`[-s, s]`.

    .. math::  \operatorname{argmin}_p \|x - p\|_2^2 \ \text{s.t.}\ \|p\|_\infty \le s

    Args:
      tree: the tree to project.
      scale: :math:`s`, the radius (default 1).

    References:
      Boyd & Vandenberghe, Convex Optimization, section 8.1 (2004).
    """
    return projection_box(tree, jtree.full_like(tree, -scale), jtree.full_like(tree, scale))


def projection_vector(x: Any, a: Any) -> Any:
    r"""Projection onto the line spanned by ``a``.

    .. math::  \operatorname{proj}_a x = \frac{\langle x, a\rangle}{\langle a, a\rangle}\, a

    Args:
      x: the tree to project.
      a: a tree like ``x``, the direction.

    References:
      Boyd & Vandenberghe, Convex Optimization, section 8.1 (2004).
    """
    return jtree.scale(jtree.vdot(x, a) / jtree.vdot(a, a), a)


def projection_hyperplane(x: Any, a: Any, b: Any) -> Any:
    r"""Projection onto the hyperplane :math:`\langle a, p\rangle = b`.

    .. math::  p = x + \frac{b - \langle a, x\rangle}{\langle a, a\rangle}\, a

    Args:
      x: the tree to project.
      a: a tree like ``x``, the hyperplane's normal.
      b: a scalar, its offset.

    References:
      Boyd & Vandenberghe, Convex Optimization, section 8.1.1 (2004).
    """
    return jtree.add_scale(x, (b - jtree.vdot(x, a)) / jtree.vdot(a, a), a)


def projection_halfspace(x: Any, a: Any, b: Any) -> Any:
    r"""Projection onto the halfspace :math:`\langle a, p\rangle \le b`.

    .. math::  p = x + \frac{\min(b - \langle a, x\rangle, 0)}{\langle a, a\rangle}\, a

    Args:
      x: the tree to project.
      a: a tree like ``x``, the halfspace's normal.
      b: a scalar, its offset.

    References:
      Boyd & Vandenberghe, Convex Optimization, section 8.1.1 (2004).
    """
    step = jnp.minimum((b - jtree.vdot(x, a)) / jtree.vdot(a, a), 0)
    return jtree.add_scale(x, step, a)
