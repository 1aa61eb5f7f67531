"""masked and partition: state only for the selected leaves, aliases, extra arguments."""

import jax
import jax.numpy as jnp
import numpy as np

import jopt

PARAMS = {"w": jnp.ones((2, 3)), "b": jnp.ones(3), "s": jnp.ones(())}
GRADS = jax.tree.map(lambda p: 0.5 * jnp.ones_like(p), PARAMS)


def _is_matrix(p):
    return jax.tree.map(lambda x: x.ndim > 1, p)


def test_masked_keeps_state_only_for_selected_leaves_and_passes_the_rest():
    tx = jopt.masked(jopt.scale_by_adam(), _is_matrix)
    state = tx.init(PARAMS)
    assert isinstance(state.inner_state.mu["b"], jopt.MaskedNode)
    assert state.inner_state.mu["w"].shape == (2, 3)
    updates, _ = tx.update(GRADS, state, PARAMS)
    np.testing.assert_array_equal(updates["b"], GRADS["b"])
    np.testing.assert_allclose(updates["w"], 1.0, rtol=1e-4)  # adam's first step: sign


def test_masked_masks_extra_args_shaped_like_the_updates():
    seen = {}

    def update(updates, state, params=None, **extra):
        seen.update(extra)
        return updates, state

    inner = jopt.GradientTransformationExtraArgs(jopt.init_empty_state, update)
    tx = jopt.masked(inner, _is_matrix, mask_compatible_extra_args=True)
    tx.update(GRADS, tx.init(PARAMS), PARAMS, grad=GRADS, value=1.0)
    assert isinstance(seen["grad"]["b"], jopt.MaskedNode) and seen["value"] == 1.0


def test_partition_applies_each_transform_to_its_group_and_freezes():
    labels = {"w": "train", "b": "frozen", "s": "train"}
    tx = jopt.partition({"train": jopt.sgd(0.1), "frozen": jopt.set_to_zero()}, labels)
    updates, state = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    np.testing.assert_allclose(updates["w"], -0.05)
    np.testing.assert_array_equal(updates["b"], 0.0)
    assert isinstance(state, jopt.PartitionState) and set(state.inner_states) == {"train", "frozen"}


def test_multi_transform_is_partition():
    transforms = {"a": jopt.adam(0.1), "b": jopt.sgd(0.1, 0.9)}
    labels = {"w": "a", "b": "b", "s": "a"}
    one = jopt.partition(transforms, labels)
    two = jopt.multi_transform(transforms, labels)
    out_one, state_one = one.update(GRADS, one.init(PARAMS), PARAMS)
    out_two, state_two = two.update(GRADS, two.init(PARAMS), PARAMS)
    assert jopt.MultiTransformState is jopt.PartitionState
    assert jax.tree.structure(state_one) == jax.tree.structure(state_two)
    for a, b in zip(jax.tree.leaves(out_one), jax.tree.leaves(out_two), strict=True):
        np.testing.assert_array_equal(a, b)
