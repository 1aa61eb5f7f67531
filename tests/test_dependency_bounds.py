"""The oldest stack `make test` pins is pyproject's lower bounds, so a lower bound is a tested one.

Cost: reads two text files.
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOWER = re.compile(r'"([A-Za-z0-9_.-]+)>=([0-9][^,"]*)')


def _lower_bounds() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text()
    return {name.lower(): version for name, version in LOWER.findall(text)}


def _pins() -> dict[str, str]:
    lines = (ROOT / ".ci" / "oldest-supported.txt").read_text().splitlines()
    pairs = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {name.strip().lower(): version.strip() for name, version in pairs}


def test_every_pin_is_its_lower_bound():
    bounds = _lower_bounds()
    wrong = {
        name: (pin, bounds.get(name)) for name, pin in _pins().items() if bounds.get(name) != pin
    }
    assert not wrong, f"pin != pyproject lower bound (name: (pin, bound)): {wrong}"


def test_the_jax_stack_is_pinned():
    jax_stack = {"jax", "jaxlib", "chex", "orbax-checkpoint", "flax", "optax"}
    assert jax_stack <= set(_pins()), f"unpinned: {sorted(jax_stack - set(_pins()))}"
