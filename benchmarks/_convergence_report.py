"""The convergence benchmark's Markdown tables, its figure, and its section of the docs."""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
FIGURE = "figures/convergence_cpu.png"
RAW = "figures/convergence_cpu.json"
BEGIN, END = "<!-- convergence:begin -->", "<!-- convergence:end -->"


def _seeded(mean_std: list[float]) -> str:
    mean, std = mean_std
    return f"{mean:.4f} ± {std:.4f}"


def _task_table(name: str, task: dict, factor: float) -> list[str]:
    seeds = max(row["seeds"] for row in task["rows"])
    floor = task["floor"]
    lines = [
        f"**{name}**: {task['description']}; {task['steps']} steps. Target loss "
        f"**{task['target']:.4f}** (AdamW's best final loss × {factor:g})."
        + ("" if floor is None else f" Lower bound (the source's own loss): {floor:.4f}."),
        "",
    ]
    header = "| optimizer | best lr | steps to target | final loss | final accuracy | ms/step "
    header += "| step time / AdamW | time to target, s | compile s |"
    if seeds > 1:
        header += f" final loss, {seeds} seeds | final accuracy, {seeds} seeds |"
    lines += [header, "|---|" + "---:|" * (header.count("|") - 2)]
    for row in task["rows"]:
        reached = row["steps_to_target"]
        seconds = "—" if reached is None else f"{reached * row['step_ms'] / 1e3:.2f}"
        line = (
            f"| {row['optimizer']} | {row['best_lr']:g} | {'—' if reached is None else reached} "
            f"| {row['final_loss']:.4f} | {row['final_accuracy']:.4f} | {row['step_ms']:.3f} "
            f"| {row['step_ratio']:.2f} | {seconds} | {row['compile_s']:.1f} |"
        )
        if seeds > 1:
            seed_lr = row.get("seed_lr", row["best_lr"])
            at = "" if seed_lr == row["best_lr"] else f" (lr {seed_lr:g})"
            line += f" {_seeded(row['seed_loss'])}{at} | {_seeded(row['seed_accuracy'])}{at} |"
        lines.append(line)
    lines += ["", "Sweep, seed 0: final loss (steps to target) at each learning rate.", ""]
    lines += ["| optimizer | learning rates |", "|---|---|"]
    for row in task["rows"]:
        cells = [
            f"{float(lr):g}: {loss:.4f} ({'—' if reached is None else reached})"
            for lr, (loss, reached) in row["sweep"].items()
        ]
        lines.append(f"| {row['optimizer']} | {' · '.join(cells)} |")
    return lines + [""]


def markdown(results: dict, figure: str | None = None) -> str:
    """The tables of every task (and the figure, if its path is given)."""
    cpu = f" ({results['cpu_s']:.0f} CPU-seconds)" if "cpu_s" in results else ""
    lines = [
        f"Run {results['date']} on {results['machine']} (`{results['device']}`; 1-minute load "
        f"average {results['load_start']:.1f} at the start, {results['load_end']:.1f} at the "
        f"end), jax {results['jax']}, {results.get('wall_s', 0):.0f} s in all{cpu}: "
        f"`{results['command']}`. Steps are timed in compiled chunks of {results['chunk']}.",
        "",
    ]
    for name, task in results["tasks"].items():
        lines += _task_table(name, task, results["target_factor"])
    if figure:
        lines += [f"![held-out loss per step at each optimizer's best learning rate, and final "
                  f"loss against learning rate]({figure})", ""]  # fmt: skip
    return "\n".join(lines)


def write_markdown(results: dict, path: pathlib.Path) -> None:
    path.write_text(markdown(results, path.with_suffix(".png").name))


def _log_axis(axis, low: float, high: float) -> None:
    """A log axis labelled 0.1, 0.2, 0.5, 1, 2 ... rather than in powers of ten, where the
    values span more than a factor of 5 (else linear)."""
    from matplotlib import ticker  # noqa: PLC0415

    if high < 5 * low:
        return
    axis.axes.set_yscale("log")
    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _curves(ax, task: dict) -> None:
    for sweep, row in zip(task["sweeps"], task["rows"], strict=True):
        best = next(r for r in sweep["runs"] if r["lr"] == row["best_lr"])
        (line,) = ax.plot(
            best["steps"], best["loss"], label=f"{row['optimizer']} {row['best_lr']:g}"
        )
        if len(sweep["seeds"]) > 1 and sweep["seeds"][0]["lr"] == row["best_lr"]:
            losses = np.array([r["loss"] for r in sweep["seeds"]])
            ax.fill_between(best["steps"], losses.min(0), losses.max(0), alpha=0.2,
                            color=line.get_color(), linewidth=0)  # fmt: skip
    ax.axhline(task["target"], color="black", linestyle="--", linewidth=0.8, label="target")
    if task["floor"] is not None:
        ax.axhline(task["floor"], color="gray", linestyle=":", linewidth=0.8, label="floor")
    finite = [v for s in task["sweeps"] for r in s["runs"] for v in r["loss"] if np.isfinite(v)]
    low, high = 0.9 * min(finite + [task["floor"] or np.inf]), max(finite)
    ax.set_ylim(low, high)
    _log_axis(ax.yaxis, low, high)
    ax.set_xlabel("step")
    ax.set_ylabel("held-out loss")
    ax.legend(fontsize=7)


def _sweep(ax, task: dict) -> None:
    every = [task["target"]]
    for sweep in task["sweeps"]:
        lrs = [r["lr"] for r in sweep["runs"]]
        finals = [r["loss"][-1] if np.isfinite(r["loss"][-1]) else np.nan for r in sweep["runs"]]
        ax.plot(lrs, finals, marker="o", label=sweep["optimizer"])
        every += [v for v in finals if np.isfinite(v)]
    ax.axhline(task["target"], color="black", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    _log_axis(ax.yaxis, min(every), max(every))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final held-out loss")
    ax.legend(fontsize=7)


def write_plot(results: dict, path: pathlib.Path) -> None:
    """Per task: loss curves at the best learning rates (band: min..max over the seeds)
    and the final loss of the sweep."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    names = list(results["tasks"])
    figure = Figure(figsize=(10, 3.4 * len(names)))
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(names), 2, squeeze=False)
    for (left, right), name in zip(axes, names, strict=True):
        task = results["tasks"][name]
        _curves(left, task)
        left.set_title(f"{name}: best learning rate of each optimizer", fontsize=9)
        _sweep(right, task)
        right.set_title(f"{name}: learning-rate sweep (seed 0)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _rounded(value):
    """``value`` with every float rounded to 5 significant digits (for the committed copy)."""
    if isinstance(value, float):
        return float(f"{value:.5g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    return value


def update_docs(results: dict, plot: pathlib.Path, docs: pathlib.Path = DOCS) -> None:
    """Copy the figure and the raw numbers into ``docs/figures`` and replace the generated
    part of ``docs/benchmarks.md`` (between its convergence markers)."""
    page = docs / "benchmarks.md"
    text = page.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(
            f"{page} has no {BEGIN} ... {END} block; add the two markers where the "
            "convergence tables go"
        )
    shutil.copyfile(plot, docs / FIGURE)
    (docs / RAW).write_text(json.dumps(_rounded(results), separators=(",", ":")) + "\n")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    body = markdown(results, FIGURE) + f"\nThe raw numbers: [`{RAW}`]({RAW}).\n"
    page.write_text(f"{head}{BEGIN}\n{body}{END}{tail}")
