"""What each transform can do on a :class:`~jopt.FlatTree`, checked before it runs.

A FlatTree hands a transform a few flat buffers instead of the model's leaves. That
gives the per-leaf result only if the transform is

- ``"elementwise"``: every output element depends on the same element of the inputs,
  on scalars, or on sums over all elements (``clip_by_global_norm``);
- ``"per_leaf"``: it reduces over each leaf, and reads the layout of a FlatTree to
  do so segment by segment (:mod:`jopt._flat._leaf_rows`);
- ``"combinator"``: it only runs other transforms, found in its closure, and is as
  capable as they are.

Everything else refuses a FlatTree at ``init``, naming the transform: those that need
the leaves' shapes or draw per-leaf randomness (:data:`_LEAF_SHAPES`) and every
transform jopt does not know (yours, optax's) unless it is
marked with :func:`declare_elementwise`. The classification is keyed here, centrally, by
the name of the factory that built the transform (the function whose ``update`` closure
it is), so the factories themselves carry no flag.
"""

from __future__ import annotations

import types
from typing import Any

from jopt._flat._tree import FlatTree
from jopt.base import EmptyState, GradientTransformationExtraArgs, with_extra_args_support

_ELEMENTWISE = frozenset(
    """
    add_decayed_weights _add_scaled_params apply_every clip clip_by_global_norm
    dadapt_adamw ema flatten identity keep_params_nonnegative momo momo_adam monitor
    normalize normalize_by_update_norm prodigy reduce_on_plateau scale scale_by_acprop
    scale_by_adadelta scale_by_adam scale_by_adamax scale_by_ademamix scale_by_adan
    scale_by_adopt scale_by_amsgrad scale_by_backtracking_linesearch scale_by_belief
    scale_by_cocob scale_by_dog scale_by_dowg scale_by_lbfgs scale_by_lion scale_by_madgrad
    scale_by_optimistic_gradient scale_by_polyak scale_by_radam scale_by_rms scale_by_rprop
    scale_by_rss scale_by_schedule scale_by_sign scale_by_simplified_ademamix
    scale_by_stddev scale_by_yogi scale_by_zoom_linesearch set_to_zero snapshot trace
    zero_nans _decay_stepped_params
    """.split()
)
_PER_LEAF = frozenset(
    """
    clip_by_block_rms scale_by_novograd scale_by_param_block_norm scale_by_param_block_rms
    scale_by_trust_ratio
    """.split()
)
_COMBINATORS = frozenset(
    """
    MultiSteps apply_if_finite chain conditionally_mask conditionally_transform flat_state
    inject_hyperparams inject_stateful_hyperparams lookahead mechanize named_chain partition sam
    masked scale_by_sophia schedule_free split_real_and_imaginary with_extra_args_support
    """.split()
)
_LEAF_SHAPES = {
    "adaptive_grad_clip": "it clips each leaf by unit-wise norms over the leaf's axes",
    "add_noise": "it draws its noise leaf by leaf, so a buffer would get other numbers",
    "centralize": "it subtracts each leaf's mean over its own axes",
    "differentially_private_aggregate": "it clips each example's gradient along the batch axis",
    "hutchinson_estimator_diag_hessian": "it draws its probe vectors leaf by leaf",
    "per_example_global_norm_clip": "it reads the leading batch axis of every leaf",
    "per_example_layer_norm_clip": "it reads the leading batch axis of every leaf",
    "scale_by_adam_quantized": "it quantizes each leaf's moments in blocks of that leaf's values",
    "scale_by_distance_over_gradients": "it keeps a distance and a gradient sum per leaf",
    "scale_by_factored_rms": "it factors each matrix into row and column statistics",
    "scale_by_galore": "it projects each matrix onto a low-rank subspace",
    "scale_by_kron": "it keeps Kronecker factors per axis of each leaf and draws probes per leaf",
    "scale_by_muon": "it orthogonalises each matrix",
    "scale_by_shampoo": "it blocks each leaf and multiplies the blocks by matrix roots",
    "scale_by_shape": "it scales each leaf by its matrix shape",
    "scale_by_sm3": "it keeps one accumulator per axis of each leaf",
    "scale_by_soap": "it rotates each matrix into the eigenbases of its Kronecker factors",
}
# Wrappers of a function jopt cannot inspect: unknown, like a transform of your own.
_USER_FUNCTIONS = {
    "stateless": "stateless wraps a function jopt cannot inspect",
    "stateless_with_tree_map": "stateless_with_tree_map applies a function jopt cannot inspect",
}
_DECLARED = "_jopt_flat_capability"


def declare_elementwise(tx: Any) -> Any:
    r"""Mark ``tx`` as elementwise, so that it may run on a :class:`jopt.FlatTree`.

    On a FlatTree, jopt runs only transforms whose per-leaf result it knows to equal
    their result on the flat buffers; a transform it does not know (written by you,
    or optax's) is refused at ``init``. Wrap it with this function when each element of
    its update depends only on the same element of the gradient, state and params, on
    scalars, or on sums over all elements: then the flat buffers give the per-leaf result.

    Args:
      tx: a gradient transformation (an object with ``init`` and ``update``).

    Returns:
      A transformation with the same ``init`` and ``update`` that a FlatTree accepts.

    Example:
      >>> import jax, jax.numpy as jnp, jopt
      >>> double = jopt.stateless(lambda u, p: jax.tree.map(lambda g: 2 * g, u))
      >>> flat = jopt.FlatTree.from_tree({"b": jnp.ones(3)})
      >>> state = jopt.chain(jopt.declare_elementwise(double), jopt.sgd(0.1)).init(flat)
    """
    inner = with_extra_args_support(tx)

    def update(updates, state, params=None, **extra_args):
        return inner.update(updates, state, params, **extra_args)

    setattr(update, _DECLARED, "elementwise")
    return GradientTransformationExtraArgs(inner.init, update)


