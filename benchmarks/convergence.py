"""``python -m benchmarks.convergence``: how fast each optimizer trains two small models,
against AdamW with the same kind of learning-rate sweep.

Tasks (:mod:`benchmarks._convergence_tasks`): an MLP on scikit-learn's digits and a 2-layer
transformer LM on synthetic second-order Markov text. Each optimizer of :data:`OPTIMIZERS`
runs its learning-rate grid on seed 0; its best learning rate is the one with the lowest
final held-out loss. The target of a task is AdamW's best final loss times
:data:`TARGET_FACTOR`; "steps to target" is the first evaluation at or below it. With
``--seeds N`` the best learning rate of each optimizer runs again on seeds 1 .. N-1 (a seed
fixes the initial parameters and the batch order, the same for every optimizer);
``--seeds-at-adamw-lr`` runs every optimizer's seeds at AdamW's best learning rate instead
(the same hyperparameters: how an 8-bit AdamW is compared with AdamW).

Each optimizer compiles one program per task: ``chunk`` steps under ``lax.scan``, buffers
donated, the learning rate in the state (:func:`jopt.inject_hyperparams`), so the whole
sweep reuses it. A step's wall time (``ms/step``) is timed after the sweeps, the programs
of every optimizer interleaved (A B C A B C ..., :func:`benchmarks._timing.interleaved_medians`,
so that a change of the machine's load falls on all of them alike), each continuing from its
best run's final state: the median of 10 to 200 chunks (:data:`TIMING_S`), over its steps. A
chunk spans whole periods of a preconditioner's refresh, so the refresh is amortized in the
figure. The JSON also keeps each sweep's own median chunk (``sweep_step_ms``; each run's first
chunk is warm-up).

Adding an optimizer is one line in :data:`OPTIMIZERS`: a factory taking ``learning_rate``
and the learning rates to sweep.

Example::

    python -m benchmarks.convergence --seeds 3 --docs
    python -m benchmarks.convergence --quick --optimizers adamw,muon --out /tmp/c
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jopt
from benchmarks._convergence_report import update_docs, write_markdown, write_plot
from benchmarks._convergence_tasks import Task, tasks
from benchmarks._timing import interleaved_medians

# name -> (factory taking ``learning_rate``, learning rates swept). AdamW is the reference.
OPTIMIZERS: dict[str, tuple[Callable[..., Any], tuple[float, ...]]] = {
    "adamw": (lambda learning_rate: jopt.adamw(learning_rate), (3e-4, 1e-3, 3e-3, 1e-2)),
    "muon": (lambda learning_rate: jopt.contrib.muon(learning_rate), (1e-3, 3e-3, 1e-2, 3e-2)),
    "lion": (lambda learning_rate: jopt.lion(learning_rate), (1e-4, 3e-4, 1e-3, 3e-3)),
    # The preconditioners and the low-bit states with AdamW's weight decay (1e-4), so that only
    # the preconditioner (or the state's precision) differs; the rest at their references' defaults.
    "soap": (lambda learning_rate: jopt.contrib.soap(learning_rate, weight_decay=1e-4),
             (1e-3, 3e-3, 1e-2, 3e-2)),
    "kron": (lambda learning_rate: jopt.contrib.kron(learning_rate, weight_decay=1e-4),
             (3e-4, 1e-3, 3e-3, 1e-2)),
    # Shampoo as its reference's README advises for training: Adam-like (RMSProp) grafting, roots
    # every 10 steps, 2-D statistics (merging small dims would turn each kernel into 4096-blocks).
    # Its RMSProp graft has no bias correction, so early steps are ~1/sqrt(1 - b2) = 32x Adam's:
    # the grid sits a decade lower (3e-4 and up diverged on the LM).
    "shampoo": (lambda learning_rate: jopt.contrib.shampoo(
        learning_rate, graft_type="rmsprop", preconditioning_compute_steps=10,
        merge_small_dims_block_size=1, matrix_epsilon=1e-4), (3e-5, 1e-4, 3e-4, 1e-3)),
    "adamw_8bit": (lambda learning_rate: jopt.contrib.adamw_8bit(learning_rate),
                   (3e-4, 1e-3, 3e-3, 1e-2)),
    "adamw_4bit": (lambda learning_rate: jopt.contrib.adamw_4bit(learning_rate),
                   (3e-4, 1e-3, 3e-3, 1e-2)),
}  # fmt: skip
REFERENCE = "adamw"
TARGET_FACTOR = 1.05
CHUNK = 20  # steps per compiled call and between evaluations; a multiple of 10, 5, 4, 2
STEPS = {"digits": 200, "lm": 500}
QUICK_STEPS = 2 * CHUNK
# Interleaved rounds of every optimizer's chunk: at least TIMED_CHUNKS, more (up to 200)
# while a task's rounds take under TIMING_S in all, so cheap steps get enough samples.
TIMED_CHUNKS, QUICK_TIMED_CHUNKS, TIMING_S = 10, 2, 3.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.convergence", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma-separated")
    parser.add_argument("--tasks", default="digits,lm", help="comma-separated: digits, lm")
    parser.add_argument("--seeds", type=int, default=1, help="seeds of each best lr (>= 1)")
    parser.add_argument("--steps", type=int, default=None, help="steps of every run (a multiple "
                        f"of {CHUNK}); default {STEPS}")  # fmt: skip
    parser.add_argument("--seeds-at-adamw-lr", action="store_true",
                        help="the seeds of every optimizer at AdamW's best lr")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small models, 2 lrs, 40 steps")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--docs", action="store_true", help="also update docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.command = " ".join(
        ["python -m benchmarks.convergence", *(sys.argv[1:] if argv is None else argv)]
    )
    # The reference runs first: the target comes from it.
    names = [name for name in args.optimizers.split(",") if name and name != REFERENCE]
    args.optimizers = [REFERENCE, *names]
    for name in args.optimizers:
        if name not in OPTIMIZERS:
            sys.exit(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    args.tasks = [name for name in args.tasks.split(",") if name]
    for name in args.tasks:
        if name not in tasks():
            sys.exit(f"unknown task {name!r}; choose from {', '.join(tasks())}")
    if args.seeds < 1:
        sys.exit(f"--seeds must be >= 1, got {args.seeds}")
    if args.steps is not None and (args.steps < 2 * CHUNK or args.steps % CHUNK):
        sys.exit(f"--steps must be a multiple of {CHUNK} and >= {2 * CHUNK}, got {args.steps}")
    return args


def _chunk_program(task: Task, tx: Any) -> Callable:
    """``(params, state, data, indices[chunk, batch]) -> (params, state, losses[chunk])``."""

    def chunk(params, state, data, indices):
        def body(carry, batch_indices):
            params, state = carry
            loss, grads = jax.value_and_grad(task.loss)(params, data, batch_indices)
            updates, state = tx.update(grads, state, params)
            return (jopt.apply_updates(params, updates), state), loss

        (params, state), losses = jax.lax.scan(body, (params, state), indices)
        return params, state, losses

    return jax.jit(chunk, donate_argnums=(0, 1))


class _Programs(NamedTuple):
    """The compiled pieces one optimizer's sweep on one task shares."""

    init_params: Callable  # key -> params
    init_state: Callable  # params -> state (the learning rate of the grid's first value)
    chunk: Callable  # see _chunk_program
    evaluate: Callable  # params, data -> (loss, accuracy)


