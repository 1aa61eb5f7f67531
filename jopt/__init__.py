"""jopt: composable JAX optimizers, verified against optax, and the training layer around them.

The public surface is flat, like optax's: every transform, optimizer and schedule
is reachable as ``jopt.NAME``. Namespaces: ``jopt.schedules``, ``jopt.tree``,
``jopt.losses``, ``jopt.metrics``, ``jopt.train``, ``jopt.tune``, ``jopt.contrib``.
"""

import importlib
import inspect
import sys
from types import ModuleType

from jopt import (
    assignment,
    contrib,
    losses,
    metrics,
    microbatching,
    optimizers,
    perturbations,
    projections,
    schedules,
    train,
    transforms,
    tree,
    tree_utils,
)
from jopt._flat._capability import declare_elementwise
from jopt._flat._tree import FlatTree
from jopt.base import (
    ArrayTree,
    EmptyState,
    GradientTransformation,
    GradientTransformationExtraArgs,
    MaskOrFn,
    OptState,
    Params,
    ScalarOrSchedule,
    Schedule,
    TransformInitFn,
    TransformUpdateExtraArgsFn,
    TransformUpdateFn,
    Updates,
    apply_updates,
    declared_static_args,
    identity,
    incremental_update,
    init_empty_state,
    periodic_update,
    set_to_zero,
    stateless,
    stateless_with_tree_map,
    static_args,
    with_extra_args_support,
)

# optax 0.2.8 still has its private-aggregation names at the top level (deprecated there).
from jopt.contrib import (
    DifferentiallyPrivateAggregateState,
    differentially_private_aggregate,
    dpsgd,
)
from jopt.losses import (  # the losses optax also exposes at its top level
    convex_kl_divergence,
    cosine_distance,
    cosine_similarity,
    ctc_loss,
    ctc_loss_with_forward_probs,
    generalized_kl_divergence,
    hinge_loss,
    huber_loss,
    kl_divergence,
    l2_loss,
    log_cosh,
    ntxent,
    safe_softmax_cross_entropy,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
    squared_error,
)
from jopt.microbatching import microbatch
from jopt.optimizers import *  # noqa: F403 - each subpackage lists its names in __all__
from jopt.perturbations._distributions import multi_normal
from jopt.schedules import *  # noqa: F403
from jopt.transforms import *  # noqa: F403
from jopt.tree import (
    bias_correction,
    safe_increment,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
)
from jopt.tree._linear_algebra import matrix_inverse_pth_root, nnls, power_iteration
from jopt.tree._numerics import (
    safe_int32_increment,
    safe_norm,
    safe_root_mean_squares,
    scale_gradient,
)
from jopt.tree._state_mapping import tree_map_params

__version__ = "0.1.0"

_BASE = [
    "ArrayTree",
    "EmptyState",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "MaskOrFn",
    "OptState",
    "Params",
    "ScalarOrSchedule",
    "Schedule",
    "TransformInitFn",
    "TransformUpdateExtraArgsFn",
    "TransformUpdateFn",
    "Updates",
    "apply_updates",
    "declared_static_args",
    "identity",
    "incremental_update",
    "init_empty_state",
    "periodic_update",
    "set_to_zero",
    "static_args",
    "stateless",
    "stateless_with_tree_map",
    "with_extra_args_support",
    # numerics and moment helpers (also in jopt.tree), at top level as in optax
    "bias_correction",
    "safe_increment",
    "safe_int32_increment",
    "safe_norm",
    "safe_root_mean_squares",
    "scale_gradient",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    # linear algebra used by optimizers, and mapping over params inside states
    "matrix_inverse_pth_root",
    "nnls",
    "power_iteration",
    "tree_map_params",
    "microbatch",
    # optax.contrib's differential privacy, also at optax's top level
    "DifferentiallyPrivateAggregateState",
    "differentially_private_aggregate",
    "dpsgd",
    "multi_normal",
    # the fast path for many small leaves: parameters kept flat for the whole of training
    "FlatTree",
    "declare_elementwise",
]
_TOP_LEVEL_LOSSES = [
    "convex_kl_divergence", "cosine_distance", "cosine_similarity", "ctc_loss",
    "ctc_loss_with_forward_probs", "generalized_kl_divergence", "hinge_loss", "huber_loss",
    "kl_divergence", "l2_loss", "log_cosh", "ntxent", "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy", "sigmoid_focal_loss", "smooth_labels",
    "softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels", "squared_error",
]  # fmt: skip
__all__ = [*_BASE, *_TOP_LEVEL_LOSSES, *transforms.__all__, *optimizers.__all__, *schedules.__all__]


def _resolve_annotations(*modules: ModuleType) -> list[str]:
    """Replace string annotations by the objects they name, for each name in ``__all__``.

    jopt's modules use ``from __future__ import annotations``, which leaves every annotation a
    string; code that inspects signatures (optax's own tests, documentation tools, argument
    parsers) needs the objects, so the package evaluates them once, at import, in each
    function's own module namespace.

    Returns the names whose annotations could not be evaluated (left as strings).
    """
    unresolved = []
    for module in modules:
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            fn = getattr(value, "__init__", None) if inspect.isclass(value) else value
            if not inspect.isfunction(fn):
                continue
            annotations = getattr(fn, "__annotations__", None) or {}
            if not any(isinstance(a, str) for a in annotations.values()):
                continue
            try:
                fn.__annotations__ = inspect.get_annotations(fn, eval_str=True)
            except (NameError, TypeError, SyntaxError, AttributeError):
                unresolved.append(f"{module.__name__}.{name}")
    return unresolved


# Annotations as objects, not the strings `from __future__ import annotations` leaves.
_UNRESOLVED_ANNOTATIONS = _resolve_annotations(
    sys.modules[__name__],
    contrib,
    losses,
    metrics,
    microbatching,
    perturbations,
    projections,
    schedules,
    tree,
    train,
)


def __getattr__(name: str):
    # jopt.testing loads chex and hypothesis: reachable as jopt.testing (as numpy.testing is),
    # imported on first use so that `import jopt` stays light.
    if name == "testing":
        return importlib.import_module("jopt.testing")
    raise AttributeError(f"module 'jopt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "testing"})
