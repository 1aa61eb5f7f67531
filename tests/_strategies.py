"""Hypothesis strategies for random pytrees, shared by every property test.

``pytrees()`` draws nested dicts, lists and tuples whose leaves are small float
arrays (scalars included) of the requested dtypes; ``pytree_pairs()`` draws a
tree and a second tree of the same structure, shapes and dtypes (gradients).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

FLOAT_DTYPES = (jnp.float32, jnp.bfloat16)


def shapes(max_dims: int = 3, min_side: int = 1, max_side: int = 4) -> st.SearchStrategy:
    """Array shapes with up to ``max_dims`` axes (``()`` included)."""
    return st.lists(st.integers(min_side, max_side), max_size=max_dims).map(tuple)


def arrays(
    dtypes=FLOAT_DTYPES, max_dims: int = 3, min_side: int = 1, scale: float = 1.0
) -> st.SearchStrategy:
    """A JAX array of finite values drawn from a seeded normal distribution."""

    @st.composite
    def draw(draw_):
        shape = draw_(shapes(max_dims, min_side))
        dtype = draw_(st.sampled_from(dtypes))
        seed = draw_(st.integers(0, 2**31 - 1))
        values = np.random.default_rng(seed).normal(size=shape) * scale
        return jnp.asarray(values, dtype)

    return draw()


def pytrees(
    dtypes=FLOAT_DTYPES, max_leaves: int = 6, max_dims: int = 3, min_side: int = 1
) -> st.SearchStrategy:
    """Nested dict/list/tuple pytrees with at least one array leaf."""
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


def like(tree, seed: int, scale: float = 1.0):
    """A tree with ``tree``'s structure, shapes and dtypes and random values."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda x: jnp.asarray(rng.normal(size=jnp.shape(x)) * scale, jnp.result_type(x)), tree
    )


def pytree_pairs(dtypes=FLOAT_DTYPES, **kwargs) -> st.SearchStrategy:
    """``(params, grads)``: two trees of identical structure, shapes and dtypes."""
    return st.tuples(pytrees(dtypes, **kwargs), st.integers(0, 2**31 - 1)).map(
        lambda pair: (pair[0], like(pair[0], pair[1]))
    )
