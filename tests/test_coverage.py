"""jopt has every public optimizer, transform, wrapper, schedule and loss that optax has.

The test walks optax's public namespaces and fails listing what jopt lacks. Names left
out on purpose are in ALLOWED_MISSING, each with its reason; keep that list short.
"""

import inspect

import optax
import optax.contrib
import optax.losses
import optax.schedules
import optax.transforms

import jopt
import jopt.contrib
import jopt.losses
import jopt.schedules

# Sub-namespaces of optax that are not optimizers, transforms, schedules or losses.
NAMESPACES = {
    "assignment", "contrib", "experimental", "losses", "microbatching", "perturbations",
    "projections", "schedules", "second_order", "transforms", "tree", "tree_utils",
}  # fmt: skip

ALLOWED_MISSING = {
    # Deprecated in optax itself in favour of optax.tree.norm; jopt has jopt.tree.l2_norm.
    "global_norm",
    # A function transform (optax.microbatching: microbatch, micro_grad, micro_vmap) that
    # splits arbitrary functions' batches, not a gradient transformation; gradient
    # accumulation is jopt.MultiSteps, and jopt.train's steps take whole batches.
    "microbatch",
}

# (optax namespace, jopt namespace, label)
PAIRS = [
    (optax, jopt, "optax"),
    (optax.transforms, jopt, "optax.transforms"),
    (optax.schedules, jopt.schedules, "optax.schedules"),
    (optax.losses, jopt.losses, "optax.losses"),
    (optax.contrib, jopt.contrib, "optax.contrib"),
]


def _public_names(module):
    names = set()
    for name in dir(module):
        if name.startswith("_") or name in NAMESPACES:
            continue
        value = getattr(module, name)
        if inspect.ismodule(value):
            continue
        if callable(value) or inspect.isclass(value):
            names.add(name)
    return names


def test_jopt_has_every_optax_name():
    missing = []
    for optax_ns, jopt_ns, label in PAIRS:
        for name in sorted(_public_names(optax_ns) - ALLOWED_MISSING):
            if not hasattr(jopt_ns, name):
                missing.append(f"{label}.{name}")
    assert not missing, f"jopt lacks {len(missing)} optax names: {missing}"


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
    for optax_ns, jopt_ns, label in PAIRS:
        for name in sorted(_public_names(optax_ns) & _public_names(jopt_ns)):
            theirs_fn, ours_fn = getattr(optax_ns, name), getattr(jopt_ns, name)
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


def test_allow_list_is_short_and_not_stale():
    assert len(ALLOWED_MISSING) <= 5
    for name in ALLOWED_MISSING:
        assert hasattr(optax, name), f"{name} is no longer in optax; drop it from the allow-list"
        assert not hasattr(jopt, name), f"jopt now has {name}; drop it from the allow-list"


def test_nothing_under_jopt_imports_optax():
    import pathlib

    root = pathlib.Path(jopt.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "import optax" in path.read_text() or "from optax" in path.read_text()
    ]
    assert not offenders, f"jopt modules import optax: {offenders}"
