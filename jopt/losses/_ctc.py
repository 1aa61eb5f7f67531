"""Connectionist temporal classification (CTC): sequence loss without an alignment."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jopt import _check as check


def _check_rank(name, array, rank):
    if jnp.ndim(array) != rank:
        raise ValueError(f"{name} must have rank {rank}, got shape {jnp.shape(array)}")


def _check_same_shape(name, shape, other_name, other_shape):
    if tuple(shape) != tuple(other_shape):
        raise ValueError(
            f"{name} has shape {tuple(shape)} but {other_name} has shape {tuple(other_shape)}; "
            "they must match"
        )


def ctc_loss_with_forward_probs(
    logits: jax.Array,
    logit_paddings: jax.Array,
    labels: jax.Array,
    label_paddings: jax.Array,
    *,
    blank_id: int = 0,
    log_epsilon: float = -1e5,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""CTC loss and the forward variables of the alignment lattice.

    The forward (alpha) recursion runs in log space over the lattice of blank
    ("phi") and label ("emit") states; ``log_epsilon`` stands for :math:`\log 0`.

    Args:
      logits: ``[batch, time, classes]`` unnormalized log probabilities.
      logit_paddings: ``[batch, time]``, 1.0 on padded frames, 0.0 elsewhere.
      labels: ``[batch, max_label_length]`` integer labels.
      label_paddings: ``[batch, max_label_length]``, 1.0 on padded labels.
      blank_id: class index of the blank, in [0, classes); default 0.
      log_epsilon: the log probability standing for impossible, finite; default -1e5.

    Returns:
      ``(per_sequence_loss [batch], log_alpha_phi [time, batch, labels+1],
      log_alpha_emit [time, batch, labels])``.

    References:
      Graves et al., `Connectionist Temporal Classification
      <https://doi.org/10.1145/1143844.1143891>`_, 2006.
    """
    _check_rank("logits", logits, 3)
    _check_rank("labels", labels, 2)
    _check_same_shape("labels", labels.shape, "label_paddings", jnp.shape(label_paddings))
    _check_same_shape("logits[..., 0]", logits.shape[:2], "logit_paddings",
                      jnp.shape(logit_paddings))  # fmt: skip
    batch, _, num_classes = logits.shape
    if labels.shape[0] != batch:
        raise ValueError(f"labels must have batch size {batch}, got {labels.shape[0]}")
    max_label_length = labels.shape[1]
    check.integer("blank_id", blank_id, 0, f"pass a class index in [0, {num_classes})")
    if blank_id >= num_classes:
        raise ValueError(
            f"blank_id must be < the number of classes ({num_classes}), got {blank_id}; "
            f"pass a class index in [0, {num_classes})"
        )
    check.number("log_epsilon", log_epsilon)

    log_probs = jax.nn.log_softmax(logits)
    label_lengths = max_label_length - jnp.sum(label_paddings, axis=1).astype(jnp.int32)
    # repeat[b, n] is 1 when label n+1 repeats label n: a blank must separate them.
    repeat = (labels[:, :-1] == labels[:, 1:]).astype(jnp.float32)
    repeat = jnp.pad(repeat, ((0, 0), (0, 1)))

    log_probs_blank = jnp.transpose(log_probs[:, :, blank_id : blank_id + 1], (1, 0, 2))
    one_hot = jax.nn.one_hot(labels, num_classes=num_classes)
    log_probs_emit = jnp.transpose(jnp.einsum("btk,bnk->btn", log_probs, one_hot), (1, 0, 2))

    phi_init = (jnp.ones((batch, max_label_length + 1)) * log_epsilon).at[:, 0].set(0.0)
    emit_init = jnp.ones((batch, max_label_length)) * log_epsilon

    def add_to_phi(phi, score):
        # Log-add `score` into phi[:, 1:] (phi[:, 0] has no incoming label state).
        return jnp.concatenate([phi[:, :1], jnp.logaddexp(phi[:, 1:], score)], axis=-1)

    def step(carry, frame):
        phi, emit = carry
        log_prob_emit, log_prob_blank, pad = frame
        phi_before = phi
        # emit -> phi epsilon move, forbidden before a repeated label.
        phi = add_to_phi(phi, emit + log_epsilon * repeat)
        next_emit = jnp.logaddexp(phi[:, :-1] + log_prob_emit, emit + log_prob_emit)
        next_phi = add_to_phi(
            phi + log_prob_blank, emit + log_prob_blank + log_epsilon * (1.0 - repeat)
        )
        pad = pad.reshape((batch, 1))
        next_emit = pad * emit + (1.0 - pad) * next_emit
        next_phi = pad * phi_before + (1.0 - pad) * next_phi
        return (next_phi, next_emit), (next_phi, next_emit)

    frames = (log_probs_emit, log_probs_blank, logit_paddings.transpose((1, 0)))
    _, (log_alpha_phi, log_alpha_emit) = jax.lax.scan(step, (phi_init, emit_init), frames)
    # The last frame still needs its final emit -> phi move.
    last = add_to_phi(log_alpha_phi[-1], log_alpha_emit[-1])
    log_alpha_phi = log_alpha_phi.at[-1].set(last)
    at_length = jax.nn.one_hot(label_lengths, num_classes=max_label_length + 1)
    per_seq_loss = -jnp.einsum("bn,bn->b", last, at_length)
    return per_seq_loss, log_alpha_phi, log_alpha_emit


def ctc_loss(
    logits: jax.Array,
    logit_paddings: jax.Array,
    labels: jax.Array,
    label_paddings: jax.Array,
    *,
    blank_id: int = 0,
    log_epsilon: float = -1e5,
) -> jax.Array:
    r"""CTC loss per sequence: :math:`-\log` of the total probability of all alignments.

    Args:
      logits: ``[batch, time, classes]`` unnormalized log probabilities.
      logit_paddings: ``[batch, time]``, 1.0 on padded frames, 0.0 elsewhere.
      labels: ``[batch, max_label_length]`` integer labels.
      label_paddings: ``[batch, max_label_length]``, 1.0 on padded labels.
      blank_id: class index of the blank, in [0, classes); default 0.
      log_epsilon: the log probability standing for impossible, finite; default -1e5.

    Returns:
      The loss of each sequence, ``[batch]``.

    References:
      Graves et al., `Connectionist Temporal Classification
      <https://doi.org/10.1145/1143844.1143891>`_, 2006.
    """
    loss, _, _ = ctc_loss_with_forward_probs(
        logits, logit_paddings, labels, label_paddings, blank_id=blank_id,
        log_epsilon=log_epsilon,
    )  # fmt: skip
    return loss
