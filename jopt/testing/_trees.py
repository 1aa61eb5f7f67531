"""Trees to run a transform on, and comparisons that name the leaf (chex underneath)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _chex():
    try:
        import chex  # noqa: PLC0415 - a test-time dependency, the 'testing' extra
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("jopt.testing needs chex; install it with `pip install chex`") from err
    return chex


def random_like(tree: Any, seed: int, scale: float = 1.0) -> Any:
    """A tree with ``tree``'s structure, shapes and dtypes and normal random values.

    Args:
      tree: a pytree of arrays (or ``jax.ShapeDtypeStruct``).
      seed: NumPy generator seed; the same seed gives the same tree.
      scale: standard deviation of the values.
    """
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda x: jnp.asarray(rng.normal(size=jnp.shape(x)) * scale, jnp.result_type(x)), tree
    )


def nested_params(dtype: Any = jnp.float32) -> dict:
    """A small parameter tree with the corners transforms get wrong, the same on every call.

    Dicts, a list and a tuple, a matrix, vectors, scalar leaves and an empty subtree; values
    are normal draws of a fixed seed.

    Args:
      dtype: dtype of every leaf (pass ``jnp.bfloat16`` to check that bf16 stays bf16).
    """
    rng = np.random.default_rng(0)

    def arr(*shape):
        return jnp.asarray(rng.normal(size=shape), dtype)

    return {
        "dense": {"w": arr(4, 3), "b": arr(3)},
        "layers": [arr(2), (arr(2, 2), arr())],
        "scale": arr(),
        "empty": {},
    }


def bumpy_loss(params: Any) -> jax.Array:
    r"""A smooth, non-convex loss whose gradients change from step to step.

    .. math::  L(\theta) = \sum_i \sum_j \tfrac{i+1}{2}\,\theta_{ij}^2 + \sin(3\theta_{ij})
               + 0.1\,\theta_{ij}

    over leaves :math:`i` (in ``jax.tree.leaves`` order) and their entries :math:`j`: each
    leaf gets its own curvature, so per-leaf and whole-tree transforms give different
    updates. Computed in float32 whatever the leaves' dtype.
    """
    total = jnp.zeros([], jnp.float32)
    for i, leaf in enumerate(jax.tree.leaves(params)):
        x = jnp.asarray(leaf).astype(jnp.float32)
        total = total + jnp.sum(0.5 * (i + 1) * x**2 + jnp.sin(3.0 * x) + 0.1 * x)
    return total


def _without_keys(tree: Any) -> Any:
    """PRNG key arrays as their integer data, which NumPy and chex can compare."""

    def data(x):
        is_key = jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)
        return jax.random.key_data(x) if is_key else x

    return jax.tree.map(data, tree)


def _dtype_differs(a: Any, e: Any) -> bool:
    a_dtype, e_dtype = getattr(a, "dtype", None), getattr(e, "dtype", None)
    if a_dtype is not None and a_dtype == e_dtype:
        return False  # the common case, without JAX's slower canonicalisation
    return jnp.result_type(a) != jnp.result_type(e)


def _dtype_difference(actual: Any, expected: Any) -> str:
    """The first leaf whose dtype differs, as JAX sees them ('' if none).

    JAX's dtypes: a NumPy float64 reference equals a float32 result unless x64 is enabled.
    """
    pairs = zip(
        jax.tree_util.tree_flatten_with_path(actual)[0], jax.tree.leaves(expected), strict=True
    )
    for (path, a), e in pairs:
        if _dtype_differs(a, e):
            where = jax.tree_util.keystr(path)
            return f"dtype differs at {where}: {jnp.result_type(a)} vs {jnp.result_type(e)}"
    return ""


def _all_close(actual: Any, expected: Any, rtol: float, atol: float) -> bool:
    """A quick yes/no (structure, dtypes, values) before chex builds a message on failure.

    One host transfer and one vectorised comparison for the whole tree: the step-by-step
    checks of :func:`assert_matches` cost little beside the steps themselves.
    """
    a_leaves, a_def = jax.tree.flatten(actual)
    e_leaves, e_def = jax.tree.flatten(expected)
    if a_def != e_def or any(map(_dtype_differs, a_leaves, e_leaves)):
        return False
    a_leaves, e_leaves = jax.device_get((a_leaves, e_leaves))
    if any(np.shape(a) != np.shape(e) for a, e in zip(a_leaves, e_leaves, strict=True)):
        return False
    a64 = np.concatenate([np.ravel(a).astype(np.float64) for a in a_leaves] + [np.zeros(0)])
    e64 = np.concatenate([np.ravel(e).astype(np.float64) for e in e_leaves] + [np.zeros(0)])
    with np.errstate(invalid="ignore"):  # inf - inf
        close = (np.abs(a64 - e64) <= atol + rtol * np.abs(e64)) | (a64 == e64)
    return bool(np.all(close | (np.isnan(a64) & np.isnan(e64))))


def _close(what: str, actual: Any, expected: Any, rtol: float, atol: float) -> None:
    """chex's leaf-naming tree comparison, with ``what`` (step, property) in front."""
    actual, expected = _without_keys(actual), _without_keys(expected)
    if _all_close(actual, expected, rtol, atol):
        return
    chex = _chex()
    try:
        chex.assert_trees_all_equal_structs(actual, expected)
        if message := _dtype_difference(actual, expected):
            raise AssertionError(message)
        chex.assert_trees_all_close(actual, expected, rtol=rtol, atol=atol)
    except (AssertionError, ValueError) as err:
        raise AssertionError(f"{what}: {err}") from None
    raise AssertionError(f"{what}: the trees differ beyond rtol={rtol}, atol={atol}")


def assert_trees_close(actual: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Assert two pytrees have one structure, the same leaf dtypes and close values.

    ``|actual - expected| <= atol + rtol * |expected|`` leaf by leaf (NaNs in the same places
    are equal); the ``AssertionError`` names the first leaf path that differs.

    Args:
      actual: the tree under test.
      expected: the reference tree.
      rtol, atol: relative and absolute tolerances (``0, 0`` for exact equality).

    Example:
      >>> import jax.numpy as jnp, jopt.testing
      >>> jopt.testing.assert_trees_close({"w": jnp.ones(2)}, {"w": jnp.ones(2) + 1e-7})
    """
    _close("trees differ", actual, expected, rtol, atol)


def _same_layout(what: str, actual: Any, expected: Any) -> None:
    a, e = jax.tree.structure(actual), jax.tree.structure(expected)
    if a != e:
        raise AssertionError(f"{what}: structure changed from {e} to {a}")
    chex = _chex()
    try:
        chex.assert_trees_all_equal_shapes_and_dtypes(actual, expected)
    except AssertionError as err:
        raise AssertionError(f"{what}: {err}") from None
