"""The benchmark's Markdown table and PNG plot."""

from __future__ import annotations

import pathlib


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def write_markdown(results: dict, path: pathlib.Path) -> None:
    lines = [
        f"Device: `{results['device']}` · machine: {results['machine']} · jax {results['jax']} · "
        f"STREAM triad {results['stream_GBps']:.1f} GB/s",
        "",
        f"Command: `{results['command']}`",
        "",
        "| shape | optimizer | params | optax ms | jopt ms | jopt/optax | optax/optax "
        "| fast ms | fast/optax "
        "| flat_state/optax | compile optax s | compile jopt s | compile ratio "
        "| fast compile ratio | state MB | jopt GB/s | same program |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for row in results["rows"]:
        step, fast = row["step_s"], row["step_s"].get("jopt_fast")
        lines.append(
            f"| {row['shape']} | {row['optimizer']} | {row['parameters']:,} "
            f"| {1e3 * step['optax']:.3f} | {1e3 * step['jopt']:.3f} | {row['ratio']:.2f} "
            f"| {_fmt(row.get('control_ratio'))} "
            f"| {'' if fast is None else f'{1e3 * fast:.3f}'} "
            f"| {_fmt(row['fast_ratio'])} | {_fmt(row.get('flat_state_ratio'))} "
            f"| {row['compile_s']['optax']:.2f} | {row['compile_s']['jopt']:.2f} "
            f"| {row['compile_ratio']:.2f} | {_fmt(row['fast_compile_ratio'])} "
            f"| {row['state_bytes']['jopt'] / 2**20:.1f} "
            f"| {row['bandwidth_GBps']['jopt']:.1f} "
            f"| {'yes' if row.get('same_program') else 'no'} |"
        )
    path.write_text("\n".join(lines) + "\n")


# (legend label, row key) of each bar in a group.
_BARS = (
    ("jopt / optax", "ratio"),
    ("jopt FlatTree / optax", "fast_ratio"),
    ("jopt flat_state / optax", "flat_state_ratio"),
)


def _ratio_of(rows: dict, optimizer: str, key: str) -> float:
    return (rows.get(optimizer) or {}).get(key) or 0


def write_plot(results: dict, path: pathlib.Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = results["rows"]
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    optimizers = list(dict.fromkeys(r["optimizer"] for r in rows))
    fig, axes = plt.subplots(
        len(shapes), 1, figsize=(max(6, len(optimizers)), 2.6 * len(shapes)), squeeze=False
    )
    for ax, shape in zip(axes[:, 0], shapes, strict=False):
        shape_rows = {r["optimizer"]: r for r in rows if r["shape"] == shape}
        xs = range(len(optimizers))
        for offset, (label, key) in zip((-0.27, 0.0, 0.27), _BARS, strict=True):
            heights = [_ratio_of(shape_rows, o, key) for o in optimizers]
            ax.bar([x + offset for x in xs], heights, width=0.27, label=label)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(list(xs), optimizers, rotation=30, fontsize=8)
        ax.set_ylabel("step time ratio")
        ax.set_title(f"{shape} on {results['device']}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
