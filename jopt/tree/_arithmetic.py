"""Pytree arithmetic shared by every transform (re-exported as ``jopt.tree``).

Transforms never write their own tree loop for something that is here. ``None``
leaves (masked-out parameters) are kept as ``None`` by the elementwise helpers.
Reductions accumulate in the leaves' dtype, as optax does, so results match it
bit for bit.
"""

from __future__ import annotations

import builtins
import functools
import math
import operator
from typing import Any

import jax
import jax.numpy as jnp

_is_none = lambda x: x is None  # noqa: E731


def _map(f, *trees):
    return jax.tree.map(lambda x, *r: None if x is None else f(x, *r), *trees, is_leaf=_is_none)


def add(tree_x: Any, tree_y: Any, *others: Any) -> Any:
    """Leafwise sum of two or more trees."""
    return _map(lambda *xs: functools.reduce(operator.add, xs), tree_x, tree_y, *others)


def sub(tree_x: Any, tree_y: Any) -> Any:
    """Leafwise ``x - y``."""
    return _map(operator.sub, tree_x, tree_y)


def mul(tree_x: Any, tree_y: Any) -> Any:
    """Leafwise ``x * y``."""
    return _map(operator.mul, tree_x, tree_y)


def div(tree_x: Any, tree_y: Any) -> Any:
    """Leafwise ``x / y``."""
    return _map(operator.truediv, tree_x, tree_y)


def scale(scalar: Any, tree: Any) -> Any:
    """Multiply every leaf by ``scalar``."""
    return _map(lambda x: scalar * x, tree)


def add_scale(tree_x: Any, scalar: Any, tree_y: Any) -> Any:
    """Leafwise ``x + scalar * y``.

    The scalar is made a JAX array first, as optax does, so Python-number leaves give
    arrays too (a Python float scalar stays weakly typed and keeps the leaves' dtype).
    """
    scalar = jnp.asarray(scalar)
    return _map(lambda x, y: x + scalar * y, tree_x, tree_y)


# Compiled (inlined under an outer jit) so that, run eagerly, the conjugate and the
# product fuse into one kernel and round as jnp.vdot (what optax 0.2.8 calls) does.
@functools.partial(jax.jit, inline=True)
def _vdot_leaf(a, b):
    if jnp.iscomplexobj(a):
        a = jnp.conj(a)
    # tensordot over all axes avoids the ravel of jnp.vdot (a reshape that
    # forces communication when the leaf is sharded).
    return jnp.tensordot(a, b, a.ndim, precision=jax.lax.Precision.HIGHEST)


def vdot(tree_x: Any, tree_y: Any) -> jax.Array:
    """Inner product of two trees, :math:`\\sum_i \\langle x_i, y_i \\rangle`."""
    return jax.tree.reduce(operator.add, jax.tree.map(_vdot_leaf, tree_x, tree_y), initializer=0)


def sum(tree: Any, associative_reduction: bool = False) -> jax.Array:  # noqa: A001 - optax.tree.sum
    """Sum of every element of every leaf, :math:`\\sum_i \\sum_j x_{ij}`.

    Args:
      tree: a pytree of arrays.
      associative_reduction: combine the leaf sums as a balanced tree
        (``jax.tree.reduce_associative``), which compiles faster on trees with many
        leaves; the summation order, hence the last bits, can differ.
    """
    sums = jax.tree.map(jnp.sum, tree)
    if associative_reduction:
        return jax.tree.reduce_associative(operator.add, sums, identity=0)
    return jax.tree.reduce(operator.add, sums, initializer=0)


def _reduce_nonempty(reduce_leaf, combine, tree, start):
    # Empty leaves have no max/min (jnp.max raises) and are skipped; the start is a
    # Python float, so it is weakly typed and keeps e.g. a bfloat16 tree's dtype.
    values = [reduce_leaf(x) for x in jax.tree.leaves(tree) if jnp.size(x) > 0]
    return jnp.asarray(functools.reduce(combine, values, start))


