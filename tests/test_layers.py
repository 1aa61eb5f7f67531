"""The layers of DESIGN.md hold: no module imports a layer above its own, even inside a function.

Cost: parses jopt's sources once (well under a second), imports nothing.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "jopt"
# Lower layers never import higher ones (DESIGN.md, "Layers").
RANK = {
    "base": 0,
    "tree": 1,
    "schedules": 2,
    "transforms": 3,
    "optimizers": 4,
    "losses": 5,
    "metrics": 5,
    "train": 6,
    "testing": 7,
    "tune": 8,
}


def _rank(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        if node.module == "jopt":
            return [f"jopt.{alias.name}" for alias in node.names]
        return [node.module]
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return []


def test_no_module_imports_a_higher_layer():
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        own = _rank(module)
        if own is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            for target in _imported(node):
                if target.startswith("jopt.") and (_rank(target) or -1) > own:
                    upward.append(f"{module}:{node.lineno} imports {target}")
    assert not upward, f"imports from a higher layer (see DESIGN.md): {upward}"