def _with_learning_rate(state: Any, learning_rate: float) -> Any:
    """``state`` of an injected optimizer, with its learning rate set to ``learning_rate``."""
    old = state.hyperparams["learning_rate"]
    return state._replace(
        hyperparams={**state.hyperparams, "learning_rate": jnp.asarray(learning_rate, old.dtype)}
    )


def _train(task: Task, programs: _Programs, learning_rate: float, seed: int, steps: int):
    """One run: its record (evaluations after every chunk, the seconds each chunk took)
    and its final ``(params, state)``."""
    params = programs.init_params(jax.random.PRNGKey(seed))
    state = _with_learning_rate(programs.init_state(params), learning_rate)
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, task.train_size, (steps // CHUNK, CHUNK, task.batch_size))
    evals, seconds, train_losses = [programs.evaluate(params, task.data)], [], []
    for chunk_indices in indices.astype(np.int32):
        start = time.perf_counter()
        params, state, losses = jax.block_until_ready(
            programs.chunk(params, state, task.data, chunk_indices)
        )
        seconds.append((time.perf_counter() - start) / CHUNK)
        train_losses.append(float(losses.mean()))
        evals.append(programs.evaluate(params, task.data))
    loss, accuracy = (np.asarray(v, np.float64) for v in zip(*evals, strict=True))
    record = {
        "lr": learning_rate,
        "seed": seed,
        "steps": [CHUNK * i for i in range(len(evals))],
        "loss": [float(v) for v in loss],
        "accuracy": [float(v) for v in accuracy],
        "train_loss": train_losses,
        "step_s": seconds,
    }
    return record, (params, state)


def _final(run: dict) -> float:
    value = run["loss"][-1]
    return value if np.isfinite(value) else float("inf")


def _sweep(task: Task, shared: tuple, name: str, args: argparse.Namespace, steps: int,
           seed_lr: float | None = None):  # fmt: skip
    """Every learning rate of ``name`` on seed 0, then its best (or ``seed_lr``) on the
    other seeds.

    Returns the sweep's record and what times the best run's program afterwards:
    ``(step, (params, state), inputs)`` for :func:`benchmarks._timing.interleaved_medians`.
    """
    factory, grid = OPTIMIZERS[name]
    grid = grid[1:3] if args.quick else grid
    tx = jopt.inject_hyperparams(factory)(learning_rate=grid[0])
    init_params, evaluate = shared
    programs = _Programs(init_params, jax.jit(tx.init), _chunk_program(task, tx), evaluate)
    params = init_params(jax.random.PRNGKey(0))
    state = programs.init_state(params)
    indices = np.zeros((CHUNK, task.batch_size), np.int32)
    start = time.perf_counter()
    programs.chunk.lower(params, state, task.data, indices).compile()
    compile_s = time.perf_counter() - start
    runs, carries = zip(*(_train(task, programs, lr, 0, steps) for lr in grid), strict=True)
    best = min(range(len(runs)), key=lambda i: _final(runs[i]))
    lr = grid[best] if seed_lr is None else seed_lr
    first = [r for r in runs if r["lr"] == lr] or [_train(task, programs, lr, 0, steps)[0]]
    repeats = first + [_train(task, programs, lr, s, steps)[0] for s in range(1, args.seeds)]
    record = {"optimizer": name, "compile_s": compile_s, "runs": list(runs), "seeds": repeats}
    indices = np.random.default_rng(args.seeds).integers(0, task.train_size, indices.shape)
    step = lambda carry, inputs: programs.chunk(*carry, *inputs)[:2]
    return record, (step, carries[best], (task.data, indices.astype(np.int32)))


def _steps_to(run: dict, target: float) -> int | None:
    return next((s for s, v in zip(run["steps"], run["loss"], strict=True) if v <= target), None)


def _spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), std


