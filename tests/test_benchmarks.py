"""The benchmark runs end to end on a tiny configuration and writes its three outputs.

Benchmarks are not timed tests: nothing here asserts a speed.
"""

import json

from benchmarks import train_step
from benchmarks.__main__ import main


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
        assert (row["fast_ratio"] is None) == (row["optimizer"] == "lamb")
        assert (row["flat_state_ratio"] is None) == (row["optimizer"] == "lamb")
    table = (tmp_path / "results.md").read_text()
    assert "| 1024x4K | adam |" in table and results["device"] in table
    assert (tmp_path / "ratios.png").read_bytes()[:4] == b"\x89PNG"


def test_tiny_train_step_benchmark_times_all_three_variants(capsys):
    train_step.main(["--layers", "3", "--width", "16", "--repetitions", "2", "--warmup", "1"])
    out = capsys.readouterr().out
    for variant in ("optax", "jopt", "jopt_fast"):
        assert f"{variant:>10}: " in out
