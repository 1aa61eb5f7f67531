"""The one case registry that drives every contract test.

A :class:`Case` names a jopt factory, its keyword arguments, its optax twin (a
dotted name under ``optax``, resolved lazily so that jopt never needs optax), and
capability flags. Parity, abstract init, state structure, retracing, dtype,
composition and sharding tests all iterate over :data:`CASES`. Add a case here,
never a second registry or an ``if name == ...`` in a test.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import operator
import typing
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

import jopt


@dataclasses.dataclass(frozen=True)
class Case:
    """One optimizer or transform configuration under test.

    Attributes:
      name: test id, unique.
      factory: the jopt factory (a callable returning a GradientTransformation).
      kwargs: keyword arguments for both ``factory`` and the optax twin.
      optax: dotted name of the optax twin under ``optax`` (e.g. ``"contrib.muon"``), or a
        recipe ``f(optax_module, **kwargs)`` for composites, or None where optax has no
        equivalent (a NumPy reference test covers it).
      optax_kwargs: overrides of ``kwargs`` for the optax twin (names optax lacks).
      extra_args: update needs ``value``/``grad``/``value_fn``.
      bf16: the case is meaningful on bfloat16 params.
      rtol, atol: tolerances of the float32 parity check.
      steps: number of steps of the parity run.
      eager_steps: steps of the eager parity run when fewer than ``steps`` (transforms whose
        ``lax.cond``/``while_loop`` recompile at every eager call cost seconds a step).
      same_state: the state has optax's layout (NamedTuple class names, nesting, leaf dtypes
        and shapes); False only for a documented deviation.
    """

    name: str
    factory: Callable[..., Any]
    kwargs: dict = dataclasses.field(default_factory=dict)
    optax: str | Callable[..., Any] | None = None
    optax_kwargs: dict = dataclasses.field(default_factory=dict)
    extra_args: bool = False
    bf16: bool = True
    rtol: float = 1e-5
    atol: float = 1e-6
    steps: int = 25
    eager_steps: int | None = None
    same_state: bool = True

    def make(self) -> Any:
        """Build the jopt transform."""
        return self.factory(**self.kwargs)

    def make_injected(self) -> Any:
        """The jopt transform under :func:`jopt.inject_hyperparams`, or None if it has no names.

        As optax decides, every numeric argument (passed or default) and every callable
        passed is a hyperparameter; the cases keep static what is not a float hyperparameter
        here: integers (sizes, counts and periods that fix shapes or loops) and callables
        passed where the factory takes no number (masks, labels, step functions).
        """
        parameters = inspect.signature(self.factory).parameters.values()
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            return None  # ``**kwargs`` hide the names that inject_hyperparams binds (optax's too)
        static = [
            p.name
            for p in parameters
            if _static_in_injection(p, self.kwargs.get(p.name, p.default))
        ]
        return jopt.inject_hyperparams(self.factory, static_args=static)(**self.kwargs)

    def make_optax(self) -> Any:
        """Build the optax twin (imports optax: call only from tests)."""
        import optax  # noqa: PLC0415 - optax is a test dependency only

        kwargs = {**self.kwargs, **self.optax_kwargs}
        if callable(self.optax):  # a recipe for composites: optax_recipe(optax, **kwargs)
            return self.optax(optax, **kwargs)
        factory = functools.reduce(getattr, self.optax.split("."), optax)
        return factory(**kwargs)

    def __str__(self) -> str:
        return self.name


def _static_in_injection(param: inspect.Parameter, value: Any) -> bool:
    """An integer, or a callable where the annotation takes no float: not a float hyperparameter."""
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    annotation = param.annotation
    takes_number = float in typing.get_args(annotation) or annotation is float
    return callable(value) and not takes_number


def _signed_like(factory):
    """Give a wrapper ``factory``'s signature, so ``inject_hyperparams`` finds its arguments."""

    def sign(wrapper):
        wrapper.__signature__ = inspect.signature(factory)
        return wrapper

    return sign


def _schedule(step):
    """A schedule shared by jopt and optax cases: a pure function of the step."""
    return 0.05 * jnp.cos(0.1 * step) ** 2 + 0.01


def _mask(params):
    """Decay matrices, not vectors or scalars."""
    import jax  # noqa: PLC0415

    return jax.tree.map(lambda p: p.ndim > 1, params)


# Each section is owned by one area of the library; keep entries sorted by name.
# --- core: building blocks ------------------------------------------------
_CORE_LR = 0.05  # building blocks that are not steps themselves are followed by -lr


