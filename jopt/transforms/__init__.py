"""Building-block gradient transformations, one concept per private module."""

# wrappers
from jopt.transforms._accumulation import (
    MultiSteps,
    MultiStepsState,
    ShouldSkipUpdateFunction,
    skip_large_updates,
    skip_not_finite,
)
from jopt.transforms._adam import (
    ScaleByAdamState,
    ScaleByAmsgradState,
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_radam,
)
from jopt.transforms._adan import ScaleByAdanState, scale_by_adan
from jopt.transforms._backtracking import (
    BacktrackingLinesearchInfo,
    ScaleByBacktrackingLinesearchState,
    scale_by_backtracking_linesearch,
)
from jopt.transforms._belief import ScaleByBeliefState, scale_by_belief
from jopt.transforms._clipping import (
    AdaptiveGradClipState,
    ClipByGlobalNormState,
    ClipState,
    adaptive_grad_clip,
    clip,
    clip_by_block_rms,
    clip_by_global_norm,
    per_example_global_norm_clip,
    per_example_layer_norm_clip,
    unitwise_clip,
    unitwise_norm,
)
from jopt.transforms._collectives import all_reduce_gradients
from jopt.transforms._combining import chain, named_chain
from jopt.transforms._conditioning import (
    ConditionallyMaskState,
    ConditionallyTransformState,
    ConditionFn,
    conditionally_mask,
    conditionally_transform,
)
from jopt.transforms._dog import (
    ScaleByDistanceOverGradientsState,
    scale_by_distance_over_gradients,
)
from jopt.transforms._factored import FactoredState, scale_by_factored_rms
from jopt.transforms._finite import ApplyIfFiniteState, apply_if_finite
from jopt.transforms._flat_state import FlatStateState, flat_state
from jopt.transforms._flatten import flatten
from jopt.transforms._freezing import freeze, selective_transform
from jopt.transforms._hygiene import (
    NonNegativeParamsState,
    ZeroNansState,
    centralize,
    keep_params_nonnegative,
    normalize_by_update_norm,
    zero_nans,
)
from jopt.transforms._layerwise import (
    ScaleByTrustRatioState,
    scale_by_param_block_norm,
    scale_by_param_block_rms,
    scale_by_trust_ratio,
)
from jopt.transforms._lbfgs import ScaleByLBFGSState, scale_by_lbfgs
from jopt.transforms._linesearch import value_and_grad_from_state
from jopt.transforms._lion import ScaleByLionState, scale_by_lion
from jopt.transforms._lookahead import LookaheadParams, LookaheadState, lookahead
from jopt.transforms._masking import MaskedNode, MaskedState, masked
from jopt.transforms._momentum import EmaState, TraceState, ema, trace
from jopt.transforms._monitoring import (
    MonitorState,
    SnapshotState,
    measure_with_ema,
    monitor,
    snapshot,
)
from jopt.transforms._noise import AddNoiseState, add_noise
from jopt.transforms._novograd import ScaleByNovogradState, scale_by_novograd
from jopt.transforms._optimistic import (
    ScaleByOptimisticGradientState,
    scale_by_optimistic_gradient,
)
from jopt.transforms._partition import (
    MultiTransformState,
    PartitionState,
    multi_transform,
    partition,
)
from jopt.transforms._periodic import ApplyEvery, apply_every
from jopt.transforms._plateau import ReduceLROnPlateauState, reduce_on_plateau
from jopt.transforms._polyak import scale_by_polyak
from jopt.transforms._regularization import (
    AddDecayedWeightsState,
    ProximalState,
    WeightDecaySchedule,
    add_decayed_weights,
    add_elastic_net_proximal,
    add_l1_proximal,
)
from jopt.transforms._rms import (
    ScaleByAdaDeltaState,
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRssState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    scale_by_adadelta,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
)
from jopt.transforms._rprop import ScaleByRpropState, scale_by_rprop
from jopt.transforms._scaling import (
    ScaleByScheduleState,
    ScaleState,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
    scale_by_sign,
)
from jopt.transforms._sm3 import ScaleBySM3State, scale_by_sm3
from jopt.transforms._yogi import ScaleByYogiState, scale_by_yogi
from jopt.transforms._zoom import (
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    scale_by_zoom_linesearch,
)

__all__ = [
    # wrappers
    "ApplyIfFiniteState",
    "ConditionFn",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "LookaheadParams",
    "LookaheadState",
    "MultiSteps",
    "MultiStepsState",
    "ShouldSkipUpdateFunction",
    "apply_if_finite",
    "conditionally_mask",
    "conditionally_transform",
    "flatten",
    "freeze",
    "lookahead",
    "selective_transform",
    "skip_large_updates",
    "skip_not_finite",
    # further building blocks (parity with optax's top level)
    "AddNoiseState",
    "FactoredState",
    "NonNegativeParamsState",
    "ScaleByAdanState",
    "ScaleByBeliefState",
    "ScaleByDistanceOverGradientsState",
    "ScaleByNovogradState",
    "ScaleByOptimisticGradientState",
    "ScaleByRpropState",
    "ScaleBySM3State",
    "ScaleByTrustRatioState",
    "ScaleByYogiState",
    "ZeroNansState",
    "add_noise",
    "centralize",
    "keep_params_nonnegative",
    "normalize_by_update_norm",
    "scale_by_adan",
    "scale_by_belief",
    "scale_by_distance_over_gradients",
    "scale_by_factored_rms",
    "scale_by_novograd",
    "scale_by_optimistic_gradient",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_polyak",
    "scale_by_rprop",
    "scale_by_sm3",
    "scale_by_trust_ratio",
    "scale_by_yogi",
    "zero_nans",
    # line search and L-BFGS
    "BacktrackingLinesearchInfo",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByLBFGSState",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "scale_by_backtracking_linesearch",
    "scale_by_lbfgs",
    "scale_by_zoom_linesearch",
    "value_and_grad_from_state",
    # core building blocks
    "AdaptiveGradClipState",
    "ClipByGlobalNormState",
    "ClipState",
    "AddDecayedWeightsState",
    "ScaleState",
    "ScaleByLionState",
    "scale_by_lion",
    "MultiTransformState",
    "PartitionState",
    "multi_transform",
    "partition",
    "ScaleByAdaDeltaState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRssState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "scale_by_adadelta",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_stddev",
    "ScaleByAdamState",
    "ScaleByAmsgradState",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_amsgrad",
    "scale_by_radam",
    "adaptive_grad_clip",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "unitwise_clip",
    "unitwise_norm",
    "MaskedNode",
    "MaskedState",
    "masked",
    "EmaState",
    "TraceState",
    "ema",
    "trace",
    "ProximalState",
    "WeightDecaySchedule",
    "add_decayed_weights",
    "add_elastic_net_proximal",
    "add_l1_proximal",
    "ScaleByScheduleState",
    "scale",
    "scale_by_learning_rate",
    "scale_by_schedule",
    "scale_by_sign",
    "ApplyEvery",
    "apply_every",
    "ReduceLROnPlateauState",
    "reduce_on_plateau",
    "FlatStateState",
    "flat_state",
    "MonitorState",
    "SnapshotState",
    "measure_with_ema",
    "monitor",
    "snapshot",
    "chain",
    "named_chain",
    # per-device steps (shard_map, pmap): gradients reduced over a named axis
    "all_reduce_gradients",
]