def max(tree: Any) -> jax.Array:  # noqa: A001
    """Largest element over all leaves (-inf for a tree without elements)."""
    return _reduce_nonempty(jnp.max, jnp.maximum, tree, -math.inf)


def min(tree: Any) -> jax.Array:  # noqa: A001
    """Smallest element over all leaves (inf for a tree without elements)."""
    return _reduce_nonempty(jnp.min, jnp.minimum, tree, math.inf)


def abs_sq(x: Any) -> jax.Array:
    """Squared modulus, :math:`|x|^2 = \\operatorname{Re}(\\bar x\\,x)`, real for complex input.

    jopt's one squared modulus for elementwise maths (moments, clipping, RMS). For complex
    leaves it is optax's ``numerics.abs_sq``, ``(conj(x) * x).real``, which eager JAX rounds
    differently from ``real(x)**2 + imag(x)**2`` in the last bit (the tree norm, like
    optax's, sums the latter).
    """
    return (jnp.conj(x) * x).real if jnp.iscomplexobj(x) else jnp.square(x)


def _modulus_sq(x: Any) -> jax.Array:
    # optax's tree norm sums Re(x)^2 + Im(x)^2 per complex leaf, not abs_sq's conj(x) * x:
    # eager JAX rounds the two differently in the last bit, and the norm must match optax's.
    return jnp.square(x.real) + jnp.square(x.imag) if jnp.iscomplexobj(x) else jnp.square(x)


def l2_norm(tree: Any, squared: bool = False) -> jax.Array:
    """Euclidean norm of the whole tree, :math:`\\sqrt{\\sum_i \\|x_i\\|_2^2}`."""
    sq = sum(jax.tree.map(_modulus_sq, tree))
    return jnp.asarray(sq if squared else jnp.sqrt(sq))


def l1_norm(tree: Any) -> jax.Array:
    """Sum of absolute values over the tree."""
    return jnp.asarray(sum(jax.tree.map(jnp.abs, tree)))


def linf_norm(tree: Any) -> jax.Array:
    """Largest absolute value over the tree."""
    return jnp.asarray(max(jax.tree.map(jnp.abs, tree)))


def norm(tree: Any, ord: int | float | str | None = None, squared: bool = False) -> jax.Array:  # noqa: A002
    """Vector norm of a tree: ``ord`` is None or 2 (Euclidean), 1, or ``inf``."""
    if ord is None or ord == 2:
        return l2_norm(tree, squared)
    if ord == 1:
        value = l1_norm(tree)
    elif ord in (jnp.inf, "inf", "infinity"):
        value = linf_norm(tree)
    else:
        raise ValueError(f"ord must be one of None, 1, 2, inf, got {ord!r}")
    return abs_sq(value) if squared else value


def conj(tree: Any) -> Any:
    """Leafwise complex conjugate, :math:`\\bar x`."""
    return jax.tree.map(jnp.conj, tree)


def real(tree: Any) -> Any:
    """Leafwise real part, :math:`\\operatorname{Re}(x)`."""
    return jax.tree.map(jnp.real, tree)


def allclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: bool = False) -> Any:
    """Whether every leaf pair satisfies :math:`|a - b| \\le atol + rtol\\,|b|` (``jnp.allclose``).

    Args:
      a: a tree.
      b: a tree of the same structure.
      rtol: relative tolerance.
      atol: absolute tolerance.
      equal_nan: count NaNs in the same places as equal.
    """
    close = jax.tree.map(
        lambda x, y: jnp.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan), a, b
    )
    return functools.reduce(operator.and_, jax.tree.leaves(close), True)


def batch_shape(tree: Any, shape: tuple[int, ...] = ()) -> Any:
    """Each leaf broadcast to leading batch dimensions ``shape``: ``(*shape, *leaf.shape)``.

    Args:
      tree: a pytree of arrays.
      shape: the batch dimensions to put in front.
    """
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (*shape, *jnp.shape(x))), tree)


