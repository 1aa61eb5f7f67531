r"""Block-wise quantization of optimizer moments to 8 or 4 bits (codes plus one scale a block).

A tensor is cut into blocks of ``block_size`` consecutive values (row-major order). Each
block is divided by its absolute maximum :math:`s_b` (its *scale*), and each normalised
value :math:`x \in [-1, 1]` is stored as the index of the nearest entry of a fixed
*quantization map* :math:`q` (a sorted table of 256 or 16 values):

.. math::  c_i = \operatorname{argmin}_k |x_i / s_b - q_k|, \qquad \tilde x_i = q_{c_i}\, s_b

Nearest means: the largest :math:`k` with :math:`q_k \le x`, moved up by one when
:math:`x - q_k \ge (q_{k+1} - q_k)/2` (ties go up), the rule of torchao's
``quantize_8bit_with_qmap``; the codes here are bit-identical to torchao's. The encoder
does not search the map: it reads each code off a table indexed by the value's float32
bits, built once per map in NumPy from that rule (:func:`nearest_codes_reference`).

The maps:

- :func:`dynamic_map`: the *dynamic tree* map of Dettmers et al. (8-bit optimizers),
  values :math:`\pm 10^{-e}\cdot\text{(linear fraction)}` spread over ``max_exponent_bits``
  decades, plus 0 and 1. The 8-bit signed map (first moment) and unsigned map (second
  moment) are bitsandbytes' ``create_dynamic_map``; the 4-bit signed map is
  ``dynamic_map(True, 3, 4)`` (Li et al., 4-bit states).
- :func:`linear_map_without_zero`: the 4-bit second-moment map of Li et al., the 16 values
  :math:`k/16, k = 1..16`. It excludes 0 (a zero second moment would divide by ``eps``
  only, the zero-point problem of their section 4.1).

Two 4-bit codes are packed in one byte (the even element in the high nibble), so a 4-bit
tensor holds ``n / 2`` bytes of codes.

References:
  Dettmers, Lewis, Shleifer & Zettlemoyer, `8-bit Optimizers via Block-wise Quantization
  <https://arxiv.org/abs/2110.02861>`_, ICLR 2022;
  Li, Chen & Zhu, `Memory Efficient Optimizers with 4-bit States
  <https://arxiv.org/abs/2309.01507>`_, NeurIPS 2023.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# The stored scale is floored, as torchao's ``scale_tensor`` does, so a block of zeros
# divides by a positive number. Only the initial state (:func:`zeros`) has scale 0.
_SCALE_FLOOR = 1e-12


class QuantizedArray(NamedTuple):
    """A tensor stored as block-wise codes (a pytree of two arrays).

    The shape of the tensor, the map and the bit width are not stored: they follow from
    the parameter the moment belongs to and from the transform's settings.
    """

    codes: jax.Array  # uint8: the param's shape (8 bits), or (n // 2,) (4 bits, two a byte)
    scales: jax.Array  # float32, (n // block_size,): each block's absolute maximum (>= 1e-12)


def _linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace`` in float32, to the bit: a float32 step, then one fused
    multiply-add from the nearer end (exact in float64 here: a float32 times an index
    below 2**24 fits in 53 bits)."""
    start32, end32 = np.float32(start), np.float32(end)
    step = np.float64((end32 - start32) / np.float32(steps - 1))
    index = np.arange(steps, dtype=np.float64)
    low = np.float64(start32) + step * index
    high = np.float64(end32) - step * (steps - 1 - index)
    return np.where(index < steps // 2, low, high).astype(np.float32)


def dynamic_map(signed: bool = True, max_exponent_bits: int = 7, total_bits: int = 8) -> np.ndarray:
    """The dynamic (tree) quantization map of Dettmers et al., sorted, in float32.

    Args:
      signed: values in [-1, 1] (first moment) or [0, 1] (second moment).
      max_exponent_bits: the number of decades the map spans.
      total_bits: 8 (256 values) or 4 (16 values).

    Returns:
      The ``2 ** total_bits`` values of the map, ascending.
    """
    non_sign_bits = total_bits - 1  # bitsandbytes uses one bit less for unsigned maps too
    values: list[np.ndarray] = []
    for i in range(max_exponent_bits):
        items = 2 ** (i + non_sign_bits - max_exponent_bits + (0 if signed else 1)) + 1
        bounds = _linspace_f32(0.1, 1.0, items)
        means = (bounds[:-1] + bounds[1:]) / np.float32(2.0)
        decade = np.float32(10.0 ** (i - max_exponent_bits + 1))
        values.append(decade * means)
        if signed:
            values.append(-decade * means)
    extra = 2 ** (non_sign_bits - max_exponent_bits) - 1
    if extra > 0:  # bitsandbytes' extra values, in the last decade
        bounds = _linspace_f32(0.1, 1.0, extra + 1)
        means = (bounds[:-1] + bounds[1:]) / np.float32(2.0)
        values += [decade * means] + ([-decade * means] if signed else [])
    table = np.concatenate([*values, np.array([0.0, 1.0], np.float32)])
    table = np.concatenate([table, np.zeros(2**total_bits - table.size, np.float32)])
    return np.sort(table).astype(np.float32)


def linear_map_without_zero(total_bits: int = 4) -> np.ndarray:
    """The linear map :math:`k / 2^b, k = 1..2^b` (no zero), in float32."""
    return _linspace_f32(0.0, 1.0, 2**total_bits + 1)[1:]


def nearest_codes_reference(x: np.ndarray, qmap: np.ndarray) -> np.ndarray:
    """The nearest-entry rule in NumPy float32 (torchao's binary search, then its rounding)."""
    x = np.asarray(x, np.float32)
    codes = np.clip(np.searchsorted(qmap, x, side="right") - 1, 0, qmap.size - 1)
    up = np.minimum(codes + 1, qmap.size - 1)
    half_gap = (qmap[up] - qmap[codes]) * np.float32(0.5)
    return np.where(x - qmap[codes] >= half_gap, up, codes).astype(np.uint8)


# The encoder reads a code off a table indexed by a value's float32 bits: its sign, its
# exponent (the lowest _EXPONENTS binades below 1; smaller magnitudes share one entry) and
# the top _MANTISSA_BITS of its mantissa. Each entry's values span at most one rounding
# threshold of the map, so the code is the entry's first code, plus one past the threshold:
# two small-table reads a value instead of a binary search of log2(256) reads.
_MANTISSA_BITS = 8
_EXPONENTS = 32
_LEVELS = _EXPONENTS * 2**_MANTISSA_BITS + 2  # magnitudes: tiny, the buckets, then 1.0


def _table_index(magnitude_bits, negative, xp):
    """The table entry of float32s given their bits without the sign (NumPy or jnp)."""
    exponent = magnitude_bits >> 23
    mantissa = (magnitude_bits >> (23 - _MANTISSA_BITS)) & (2**_MANTISSA_BITS - 1)
    low = 127 - _EXPONENTS
    level = xp.where(exponent < low, 0, (exponent - low) * 2**_MANTISSA_BITS + mantissa + 1)
    level = xp.minimum(level, _LEVELS - 1)  # 1.0 (and, harmlessly, anything larger)
    return xp.where(negative, _LEVELS - 1 - level, _LEVELS + level)


def _bucket_bounds() -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest float32 of each table entry, ascending (entries of [-1, 1])."""
    step = 2 ** (23 - _MANTISSA_BITS)
    low = 127 - _EXPONENTS
    level = np.arange(1, _LEVELS - 1)
    exponent, mantissa = np.divmod(level - 1, 2**_MANTISSA_BITS)
    start = ((low + exponent) << 23) | (mantissa * step)
    tiny_top = (low << 23) - 1
    lo_bits = np.concatenate([[0], start, [0x3F800000]]).astype(np.uint32)
    hi_bits = np.concatenate([[tiny_top], start + step - 1, [0x3F800000]]).astype(np.uint32)
    lo_mag, hi_mag = lo_bits.view(np.float32), hi_bits.view(np.float32)
    lows = np.concatenate([-hi_mag[::-1], lo_mag])
    highs = np.concatenate([-lo_mag[::-1], hi_mag])
    return lows, highs


def _first_above(qmap: np.ndarray, code: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The smallest float32 in [lo, hi] whose code exceeds ``code`` (a bisection on bits)."""

    def key(x):  # float32 -> integer of the same order
        bits = x.view(np.uint32).astype(np.int64)
        return np.where(bits >> 31 == 1, 0xFFFFFFFF - bits, bits + 0x80000000)

    def value(k):
        bits = np.where(k >= 0x80000000, k - 0x80000000, 0xFFFFFFFF - k).astype(np.uint32)
        return bits.view(np.float32)

    low, high = key(lo), key(hi)  # invariant: code(value(high)) > code
    for _ in range(33):
        mid = (low + high) // 2
        above = nearest_codes_reference(value(mid), qmap) > code
        high, low = np.where(above, mid, high), np.where(above, low, mid)
    return value(high)


@functools.lru_cache(maxsize=8)
def _tables(qmap_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Each table entry's first code and the float32 where the next code begins (or inf)."""
    qmap = np.frombuffer(qmap_bytes, np.float32)
    lows, highs = _bucket_bounds()
    first, last = nearest_codes_reference(lows, qmap), nearest_codes_reference(highs, qmap)
    if np.any(last.astype(int) - first > 1):
        raise AssertionError("a table entry spans two rounding thresholds of the map")
    split = last > first
    threshold = np.full(lows.shape, np.inf, np.float32)
    threshold[split] = _first_above(qmap, first[split], lows[split], highs[split])
    return first, threshold


def _nearest_codes(x: jax.Array, qmap: np.ndarray) -> jax.Array:
    """Index of the nearest map entry for each value of [-1, 1] (ties round up)."""
    first, threshold = _tables(np.asarray(qmap, np.float32).tobytes())
    bits = jax.lax.bitcast_convert_type(x, jnp.int32)
    index = _table_index(bits & 0x7FFFFFFF, bits < 0, jnp)
    above = x >= jnp.asarray(threshold)[index]
    return (jnp.asarray(first)[index] + above.astype(jnp.uint8)).astype(jnp.uint8)


def _pack_nibbles(codes: jax.Array) -> jax.Array:
    pairs = codes.reshape(-1, 2)
    return (pairs[:, 0] << 4) | pairs[:, 1]


def _unpack_nibbles(packed: jax.Array) -> jax.Array:
    return jnp.stack([packed >> 4, packed & 0xF], axis=-1).reshape(-1)


def quantize(x: jax.Array, qmap: np.ndarray, block_size: int) -> QuantizedArray:
    """Quantize ``x`` (any shape, size a multiple of ``block_size``) block by block.

    Args:
      x: the values; computed in float32.
      qmap: the sorted map (256 values for 8-bit codes, 16 for packed 4-bit codes).
      block_size: values per scale; ``x.size`` must be a multiple of it.

    Returns:
      The codes (packed two a byte for a 16-value map) and the per-block scales.
    """
    blocks = x.astype(jnp.float32).reshape(-1, block_size)
    scales = jnp.maximum(jnp.max(jnp.abs(blocks), axis=1), _SCALE_FLOOR)
    codes = _nearest_codes(blocks / scales[:, None], qmap).reshape(-1)
    # 8-bit codes keep the param's shape, so that they take its sharding.
    codes = _pack_nibbles(codes) if qmap.shape[0] == 16 else codes.reshape(x.shape)
    return QuantizedArray(codes=codes, scales=scales)


def dequantize(q: QuantizedArray, qmap: np.ndarray, shape: tuple[int, ...]) -> jax.Array:
    """The float32 tensor of ``shape`` that ``q`` encodes: ``qmap[codes] * scale``."""
    codes = _unpack_nibbles(q.codes) if qmap.shape[0] == 16 else q.codes
    values = jnp.asarray(qmap)[codes.astype(jnp.int32).reshape(q.scales.shape[0], -1)]
    return (values * q.scales[:, None]).reshape(shape)


def zeros(shape: tuple[int, ...], bits: int, block_size: int) -> QuantizedArray:
    """The quantized zero tensor: codes 0 and scales 0 (it dequantizes to exactly 0).

    Quantizing zeros instead would floor the scale and store the map's smallest entry,
    which for the zero-free 4-bit map is not 0.
    """
    size = math.prod(shape)
    return QuantizedArray(
        codes=jnp.zeros(shape if bits == 8 else (size // 2,), jnp.uint8),
        scales=jnp.zeros((size // block_size,), jnp.float32),
    )
