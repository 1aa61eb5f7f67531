"""The demo's main function on a short run: output format and the curves PNG."""

import re

from jopt import demo


def test_demo_main_prints_accuracy_last_and_writes_curves(tmp_path, capsys):
    accuracy = demo.main(epochs=2, out_dir=str(tmp_path), progress=False)
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"test accuracy: 0\.\d{4}", lines[-1]), lines[-1]
    assert float(lines[-1].split(": ")[1]) == round(accuracy, 4) and accuracy > 0.5
    assert sum(line.startswith("epoch") for line in lines) == 2
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "history.json").exists()
