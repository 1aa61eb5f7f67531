"""Hypothesis strategies for random pytrees: the public ones in :mod:`jopt.testing`."""

from jopt.testing import FLOAT_DTYPES, arrays, pytree_pairs, pytrees, shapes
from jopt.testing import random_like as like

__all__ = ["FLOAT_DTYPES", "arrays", "like", "pytree_pairs", "pytrees", "shapes"]
