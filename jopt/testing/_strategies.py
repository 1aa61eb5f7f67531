"""Hypothesis strategies for parameter pytrees; hypothesis is imported when one is built."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jopt.testing._trees import random_like

FLOAT_DTYPES = (jnp.float32, jnp.bfloat16)


def _st():
    try:
        from hypothesis import strategies  # noqa: PLC0415 - optional, the 'testing' extra
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "jopt.testing's strategies need hypothesis; `pip install jopt[testing]`"
        ) from err
    return strategies


def shapes(max_dims: int = 3, min_side: int = 1, max_side: int = 4):
    """Hypothesis strategy: array shapes with up to ``max_dims`` axes (``()`` included)."""
    st = _st()
    return st.lists(st.integers(min_side, max_side), max_size=max_dims).map(tuple)


def arrays(dtypes=FLOAT_DTYPES, max_dims: int = 3, min_side: int = 1, scale: float = 1.0):
    """Hypothesis strategy: a JAX array of finite normal values of one of ``dtypes``."""
    st = _st()

    @st.composite
    def draw(draw_):
        shape = draw_(shapes(max_dims, min_side))
        dtype = draw_(st.sampled_from(dtypes))
        seed = draw_(st.integers(0, 2**31 - 1))
        return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale, dtype)

    return draw()


def pytrees(dtypes=FLOAT_DTYPES, max_leaves: int = 6, max_dims: int = 3, min_side: int = 1):
    """Hypothesis strategy: nested dict/list/tuple pytrees with at least one array leaf.

    Args:
      dtypes: leaf dtypes drawn from (float32 and bfloat16 by default).
      max_leaves: bound on the number of leaves.
      max_dims: most axes of a leaf (scalars included).
      min_side: smallest axis length (0 draws empty arrays).
    """
    st = _st()
    leaves = arrays(dtypes, max_dims, min_side)
    keys = st.text("abcdefgh", min_size=1, max_size=3)

    def extend(children):
        return st.one_of(
            st.lists(children, min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=3).map(tuple),
            st.dictionaries(keys, children, min_size=1, max_size=3),
        )

    tree = st.recursive(leaves, extend, max_leaves=max_leaves)
    return tree.filter(lambda t: len(jax.tree.leaves(t)) > 0)


def pytree_pairs(dtypes=FLOAT_DTYPES, **kwargs):
    """Hypothesis strategy: ``(params, grads)``, two trees of one structure, shapes and dtypes."""
    st = _st()
    return st.tuples(pytrees(dtypes, **kwargs), st.integers(0, 2**31 - 1)).map(
        lambda pair: (pair[0], random_like(pair[0], pair[1]))
    )