def _stepped(build):
    """``build(**kw)`` followed by a descent step: a jopt factory and its optax recipe.

    ``build`` is a factory name or a function ``(library, **kw) -> transform`` written
    once for both libraries. A named block's factory takes the block's signature, so that
    ``inject_hyperparams`` finds its hyperparameters.
    """

    def make(lib, *args, **kw):
        block = getattr(lib, build) if isinstance(build, str) else functools.partial(build, lib)
        return lib.chain(block(*args, **kw), lib.scale(-_CORE_LR))

    def factory(*args, **kw):
        return make(jopt, *args, **kw)

    if isinstance(build, str):
        factory = _signed_like(getattr(jopt, build))(factory)
    return factory, make


def _block(name, build=None, kwargs=None, **fields) -> Case:
    """A :func:`_stepped` case; ``build`` defaults to the case name up to its first "-"."""
    factory, recipe = _stepped(build or name.split("-")[0])
    return Case(name, factory, kwargs or {}, recipe, **fields)


def _masked_adam(lib):
    # A callable mask giving a prefix tree: one bool for the whole "dense" subtree.
    prefix = {"dense": True, "layers": [False, (True, False)], "scale": False, "empty": {}}
    return lib.masked(
        lib.scale_by_adam(), lambda p: prefix if isinstance(p, dict) and "dense" in p else _mask(p)
    )


def _labels(params):
    import jax  # noqa: PLC0415

    return jax.tree.map(lambda p: "matrix" if p.ndim > 1 else "other", params)


def _partition(lib):
    return lib.partition({"matrix": lib.adam(0.02), "other": lib.sgd(0.05, 0.9)}, _labels)


def _adam_f32_nu(lib, **kw):
    # nu_dtype=float32 on float32 params changes nothing: optax's plain scale_by_adam.
    extra = {"nu_dtype": jnp.float32} if lib is jopt else {}
    return lib.scale_by_adam(**kw, **extra)


