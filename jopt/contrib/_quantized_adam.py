r"""Adam and AdamW with 8-bit or 4-bit block-wise quantized moments.

Each step dequantizes the moments to float32, runs Adam's float32 update on them and
quantizes the new moments again (:mod:`jopt.contrib._quantize`), all inside the one jitted
update. The update uses the new moments *before* requantization, as torchao does, so one
step is exactly float32 Adam on the dequantized state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jopt import _check as check
from jopt import tree as jtree
from jopt.base import GradientTransformation, GradientTransformationExtraArgs, ScalarOrSchedule
from jopt.contrib import _quantize as quant
from jopt.schedules._hyper import zero_count
from jopt.transforms import add_decayed_weights, chain, scale_by_learning_rate

_DEFAULT_BLOCK = {8: 256, 4: 128}


class ScaleByAdamQuantizedState(NamedTuple):
    """State of :func:`scale_by_adam_quantized`."""

    count: jax.Array  # int32 scalar, number of updates seen (saturates)
    mu: Any  # first moment: a QuantizedArray per large leaf, float32 like the param otherwise
    nu: Any  # second moment: a QuantizedArray per large leaf, float32 like the param otherwise


def _lerp(start, end, weight):
    """``start + weight * (end - start)``: an average that moves ``weight`` of the way."""
    return start + weight * (end - start)


def _maps(bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The (first-moment, second-moment) maps of each scheme."""
    if bits == 8:
        return quant.dynamic_map(signed=True), quant.dynamic_map(signed=False)
    return quant.dynamic_map(True, 3, 4), quant.linear_map_without_zero(4)


def _check_settings(b1, b2, eps, bits, block_size, min_size) -> int:
    check.average_decay("b1", b1)
    check.average_decay("b2", b2, "0.999")
    check.non_negative("eps", eps, "pass a small value such as 1e-8")
    check.one_of("bits", bits, (8, 4))
    check.integer("min_size", min_size, minimum=0, fix="pass an integer such as 4096")
    if block_size is None:
        return _DEFAULT_BLOCK[bits]
    # Two 4-bit codes share a byte, so a block holds an even number of values.
    check.even_integer("block_size", block_size, fix="pass an even integer such as 256")
    return block_size