def zeros_like(tree: Any, dtype: Any = None) -> Any:
    """A tree of zeros (optionally of ``dtype``)."""
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def ones_like(tree: Any, dtype: Any = None) -> Any:
    """A tree of ones (optionally of ``dtype``)."""
    return jax.tree.map(lambda x: jnp.ones_like(x, dtype=dtype), tree)


def full_like(tree: Any, fill_value: Any, dtype: Any = None) -> Any:
    """A tree filled with ``fill_value`` (optionally of ``dtype``)."""
    return jax.tree.map(lambda x: jnp.full_like(x, fill_value, dtype=dtype), tree)


def clip(tree: Any, min_value: Any = None, max_value: Any = None) -> Any:
    """Clip every leaf to ``[min_value, max_value]``."""
    return jax.tree.map(lambda x: jnp.clip(x, min_value, max_value), tree)


def all_finite(tree: Any) -> jax.Array:
    """Whether every entry of every leaf is finite (no inf, no NaN): a bool scalar.

    Integer and boolean leaves are always finite. The one non-finite test shared by
    :func:`jopt.apply_if_finite` and the training loop's skipping of bad steps.
    """
    # x * 0 is 0 where x is finite and NaN where it is inf or NaN, so one sum of those
    # zeros (it cannot overflow) tells; XLA fuses each product-and-sum into the pass that
    # produced the leaf, where a per-leaf all(isfinite) costs a kernel of its own per leaf
    # (2x the step time of a small MLP on CPU).
    zeros = [
        jnp.sum(jnp.asarray(x) * 0)
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(x), jnp.inexact)
    ]
    return jnp.isfinite(sum(zeros)) if zeros else jnp.asarray(True)


def where(condition: Any, tree_x: Any, tree_y: Any) -> Any:
    """Leafwise ``jnp.where(condition, x, y)`` with one scalar condition."""
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), tree_x, tree_y)


def update_moment(updates: Any, moments: Any, decay: Any, order: int) -> Any:
    r"""Exponential moving average of the ``order``-th power: :math:`(1-\beta) g^k + \beta m`."""
    return _map(lambda g, m: (1 - decay) * (g**order) + decay * m, updates, moments)


def update_moment_per_elem_norm(updates: Any, moments: Any, decay: Any, order: int) -> Any:
    r"""EMA of :math:`|g|^k` (the modulus for complex leaves): :math:`(1-\beta)|g|^k + \beta m`."""

    def power(g):
        if not jnp.iscomplexobj(g):
            return g**order
        half = order / 2
        return abs_sq(g) ** (int(half) if half.is_integer() else half)

    return _map(lambda g, m: (1 - decay) * power(g) + decay * m, updates, moments)


def update_infinity_moment(updates: Any, moments: Any, decay: Any, eps: Any) -> Any:
    r"""Exponentially weighted infinity norm: :math:`\max(|g| + \epsilon, \beta m)`."""
    return _map(lambda g, m: jnp.maximum(jnp.abs(g) + eps, decay * m), updates, moments)


# Jitted (and inlined into an enclosing jit) because eager `decay**count` takes a
# different power kernel than the compiled one and differs by several ulps from
# optax, whose bias correction is jitted the same way.
@functools.partial(jax.jit, inline=True)
def bias_correction(moment: Any, decay: Any, count: Any) -> Any:
    r"""Divide by :math:`1-\beta^t`, computed in high precision then cast to each leaf's dtype."""
    # decay**count in bfloat16 rounds to 1 early and divides by zero; compute it
    # in the count/decay precision, then divide in the moment's own dtype.
    correction = 1 - decay**count
    return jax.tree.map(lambda m: m / jnp.asarray(correction).astype(m.dtype), moment)