CORE_TRANSFORMS: list[Case] = [
    _block("adaptive_grad_clip", kwargs={"clipping": 0.1}),
    _block("add_decayed_weights", kwargs={"weight_decay": _schedule, "mask": _mask}),
    _block("clip", kwargs={"max_delta": 0.5}),
    _block("clip_by_block_rms", kwargs={"threshold": 0.5}),
    _block("clip_by_global_norm", kwargs={"max_norm": 1.0}),
    _block("ema", kwargs={"decay": 0.9, "accumulator_dtype": jnp.bfloat16}),
    _block("masked", _masked_adam, extra_args=True),
    _block("partition", _partition, extra_args=True),
    Case("scale", jopt.scale, {"step_size": -0.1}, "scale"),
    _block("scale_by_adadelta", kwargs={"rho": 0.9, "eps": 1e-3}),
    _block("scale_by_adam-nesterov", kwargs={"nesterov": True, "eps_root": 1e-8}),
    _block("scale_by_adam-mu_bf16", kwargs={"b1": 0.8, "mu_dtype": jnp.bfloat16}),
    _block("scale_by_adam-nu_f32", _adam_f32_nu, kwargs={"b2": 0.99}, bf16=False),
    _block("scale_by_amsgrad-paper", kwargs={"bias_correction_mu": False,
                                             "bias_correction_nu": False}),
    _block("scale_by_lion-smooth", kwargs={"mode": "smooth", "smooth_beta": 2.0}),
    _block("scale_by_lion-refined", kwargs={"mode": "refined", "mu_dtype": jnp.bfloat16}),
    Case("scale_by_learning_rate-ascent", jopt.scale_by_learning_rate,
         {"learning_rate": 0.01, "flip_sign": False}, "scale_by_learning_rate"),
    # rho_t is within ~1e-3 of t but comes out of a cancellation of two ~2000 terms, which
    # float32 rounding moves by ~1e-4 relative: a threshold on an integer (3.0, 5.0) picks its
    # steps by the rounding (inject_hyperparams' float32 b2 flipped step 3 to NaN); 4.5 cannot.
    _block("scale_by_radam-nesterov", kwargs={"nesterov": True, "threshold": 4.5}),
    _block("scale_by_rms-bias", kwargs={"decay": 0.95, "eps_in_sqrt": False,
                                        "bias_correction": True, "initial_scale": 0.1}),
    Case("scale_by_schedule", jopt.scale_by_schedule, {"step_size_fn": _schedule},
         "scale_by_schedule"),
    _block("scale_by_sign"),
    _block("scale_by_stddev-bias", kwargs={"bias_correction": True, "eps": 1e-4,
                                           "eps_in_sqrt": False, "initial_scale": 1.0}),
    _block("trace", kwargs={"decay": 0.9, "nesterov": True,
                            "accumulator_dtype": jnp.bfloat16}),
]  # fmt: skip
# --- core: classic optimizers ---------------------------------------------
CORE_OPTIMIZERS: list[Case] = [
    Case("adadelta", jopt.adadelta, {"learning_rate": _schedule, "weight_decay": 0.1,
                                     "weight_decay_mask": _mask}, "adadelta"),
    Case("adagrad", jopt.adagrad, {"learning_rate": 0.1}, "adagrad"),
    Case("adam", jopt.adam, {"learning_rate": 0.05}, "adam"),
    Case("adam-schedule-nesterov", jopt.adam, {"learning_rate": _schedule, "nesterov": True},
         "adam"),
    Case("adamax", jopt.adamax, {"learning_rate": 0.05}, "adamax"),
    Case("adamaxw", jopt.adamaxw, {"learning_rate": 0.05, "weight_decay": 0.1, "mask": _mask},
         "adamaxw"),
    Case("adamw", jopt.adamw, {"learning_rate": _schedule, "mask": _mask,
                               "weight_decay": _schedule}, "adamw"),
    Case("amsgrad", jopt.amsgrad, {"learning_rate": 0.05}, "amsgrad"),
    Case("lion", jopt.lion, {"learning_rate": _schedule, "weight_decay": 0.1,
                             "mask": _mask}, "lion"),
    Case("nadam", jopt.nadam, {"learning_rate": 0.05}, "nadam"),
    Case("nadamw", jopt.nadamw, {"learning_rate": 0.05, "weight_decay": 0.1}, "nadamw"),
    Case("radam", jopt.radam, {"learning_rate": 0.05}, "radam"),
    Case("rmsprop", jopt.rmsprop, {"learning_rate": 0.01}, "rmsprop"),
    Case("rmsprop-centered-momentum", jopt.rmsprop, {"learning_rate": 0.01, "centered": True,
         "momentum": 0.9, "initial_scale": 1.0}, "rmsprop"),
    Case("rmsprop-nesterov-bias", jopt.rmsprop, {"learning_rate": _schedule, "momentum": 0.5,
         "nesterov": True, "bias_correction": True, "eps_in_sqrt": False}, "rmsprop"),
    Case("sgd-momentum", jopt.sgd, {"learning_rate": 0.05, "momentum": 0.9}, "sgd"),
    Case("sgd-nesterov-schedule", jopt.sgd, {"learning_rate": _schedule, "momentum": 0.9,
         "nesterov": True}, "sgd"),
]  # fmt: skip
# --- parity: further optimizers and transforms ------------------------------


def _vectorize_scalars(tx):
    """Run an optax transform on scalar leaves as 1-vectors (optax's SM3 fails on scalars).

    jopt's SM3 gives a scalar leaf one scalar accumulator, which is exactly what a
    1-vector gets, so this makes optax a valid reference on the nested pytree.
    """
    import jax  # noqa: PLC0415

    def lift(tree):
        return jax.tree.map(jnp.atleast_1d, tree)

    def init(params):
        return tx.init(lift(params))

    def update(updates, state, params=None):
        new, state = tx.update(lift(updates), state, None if params is None else lift(params))
        return jax.tree.map(lambda n, u: n.reshape(jnp.shape(u)), new, updates), state

    return type(tx)(init, update)


def _sm3_block(lib, **kw):
    tx = lib.scale_by_sm3(**kw)
    return tx if lib is jopt else _vectorize_scalars(tx)


def _sm3_optax(optax, **kw):
    return _vectorize_scalars(optax.sm3(**kw))


@_signed_like(jopt.optimistic_adam)
def _optimistic_adam(*args, **kw):
    import warnings  # noqa: PLC0415

    with warnings.catch_warnings():  # deprecated in both libraries; tested on its own
        warnings.simplefilter("ignore", DeprecationWarning)
        return jopt.optimistic_adam(*args, **kw)


def _optimistic_adam_optax(optax, **kw):
    import warnings  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return optax.optimistic_adam(**kw)


def _nonnegative_sgd(lib):
    return lib.chain(lib.sgd(0.5), lib.keep_params_nonnegative())


_dog_factory, _ = _stepped("scale_by_distance_over_gradients")


