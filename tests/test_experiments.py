"""Each experiment's --quick mode: the whole pipeline at a tiny size, writing its table."""

import subprocess
import sys

import pytest

from helpers import QUIET, ROOT

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

EXPERIMENTS = {
    "degradation": (["plain20", "plain56", "resnet20", "resnet56"], ["degradation-plain.png"]),
    "shortcuts": (["| A |", "| B |", "| C |"], ["shortcuts.png"]),
    "responses": (["plain20", "resnet20", "resnet56"], ["responses.png"]),
    "warmup": (["lr 0.1 from the start", "paper's warmup"], ["warmup.png"]),
}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_quick_mode_writes_its_table(name, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / f"{name}.py"),
            "--quick",
            "--out",
            str(tmp_path / "out"),
            "--work",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=QUIET,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    table = (tmp_path / "out" / f"{name}.md").read_text()
    rows, figures = EXPERIMENTS[name]
    assert table.startswith("# ")
    for row in rows:
        assert sum(line.startswith("| ") and row in line for line in table.splitlines()) == 1
    for figure in figures:
        assert (tmp_path / "out" / figure).read_bytes()[:4] == b"\x89PNG"
