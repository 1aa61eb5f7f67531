"""``python -m benchmarks``: time jopt against optax, interleaved; write JSON, Markdown, PNG.

Example::

    python -m benchmarks --optimizers adam,sgd_momentum --shapes 1024x4K --repetitions 30
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys

import jax
import jax.numpy as jnp

import jopt
from benchmarks._optimizers import OPTIMIZERS, variants
from benchmarks._report import write_markdown, write_plot
from benchmarks._timing import (
    compiled_step,
    interleaved_medians,
    program_signature,
    stream_bandwidth,
    update_bytes,
)
from benchmarks._trees import parameter_count, tree_builders


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma-separated")
    parser.add_argument("--shapes", default=",".join(tree_builders()), help="comma-separated")
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--compiles", type=int, default=2, help="compiles per variant (min)")
    parser.add_argument(
        "--compile-budget", type=float, default=1.0, help="compile again while under (s)"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every tree (tests: 1e-3)")
    parser.add_argument("--stream-elements", type=int, default=2**25)
    parser.add_argument("--out", default="benchmarks/results")
    return parser.parse_args(argv)


def _device() -> str:
    device = jax.devices()[0]
    return f"{device.platform}:{getattr(device, 'device_kind', device.platform)}"


def _ratio(seconds: dict[str, float], variant: str) -> float | None:
    return seconds[variant] / seconds["optax"] if variant in seconds else None


def run(args: argparse.Namespace) -> dict:
    trees = tree_builders(args.scale)
    optimizers = [name for name in args.optimizers.split(",") if name]
    shapes = [name for name in args.shapes.split(",") if name]
    for name in optimizers:
        if name not in OPTIMIZERS:
            sys.exit(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    for name in shapes:
        if name not in trees:
            sys.exit(f"unknown shape {name!r}; choose from {', '.join(trees)}")
    bandwidth = stream_bandwidth(args.stream_elements)
    rows = []
    for shape in shapes:
        params0 = trees[shape]()
        grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-3), params0)
        for name in optimizers:
            steps, compile_s, state_bytes, moved, programs = {}, {}, {}, {}, {}
            for variant, (make, layout) in variants(name).items():
                params, variant_grads = layout(jax.tree.map(jnp.copy, params0)), layout(grads)
                fn, state, compile_s[variant] = compiled_step(
                    make(), params, variant_grads, args.compiles, args.compile_budget
                )
                state_bytes[variant] = jopt.tree.bytes_size(state)
                moved[variant] = update_bytes(params, state)
                steps[variant] = (fn, (params, state), variant_grads)
                programs[variant] = program_signature(fn.as_text())
            # A control: optax's compiled step again on its own buffers. Its ratio to optax
            # is the noise floor of this row (the same program timed twice).
            fn, carry, variant_grads = steps["optax"]
            steps["optax_control"] = (fn, jax.tree.map(jnp.copy, carry), variant_grads)
            medians = interleaved_medians(steps, args.repetitions, args.warmup)
            row = {
                "optimizer": name,
                "shape": shape,
                "parameters": parameter_count(params0),
                "step_s": medians,
                "compile_s": compile_s,
                "state_bytes": state_bytes,
                "bandwidth_GBps": {v: moved[v] / medians[v] / 1e9 for v in moved},
                "ratio": medians["jopt"] / medians["optax"],
                # The same optimized program as optax: a ratio away from 1 is noise.
                "same_program": programs["jopt"] == programs["optax"],
                "fast_ratio": _ratio(medians, "jopt_fast"),
                "flat_state_ratio": _ratio(medians, "jopt_flat_state"),
                "control_ratio": _ratio(medians, "optax_control"),
                "compile_ratio": compile_s["jopt"] / compile_s["optax"],
                "fast_compile_ratio": _ratio(compile_s, "jopt_fast"),
            }
            rows.append(row)
            print(
                f"{shape:>14} {name:>13}: jopt/optax {row['ratio']:.2f}"
                + f"  (optax/optax {row['control_ratio']:.2f})"
                + (f"  fast/optax {row['fast_ratio']:.2f}" if row["fast_ratio"] else "")
                + f"  compile {row['compile_ratio']:.2f}"
                + ("  (same program as optax)" if row["same_program"] else ""),
                flush=True,
            )
    return {
        "device": _device(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip()
        + f" ({jax.local_device_count()} devices, {os.cpu_count()} cores)",
        "jax": jax.__version__,
        "stream_GBps": bandwidth / 1e9,
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    results = run(args)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    write_markdown(results, out / "results.md")
    write_plot(results, out / "ratios.png")
    print(f"ran on {results['device']}; wrote {out}/results.json, results.md, ratios.png")


if __name__ == "__main__":
    main()
