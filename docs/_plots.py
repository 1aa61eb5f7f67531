"""Plot every schedule of ``jopt.schedules`` for the schedules guide (run at build time)."""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import jopt.schedules as s  # noqa: E402

STEPS = 1000

# One representative configuration of every schedule (tests/test_public_api.py-style guard:
# build fails if a schedule has no example here).
EXAMPLES = {
    "constant_schedule": lambda: s.constant_schedule(0.1),
    "linear_schedule": lambda: s.linear_schedule(
        1.0, 0.1, transition_steps=600, transition_begin=200
    ),
    "polynomial_schedule": lambda: s.polynomial_schedule(1.0, 0.0, power=2, transition_steps=800),
    "exponential_decay": lambda: s.exponential_decay(
        1.0, transition_steps=100, decay_rate=0.7, staircase=True
    ),
    "piecewise_constant_schedule": lambda: s.piecewise_constant_schedule(1.0, {300: 0.5, 700: 0.2}),
    "cosine_decay_schedule": lambda: s.cosine_decay_schedule(1.0, decay_steps=STEPS, alpha=0.1),
    "warmup_cosine_decay_schedule": lambda: s.warmup_cosine_decay_schedule(
        0.0, 1.0, 100, STEPS, 0.05
    ),
    "warmup_exponential_decay_schedule": lambda: s.warmup_exponential_decay_schedule(
        0.0, 1.0, 100, transition_steps=100, decay_rate=0.8
    ),
    "warmup_constant_schedule": lambda: s.warmup_constant_schedule(0.0, 1.0, 200),
    "join_schedules": lambda: s.join_schedules(
        [s.linear_schedule(0.0, 1.0, 200), s.cosine_decay_schedule(1.0, 800)], [200]
    ),
    "cosine_onecycle_schedule": lambda: s.cosine_onecycle_schedule(STEPS, 1.0),
    "linear_onecycle_schedule": lambda: s.linear_onecycle_schedule(STEPS, 1.0),
    "piecewise_interpolate_schedule": lambda: s.piecewise_interpolate_schedule(
        "cosine", 1.0, {250: 2.0, 500: 0.5, 750: 0.1}
    ),
    "sgdr_schedule": lambda: s.sgdr_schedule(
        [
            {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 50, "decay_steps": 300},
            {"init_value": 0.0, "peak_value": 0.6, "warmup_steps": 50, "decay_steps": 700},
        ]
    ),
}


# jopt.schedules also holds hyperparameter injection (as optax.schedules does): not schedules.
NOT_SCHEDULES = {
    "InjectHyperparamsState", "InjectStatefulHyperparamsState", "StatefulSchedule",
    "WrappedSchedule", "inject_hyperparams", "inject_stateful_hyperparams",
}  # fmt: skip


def write_plots(folder: pathlib.Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    schedules = [name for name in s.__all__ if name not in NOT_SCHEDULES]
    missing = sorted(set(schedules) - set(EXAMPLES))
    if missing:
        raise RuntimeError(f"docs/_plots.py has no example for {missing}")
    steps = jnp.arange(STEPS)
    for name in schedules:
        values = jax.vmap(EXAMPLES[name]())(steps)
        fig, ax = plt.subplots(figsize=(4.2, 2.4))
        ax.plot(steps, jnp.broadcast_to(values, steps.shape))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", dpi=90)
        plt.close(fig)
    gallery = [f"### `{name}`\n\n![{name}]({name}.png)\n" for name in schedules]
    (folder / "gallery.md").write_text("\n".join(gallery))
    return schedules
