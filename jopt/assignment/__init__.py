"""The linear assignment problem (``jopt.assignment``), as in ``optax.assignment``."""

from jopt.assignment._hungarian import base_hungarian_algorithm, hungarian_algorithm

__all__ = ["base_hungarian_algorithm", "hungarian_algorithm"]
