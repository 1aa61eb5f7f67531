"""Every optimizer and transform factory documents its update rule, arguments and paper.

A factory is a public function of ``jopt`` or ``jopt.contrib`` annotated to return a
``GradientTransformation`` (or its ``ExtraArgs`` variant). Each must have:

- an ``Args:`` section naming every argument (when it takes any);
- its update rule as a formula (``.. math::`` or ``:math:``);
- a reference: a ``References:`` section or a citation (``et al.``, arXiv, DOI).

Combinators and wrappers (``WRAPPERS``) apply, route or record other transforms: their
update rule is the inner transform's and they have no paper of their own, so only the
``Args:`` rule applies to them.
"""

import inspect
import re

import pytest

import jopt
import jopt.contrib

# name -> why it needs no formula or paper of its own.
WRAPPERS = {
    "chain": "applies its members in order",
    "named_chain": "applies its members in order",
    "identity": "returns the updates unchanged",
    "set_to_zero": "returns zeros",
    "stateless": "builds a transform from a function",
    "stateless_with_tree_map": "builds a transform from a function",
    "with_extra_args_support": "adapts the update signature",
    "masked": "applies another transform to a subset",
    "partition": "routes leaves to other transforms",
    "multi_transform": "routes leaves to other transforms",
    "selective_transform": "routes leaves to another transform",
    "freeze": "zeroes a subset of the updates",
    "flatten": "changes the layout another transform sees",
    "flat_state": "changes the layout another transform sees",
    "split_real_and_imaginary": "changes the layout another transform sees",
    "inject_hyperparams": "moves another transform's hyperparameters into the state",
    "inject_stateful_hyperparams": "moves another transform's hyperparameters into the state",
    "apply_if_finite": "skips another transform's non-finite steps",
    "conditionally_mask": "skips another transform's steps by a predicate",
    "conditionally_transform": "skips another transform's steps by a predicate",
    "apply_every": "accumulates another transform's updates",
    "zero_nans": "a numerical safeguard",
    "monitor": "records measurements, updates unchanged",
    "snapshot": "records measurements, updates unchanged",
    "measure_with_ema": "records measurements, updates unchanged",
}

FORMULA = re.compile(r"\.\. math::|:math:`")
REFERENCE = re.compile(r"^\s*References?:|et al\.|arxiv\.org|arXiv:|doi\.org", re.M)
ARGS = re.compile(r"^Args:\n(?P<body>.*?)(?=^\S|\Z)", re.M | re.S)
ARG_NAMES = re.compile(r"^ {1,8}(?P<names>\*{0,2}\w+(?:, *\*{0,2}\w+)*)(?: *\([^)]*\))?:", re.M)


def _returns_transformation(function) -> bool:
    try:
        annotation = inspect.signature(function).return_annotation
    except (TypeError, ValueError):
        return False
    # Annotations are objects (jopt evaluates them at import); a generic alias such as
    # Callable[..., GradientTransformation] names its arguments only in its str().
    text = annotation.__name__ if inspect.isclass(annotation) else str(annotation)
    return "GradientTransformation" in text


def _factories():
    found = {}
    for module in (jopt, jopt.contrib):
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isfunction(value) and _returns_transformation(value):
                found[f"{module.__name__}.{name}"] = value
    return found


FACTORIES = _factories()


def documented_arguments(doc: str) -> set[str]:
    """Argument names listed in the ``Args:`` section (``a, b:`` lines list several)."""
    section = ARGS.search(doc)
    if section is None:
        return set()
    names = set()
    for match in ARG_NAMES.finditer(section["body"]):
        names |= {n.strip().lstrip("*") for n in match["names"].split(",")}
    return names


def problems(name: str, function) -> list[str]:
    """What the docstring of ``function`` lacks; empty when it is complete."""
    doc = inspect.getdoc(function) or ""
    found = []
    arguments = list(inspect.signature(function).parameters)
    if arguments:
        if ARGS.search(doc) is None:
            found.append("an Args: section")
        else:
            missing = [a for a in arguments if a not in documented_arguments(doc)]
            if missing:
                found.append(f"Args: entries for {missing}")
    if name.rsplit(".", 1)[-1] not in WRAPPERS:
        if not FORMULA.search(doc):
            found.append("the update rule as a formula (.. math:: or :math:)")
        if not REFERENCE.search(doc):
            found.append("a References: section or a paper citation")
    return found


def test_factories_are_found():
    assert {"jopt.adam", "jopt.scale_by_adam", "jopt.chain", "jopt.contrib.muon"} <= set(FACTORIES)
    assert "jopt.warmup_cosine_decay_schedule" not in FACTORIES  # returns a schedule
    assert len(FACTORIES) > 120


def test_every_wrapper_exists():
    names = {full.rsplit(".", 1)[-1] for full in FACTORIES}
    assert set(WRAPPERS) <= names, sorted(set(WRAPPERS) - names)


def test_every_factory_documents_rule_arguments_and_paper():
    incomplete = {name: p for name, f in FACTORIES.items() if (p := problems(name, f))}
    report = "\n".join(f"  {name}: lacks {', '.join(p)}" for name, p in sorted(incomplete.items()))
    assert not incomplete, f"{len(incomplete)} factories have incomplete docstrings:\n{report}"


def _example(a, b=1.0):
    """Scale.

    Args:
      a: first.
      b: second.
    """


def _multi(a, b):
    """Scale, :math:`u = g`.

    Args:
      a, b: both.

    References:
      Someone et al., 2020.
    """


@pytest.mark.parametrize(
    "function, name, expected",
    [
        (_example, "example", ["formula", "References"]),
        (_multi, "example", []),
        (_example, "chain", []),  # a wrapper: Args only
    ],
)
def test_the_checks_can_fail(function, name, expected):
    found = problems(name, function)
    assert len(found) == len(expected)
    for text, word in zip(found, expected, strict=True):
        assert word in text
    _example.__doc__, saved = "Scale, :math:`u = g`.\n\nReferences:\n  X et al.\n", _example.__doc__
    try:
        assert problems("example", _example) == ["an Args: section"]
    finally:
        _example.__doc__ = saved