def _searched(name):
    """A line search along the negative gradient: a jopt factory and its optax recipe."""

    @_signed_like(getattr(jopt, name))
    def factory(*args, **kw):
        return jopt.chain(jopt.scale(-1.0), getattr(jopt, name)(*args, **kw))

    def recipe(optax, **kw):
        return optax.chain(optax.scale(-1.0), getattr(optax, name)(**kw))

    return factory, recipe


_backtracking_factory, _backtracking_recipe = _searched("scale_by_backtracking_linesearch")

PARITY: list[Case] = [
    # One case per name; variants only where they reach another code path.
    Case("adabelief", jopt.adabelief, {"learning_rate": 0.05}, "adabelief"),
    Case("adafactor", jopt.adafactor, {"learning_rate": 0.05, "min_dim_size_to_factor": 2,
         "decay_rate": 0.5, "momentum": 0.5, "dtype_momentum": jnp.bfloat16}, "adafactor"),
    Case("adafactor-unfactored", jopt.adafactor, {"learning_rate": _schedule, "factored": False,
         "weight_decay_rate": 0.01, "weight_decay_mask": _mask, "clipping_threshold": None,
         "decay_offset": 3, "multiply_by_parameter_scale": False}, "adafactor"),
    Case("adan", jopt.adan, {"learning_rate": _schedule, "weight_decay": 0.1, "mask": _mask,
         "eps_root": 0.0}, "adan"),
    Case("fromage", jopt.fromage, {"learning_rate": 0.05}, "fromage"),
    Case("fromage-schedule", jopt.fromage, {"learning_rate": _schedule, "min_norm": 0.1},
         "fromage"),
    Case("lamb", jopt.lamb, {"learning_rate": _schedule, "weight_decay": _schedule,
         "mask": _mask, "eps_root": 1e-8}, "lamb"),
    Case("lars", jopt.lars, {"learning_rate": _schedule, "weight_decay": 0.1,
         "weight_decay_mask": _mask, "trust_ratio_mask": _mask, "nesterov": True,
         "trust_coefficient": 0.01, "eps": 1e-3}, "lars"),
    # lbfgs with its default zoom search compiles slowly (each eager step compiles its
    # while loop): tests/optimizers/test_lbfgs.py checks it against optax step by step.
    Case("lbfgs-fixed-step", jopt.lbfgs, {"learning_rate": _schedule, "memory_size": 3,
         "scale_init_precond": False, "linesearch": None}, "lbfgs", steps=4,
         eager_steps=2),
    Case("noisy_sgd", jopt.noisy_sgd, {"learning_rate": _schedule, "eta": 0.1, "gamma": 0.3,
         "key": 42}, "noisy_sgd"),
    Case("novograd", jopt.novograd, {"learning_rate": _schedule, "weight_decay": 0.1,
         "eps_root": 1e-8}, "novograd"),
    Case("optimistic_adam", _optimistic_adam, {"learning_rate": 0.05, "optimism": 0.1},
         _optimistic_adam_optax),
    Case("optimistic_adam_v2", jopt.optimistic_adam_v2, {"learning_rate": _schedule,
         "alpha": 0.5, "beta": 2.0, "nesterov": False, "mu_dtype": jnp.bfloat16},
         "optimistic_adam_v2"),
    Case("optimistic_gradient_descent", jopt.optimistic_gradient_descent,
         {"learning_rate": _schedule, "alpha": 0.5, "beta": 2.0}, "optimistic_gradient_descent"),
    Case("polyak_sgd", jopt.polyak_sgd, {"max_learning_rate": 0.5, "scaling": _schedule,
         "f_min": -1.0, "eps": 1e-3, "variant": "sps+"}, "polyak_sgd", extra_args=True),
    Case("rprop", jopt.rprop, {"learning_rate": 0.1, "eta_minus": 0.3, "eta_plus": 1.5,
         "min_step_size": 1e-3, "max_step_size": 0.2}, "rprop"),
    Case("sign_sgd", jopt.sign_sgd, {"learning_rate": _schedule}, "sign_sgd"),
    Case("signum", jopt.signum, {"learning_rate": _schedule, "beta": 0.8,
         "accumulator_dtype": jnp.bfloat16}, "signum"),
    # optax's SM3 fails on scalar leaves; its twin runs them as 1-vectors (shape (1,) state).
    Case("sm3", jopt.sm3, {"learning_rate": 0.1, "momentum": 0.5}, _sm3_optax, same_state=False),
    Case("yogi", jopt.yogi, {"learning_rate": _schedule, "b2": 0.99, "eps": 1e-4}, "yogi"),
    # building blocks, each followed by a descent step
    _block("add_noise", kwargs={"eta": 0.01, "gamma": 0.55, "key": 0}),
    _block("centralize"),
    _block("keep_params_nonnegative", _nonnegative_sgd),
    _block("normalize_by_update_norm", kwargs={"scale_factor": -0.5, "eps": 1e-3}),
    _block("scale_by_adan", kwargs={"b1": 0.9, "b3": 0.999, "eps_root": 1e-8}),
    _block("scale_by_belief", kwargs={"nesterov": True, "b1": 0.8}),
    # optax's DoG turns scalar leaves into shape (1,) and bf16 state into float32;
    # tests/transforms/test_parity_blocks_errors.py compares it with optax without them.
    Case("scale_by_backtracking_linesearch", _backtracking_factory,
         {"max_backtracking_steps": 10, "store_grad": True}, _backtracking_recipe,
         extra_args=True, steps=3),
    Case("scale_by_distance_over_gradients", _dog_factory, {"reps_rel": 1e-2}),
    _block("scale_by_factored_rms", kwargs={"min_dim_size_to_factor": 2, "step_offset": 2,
                                            "epsilon": 1e-20}),
    _block("scale_by_novograd", kwargs={"weight_decay": 0.1, "b2": 0.5,
                                        "mu_dtype": jnp.bfloat16}),
    _block("scale_by_optimistic_gradient", kwargs={"alpha": 0.5, "beta": 0.5}),
    _block("scale_by_param_block_norm"),
    _block("scale_by_param_block_rms", kwargs={"min_scale": 0.5}),
    _block("scale_by_polyak", kwargs={"f_min": -1.0}, extra_args=True),
    _block("scale_by_rprop", kwargs={"learning_rate": 0.01}),
    _block("scale_by_sm3", _sm3_block, kwargs={"b1": 0.5, "b2": 0.9, "eps": 1e-6},
           same_state=False),
    _block("scale_by_trust_ratio", kwargs={"min_norm": 0.1, "trust_coefficient": 0.5,
                                           "eps": 1e-3}),
    _block("scale_by_yogi", kwargs={"eps_root": 1e-8, "initial_accumulator_value": 0.0,
                                    "b1": 0.5}),
    _block("zero_nans"),
]  # fmt: skip


