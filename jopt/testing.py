"""Check a gradient transformation in your own tests: against a reference, and against the contract.

* :func:`assert_matches` runs a transform and a reference (an optax transform, or any object
  with ``init``/``update``) on the same gradients and names the first step and leaf that differ.
* :func:`check_transform` checks the contract every transform should meet (pure and jittable,
  abstract init, stable state, dtypes kept, vmap, composition) and names the property it breaks.
* :func:`assert_trees_close` compares two pytrees (structure, dtypes, values) and names the leaf.
* :func:`nested_params` and :func:`bumpy_loss` are a parameter tree with the awkward corners
  (nested dict/list/tuple, a scalar, an empty subtree) and a loss whose gradients change
  from step to step, to run a transform on.
* :func:`pytrees`, :func:`pytree_pairs`, :func:`arrays`, :func:`shapes` are hypothesis
  strategies for parameter pytrees (``pip install jopt[testing]`` brings hypothesis).

Tree comparisons are chex's (``chex.assert_trees_all_close``), whose messages name the leaf path;
this module adds the step and the property. Every failure is an ``AssertionError``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "arrays",
    "assert_matches",
    "assert_trees_close",
    "bumpy_loss",
    "check_transform",
    "nested_params",
    "pytree_pairs",
    "pytrees",
    "random_like",
    "shapes",
]


def _chex():
    try:
        import chex  # noqa: PLC0415 - a test-time dependency, the 'testing' extra
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("jopt.testing needs chex; install it with `pip install chex`") from err
    return chex


def random_like(tree: Any, seed: int, scale: float = 1.0) -> Any:
    """A tree with ``tree``'s structure, shapes and dtypes and normal random values.

    Args:
      tree: a pytree of arrays (or ``jax.ShapeDtypeStruct``).
      seed: NumPy generator seed; the same seed gives the same tree.
      scale: standard deviation of the values.
    """
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda x: jnp.asarray(rng.normal(size=jnp.shape(x)) * scale, jnp.result_type(x)), tree
    )


def nested_params(dtype: Any = jnp.float32) -> dict:
    """A small parameter tree with the corners transforms get wrong, the same on every call.

    Dicts, a list and a tuple, a matrix, vectors, scalar leaves and an empty subtree; values
    are normal draws of a fixed seed.

    Args:
      dtype: dtype of every leaf (pass ``jnp.bfloat16`` to check that bf16 stays bf16).
    """
    rng = np.random.default_rng(0)

    def arr(*shape):
        return jnp.asarray(rng.normal(size=shape), dtype)

    return {
        "dense": {"w": arr(4, 3), "b": arr(3)},
        "layers": [arr(2), (arr(2, 2), arr())],
        "scale": arr(),
        "empty": {},
    }


def bumpy_loss(params: Any) -> jax.Array:
    r"""A smooth, non-convex loss whose gradients change from step to step.

    .. math::  L(\theta) = \sum_i \sum_j \tfrac{i+1}{2}\,\theta_{ij}^2 + \sin(3\theta_{ij})
               + 0.1\,\theta_{ij}

    over leaves :math:`i` (in ``jax.tree.leaves`` order) and their entries :math:`j`: each
    leaf gets its own curvature, so per-leaf and whole-tree transforms give different
    updates. Computed in float32 whatever the leaves' dtype.
    """
    total = jnp.zeros([], jnp.float32)
    for i, leaf in enumerate(jax.tree.leaves(params)):
        x = jnp.asarray(leaf).astype(jnp.float32)
        total = total + jnp.sum(0.5 * (i + 1) * x**2 + jnp.sin(3.0 * x) + 0.1 * x)
    return total


def _without_keys(tree: Any) -> Any:
    """PRNG key arrays as their integer data, which NumPy and chex can compare."""

    def data(x):
        is_key = jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)
        return jax.random.key_data(x) if is_key else x

    return jax.tree.map(data, tree)


def _dtype_differs(a: Any, e: Any) -> bool:
    a_dtype, e_dtype = getattr(a, "dtype", None), getattr(e, "dtype", None)
    if a_dtype is not None and a_dtype == e_dtype:
        return False  # the common case, without JAX's slower canonicalisation
    return jnp.result_type(a) != jnp.result_type(e)


def _dtype_difference(actual: Any, expected: Any) -> str:
    """The first leaf whose dtype differs, as JAX sees them ('' if none).

    JAX's dtypes: a NumPy float64 reference equals a float32 result unless x64 is enabled.
    """
    pairs = zip(
        jax.tree_util.tree_flatten_with_path(actual)[0], jax.tree.leaves(expected), strict=True
    )
    for (path, a), e in pairs:
        if _dtype_differs(a, e):
            where = jax.tree_util.keystr(path)
            return f"dtype differs at {where}: {jnp.result_type(a)} vs {jnp.result_type(e)}"
    return ""


def _all_close(actual: Any, expected: Any, rtol: float, atol: float) -> bool:
    """A quick yes/no (structure, dtypes, values) before chex builds a message on failure.

    One host transfer and one vectorised comparison for the whole tree: the step-by-step
    checks of :func:`assert_matches` cost little beside the steps themselves.
    """
    a_leaves, a_def = jax.tree.flatten(actual)
    e_leaves, e_def = jax.tree.flatten(expected)
    if a_def != e_def or any(map(_dtype_differs, a_leaves, e_leaves)):
        return False
    a_leaves, e_leaves = jax.device_get((a_leaves, e_leaves))
    if any(np.shape(a) != np.shape(e) for a, e in zip(a_leaves, e_leaves, strict=True)):
        return False
    a64 = np.concatenate([np.ravel(a).astype(np.float64) for a in a_leaves] + [np.zeros(0)])
    e64 = np.concatenate([np.ravel(e).astype(np.float64) for e in e_leaves] + [np.zeros(0)])
    with np.errstate(invalid="ignore"):  # inf - inf
        close = (np.abs(a64 - e64) <= atol + rtol * np.abs(e64)) | (a64 == e64)
    return bool(np.all(close | (np.isnan(a64) & np.isnan(e64))))


def _close(what: str, actual: Any, expected: Any, rtol: float, atol: float) -> None:
    """chex's leaf-naming tree comparison, with ``what`` (step, property) in front."""
    actual, expected = _without_keys(actual), _without_keys(expected)
    if _all_close(actual, expected, rtol, atol):
        return
    chex = _chex()
    try:
        chex.assert_trees_all_equal_structs(actual, expected)
        if message := _dtype_difference(actual, expected):
            raise AssertionError(message)
        chex.assert_trees_all_close(actual, expected, rtol=rtol, atol=atol)
    except (AssertionError, ValueError) as err:
        raise AssertionError(f"{what}: {err}") from None
    raise AssertionError(f"{what}: the trees differ beyond rtol={rtol}, atol={atol}")