def _rounds(sweeps: list[dict], quick: bool) -> int:
    """How many interleaved rounds to time (see TIMING_S), from the sweeps' own chunk times."""
    if quick:
        return QUICK_TIMED_CHUNKS
    one_round = sum(CHUNK * statistics.median(s["runs"][0]["step_s"][1:]) for s in sweeps)
    return int(min(200, max(TIMED_CHUNKS, TIMING_S / one_round)))


def summarize(sweeps: list[dict], chunk_s: dict[str, float] | None = None):
    """The task's target and one row per optimizer (see the module docstring); ``chunk_s``:
    the interleaved seconds of a chunk of each optimizer, else the sweep's own medians."""
    reference = next(s for s in sweeps if s["optimizer"] == REFERENCE)
    target = TARGET_FACTOR * min(_final(run) for run in reference["runs"])
    rows = []
    for sweep in sweeps:
        best = min(sweep["runs"], key=_final)
        # Each run's first chunk is its warm-up; a chunk is CHUNK steps.
        timed = [s for run in sweep["runs"] + sweep["seeds"][1:] for s in run["step_s"][1:]]
        sweep_ms = 1e3 * statistics.median(timed)
        finals = [run["loss"][-1] for run in sweep["seeds"]]
        accuracies = [run["accuracy"][-1] for run in sweep["seeds"]]
        rows.append({
            "optimizer": sweep["optimizer"],
            "best_lr": best["lr"],
            "final_loss": best["loss"][-1],
            "final_accuracy": best["accuracy"][-1],
            "steps_to_target": _steps_to(best, target),
            "sweep_step_ms": sweep_ms,
            "step_ms": 1e3 * chunk_s[sweep["optimizer"]] / CHUNK if chunk_s else sweep_ms,
            "compile_s": sweep["compile_s"],
            "seeds": len(finals),
            "seed_lr": sweep["seeds"][0]["lr"],
            "seed_loss": _spread(finals),
            "seed_accuracy": _spread(accuracies),
            "sweep": {str(r["lr"]): [r["loss"][-1], _steps_to(r, target)] for r in sweep["runs"]},
        })  # fmt: skip
    adamw_ms = next(r["step_ms"] for r in rows if r["optimizer"] == REFERENCE)
    for row in rows:
        row["step_ratio"] = row["step_ms"] / adamw_ms
    return target, rows


