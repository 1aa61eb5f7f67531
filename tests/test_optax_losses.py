"""Where optax's own loss tests found jopt.losses differing from optax 0.2.8."""

import jax
import optax
import pytest

from jopt import losses


def test_dice_loss_names_valid_probability_distributions_as_optax():
    key = jax.random.key(0)
    probs = jax.random.uniform(key, (2, 3, 3))
    targets = jax.random.bernoulli(key, 0.3, (2, 3, 3))
    match = "valid probability distributions"
    with pytest.raises(ValueError, match=match):
        optax.losses.dice_loss(probs, targets, apply_softmax=False)
    with pytest.raises(ValueError, match=match):
        losses.dice_loss(probs, targets, apply_softmax=False)
