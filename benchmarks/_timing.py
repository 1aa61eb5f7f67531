"""Interleaved timing of jitted, buffer-donating optimizer steps; a STREAM-like bandwidth probe."""

from __future__ import annotations

import hashlib
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import jopt


def compiled_step(
    tx: Any, params: Any, grads: Any, compiles: int = 2, budget_s: float = 1.0
) -> tuple[Callable, Any, float]:
    """Compile ``(params, state), grads -> (params, state)`` with donated params and state.

    Returns the compiled step (called as ``step((params, state), grads)``), the initial
    state and the trace+lower+compile seconds:
    the fastest of at least ``compiles`` compiles of fresh closures (more, up to 10, while
    they have taken under ``budget_s`` in all: short compiles are the noisiest), so that
    one-time costs of the first compile in the process (lowering rules, caches) are
    charged to no one.
    """
    state = jax.jit(tx.init)(params)
    best, compiled, spent, count = float("inf"), None, 0.0, 0
    while count < compiles or (spent < budget_s and count < 10):
        count += 1

        def step(carry, grads):
            params, state = carry
            updates, state = tx.update(grads, state, params)
            return jopt.apply_updates(params, updates), state

        start = time.perf_counter()
        compiled = jax.jit(step, donate_argnums=0).lower((params, state), grads).compile()
        seconds = time.perf_counter() - start
        best, spent = min(best, seconds), spent + seconds
    return compiled, state, best


def interleaved_medians(
    steps: dict[str, tuple[Callable, Any, Any]], repetitions: int, warmup: int = 3
) -> dict[str, float]:
    """Median seconds per step of each variant, timed A B C A B C ... after a warm-up.

    ``steps`` maps a variant name to ``(step, carry, inputs)``: each round calls
    ``carry = step(carry, inputs)`` (e.g. ``(params, state)`` and the gradients). Each
    variant owns its carry because donation consumes it.
    """
    carries = {name: carry for name, (_, carry, _) in steps.items()}
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for round_index in range(warmup + repetitions):
        # Rotate the order so that no variant always runs right after another.
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            step, _, inputs = steps[name]
            start = time.perf_counter()
            carries[name] = jax.block_until_ready(step(carries[name], inputs))
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def stream_bandwidth(elements: int, repetitions: int = 10) -> float:
    """Bytes per second of the triad ``a = b + 3 c`` (reads 2, writes 1 array), median."""
    b = jnp.ones((elements,), jnp.float32)
    c = jnp.full((elements,), 2.0, jnp.float32)
    triad = jax.jit(lambda b, c: b + 3.0 * c)
    jax.block_until_ready(triad(b, c))
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        jax.block_until_ready(triad(b, c))
        times.append(time.perf_counter() - start)
    return 3 * elements * 4 / statistics.median(times)


def update_bytes(params: Any, state: Any) -> int:
    """Bytes an update must move: read+write params, read grads, read+write the state."""
    param_bytes = jopt.tree.bytes_size(params)
    return 3 * param_bytes + 2 * jopt.tree.bytes_size(state)


_NAME = re.compile(r"%[\w.\-]+")
_METADATA = re.compile(r", (metadata|backend_config|frontend_attributes)=(\{[^{}]*\}|\S+)")
_HEADER = re.compile(r"^(ENTRY )?(%[\w.\-]+) .*\{$")
_INSTRUCTION = re.compile(r"^\s+(ROOT )?(%[\w.\-]+) = (.*)$")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def program_signature(hlo_text: str) -> str:
    """A digest of HLO text (``compiled.as_text()``) that equal programs share, whatever
    their names and order.

    Each instruction is named by a hash of its text with its operands replaced by *their*
    hashes (and the computations it calls by theirs), so the digest depends on the
    dataflow alone: not on XLA's instruction numbers (they follow the tracing order of
    the Python code), not on the schedule of independent instructions, and not on
    source metadata. Two steps with the same signature are the same program, and a time
    difference between them is noise.
    """
    lines = hlo_text.splitlines()
    module = next((line.split(",", 1)[-1] for line in lines if line.startswith("HloModule")), "")
    computations: dict[str, str] = {}
    entry, current, local, members, root = None, "", {}, [], ""
    for raw in lines:
        line = _METADATA.sub("", raw).rstrip()
        if header := _HEADER.match(line):
            current, local, members, root = header[2], {}, [], ""
            entry = current if header[1] else entry
        elif line == "}":
            computations[current] = _digest(" ".join([*sorted(members), "root", root]))
        elif instruction := _INSTRUCTION.match(line):
            text = _NAME.sub(
                lambda m, local=local: local.get(m[0]) or computations.get(m[0], m[0]),
                instruction[3],
            )
            local[instruction[2]] = digest = _digest(text)
            members.append(digest)
            root = digest if instruction[1] else root
    return _digest(module + computations.get(entry or "", ""))
