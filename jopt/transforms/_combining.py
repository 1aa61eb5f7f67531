"""Combining transforms: run several in sequence (:func:`chain`, :func:`named_chain`)."""

from __future__ import annotations

from jopt import _check as check
from jopt._flat._capability import check_flat
from jopt.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    with_extra_args_support,
)


def chain(*transforms: GradientTransformation) -> GradientTransformationExtraArgs:
    r"""Apply transforms one after the other: :math:`u = T_n(\dots T_2(T_1(g)))`.

    The state is a tuple of the members' states, in order. Extra keyword
    arguments of ``update`` (``value``, ``grad``, ``value_fn`` ...) reach every
    member that accepts them.

    Args:
      *transforms: the transforms to apply, first to last.

    Example:
      >>> import jopt
      >>> tx = jopt.chain(jopt.clip_by_global_norm(1.0), jopt.adam(1e-3))
    """
    for i, tx in enumerate(transforms):
        check.transformation(f"transforms[{i}]", tx)
    members = [with_extra_args_support(tx) for tx in transforms]

    def init(params):
        check_flat("chain", transforms, params)
        return tuple(tx.init(params) for tx in members)

    checked: set = set()

    def update(updates, state, params=None, **extra_args):
        check.update_inputs("chain", init, updates, state, params, checked)
        new_state = []
        for tx, member_state in zip(members, state, strict=False):
            updates, member_state = tx.update(updates, member_state, params, **extra_args)
            new_state.append(member_state)
        return updates, tuple(new_state)

    return GradientTransformationExtraArgs(init, update)


def named_chain(
    *transforms: tuple[str, GradientTransformation],
) -> GradientTransformationExtraArgs:
    """Like :func:`chain`, but the state is a dict keyed by the given names.

    Args:
      *transforms: ``(name, transform)`` pairs; names must be unique.

    Example:
      >>> import jopt
      >>> tx = jopt.named_chain(("clip", jopt.clip(1.0)), ("adam", jopt.adam(1e-3)))
    """
    for i, pair in enumerate(transforms):
        # A transform is itself a 2-tuple (init, update): reject it before unpacking.
        if check.is_transformation(pair) or not (
            isinstance(pair, (tuple, list)) and len(pair) == 2
        ):
            raise TypeError(
                f"transforms[{i}] must be a (name, transform) pair, got {pair!r}; "
                "pass e.g. named_chain(('clip', jopt.clip(1.0)), ('adam', jopt.adam(1e-3)))"
            )
        check.transformation(f"transforms[{i}][1]", pair[1])
    names = [name for name, _ in transforms]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"named_chain names must be unique, got {duplicated} more than once")
    members = [(name, with_extra_args_support(tx)) for name, tx in transforms]

    def init(params):
        check_flat("named_chain", [tx for _, tx in transforms], params)
        return {name: tx.init(params) for name, tx in members}

    checked: set = set()

    def update(updates, state, params=None, **extra_args):
        check.update_inputs("named_chain", init, updates, state, params, checked)
        new_state = {}
        for name, tx in members:
            updates, new_state[name] = tx.update(updates, state[name], params, **extra_args)
        return updates, new_state

    return GradientTransformationExtraArgs(init, update)