# --- wrappers ----------------------------------------------------------------
def _every_k(step):
    """Mini-steps per update: 2 for the first two updates, then 3."""
    return jnp.where(step < 2, 2, 3)


def _every_third(step):
    return step % 3 == 0


def _wrapper(name, build, kwargs=None, compile_optax=False, **fields) -> Case:
    """A case built by ``build(lib, **kw)`` for jopt and optax alike.

    ``compile_optax`` jits the twin's update: optax's eager ``lax.cond`` recompiles
    at every step, which would dominate the suite's time.
    """

    def recipe(optax, **kw):
        tx = build(optax, **kw)
        if compile_optax:
            import jax  # noqa: PLC0415

            tx = optax.GradientTransformationExtraArgs(tx.init, jax.jit(tx.update))
        return tx

    return Case(name, functools.partial(build, jopt), kwargs or {}, recipe, **fields)


WRAPPERS: list[Case] = [
    _wrapper("apply_if_finite", lambda lib, **kw: lib.apply_if_finite(lib.adam(0.05), **kw),
             {"max_consecutive_errors": 2}, compile_optax=True),
    _wrapper("conditionally_mask", lambda lib: lib.conditionally_mask(lib.adam(0.05), _every_third),
             compile_optax=True),
    _wrapper("conditionally_transform", lambda lib: lib.chain(
        lib.conditionally_transform(lib.scale_by_adam(), _every_third), lib.scale(-0.05)),
        compile_optax=True),
    _wrapper("flatten", lambda lib: lib.flatten(lib.adam(0.05))),
    _wrapper("freeze", lambda lib: lib.chain(lib.adam(0.05), lib.freeze(_mask))),
    _wrapper("inject_hyperparams-adam",
             lambda lib, **kw: lib.inject_hyperparams(lib.adam)(**kw),
             {"learning_rate": _schedule, "b1": np.float32(0.8)}),  # np.float32: static
    # A callable mask is a "schedule" to optax: it gets the step count and must still work.
    _wrapper("inject_hyperparams-adamw-mask",
             lambda lib, **kw: lib.inject_hyperparams(lib.adamw)(**kw),
             {"learning_rate": 0.05, "weight_decay": 0.1, "mask": _mask}),
    _wrapper("multi_steps-k3",
             lambda lib, **kw: lib.MultiSteps(lib.adam(0.05), **kw).gradient_transformation(),
             {"every_k_schedule": 3}, compile_optax=True, eager_steps=7),  # emits at 3 and 6
    _wrapper("multi_steps-schedule-sum",
             lambda lib, **kw: lib.MultiSteps(
                 lib.sgd(0.02, momentum=0.9), _every_k, use_grad_mean=False,
                 should_skip_update_fn=lib.skip_not_finite).gradient_transformation(),
             compile_optax=True, eager_steps=8),  # emits at 2, 4 and 7
]  # fmt: skip
# --- contrib -------------------------------------------------------------------