def scale_by_adam_quantized(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    *,
    bits: int = 8,
    block_size: int | None = None,
    min_size: int = 4096,
) -> GradientTransformation:
    r"""Scale updates by Adam's debiased moments, stored in 8 or 4 bits a value.

    .. math::
      m_t = \beta_1 \tilde m_{t-1} + (1-\beta_1) g_t, \quad
      v_t = \beta_2 \tilde v_{t-1} + (1-\beta_2) g_t^2, \quad
      u_t = \frac{m_t/(1-\beta_1^t)}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    where :math:`\tilde m, \tilde v` are the stored moments dequantized to float32; then
    :math:`m_t, v_t` are quantized block by block (codes plus one float32 scale per
    ``block_size`` values, see :class:`QuantizedArray`):

    - ``bits=8`` (Dettmers et al.): the signed dynamic map for :math:`m`, the unsigned one
      for :math:`v`, blocks of 256: 2 + 8/256 = 2.03 bytes a parameter.
    - ``bits=4`` (Li et al.): the signed 4-bit dynamic map for :math:`m`, the linear map
      without zero for :math:`v`, blocks of 128, two codes a byte: 1 + 8/128 = 1.06 bytes.

    A leaf with fewer than ``min_size`` values, or whose size is not a multiple of
    ``block_size``, keeps float32 moments (as in torchao). The update keeps the gradient's
    dtype; the maths runs in float32 (bfloat16 params included). The initial codes and
    scales are 0: the moments start at exactly 0.

    Args:
      b1: :math:`\beta_1`, decay of the first moment, in [0, 1); default 0.9.
      b2: :math:`\beta_2`, decay of the second moment, in [0, 1); default 0.999.
      eps: :math:`\epsilon`, added outside the root, >= 0; default 1e-8.
      bits: 8 or 4, the bits a stored moment value takes.
      block_size: values that share a scale, an even integer; None: 256 (8 bits) or 128
        (4 bits).
      min_size: leaves smaller than this keep float32 moments; default 4096.

    References:
      Dettmers, Lewis, Shleifer & Zettlemoyer, `8-bit Optimizers via Block-wise
      Quantization <https://arxiv.org/abs/2110.02861>`_, ICLR 2022;
      Li, Chen & Zhu, `Memory Efficient Optimizers with 4-bit States
      <https://arxiv.org/abs/2309.01507>`_, NeurIPS 2023.
    """
    block = _check_settings(b1, b2, eps, bits, block_size, min_size)
    signed_map, unsigned_map = _maps(bits)

    def quantized(shape) -> bool:
        size = int(np.prod(shape))
        return size >= min_size and size % block == 0

    def zeros(param):
        if quantized(param.shape):
            return quant.zeros(tuple(param.shape), bits, block)
        return jnp.zeros(param.shape, jnp.float32)

    def load(moment, qmap, shape):
        if isinstance(moment, quant.QuantizedArray):
            return quant.dequantize(moment, qmap, shape)
        return moment

    def store(moment, qmap):
        if quantized(moment.shape):
            return quant.quantize(moment, qmap, block)
        return moment

    def leaf_update(g, mu, nu, count):
        g32 = g.astype(jnp.float32)
        # torchao's arithmetic (lerp, then the root of each factor): the same maths as
        # jopt.scale_by_adam, rounded as the reference rounds, so that codes near a
        # rounding boundary fall the same way.
        m = _lerp(load(mu, signed_map, g.shape), g32, 1 - b1)
        v = _lerp(load(nu, unsigned_map, g.shape), jnp.square(g32), 1 - b2)
        correction1, correction2 = (1 - jnp.asarray(b, jnp.float32) ** count for b in (b1, b2))
        u = (m / correction1) / (jnp.sqrt(v) / jnp.sqrt(correction2) + eps)
        return u.astype(g.dtype), store(m, signed_map), store(v, unsigned_map)

    def init(params):
        return ScaleByAdamQuantizedState(
            count=zero_count(),
            mu=jax.tree.map(zeros, params),
            nu=jax.tree.map(zeros, params),
        )

    def update(updates, state, params=None):
        del params
        count = jtree.safe_increment(state.count)
        treedef = jax.tree.structure(updates)
        rows = [
            leaf_update(g, m, v, count)
            for g, m, v in zip(
                treedef.flatten_up_to(updates),
                treedef.flatten_up_to(state.mu),
                treedef.flatten_up_to(state.nu),
                strict=True,
            )
        ]
        out, mu, nu = ([row[k] for row in rows] for k in range(3))
        new_state = ScaleByAdamQuantizedState(
            count=count, mu=treedef.unflatten(mu), nu=treedef.unflatten(nu)
        )
        return treedef.unflatten(out), new_state

    return GradientTransformation(init, update)


def _low_bit_adamw(learning_rate, b1, b2, eps, weight_decay, mask, bits, block_size, min_size):
    check.learning_rate("learning_rate", learning_rate)
    parts = [scale_by_adam_quantized(b1, b2, eps, bits=bits, block_size=block_size,
                                     min_size=min_size)]  # fmt: skip
    if weight_decay is not None:
        parts.append(add_decayed_weights(weight_decay, mask))
    return chain(*parts, scale_by_learning_rate(learning_rate))