def run(args: argparse.Namespace) -> dict:
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_start": os.getloadavg()[0],
        "device": str(jax.devices()[0].device_kind),
        "jax": jax.__version__,
        "command": args.command,
        "chunk": CHUNK,
        "target_factor": TARGET_FACTOR,
        "tasks": {},
    }
    builders = tasks(args.quick)
    for task_name in args.tasks:
        task = builders[task_name]()
        steps = args.steps or (QUICK_STEPS if args.quick else STEPS[task_name])
        shared, sweeps, timing = (jax.jit(task.init), jax.jit(task.evaluate)), [], {}
        for name in args.optimizers:
            seed_lr = sweeps[0]["seeds"][0]["lr"] if sweeps and args.seeds_at_adamw_lr else None
            sweep, timing[name] = _sweep(task, shared, name, args, steps, seed_lr)
            sweeps.append(sweep)
            row = summarize(sweeps)[1][-1]
            print(f"{task_name:>6} {name:>12}: best lr {row['best_lr']:g}, final loss "
                  f"{row['final_loss']:.4f}, {row['step_ms']:.2f} ms/step", flush=True)  # fmt: skip
        target, rows = summarize(sweeps, interleaved_medians(timing, _rounds(sweeps, args.quick)))
        print(f"{task_name:>6} target loss {target:.4f} (AdamW's best final x {TARGET_FACTOR})")
        results["tasks"][task_name] = {
            "description": task.description,
            "steps": steps,
            "floor": task.floor,
            "target": target,
            "rows": rows,
            "sweeps": sweeps,
        }
    results["load_end"] = os.getloadavg()[0]
    return results


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    start, cpu_start = time.perf_counter(), time.process_time()
    results = run(args)
    # CPU seconds of all the process's threads: about the wall time on idle cores.
    results["wall_s"] = time.perf_counter() - start
    results["cpu_s"] = time.process_time() - cpu_start
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "convergence.json").write_text(json.dumps(results, indent=1))
    write_markdown(results, out / "convergence.md")
    write_plot(results, out / "convergence.png")
    print(f"{results['wall_s']:.0f} s; wrote {out}/convergence.json, convergence.md, "
          "convergence.png")  # fmt: skip
    if args.docs:
        update_docs(results, out / "convergence.png")
    return results


if __name__ == "__main__":
    main()
