"""jopt has every public optimizer, transform, wrapper, schedule and loss that optax has.

The test walks optax's public namespaces and fails listing what jopt lacks. Names left
out on purpose are in ALLOWED_MISSING, each with its reason; keep that list short.
"""

import inspect
import warnings

import optax
import optax.assignment
import optax.contrib
import optax.losses
import optax.microbatching
import optax.perturbations
import optax.projections
import optax.schedules
import optax.transforms
import optax.tree
import optax.tree_utils

import jopt
import jopt.assignment
import jopt.contrib
import jopt.losses
import jopt.microbatching
import jopt.perturbations
import jopt.projections
import jopt.schedules
import jopt.tree
import jopt.tree_utils

# Sub-namespaces of optax that are not optimizers, transforms, schedules or losses.
NAMESPACES = {
    "assignment", "contrib", "experimental", "losses", "microbatching", "perturbations",
    "projections", "schedules", "second_order", "transforms", "tree", "tree_utils",
}  # fmt: skip

# "label.name" -> why jopt leaves it out. Keep it short.
ALLOWED_MISSING = {
    "optax.global_norm": "deprecated in optax itself in favour of optax.tree.norm "
    "(jopt.tree.norm, jopt.tree.l2_norm)",
}

# optax namespaces jopt leaves out as a whole, with the reason.
LEFT_OUT_NAMESPACES = {
    "aggregating": "optax.experimental.aggregating is experimental in optax (per-example "
    "update aggregators, ~700 lines); jopt.microbatching.micro_grad gives per-example "
    "gradients, their transforms and metrics",
}

# (optax namespace, jopt namespace, label, prefix optax adds to jopt's names)
PAIRS = [
    (optax, jopt, "optax", ""),
    (optax.transforms, jopt, "optax.transforms", ""),
    (optax.schedules, jopt.schedules, "optax.schedules", ""),
    (optax.losses, jopt.losses, "optax.losses", ""),
    (optax.contrib, jopt.contrib, "optax.contrib", ""),
    (optax.tree, jopt.tree, "optax.tree", ""),
    # optax.tree_utils is optax.tree with a tree_ prefix on each name (tree_add ...).
    (optax.tree_utils, jopt.tree, "optax.tree_utils", "tree_"),
    (optax.tree_utils, jopt.tree_utils, "optax.tree_utils (as jopt.tree_utils)", ""),
    (optax.projections, jopt.projections, "optax.projections", ""),
    (optax.assignment, jopt.assignment, "optax.assignment", ""),
    (optax.perturbations, jopt.perturbations, "optax.perturbations", ""),
    (optax.microbatching, jopt.microbatching, "optax.microbatching", ""),
]


def _get(module, name):
    with warnings.catch_warnings():  # optax's deprecated names warn when read
        warnings.simplefilter("ignore", DeprecationWarning)
        return getattr(module, name, None)


def _public_names(module):
    # optax's deprecated names (optax.dpsgd ...) are in __all__ but not in dir(): walk both.
    names = set()
    for name in set(dir(module)) | set(getattr(module, "__all__", ())):
        if name.startswith("_") or name in NAMESPACES:
            continue
        value = _get(module, name)
        if value is None:
            continue
        if inspect.ismodule(value):
            continue
        if callable(value) or inspect.isclass(value):
            names.add(name)
    return names


def _counterpart(jopt_ns, name, prefix):
    ours = name[len(prefix) :] if prefix and name.startswith(prefix) else name
    return None if jopt_ns is None else getattr(jopt_ns, ours, None)


def test_jopt_has_every_optax_name():
    missing = []
    for optax_ns, jopt_ns, label, prefix in PAIRS:
        for name in sorted(_public_names(optax_ns)):
            full = f"{label}.{name}"
            if full not in ALLOWED_MISSING and _counterpart(jopt_ns, name, prefix) is None:
                missing.append(full)
    assert not missing, f"jopt lacks {len(missing)} optax names: {missing}"


def test_the_walk_sees_optax_deprecated_top_level_names():
    # They live behind optax's module __getattr__, which dir() does not list.
    assert {"dpsgd", "differentially_private_aggregate"} <= _public_names(optax)


def test_optax_base_names_used_by_its_tests():
    import optax._src.base as optax_base

    assert jopt.base.PRNGKey is optax_base.PRNGKey  # both name jax.Array


# Parameters jopt adds after optax's own (never before them, so positional calls agree).
EXTRA_PARAMETERS = {"nu_dtype", "mode"}


def _plain(value):
    # Transformations (NamedTuples of closures) and functions never compare equal: skip them.
    return value is None or type(value) in (bool, int, float, str, tuple)


def _parameters(fn):
    # *args is a positional catch-all in both; its name (args / transforms) is not API.
    return [
        (p.name if p.kind is not p.VAR_POSITIONAL else "*", p.kind, p.default)
        for p in inspect.signature(fn).parameters.values()
    ]


def test_shared_functions_take_optax_arguments():
    """A call that works with optax works with jopt: same names, kinds, order and defaults
    (nadam(nesterov=False), a positional mu_dtype ...)."""
    differ = []
    for optax_ns, jopt_ns, label, prefix in PAIRS:
        for name in sorted(_public_names(optax_ns)):
            theirs_fn, ours_fn = _get(optax_ns, name), _counterpart(jopt_ns, name, prefix)
            if ours_fn is None:
                continue
            if inspect.isclass(theirs_fn) or not inspect.isfunction(ours_fn):
                continue
            theirs, ours = _parameters(theirs_fn), _parameters(ours_fn)
            extra = [p[0] for p in ours[len(theirs) :]]
            same = len(ours) >= len(theirs) and set(extra) <= EXTRA_PARAMETERS
            for theirs_p, ours_p in zip(theirs, ours, strict=False):  # extras checked above
                both_plain = _plain(theirs_p[2]) and _plain(ours_p[2])
                same &= theirs_p[:2] == ours_p[:2]
                same &= not both_plain or theirs_p[2] == ours_p[2]
            if not same:
                differ.append(f"{label}.{name}: jopt {ours} vs optax {theirs}")
    assert not differ, "\n".join(differ)


def test_left_out_namespaces_are_the_experimental_ones():
    import optax.experimental

    assert set(optax.experimental.__all__) == set(LEFT_OUT_NAMESPACES)


def test_allow_list_is_short_and_not_stale():
    assert len(ALLOWED_MISSING) <= 5
    known = {f"{label}.{n}": (j, n, p) for o, j, label, p in PAIRS for n in _public_names(o)}
    for full, reason in ALLOWED_MISSING.items():
        assert reason, f"{full} needs a reason"
        assert full in known, f"{full} is no longer in optax; drop it from the allow-list"
        assert _counterpart(*known[full]) is None, f"jopt now has {full}; drop it from the list"


def test_nothing_under_jopt_imports_optax():
    import pathlib

    root = pathlib.Path(jopt.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "import optax" in path.read_text() or "from optax" in path.read_text()
    ]
    assert not offenders, f"jopt modules import optax: {offenders}"