def _factory_name(tx: Any) -> tuple[str, bool]:
    """The name of the factory that built ``tx`` and whether it is jopt's."""
    update = tx.update
    owner = getattr(update, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        return type(owner).__name__, type(owner).__module__.startswith("jopt.")
    qualname = getattr(update, "__qualname__", type(tx).__name__)
    module = getattr(update, "__module__", None) or ""
    return qualname.split(".<locals>")[0].split(".")[0], module.startswith("jopt.")


def _closure_values(fn: Any) -> list[tuple[str, Any]]:
    """``(name, value)`` of what ``fn`` closes over (a bound method: its object's fields)."""
    if isinstance(fn, types.MethodType):
        return list(vars(fn.__self__).items())
    code = getattr(fn, "__code__", None)
    values = []
    for name, cell in zip(code.co_freevars if code else (), fn.__closure__ or (), strict=True):
        try:
            values.append((name, cell.cell_contents))
        except ValueError:  # an empty cell: a name assigned after the closure was made
            continue
    return values


def _inner(name: str, value: Any, found: list, seen: set, depth: int = 0) -> None:
    """Collect the transforms (and, by their variable's name, factories) in a closure value."""
    if depth > 6 or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, tuple) and hasattr(value, "init") and hasattr(value, "update"):
        found.append(value)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _inner(name, item, found, seen, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _inner(name, item, found, seen, depth + 1)
    elif callable(value) and "factory" in name:
        found.append(value)  # inject_hyperparams builds its transform at init
    elif isinstance(value, types.FunctionType) and value.__module__.startswith("jopt."):
        for inner_name, item in _closure_values(value):  # a jopt helper closing over inners
            _inner(inner_name, item, found, seen, depth + 1)


def _inner_of(tx: Any) -> list[Any]:
    found: list[Any] = []
    seen = {id(tx)}
    for fn in (tx.init, tx.update):
        for name, value in _closure_values(fn):
            _inner(name, value, found, seen)
    return found


def _refusal(tx: Any) -> str | None:
    """Why ``tx`` cannot run on a FlatTree, or None if it can."""
    if getattr(tx.update, _DECLARED, None) is not None:
        return None
    name, is_jopt = _factory_name(tx)
    if not is_jopt:  # name the library: optax's chain is not jopt's
        module = getattr(tx.update, "__module__", None) or type(tx).__module__
        return _unknown(f"{module.split('.')[0]}'s {name}")
    if name in _ELEMENTWISE | _PER_LEAF:
        return None
    if name in _LEAF_SHAPES:
        return f"{name} cannot run on a FlatTree: {_LEAF_SHAPES[name]}"
    if name in _USER_FUNCTIONS:
        return f"{_USER_FUNCTIONS[name]}; " + _unknown("it")
    if name not in _COMBINATORS:
        return _unknown(name)
    for inner in _inner_of(tx):
        why = _refusal(inner) if hasattr(inner, "update") else _factory_refusal(inner)
        if why is not None:
            return why
    return None


def _factory_refusal(factory: Any) -> str | None:
    """A factory held by a combinator (``inject_hyperparams``): jopt's build checked chains."""
    name = getattr(factory, "__name__", repr(factory))
    module = getattr(factory, "__module__", None) or ""
    if not module.startswith("jopt."):
        return _unknown(f"{module.split('.')[0]}'s {name}")
    if name in _LEAF_SHAPES:
        return f"{name} cannot run on a FlatTree: {_LEAF_SHAPES[name]}"
    return None


def _unknown(name: str) -> str:
    return (
        f"{name} is not a transform jopt knows to give the per-leaf result on a FlatTree; "
        "if each element of its update depends only on the same element of its inputs "
        "(or on sums over all elements), wrap it in jopt.declare_elementwise"
    )


def check_flat(where: str, transforms: Any, params: Any) -> None:
    """Raise if ``params`` is a FlatTree and one of ``transforms`` cannot run on it.

    Called by :func:`jopt.chain`'s and :meth:`jopt.train.TrainState.create`'s ``init``;
    the message names the transform, FlatTree and the fix.
    """
    if not isinstance(params, FlatTree):
        return
    for tx in transforms:
        why = _refusal(tx)
        if why is not None:
            raise ValueError(
                f"{where}: {why}; keep the parameters as a tree for this transform "
                "(pass params instead of jopt.FlatTree.from_tree(params)), or see "
                "docs/guides/fast_path.md for the transforms a FlatTree runs"
            )


def refuse_flat(name: str, params: Any) -> None:
    """Raise if ``params`` is a FlatTree: for ``init`` of a transform that needs leaf shapes,
    so that it refuses even when nothing around it (a chain, a TrainState) checks."""
    if isinstance(params, FlatTree):
        raise ValueError(
            f"{name} cannot run on a FlatTree: {_LEAF_SHAPES[name]}; keep the parameters as "
            "a tree for this transform (pass params instead of jopt.FlatTree.from_tree(params))"
        )


def refusing_empty_init(name: str):
    """The ``init`` of a stateless transform that needs leaf shapes: refuses a FlatTree."""

    def init(params):
        refuse_flat(name, params)
        return EmptyState()

    return init