def _contrib_alpha(step):
    """A schedule for AdEMAMix's alpha (warms up from 1 to 5)."""
    return 1.0 + 4.0 * jnp.minimum(step / 10.0, 1.0)


def _mechanize_adam(**kw):
    return jopt.contrib.mechanize(jopt.adam(0.5), **kw)


def _mechanize_adam_optax(optax, **kw):
    return optax.contrib.mechanize(optax.adam(0.5), **kw)


def _sam_sgd(lib, contrib, **kw):
    adv = lib.chain(contrib.normalize(), lib.sgd(0.05))
    return contrib.sam(lib.sgd(0.05, momentum=0.9), adv, **kw)


def _sam_jopt(**kw):
    return _sam_sgd(jopt, jopt.contrib, **kw)


def _sam_optax(optax, **kw):
    return _sam_sgd(optax, optax.contrib, **kw)


def _schedule_free_adam(**kw):
    return jopt.contrib.schedule_free(jopt.adam(0.05, b1=0.0), **kw)


def _schedule_free_adam_optax(optax, **kw):
    return optax.contrib.schedule_free(optax.adam(0.05, b1=0.0), **kw)


def _gauss_newton_diag(updates, params):
    """A deterministic Hessian-diagonal stand-in for Sophia: the squared gradients."""
    import jax  # noqa: PLC0415

    del params
    return jax.tree.map(jnp.square, updates)


def _contrib(name, factory, kwargs=None, optax=None, **fields) -> Case:
    base = name.split("-")[0]
    # 12 steps reach every branch (warmups, refresh intervals, sync periods) and keep
    # the eager parity runs short.
    fields.setdefault("steps", 12)
    fields.setdefault("eager_steps", 4)
    return Case(f"contrib.{name}", factory, kwargs or {}, optax or f"contrib.{base}", **fields)


