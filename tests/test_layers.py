"""The layers of DESIGN.md hold: every module and package of ``jopt/`` has a rank, and no module
imports a layer above its own, even inside a function.

Cost: parses jopt's sources once (well under a second), imports nothing.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "jopt"
# Each top-level module or package of jopt/, by layer (DESIGN.md, "Layers"): a module may import
# its own layer and the ones below, never one above. The package itself (jopt/__init__.py, the
# flat public surface) sits above every layer; only the demo, written as a user would, uses it.
RANK = {
    "_check": 0,  # validation rules, one message shape; needs only numpy and jax
    "base": 1,  # the contract: GradientTransformation, states, types
    "tree": 2,  # pytree arithmetic, lookup, random trees, numerics, linear algebra
    "tree_utils": 2,  # optax's older names for jopt.tree
    "_flat": 3,  # FlatTree / FlatLayout, the capability table, per-leaf rows
    "schedules": 4,
    "transforms": 5,
    "losses": 6,
    "metrics": 6,
    "projections": 6,
    "assignment": 6,
    "perturbations": 6,
    "microbatching": 6,
    "optimizers": 7,
    "contrib": 8,
    "train": 9,
    "testing": 10,
    "tune": 11,
    "demo": 13,
}
SURFACE = 12  # jopt/__init__.py


def _top_level(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _rank(module: str) -> int:
    name = _top_level(module)
    return SURFACE if name is None else RANK[name]


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        if node.module == "jopt":  # a layer's package, or a name of the public surface
            return [f"jopt.{a.name}" if a.name in RANK else "jopt" for a in node.names]
        return [node.module]
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return []


def test_every_module_and_package_has_a_rank():
    modules = {p.stem for p in ROOT.glob("*.py")} - {"__init__"}
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    unranked, gone = (modules | packages) - set(RANK), set(RANK) - (modules | packages)
    assert not unranked and not gone, (
        f"unranked: {sorted(unranked)}, ranked but gone: {sorted(gone)}; put a new helper inside "
        "the layer it serves (DESIGN.md) or rank a new package here"
    )


def test_no_loose_private_modules_at_the_root():
    loose = sorted(p.name for p in ROOT.glob("_*.py") if p.name != "__init__.py")
    assert not loose, (
        f"private modules at jopt/'s root: {loose}; move each into its layer's package"
    )


def test_no_module_imports_a_higher_layer():
    upward = []
    for module, path in _modules():
        own = _rank(module)
        for node in ast.walk(ast.parse(path.read_text())):
            for target in _imported(node):
                if (target == "jopt" or target.startswith("jopt.")) and _rank(target) > own:
                    upward.append(f"{module}:{node.lineno} imports {target}")
    assert not upward, f"imports from a higher layer (see DESIGN.md): {upward}"


def test_the_rule_catches_an_upward_import():
    # The walk above must see imports inside functions, and a name taken from the surface.
    tree = ast.parse("def f():\n    from jopt.train import fit\n    from jopt import adam\n")
    targets = [t for node in ast.walk(tree) for t in _imported(node)]
    assert targets == ["jopt.train", "jopt"]
    assert all(_rank(t) > RANK["transforms"] for t in targets)
