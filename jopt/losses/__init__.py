"""Losses (``jopt.losses``): optax's losses under optax's names and signatures, plus
regularization penalties.

Each loss is elementwise or reduces only the axis it names; average over the
batch yourself, e.g. ``jopt.losses.softmax_cross_entropy(logits, labels).mean()``.
"""

from jopt.losses._classification import (
    hinge_loss,
    multiclass_hinge_loss,
    multiclass_perceptron_loss,
    perceptron_loss,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
)
from jopt.losses._ctc import ctc_loss, ctc_loss_with_forward_probs
from jopt.losses._divergence import (
    convex_kl_divergence,
    generalized_kl_divergence,
    kl_divergence,
    kl_divergence_with_log_targets,
)
from jopt.losses._embedding import ntxent, triplet_margin_loss
from jopt.losses._penalties import elastic_net_penalty, l1_penalty, l2_penalty
from jopt.losses._ranking import ranking_softmax_loss
from jopt.losses._regression import (
    cosine_distance,
    cosine_similarity,
    huber_loss,
    l2_loss,
    log_cosh,
    squared_error,
)
from jopt.losses._segmentation import binary_dice_loss, dice_loss, multiclass_generalized_dice_loss
from jopt.losses._softmax import (
    poly_loss_cross_entropy,
    safe_softmax_cross_entropy,
    smooth_labels,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
)
from jopt.losses._sparse import make_fenchel_young_loss, multiclass_sparsemax_loss, sparsemax_loss

__all__ = [
    # regression
    "cosine_distance",
    "cosine_similarity",
    "huber_loss",
    "l2_loss",
    "log_cosh",
    "squared_error",
    # classification
    "hinge_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "perceptron_loss",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "poly_loss_cross_entropy",
    "safe_softmax_cross_entropy",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "make_fenchel_young_loss",
    "multiclass_sparsemax_loss",
    "sparsemax_loss",
    # divergences
    "convex_kl_divergence",
    "generalized_kl_divergence",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    # sequences, embeddings, ranking, segmentation
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "ntxent",
    "triplet_margin_loss",
    "ranking_softmax_loss",
    "binary_dice_loss",
    "dice_loss",
    "multiclass_generalized_dice_loss",
    # penalties (optax has none)
    "elastic_net_penalty",
    "l1_penalty",
    "l2_penalty",
]
