"""Write the name-by-name optax -> jopt table of the migration guide (run at build time)."""

from __future__ import annotations

import importlib
import inspect
import pathlib

# (optax namespace, jopt namespace); optax.tree_utils is optax.tree with a tree_ prefix.
PAIRS = [
    ("optax", "jopt"),
    ("optax.schedules", "jopt.schedules"),
    ("optax.losses", "jopt.losses"),
    ("optax.contrib", "jopt.contrib"),
    ("optax.tree", "jopt.tree"),
    ("optax.tree_utils", "jopt.tree"),
    ("optax.projections", "jopt.projections"),
    ("optax.assignment", "jopt.assignment"),
    ("optax.perturbations", "jopt.perturbations"),
    ("optax.microbatching", "jopt.microbatching"),
]


def _jopt_name(optax_namespace: str, name: str) -> str:
    if optax_namespace == "optax.tree_utils" and name.startswith("tree_"):
        return name[len("tree_") :]
    return name


def _names(module) -> list[str]:
    return sorted(
        n
        for n in dir(module)
        if not n.startswith("_")
        and not inspect.ismodule(getattr(module, n))
        and (callable(getattr(module, n)) or inspect.isclass(getattr(module, n)))
    )


def write_table(path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["| optax | jopt |", "|---|---|"]
    for optax_name, jopt_name in PAIRS:
        source = importlib.import_module(optax_name)
        try:
            target = importlib.import_module(jopt_name)
        except ModuleNotFoundError:
            target = None
        for name in _names(source):
            ours = _jopt_name(optax_name, name)
            if target is not None and hasattr(target, ours):
                lines.append(f"| `{optax_name}.{name}` | `{jopt_name}.{ours}` |")
            else:
                lines.append(f"| `{optax_name}.{name}` | — (see the note below) |")
    path.write_text("\n".join(lines) + "\n")
