"""The convergence benchmark runs end to end on its ``--quick`` path, so it cannot rot.

Nothing here asserts a speed; what it asserts holds on any machine: every run learns, the
target is AdamW's best final loss times the factor, AdamW reaches it, seeds differ, and
the outputs (table, plot, docs section) are written.
"""

import pytest

from benchmarks import convergence
from benchmarks._convergence_report import BEGIN, END, FIGURE, RAW, update_docs


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("convergence")
    results = convergence.main(
        ["--quick", "--optimizers", "lion,adamw", "--seeds", "2", "--seeds-at-adamw-lr"]
        + ["--out", str(out)]
    )
    return results, out


def test_quick_run_learns_and_reports_each_optimizer_against_adamw(quick):
    results, _ = quick
    assert list(results["tasks"]) == ["digits", "lm"]
    for task in results["tasks"].values():
        rows = {row["optimizer"]: row for row in task["rows"]}
        assert list(rows) == ["adamw", "lion"]  # the reference runs first
        adamw = rows["adamw"]
        best_adamw = min(loss for loss, _ in adamw["sweep"].values())
        assert task["target"] == pytest.approx(convergence.TARGET_FACTOR * best_adamw)
        assert adamw["steps_to_target"] is not None and adamw["step_ratio"] == 1.0
        for sweep in task["sweeps"]:
            assert len(sweep["runs"]) == 2 and len(sweep["seeds"]) == 2
            for run in sweep["runs"] + sweep["seeds"]:
                assert run["loss"][-1] < 0.95 * run["loss"][0], (sweep["optimizer"], run["lr"])
            # Seed 1 starts elsewhere and sees other batches: not a copy of seed 0.
            first, second = (run["loss"] for run in sweep["seeds"])
            assert first[0] != second[0] and first[-1] != second[-1]
        for row in rows.values():
            assert row["seeds"] == 2 and row["seed_loss"][1] > 0 and row["step_ms"] > 0
            # --seeds-at-adamw-lr: lion's seeds run at AdamW's best lr (here outside lion's grid).
            assert row["seed_lr"] == adamw["best_lr"]


def test_quick_run_writes_table_and_plot(quick):
    _, out = quick
    table = (out / "convergence.md").read_text()
    assert "| adamw | " in table and "| lion | " in table and "Target loss **" in table
    assert (out / "convergence.png").read_bytes()[:4] == b"\x89PNG"


def test_update_docs_replaces_only_the_marked_block(quick, tmp_path):
    results, out = quick
    (tmp_path / "figures").mkdir()
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Benchmarks\n\nprose above\n\n{BEGIN}\nold table\n{END}\n\nprose below\n")
    update_docs(results, out / "convergence.png", docs=tmp_path)
    text = page.read_text()
    assert "old table" not in text and "prose above" in text and "prose below" in text
    assert text.count(BEGIN) == 1 and f"]({FIGURE})" in text and "| lion | " in text
    assert (tmp_path / FIGURE).read_bytes()[:4] == b"\x89PNG" and (tmp_path / RAW).exists()
    page.write_text("# Benchmarks\n")
    with pytest.raises(ValueError, match="convergence:begin"):
        update_docs(results, out / "convergence.png", docs=tmp_path)
