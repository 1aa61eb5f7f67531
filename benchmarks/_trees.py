"""The parameter trees the benchmark runs on, by name."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


def _leaves(count: int, size: int, dtype=jnp.float32) -> dict:
    return {f"p{i:04d}": jnp.full((size,), 0.01 * (i % 7 + 1), dtype) for i in range(count)}


def transformer_params(layers: int = 4, width: int = 256, heads: int = 4) -> dict:
    """The parameter tree of a real Flax (Linen) transformer block stack."""
    import flax.linen as nn  # noqa: PLC0415 - benchmark-only dependency

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x):
            y = nn.LayerNorm()(x)
            x = x + nn.MultiHeadDotProductAttention(num_heads=heads)(y, y)
            y = nn.LayerNorm()(x)
            return x + nn.Dense(width)(nn.gelu(nn.Dense(4 * width)(y)))

    class Stack(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(layers):
                x = Block()(x)
            return nn.LayerNorm()(x)

    return Stack().init(jax.random.key(0), jnp.zeros((1, 8, width)))["params"]


def tree_builders(scale: float = 1.0) -> dict[str, Callable[[], dict]]:
    """Named builders; ``scale`` shrinks every tree (tests use a tiny scale)."""

    def n(x: int) -> int:
        return max(1, int(x * scale))

    return {
        "1x8M": lambda: {"w": jnp.full((n(8 * 2**20),), 0.01, jnp.float32)},
        "16x512K": lambda: _leaves(16, n(512 * 2**10)),
        "1024x4K": lambda: _leaves(n(1024) if scale < 1 else 1024, n(4 * 2**10)),
        "transformer": lambda: transformer_params(layers=max(1, n(4)), width=max(8, n(256))),
        "16x512K-bf16": lambda: _leaves(16, n(512 * 2**10), jnp.bfloat16),
    }


def parameter_count(tree) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))