def safe_increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the dtype's maximum instead of overflowing.

    Raises a ValueError, as optax's ``safe_increment`` does, for a dtype that is neither
    integer nor real floating (bool, complex): such a count has no maximum to saturate at.
    """
    count = jnp.asarray(count)
    if not jnp.issubdtype(count.dtype, jnp.integer) and not jnp.issubdtype(
        count.dtype, jnp.floating
    ):
        raise ValueError(
            f"count must have an integer or real floating dtype, got {count.dtype}; "
            "count with jnp.int32 (or a float dtype)"
        )
    info = jnp.iinfo if jnp.issubdtype(count.dtype, jnp.integer) else jnp.finfo
    top = jnp.asarray(info(count.dtype).max, count.dtype)
    return jnp.where(count < top, count + jnp.asarray(1, count.dtype), top)


def _cast_leaf(x: Any, dtype: Any) -> Any:
    # A strongly typed array of the dtype already is returned as it is: astype would
    # change nothing but cost Python calls per leaf at trace time (1024-leaf steps).
    if isinstance(x, jax.Array) and x.dtype == dtype and not x.weak_type:
        return x
    return jnp.asarray(x).astype(dtype)


def cast(tree: Any, dtype: Any) -> Any:
    """Cast every leaf to ``dtype`` (None leaves the tree unchanged)."""
    if dtype is None:
        return tree
    dtype = jnp.dtype(dtype)
    return jax.tree.map(lambda x: _cast_leaf(x, dtype), tree)


def cast_like(tree: Any, other_tree: Any) -> Any:
    """Cast each leaf of ``tree`` to the dtype of the matching leaf of ``other_tree``.

    A leaf of ``other_tree`` without a dtype (a Python number) leaves its match as it is,
    as in optax.
    """
    return jax.tree.map(
        lambda x, o: _cast_leaf(x, o.dtype) if hasattr(o, "dtype") else x, tree, other_tree
    )


def _order(which: str, a: Any, b: Any) -> Any:
    """The higher/lower of two dtypes, where ``a <= b`` means ``a`` promotes to ``b``."""
    promoted = jnp.promote_types(a, b)
    if promoted not in (jnp.dtype(a), jnp.dtype(b)):
        raise ValueError(
            f"dtypes {jnp.dtype(a)} and {jnp.dtype(b)} do not promote to one another, so "
            f"neither is the {which}; pass mixed_dtype_handler='promote' (gives {promoted})"
        )
    higher = promoted
    lower = jnp.dtype(b) if higher == jnp.dtype(a) else jnp.dtype(a)
    return higher if which == "highest" else lower


def dtype(tree: Any, mixed_dtype_handler: str | None = None) -> Any:
    """The common dtype of the leaves.

    With no handler all leaves must share one dtype; ``'promote'`` promotes them;
    ``'highest'``/``'lowest'`` pick the leaf dtype every other promotes to (or from),
    as optax does, and raise when two dtypes do not promote to one another.
    """
    dtypes = [jnp.result_type(x) for x in jax.tree.leaves(tree)]
    if not dtypes:
        return jnp.result_type(float)
    if mixed_dtype_handler is None:
        if len(builtins.set(dtypes)) > 1:
            raise ValueError(
                f"tree has mixed dtypes {sorted({str(d) for d in dtypes})}; pass "
                "mixed_dtype_handler='promote', 'highest' or 'lowest'"
            )
        return dtypes[0]
    if mixed_dtype_handler == "promote":
        return jnp.result_type(*dtypes)
    if mixed_dtype_handler in ("highest", "lowest"):
        return functools.reduce(functools.partial(_order, mixed_dtype_handler), dtypes)
    raise ValueError(
        "mixed_dtype_handler must be one of None, 'promote', 'highest', 'lowest', "
        f"got {mixed_dtype_handler!r}"
    )


def _shape(x) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else jnp.shape(x)


def size(tree: Any) -> int:
    """Total number of elements over all leaves (works on ``jax.ShapeDtypeStruct`` leaves)."""
    return builtins.sum(math.prod(_shape(x)) for x in jax.tree.leaves(tree))


def bytes_size(tree: Any) -> int:
    """Total bytes over all leaves (works on ``jax.ShapeDtypeStruct`` leaves)."""
    return builtins.sum(
        math.prod(_shape(x))
        * jnp.dtype(x.dtype if hasattr(x, "dtype") else jnp.result_type(x)).itemsize
        for x in jax.tree.leaves(tree)
    )
