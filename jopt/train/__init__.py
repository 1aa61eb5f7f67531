"""The training layer: state, jitted and sharded steps, loops, checkpoints.

``jopt.train.sharding`` holds meshes and sharding rules. Flax and orbax are
imported only by the modules that need them, so ``import jopt`` stays fast.
"""

from jopt.train import sharding
from jopt.train._compiled import fit_compiled
from jopt.train._history import History
from jopt.train._loop import fit
from jopt.train._loss_output import Metrics
from jopt.train._progress import FitResult, Progress
from jopt.train._state import TrainState
from jopt.train._step import TrainStep, make_eval_step, make_train_step
from jopt.train.data import (
    Batches,
    Normalization,
    Standardization,
    epoch_permutation,
    fit_normalize,
    fit_standardize,
    normalize,
    num_examples,
    standardize,
)
from jopt.train.early_stopping import EarlyStopping, EarlyStoppingState

__all__ = [
    "Metrics",
    "TrainState",
    "TrainStep",
    "make_eval_step",
    "make_train_step",
    "sharding",
    # loop, data, early stopping (jopt.train.checkpoint holds Checkpointer: it imports orbax)
    "Batches",
    "EarlyStopping",
    "EarlyStoppingState",
    "FitResult",
    "History",
    "Progress",
    "Normalization",
    "Standardization",
    "epoch_permutation",
    "fit",
    "fit_compiled",
    "fit_normalize",
    "fit_standardize",
    "normalize",
    "num_examples",
    "standardize",
]