def adamw_8bit(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    block_size: int = 256,
    min_size: int = 4096,
) -> GradientTransformationExtraArgs:
    r"""AdamW with 8-bit block-wise quantized moments (Dettmers et al.).

    :func:`scale_by_adam_quantized` with ``bits=8``, then :func:`jopt.add_decayed_weights`,
    then the learning rate: :math:`w_{t+1} = w_t - \eta_t (u_t + \lambda w_t)`, about 2.03
    bytes of state a parameter instead of 8. Defaults as :func:`jopt.adamw`, so it is a
    drop-in replacement (torchao's ``AdamW8bit`` defaults to ``weight_decay=1e-2``).

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: first-moment decay in [0, 1); default 0.9.
      b2: second-moment decay in [0, 1); default 0.999.
      eps: >= 0, added outside the root; default 1e-8.
      weight_decay: :math:`\lambda` >= 0 (or a schedule); default 1e-4.
      mask: where to decay (pytree of bools or a function of the params); None decays all.
      block_size: values that share a scale, an even integer; default 256.
      min_size: leaves smaller than this keep float32 moments; default 4096.

    References:
      Dettmers, Lewis, Shleifer & Zettlemoyer, `8-bit Optimizers via Block-wise
      Quantization <https://arxiv.org/abs/2110.02861>`_, ICLR 2022.
    """
    return _low_bit_adamw(learning_rate, b1, b2, eps, weight_decay, mask, 8, block_size,
                          min_size)  # fmt: skip


def adamw_4bit(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    block_size: int = 128,
    min_size: int = 4096,
) -> GradientTransformationExtraArgs:
    r"""AdamW with 4-bit block-wise quantized moments (Li et al.).

    :func:`scale_by_adam_quantized` with ``bits=4``, then :func:`jopt.add_decayed_weights`,
    then the learning rate: :math:`w_{t+1} = w_t - \eta_t (u_t + \lambda w_t)`, about 1.06
    bytes of state a parameter instead of 8.

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: first-moment decay in [0, 1); default 0.9.
      b2: second-moment decay in [0, 1); default 0.999.
      eps: >= 0, added outside the root; default 1e-8.
      weight_decay: :math:`\lambda` >= 0 (or a schedule); default 1e-4.
      mask: where to decay (pytree of bools or a function of the params); None decays all.
      block_size: values that share a scale, an even integer; default 128.
      min_size: leaves smaller than this keep float32 moments; default 4096.

    References:
      Li, Chen & Zhu, `Memory Efficient Optimizers with 4-bit States
      <https://arxiv.org/abs/2309.01507>`_, NeurIPS 2023.
    """
    return _low_bit_adamw(learning_rate, b1, b2, eps, weight_decay, mask, 4, block_size,
                          min_size)  # fmt: skip


def adam_8bit(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    block_size: int = 256,
    min_size: int = 4096,
) -> GradientTransformationExtraArgs:
    r"""Adam with 8-bit block-wise quantized moments: :func:`adamw_8bit` without decay.

    .. math::  w_{t+1} = w_t - \eta_t\, u_t \quad (u_t \text{ of } :func:`scale_by_adam_quantized`)

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: first-moment decay in [0, 1); default 0.9.
      b2: second-moment decay in [0, 1); default 0.999.
      eps: >= 0, added outside the root; default 1e-8.
      block_size: values that share a scale, an even integer; default 256.
      min_size: leaves smaller than this keep float32 moments; default 4096.

    References:
      Dettmers, Lewis, Shleifer & Zettlemoyer, `8-bit Optimizers via Block-wise
      Quantization <https://arxiv.org/abs/2110.02861>`_, ICLR 2022.
    """
    return _low_bit_adamw(learning_rate, b1, b2, eps, None, None, 8, block_size, min_size)


def adam_4bit(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    block_size: int = 128,
    min_size: int = 4096,
) -> GradientTransformationExtraArgs:
    r"""Adam with 4-bit block-wise quantized moments: :func:`adamw_4bit` without decay.

    .. math::  w_{t+1} = w_t - \eta_t\, u_t \quad (u_t \text{ of } :func:`scale_by_adam_quantized`)

    Args:
      learning_rate: :math:`\eta`, a number >= 0 or a schedule.
      b1: first-moment decay in [0, 1); default 0.9.
      b2: second-moment decay in [0, 1); default 0.999.
      eps: >= 0, added outside the root; default 1e-8.
      block_size: values that share a scale, an even integer; default 128.
      min_size: leaves smaller than this keep float32 moments; default 4096.

    References:
      Li, Chen & Zhu, `Memory Efficient Optimizers with 4-bit States
      <https://arxiv.org/abs/2309.01507>`_, NeurIPS 2023.
    """
    return _low_bit_adamw(learning_rate, b1, b2, eps, None, None, 4, block_size, min_size)
