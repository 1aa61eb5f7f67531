"""Contributed optimizers (``jopt.contrib``): recent methods, with optax.contrib's names.

Each is checked against ``optax.contrib`` in the tests. ``reduce_on_plateau`` lives
in ``jopt.transforms`` (also ``jopt.reduce_on_plateau``) and is re-exported here.
"""

from jopt.contrib._acprop import acprop, scale_by_acprop
from jopt.contrib._ademamix import (
    ScaleByAdemamixState,
    ScaleBySimplifiedAdEMAMixState,
    ademamix,
    scale_by_ademamix,
    scale_by_simplified_ademamix,
    simplified_ademamix,
)
from jopt.contrib._adopt import adopt, scale_by_adopt
from jopt.contrib._cocob import COCOBState, cocob, scale_by_cocob
from jopt.contrib._complex_valued import (
    SplitRealAndImaginaryState,
    split_real_and_imaginary,
)
from jopt.contrib._dadapt import DAdaptAdamWState, dadapt_adamw
from jopt.contrib._dog import DoGState, DoWGState, dog, dowg, scale_by_dog, scale_by_dowg
from jopt.contrib._galore import GaLoreDimensionNumbers, GaLoreState, galore, scale_by_galore
from jopt.contrib._kron import (
    ScaleByKronState,
    kron,
    precond_update_prob_schedule,
    scale_by_kron,
)
from jopt.contrib._madgrad import MadgradState, madgrad, scale_by_madgrad
from jopt.contrib._mechanize import MechanicState, mechanize
from jopt.contrib._momo import MomoAdamState, MomoState, momo, momo_adam
from jopt.contrib._muon import MuonState, muon, scale_by_muon
from jopt.contrib._newton_schulz import MuonDimensionNumbers, orthogonalize_via_newton_schulz
from jopt.contrib._privacy import (
    DifferentiallyPrivateAggregateState,
    differentially_private_aggregate,
    dpsgd,
)
from jopt.contrib._prodigy import ProdigyState, prodigy
from jopt.contrib._quantize import QuantizedArray
from jopt.contrib._quantized_adam import (
    ScaleByAdamQuantizedState,
    adam_4bit,
    adam_8bit,
    adamw_4bit,
    adamw_8bit,
    scale_by_adam_quantized,
)
from jopt.contrib._sam import NormalizeState, SAMState, normalize, sam
from jopt.contrib._schedule_free import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
)
from jopt.contrib._shampoo import ScaleByShampooState, scale_by_shampoo, shampoo
from jopt.contrib._soap import ScaleBySoapState, scale_by_soap, soap
from jopt.contrib._sophia import (
    HutchinsonState,
    SophiaState,
    hutchinson_estimator_diag_hessian,
    scale_by_sophia,
    sophia,
)
from jopt.transforms._plateau import ReduceLROnPlateauState, reduce_on_plateau

__all__ = [
    "QuantizedArray",
    "ScaleByAdamQuantizedState",
    "adam_4bit",
    "adam_8bit",
    "adamw_4bit",
    "adamw_8bit",
    "scale_by_adam_quantized",
    "COCOBState",
    "DAdaptAdamWState",
    "DifferentiallyPrivateAggregateState",
    "DoGState",
    "DoWGState",
    "GaLoreDimensionNumbers",
    "GaLoreState",
    "HutchinsonState",
    "MadgradState",
    "MechanicState",
    "MomoAdamState",
    "MomoState",
    "MuonDimensionNumbers",
    "MuonState",
    "NormalizeState",
    "ProdigyState",
    "ReduceLROnPlateauState",
    "SAMState",
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "ScheduleFreeState",
    "SophiaState",
    "ScaleByShampooState",
    "SplitRealAndImaginaryState",
    "acprop",
    "ademamix",
    "adopt",
    "cocob",
    "dadapt_adamw",
    "differentially_private_aggregate",
    "dog",
    "dowg",
    "dpsgd",
    "galore",
    "hutchinson_estimator_diag_hessian",
    "madgrad",
    "mechanize",
    "momo",
    "momo_adam",
    "muon",
    "orthogonalize_via_newton_schulz",
    "normalize",
    "prodigy",
    "reduce_on_plateau",
    "sam",
    "scale_by_acprop",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
    "scale_by_galore",
    "scale_by_madgrad",
    "scale_by_muon",
    "scale_by_shampoo",
    "scale_by_simplified_ademamix",
    "scale_by_sophia",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "shampoo",
    "simplified_ademamix",
    "sophia",
    "split_real_and_imaginary",
    "ScaleBySoapState",
    "scale_by_soap",
    "soap",
    "ScaleByKronState",
    "kron",
    "precond_update_prob_schedule",
    "scale_by_kron",
]