def assert_trees_close(actual: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Assert two pytrees have one structure, the same leaf dtypes and close values.

    ``|actual - expected| <= atol + rtol * |expected|`` leaf by leaf (NaNs in the same places
    are equal); the ``AssertionError`` names the first leaf path that differs.

    Args:
      actual: the tree under test.
      expected: the reference tree.
      rtol, atol: relative and absolute tolerances (``0, 0`` for exact equality).

    Example:
      >>> import jax.numpy as jnp, jopt.testing
      >>> jopt.testing.assert_trees_close({"w": jnp.ones(2)}, {"w": jnp.ones(2) + 1e-7})
    """
    _close("trees differ", actual, expected, rtol, atol)


def _same_layout(what: str, actual: Any, expected: Any) -> None:
    a, e = jax.tree.structure(actual), jax.tree.structure(expected)
    if a != e:
        raise AssertionError(f"{what}: structure changed from {e} to {a}")
    chex = _chex()
    try:
        chex.assert_trees_all_equal_shapes_and_dtypes(actual, expected)
    except AssertionError as err:
        raise AssertionError(f"{what}: {err}") from None


def _gradient_source(grads: Any, loss: Any, params: Any, seed: int) -> Callable:
    """``(step, params) -> (grads, value)`` from what the user gave.

    ``grads`` None, a tree or a callable; else ``loss``'s value and gradient, cast to each
    param's dtype. The value is None without a loss.
    """
    if grads is None and loss is not None:
        value_and_grad = _jitted_value_and_grad(loss)

        def from_loss(step, p):
            value, g = value_and_grad(p)
            return jax.tree.map(lambda g, x: g.astype(jnp.result_type(x)), g, p), value

        return from_loss
    value_of = (lambda p: None) if loss is None else loss
    if grads is None:
        return lambda step, p: (random_like(params, seed + step), value_of(p))
    if callable(grads):
        return lambda step, p: (grads(p), value_of(p))
    return lambda step, p: (grads, value_of(p))


@functools.lru_cache(maxsize=32)
def _jitted_value_and_grad(loss: Callable) -> Callable:
    # One compiled gradient per loss, shared by every call: the runs then time and test the
    # transforms, and eager runs stay about the transform alone.
    return jax.jit(jax.value_and_grad(loss))


def _stepper(tx: Any, jit: bool, extra_args: dict, loss: Any, loss_args: bool) -> Callable:
    def update(params, state, grads, value):
        extra = {"value": value, "grad": grads, "value_fn": loss} if loss_args else {}
        return tx.update(grads, state, params, **extra, **extra_args)

    # Only update is compiled: returning the new params too costs ~20% more compile time,
    # and adding the updates eagerly is the same arithmetic for both transforms.
    update = jax.jit(update) if jit else update

    def step(params, state, grads, value):
        updates, state = update(params, state, grads, value)
        new = jax.tree.map(lambda p, u: jnp.asarray(p + u, jnp.result_type(p)), params, updates)
        return updates, new, state

    return step


def _by_path(tree: Any) -> dict:
    """``{leaf path: leaf}``: states of two libraries compare although their classes differ."""
    return {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _layout(tree: Any) -> tuple[str, list]:
    """The structure with NamedTuple class names (not their modules), leaf dtypes and shapes."""
    leaves, treedef = jax.tree.flatten(tree)
    return str(treedef), [(str(jnp.result_type(x)), jnp.shape(x)) for x in leaves]


def _compare_step(what: str, ours: tuple, ref: tuple, options: dict, tol: tuple) -> None:
    """Compare ``(updates, params, state)`` of one step: one quick check, details on failure."""
    (ours_u, ours_p, ours_s), (ref_u, ref_p, ref_s) = ours, ref
    if options["layout"] and _layout(ours_s) != _layout(ref_s):
        raise AssertionError(
            f"{what}: state layouts differ (structure, leaf dtypes and shapes):\n"
            f"  {_layout(ours_s)}\nvs the reference's\n  {_layout(ref_s)}"
        )
    if not options["update_dtypes"]:  # values only: cast to the reference's dtypes
        ours_u = jax.tree.map(lambda u, r: jnp.asarray(u, jnp.result_type(r)), ours_u, ref_u)
    ours_s, ref_s = _by_path(ours_s), _by_path(ref_s)
    if not options["check_state"] or ours_s.keys() != ref_s.keys():
        ours_s = ref_s = {}
    if _all_close(*_without_keys(((ours_u, ours_p, ours_s), (ref_u, ref_p, ref_s))), *tol):
        return
    _close(f"{what}: updates differ", ours_u, ref_u, *tol)
    _close(f"{what}: params differ", ours_p, ref_p, *tol)
    _close(f"{what}: states differ", ours_s, ref_s, *tol)


def assert_matches(
    tx: Any,
    reference: Any,
    params: Any,
    *,
    steps: int = 10,
    grads: Any = None,
    loss: Callable[[Any], Any] | None = None,
    loss_args: bool = False,
    seed: int = 0,
    jit: bool | str = True,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    check_state: bool = True,
    state_layout: bool = False,
    update_dtypes: bool = True,
    **extra_args: Any,
) -> None:
    """Assert that ``tx`` gives ``reference``'s updates, step by step.

    Both transforms (any objects with optax's ``init``/``update``: jopt, optax or your own) start
    from ``params`` and see the same gradients for ``steps`` steps; each applies its own updates.
    The first difference raises an ``AssertionError`` naming the run (eager or jit), the step,
    and the leaf path of the update, the params or (with ``check_state``, where both states have
    leaves at the same paths) the state.

    Args:
      tx: the transform under test.
      reference: the transform it should match, e.g. ``optax.adam(1e-3)``.
      params: the initial parameter pytree.
      steps: number of update steps.
      grads: ``None`` (random normal gradients, a new draw each step from ``seed``, unless
        ``loss`` is given), one tree (the same every step), or a callable ``params -> grads``
        (e.g. ``jax.grad(loss)``).
      loss: a scalar function of the params, e.g. :func:`bumpy_loss`. Without ``grads``, each
        run's gradients are ``loss``'s gradient at its own current params (compiled once per
        loss, cast to each param's dtype), so the runs follow their own trajectories.
      loss_args: also pass ``value=loss(params)``, ``grad=`` the gradients and
        ``value_fn=loss`` to every ``update``, the extra arguments that line searches
        (``scale_by_backtracking_linesearch``, ``scale_by_zoom_linesearch``), Polyak steps
        and ``reduce_on_plateau`` read. Needs ``loss``.
      seed: seed of the generated gradients.
      jit: ``True`` runs both under ``jax.jit``, ``False`` eagerly, ``"both"`` both ways.
      rtol, atol: tolerances of the comparison (``|a - b| <= atol + rtol * |b|``).
      check_state: also compare the states' leaves when their paths agree.
      state_layout: also require the reference's state layout after the first and the last
        step: the same structure, NamedTuple class names included, and the same leaf dtypes
        and shapes (what code that reaches into a state, ``state[0].mu``, and saved
        checkpoints rely on).
      update_dtypes: require the updates' dtypes to be the reference's; False compares their
        values only (optax returns float32 updates for bfloat16 params in places where a
        transform may rightly keep bfloat16). The params' dtypes are always compared.
      **extra_args: passed to both ``update`` calls (e.g. ``value=...`` for a line search).

    Example:
      >>> import jax.numpy as jnp, jopt, jopt.testing
      >>> jopt.testing.assert_matches(jopt.sgd(0.1), jopt.sgd(0.1), {"w": jnp.ones(3)}, steps=2)
    """
    modes = (False, True) if jit == "both" else (bool(jit),)
    source = _gradient_source(grads, loss, params, seed)
    options = {"check_state": check_state, "update_dtypes": update_dtypes}
    for mode in modes:
        run = "jit" if mode else "eager"
        ours_step, ref_step = (
            _stepper(t, mode, extra_args, loss, loss_args) for t in (tx, reference)
        )
        ours, theirs = params, params
        ours_state, ref_state = tx.init(params), reference.init(params)
        for t in range(steps):
            ours_u, ours, ours_state = ours_step(ours, ours_state, *source(t, ours))
            ref_u, theirs, ref_state = ref_step(theirs, ref_state, *source(t, theirs))
            # The layout is checked once at the start and once at the end: it costs more
            # than the values, and a state that changes it in between breaks jit anyway.
            options["layout"] = state_layout and t in (0, steps - 1)
            _compare_step(
                f"{run} step {t}",
                (ours_u, ours, ours_state),
                (ref_u, theirs, ref_state),
                options,
                (rtol, atol),
            )


def _count_traces(tx: Any, extra_args: dict) -> tuple[Callable, list]:
    traces: list = []

    def step(params, state, grads):
        traces.append(None)
        return tx.update(grads, state, params, **extra_args)

    return jax.jit(step), traces


def _check_pure_and_abstract(tx: Any, params: Any) -> None:
    state = tx.init(params)
    _close("init is not pure: two calls differ", tx.init(params), state, 0.0, 0.0)
    try:
        abstract = jax.eval_shape(tx.init, params)
    except Exception as err:
        raise AssertionError(f"jax.eval_shape(tx.init, params) fails: {err!r}") from err
    _same_layout("eval_shape(init) differs from init", abstract, state)
    _close("jit(init) differs from init", jax.jit(tx.init)(params), state, 0.0, 0.0)


def _check_updates(tx: Any, params: Any, grads: Any, steps: int, extra: dict, rtol, atol) -> None:
    """jit equals eager, state layout stable, one trace, dtypes of the params, pure update."""
    jitted, traces = _count_traces(tx, extra)
    eager_state = jit_state = state0 = tx.init(params)
    for t in range(steps):
        eager_u, eager_state = tx.update(grads, eager_state, params, **extra)
        jit_u, new_state = jitted(params, jit_state, grads)
        _same_layout(f"step {t}: the state is unstable (it would retrace)", new_state, state0)
        jit_state = new_state
        _close(f"step {t}: jit differs from eager", jit_u, eager_u, rtol, atol)
        for path, (u, p) in _paired_leaves(jit_u, params):
            if jnp.result_type(u) != jnp.result_type(p):
                raise AssertionError(
                    f"step {t}: update dtype differs from the param's at {path}: "
                    f"{jnp.result_type(u)} vs {jnp.result_type(p)}"
                )
    if len(traces) != 1:
        raise AssertionError(
            f"update retraced: {len(traces)} traces for {steps} jitted steps; a state leaf "
            "changed its shape, dtype or weak type (jax.config jax_explain_cache_misses says which)"
        )
    u1, s1 = tx.update(grads, state0, params, **extra)
    u2, s2 = tx.update(grads, state0, params, **extra)
    _close("update is not pure: two calls on the same state differ", u2, u1, 0.0, 0.0)


def _paired_leaves(a: Any, b: Any):
    leaves, _ = jax.tree_util.tree_flatten_with_path(a)
    for (path, x), y in zip(leaves, jax.tree.leaves(b), strict=True):
        yield jax.tree_util.keystr(path), (x, y)


def _check_vmap(tx: Any, params: Any, grads: Any, extra: dict, rtol, atol) -> None:
    """A batch of two independent problems under vmap equals each run alone."""
    batch = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), params)
    gbatch = jax.tree.map(lambda x: jnp.stack([x, -x]), grads)

    def one(p, g):
        return tx.update(g, tx.init(p), p, **extra)[0]

    try:
        got = jax.vmap(one)(batch, gbatch)
    except Exception as err:
        raise AssertionError(f"vmap over a batch of params/grads fails: {err!r}") from err
    for i in range(2):
        member = functools.partial(lambda i, x: x[i], i)
        alone = one(*jax.tree.map(member, (batch, gbatch)))
        _close(f"vmap: batch member {i} differs", jax.tree.map(member, got), alone, rtol, atol)


def _check_chains(tx: Any, params: Any, grads: Any, extra: dict, chains, rtol, atol) -> None:
    from jopt import chain  # noqa: PLC0415 - jopt.testing sits above the library

    alone = tx.update(grads, tx.init(params), params, **extra)[0]
    for combine in (chain, *chains):
        name = f"{getattr(combine, '__module__', '')}.{getattr(combine, '__name__', combine)}"
        if extra and combine is not chain:
            continue  # optax.chain drops extra arguments: nothing a transform can do about it
        inner = combine(tx)
        got = inner.update(grads, inner.init(params), params, **extra)[0]
        _close(f"inside {name.lstrip('.')}", got, alone, rtol, atol)


def check_transform(
    tx: Any,
    params: Any,
    *,
    grads: Any = None,
    steps: int = 2,
    seed: int = 0,
    vmap: bool = True,
    chains: tuple = (),
    rtol: float = 1e-5,
    atol: float = 1e-6,
    **extra_args: Any,
) -> None:
    """Assert that ``tx`` meets the gradient-transformation contract on ``params``.

    Checked, each failure an ``AssertionError`` naming the property (and the step and leaf):
    ``init`` and ``update`` are pure; ``jax.eval_shape(tx.init, params)`` and ``jit(init)`` give
    ``init``'s layout; jitted ``update`` equals eager for ``steps`` steps; the state keeps its
    structure, shapes and dtypes (so a jitted step traces once); every update leaf has its
    param's dtype (pass bfloat16 params to check that bf16 stays bf16); ``vmap`` over a batch
    of params and gradients gives each member's result; the transform gives the same updates
    inside ``jopt.chain`` and inside every chain function of ``chains`` (pass
    ``chains=(optax.chain,)`` to check optax interop; jopt itself never imports optax).

    Args:
      tx: the transform (any object with ``init``/``update``).
      params: parameter pytree.
      grads: the gradients (a tree like ``params``); random normal from ``seed`` if None.
      steps: jitted and eager steps compared.
      seed: seed of the generated gradients.
      vmap: check ``vmap``; turn off for transforms that cannot batch (host callbacks).
      chains: more chain functions to compose ``tx`` with, e.g. ``(optax.chain,)``; skipped
        when ``extra_args`` are given (optax's chain drops them).
      rtol, atol: tolerances of the jit-versus-eager and composition comparisons.
      **extra_args: passed to every ``update`` (e.g. ``value=...``).

    Example:
      >>> import jax.numpy as jnp, jopt, jopt.testing
      >>> jopt.testing.check_transform(jopt.scale_by_adam(), {"w": jnp.ones(3)})
    """
    grads = random_like(params, seed) if grads is None else grads
    _check_pure_and_abstract(tx, params)
    _check_updates(tx, params, grads, steps, extra_args, rtol, atol)
    if vmap:
        _check_vmap(tx, params, grads, extra_args, rtol, atol)
    _check_chains(tx, params, grads, extra_args, chains, rtol, atol)


# Hypothesis strategies: hypothesis is imported when a strategy is built.

FLOAT_DTYPES = (jnp.float32, jnp.bfloat16)


def _st():
    try:
        from hypothesis import strategies  # noqa: PLC0415 - optional, the 'testing' extra
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "jopt.testing's strategies need hypothesis; `pip install jopt[testing]`"
        ) from err
    return strategies


def shapes(max_dims: int = 3, min_side: int = 1, max_side: int = 4):
    """Hypothesis strategy: array shapes with up to ``max_dims`` axes (``()`` included)."""
    st = _st()
    return st.lists(st.integers(min_side, max_side), max_size=max_dims).map(tuple)


def arrays(dtypes=FLOAT_DTYPES, max_dims: int = 3, min_side: int = 1, scale: float = 1.0):
    """Hypothesis strategy: a JAX array of finite normal values of one of ``dtypes``."""
    st = _st()

    @st.composite
    def draw(draw_):
        shape = draw_(shapes(max_dims, min_side))
        dtype = draw_(st.sampled_from(dtypes))
        seed = draw_(st.integers(0, 2**31 - 1))
        return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale, dtype)

    return draw()


def pytrees(dtypes=FLOAT_DTYPES, max_leaves: int = 6, max_dims: int = 3, min_side: int = 1):
    """Hypothesis strategy: nested dict/list/tuple pytrees with at least one array leaf.

    Args:
      dtypes: leaf dtypes drawn from (float32 and bfloat16 by default).
      max_leaves: bound on the number of leaves.
      max_dims: most axes of a leaf (scalars included).
      min_side: smallest axis length (0 draws empty arrays).
    """
    st = _st()
    leaves = arrays(dtypes, max_dims, min_side)
    keys = st.text("abcdefgh", min_size=1, max_size=3)

    def extend(children):
        return st.one_of(
            st.lists(children, min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=3).map(tuple),
            st.dictionaries(keys, children, min_size=1, max_size=3),
        )

    tree = st.recursive(leaves, extend, max_leaves=max_leaves)
    return tree.filter(lambda t: len(jax.tree.leaves(t)) > 0)


def pytree_pairs(dtypes=FLOAT_DTYPES, **kwargs):
    """Hypothesis strategy: ``(params, grads)``, two trees of one structure, shapes and dtypes."""
    st = _st()
    return st.tuples(pytrees(dtypes, **kwargs), st.integers(0, 2**31 - 1)).map(
        lambda pair: (pair[0], random_like(pair[0], pair[1]))
    )
