"""Differentiable approximations by random perturbations (``jopt.perturbations``), as in
``optax.perturbations``: :func:`make_perturbed_fun` and its noise distributions."""

from jopt.perturbations._perturbed import Gumbel, Normal, make_perturbed_fun

__all__ = ["Gumbel", "Normal", "make_perturbed_fun"]
