"""Check a gradient transformation in your own tests: against a reference, and against the contract.

* :func:`assert_matches` runs a transform and a reference (an optax transform, or any object
  with ``init``/``update``) on the same gradients and names the first step and leaf that differ.
* :func:`check_transform` checks the contract every transform should meet (pure and jittable,
  abstract init, stable state, dtypes kept, vmap, composition) and names the property it breaks.
* :func:`assert_trees_close` compares two pytrees (structure, dtypes, values) and names the leaf.
* :func:`nested_params` and :func:`bumpy_loss` are a parameter tree with the awkward corners
  (nested dict/list/tuple, a scalar, an empty subtree) and a loss whose gradients change
  from step to step, to run a transform on.
* :func:`pytrees`, :func:`pytree_pairs`, :func:`arrays`, :func:`shapes` are hypothesis
  strategies for parameter pytrees (``pip install jopt[testing]`` brings hypothesis).

Tree comparisons are chex's (``chex.assert_trees_all_close``), whose messages name the leaf path;
this module adds the step and the property. Every failure is an ``AssertionError``.
"""

from jopt.testing._contract import check_transform
from jopt.testing._matching import assert_matches
from jopt.testing._strategies import arrays, pytree_pairs, pytrees, shapes
from jopt.testing._trees import assert_trees_close, bumpy_loss, nested_params, random_like

__all__ = [
    "arrays",
    "assert_matches",
    "assert_trees_close",
    "bumpy_loss",
    "check_transform",
    "nested_params",
    "pytree_pairs",
    "pytrees",
    "random_like",
    "shapes",
]
