"""The benchmark runs end to end on a tiny configuration and writes its three outputs.

Benchmarks are not timed tests: nothing here asserts a speed.
"""

import json

import jax
import jax.numpy as jnp
import optax

import jopt
from benchmarks import train_step
from benchmarks.__main__ import main
from benchmarks._timing import compiled_step, program_signature


def test_tiny_benchmark_writes_json_markdown_and_png(tmp_path):
    main([
        "--optimizers", "adam,lamb",
        "--shapes", "1024x4K,transformer",
        "--scale", "0.001", "--repetitions", "2", "--warmup", "1", "--compiles", "1",
        "--compile-budget", "0",
        "--stream-elements", "4096",
        "--out", str(tmp_path),
    ])  # fmt: skip
    results = json.loads((tmp_path / "results.json").read_text())
    assert {(r["optimizer"], r["shape"]) for r in results["rows"]} == {
        (o, s) for o in ("adam", "lamb") for s in ("1024x4K", "transformer")
    }
    for row in results["rows"]:
        assert row["step_s"]["jopt"] > 0 and row["step_s"]["optax"] > 0 and row["control_ratio"] > 0
        # lamb reduces per leaf on a FlatTree's blocks: it has fast-path rows too.
        assert row["fast_ratio"] is not None and row["flat_state_ratio"] is not None
    table = (tmp_path / "results.md").read_text()
    assert "| 1024x4K | adam |" in table and results["device"] in table
    assert (tmp_path / "ratios.png").read_bytes()[:4] == b"\x89PNG"


def test_tiny_train_step_benchmark_times_all_three_variants(capsys):
    train_step.main(["--layers", "3", "--width", "16", "--repetitions", "2", "--warmup", "1"])
    out = capsys.readouterr().out
    for variant in ("optax", "jopt", "fast"):
        for name in ("adam", "lamb"):
            assert f"{variant + '_' + name:>12}: " in out


_HLO = """HloModule jit_step, entry_computation_layout={(f32[8]{0}, f32[8]{0})->f32[8]{0}}

%fused_computation (param_0.1: f32[8]) -> f32[8] {
  %param_0.1 = f32[8]{0} parameter(0)
  ROOT %sine.0 = f32[8]{0} sine(%param_0.1), metadata={op_name="jit(step)/sin"}
}

ENTRY %main.5 (x.1: f32[8], y.1: f32[8]) -> f32[8] {
  %x.1 = f32[8]{0} parameter(0)
  %y.1 = f32[8]{0} parameter(1)
  %FIRST = f32[8]{0} fusion(%x.1), kind=kLoop, calls=%fused_computation
  %SECOND = f32[8]{0} cosine(%y.1)
  ROOT %add.1 = f32[8]{0} add(%FIRST, %SECOND)
}
"""


def test_program_signature_ignores_names_order_and_metadata_but_not_dataflow():
    same = program_signature(_HLO)
    # Independent instructions scheduled the other way round, under other names.
    swapped = _HLO.replace(
        "  %FIRST = f32[8]{0} fusion(%x.1), kind=kLoop, calls=%fused_computation\n"
        "  %SECOND = f32[8]{0} cosine(%y.1)\n",
        "  %c.7 = f32[8]{0} cosine(%y.1)\n"
        "  %f.9 = f32[8]{0} fusion(%x.1), kind=kLoop, calls=%fused_computation\n",
    ).replace("add(%FIRST, %SECOND)", "add(%f.9, %c.7)")
    assert swapped != _HLO and program_signature(swapped) == same
    assert program_signature(_HLO.replace('op_name="jit(step)/sin"', 'op_name="x"')) == same
    assert program_signature(_HLO.replace("sine(", "cosine(")) != same  # in a called computation
    assert program_signature(_HLO.replace("add(%FIRST, %SECOND)", "add(%SECOND, %FIRST)")) != same


def test_jopt_lamb_is_optax_lamb_and_not_adam():
    params = {"a": jnp.ones(4), "b": {"c": jnp.ones((2, 3)), "d": jnp.ones(())}}
    grads = jax.tree.map(lambda p: 0.1 * p, params)

    def signature(tx):
        return program_signature(compiled_step(tx, params, grads, 1, 0)[0].as_text())

    assert signature(jopt.lamb(1e-3)) == signature(optax.lamb(1e-3))
    assert signature(jopt.lamb(1e-3)) != signature(optax.adam(1e-3))