_c = jopt.contrib
CONTRIB: list[Case] = [
    _contrib("acprop", _c.acprop, {"learning_rate": 0.05, "weight_decay": 0.1, "mask": _mask}),
    _contrib("ademamix", _c.ademamix, {"learning_rate": 0.05, "alpha": _contrib_alpha,
                                       "b3": 0.99, "weight_decay": 0.1}),
    # optax keeps float32 moments after the first step; jopt keeps mu_dtype (bf16 rounding).
    _contrib("ademamix-mu_bf16", _c.ademamix, {"learning_rate": 0.05, "mu_dtype": jnp.bfloat16},
             rtol=2e-2, atol=2e-2, same_state=False),
    _contrib("adopt", _c.adopt, {"learning_rate": 0.05}),
    _contrib("adopt-nesterov", _c.adopt, {"learning_rate": _schedule, "nesterov": True,
                                          "use_clipping": False, "b2": 0.99}),
    _contrib("cocob", _c.cocob, {"weight_decay": 0.01}),
    _contrib("dadapt_adamw", _c.dadapt_adamw, {"estim_lr0": 1e-2, "weight_decay": 0.01}),
    _contrib("dog", _c.dog, {"learning_rate": _schedule, "init_step": ("heuristic", 1e-2)}),
    _contrib("dog-lr", _c.dog, {"init_step": ("learning_rate", 0.05), "weight_decay": 0.01,
                                "mask": _mask}),
    _contrib("dowg", _c.dowg, {"weight_decay": 0.01, "init_estim_sq_dist": 0.01}),
    _contrib("galore", _c.galore, {"learning_rate": 0.05, "rank": 1, "update_proj_gap": 4,
                                   "weight_decay": 0.01}),
    _contrib("madgrad", _c.madgrad, {"learning_rate": _schedule, "weight_decay": 0.01}),
    _contrib("mechanize", _mechanize_adam, {"weight_decay": 0.01, "num_betas": 4},
             _mechanize_adam_optax),
    _contrib("momo-adapt", _c.momo, {"learning_rate": _schedule, "weight_decay": 0.01,
                                     "adapt_lower_bound": True, "lower_bound": -5.0},
             extra_args=True),
    _contrib("momo_adam", _c.momo_adam, {"learning_rate": 0.05}, extra_args=True),
    # Eager Newton-Schulz costs ~0.5 s a step in both libraries: a few steps suffice.
    _contrib("muon", _c.muon, {"learning_rate": 0.05}, steps=4, eager_steps=2),
    _contrib("muon-dion", _c.muon, {"learning_rate": _schedule, "ns_coeffs": "dion",
                                    "adaptive": True, "preconditioning": "aol",
                                    "consistent_rms": 0.2, "weight_decay": 0.01,
                                    "adam_weight_decay": 0.01, "nesterov": False}, steps=4,
             eager_steps=2),
    _contrib("prodigy", _c.prodigy, {"estim_lr0": 1e-3, "weight_decay": 0.01}),
    _contrib("prodigy-safeguard", _c.prodigy, {"learning_rate": _schedule, "beta3": 0.9,
                                               "safeguard_warmup": True, "estim_lr_coef": 2.0}),
    _contrib("sam", _sam_jopt, {}, _sam_optax),
    _contrib("sam-3", _sam_jopt, {"sync_period": 3, "reset_state": False}, _sam_optax),
    _contrib("schedule_free", _schedule_free_adam, {"learning_rate": 0.05, "b1": 0.8},
             _schedule_free_adam_optax),
    _contrib("schedule_free_adamw", _c.schedule_free_adamw, {"learning_rate": 0.05,
                                                             "weight_decay": 0.01}),
    _contrib("schedule_free_sgd", _c.schedule_free_sgd, {"learning_rate": 0.05,
                                                         "warmup_steps": 5, "weight_decay": 0.01,
                                                         "weight_lr_power": 1.0}),
    _contrib("simplified_ademamix", _c.simplified_ademamix, {"learning_rate": 0.01,
                                                             "alpha": 2.0}),
    _contrib("sophia", _c.sophia, {"learning_rate": 0.05, "update_interval": 3,
                                   "hessian_diagonal_fn": jopt.stateless(_gauss_newton_diag)}),
]  # fmt: skip
# optax has no SOAP: tests/contrib/test_soap.py checks it against the reference soap.py.
# A refresh every 3 steps crosses both branches of lax.cond. The second gradient of these
# runs equals the first (the first call moves nothing); rotated into bases built from it, it
# is rounding noise wherever the bases diagonalize it (a leaf rotated on both axes, the null
# space of a rank-deficient factor), and Adam's first step turns that noise into +-lr steps
# of arbitrary sign, so two programs that round differently (plain, under MultiSteps' cond)
# part. max_precond_dim=2 rotates the 2x3 leaf of test_cross_wrappers on its 2-axis only.
CONTRIB += [
    Case("contrib.soap", _c.soap, {"learning_rate": 0.05, "precondition_frequency": 3,
                                   "max_precond_dim": 2}, optax=None, steps=12, eager_steps=4),
]  # fmt: skip
# Low-bit states (no optax twin; tests/contrib/test_quantized_adam.py checks them against
# torchao): tiny blocks and no size threshold, so that the registry's small leaves quantize.
CONTRIB += [
    Case("contrib.adamw_8bit", _c.adamw_8bit, {"learning_rate": 0.05, "weight_decay": 0.01,
                                               "block_size": 4, "min_size": 4}),
    Case("contrib.adamw_4bit", _c.adamw_4bit, {"learning_rate": _schedule, "block_size": 2,
                                               "min_size": 2}),
    Case("contrib.adam_8bit", _c.adam_8bit, {"learning_rate": 0.05}),
]  # fmt: skip

# PSGD Kron: optax has none; tests/contrib/test_kron.py checks it against psgd-jax 0.2.9.
# A refit every other step, weight decay and a fast anneal reach the counter's branches.
CONTRIB += [
    Case("contrib.kron", _c.kron, {"learning_rate": 0.05, "weight_decay": 0.01,
                                   "preconditioner_update_probability": 0.5},
         optax=None, steps=12, eager_steps=4),
    Case("contrib.kron-schedule", _c.kron,
         {"learning_rate": _schedule, "memory_save_mode": "one_diag", "b1": 0.8,
          "preconditioner_update_probability": _c.precond_update_prob_schedule(
              flat_start=2, decay=0.3, min_prob=0.25)},
         optax=None, steps=12, eager_steps=4),
]  # fmt: skip

# Distributed Shampoo has no optax twin: tests/contrib/test_shampoo.py replays
# precondition-opt's trajectories. Blocks of 4 and a root every 3 steps from step 1 reach
# the blocking, the refresh and the grafting in a few steps (its roots compile slowly); a
# beta2 with an exact 1 - beta2 keeps injected float32 hyperparameters from moving the
# roots of the rank-1 first statistics (a 1e-5 change there is amplified to ~1e-3).
CONTRIB += [
    Case("contrib.shampoo", _c.shampoo, {"learning_rate": 0.05, "block_size": 4,
                                         "start_preconditioning_step": 1,
                                         "preconditioning_compute_steps": 3,
                                         "graft_type": "rmsprop_normalized", "beta2": 0.75},
         None, steps=6, eager_steps=2),
]  # fmt: skip


# --- schedules: reduce on plateau ----------------------------------------------


def _plateau_descent(lib, *args, **kw):
    """Plateau scaling before a descent step; the loss plateaus so the scale drops."""
    plateau = lib.reduce_on_plateau if lib is jopt else lib.contrib.reduce_on_plateau
    return lib.chain(plateau(*args, **kw), lib.scale(-0.05))


_plateau_factory = _signed_like(jopt.reduce_on_plateau)(functools.partial(_plateau_descent, jopt))


PLATEAU: list[Case] = [
    Case("reduce_on_plateau", _plateau_factory,
         {"factor": 0.5, "patience": 2, "cooldown": 1, "accumulation_size": 2, "rtol": 1e-2},
         _plateau_descent, extra_args=True, eager_steps=8),
]  # fmt: skip

# --- monitoring, apply_every and the flat-state fast path ----------------------


def _flat_state_of(optimizer):
    """``flat_state(optimizer(...))`` as a factory with ``optimizer``'s signature."""

    @_signed_like(optimizer)
    def factory(*args, **kw):
        return jopt.flat_state(optimizer(*args, **kw))

    return factory


FAST_AND_MONITORING: list[Case] = [
    Case(
        "apply_every_k3",
        lambda k: jopt.chain(jopt.apply_every(k), jopt.scale(-0.02)),
        {"k": 3},
        optax=lambda ox, k: ox.chain(ox.apply_every(k), ox.scale(-0.02)),
    ),
    # The fast path must give the per-leaf numbers: its twin is optax's per-leaf optimizer.
    Case(
        "flat_state_adam",
        _flat_state_of(jopt.adam),
        {"learning_rate": 0.05, "b1": 0.8},
        optax="adam",
        same_state=False,  # one flat buffer per dtype instead of the tree
    ),
    Case(
        "flat_state_adamw_schedule",
        _flat_state_of(jopt.adamw),
        {"learning_rate": _schedule, "weight_decay": 0.1},
        optax="adamw",
        same_state=False,  # one flat buffer per dtype instead of the tree
    ),
    Case(
        "flat_state_sgd_nesterov",
        _flat_state_of(jopt.sgd),
        {"learning_rate": 0.03, "momentum": 0.9, "nesterov": True},
        optax="sgd",
        same_state=False,  # one flat buffer per dtype instead of the tree
    ),
    Case(
        "flat_state_clip_rmsprop",
        lambda: jopt.flat_state(jopt.chain(jopt.clip_by_global_norm(1.0), jopt.rmsprop(0.01))),
        optax=lambda ox: ox.chain(ox.clip_by_global_norm(1.0), ox.rmsprop(0.01)),
        same_state=False,
    ),
    Case(
        "monitor_snapshot_sgd",
        lambda: jopt.chain(
            jopt.monitor(
                {
                    "norm": jopt.tree.l2_norm,
                    "ema_norm": jopt.measure_with_ema(jopt.tree.l2_norm, 0.9),
                }
            ),
            jopt.snapshot("max", jopt.tree.max),
            jopt.sgd(0.05),
        ),
        optax=lambda ox: ox.chain(
            ox.monitor({"norm": ox.tree.norm, "ema_norm": ox.measure_with_ema(ox.tree.norm, 0.9)}),
            ox.snapshot("max", ox.tree.max),
            ox.sgd(0.05),
        ),
    ),
]

CASES: list[Case] = functools.reduce(
    operator.add,
    [CORE_TRANSFORMS, CORE_OPTIMIZERS, PARITY, WRAPPERS, CONTRIB, PLATEAU, FAST_AND_MONITORING],
)
_names = [c.name for c in CASES]
assert len(_names) == len(set(_names)), "case names must be unique"
