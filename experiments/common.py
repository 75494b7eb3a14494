"""What the experiments share: compile specs through resdsl's Python API, run the generated
PyTorch train.py on the embedded digits data, and write tables and figures."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import resdsl
from resdsl.emit import emit, write
from resdsl.plot import RunLog, read_run

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
RESULTS = ROOT / "experiments" / "results"


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="the same pipeline at a tiny size")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where tables and figures go")
    parser.add_argument("--work", type=Path, help="where runs go (default: a temporary folder)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.work is None:
        args.work = Path(tempfile.mkdtemp(prefix="resdsl-experiment-"))
    return args


def budget(args, iters: int, evals: int = 10, logs: int = 50):
    """Iterations, batch and train.py flags: equal for every run of an experiment, tiny with
    --quick. ``evals`` and ``logs`` are how many evaluations and train records a run makes."""
    iters, batch = (4, 16) if args.quick else (iters, 64)
    flags = ["--iters", iters, "--batch-size", batch]
    flags += ["--eval-every", max(iters // evals, 1), "--log-every", max(iters // logs, 1)]
    return iters, batch, flags


def compile_net(source: str | Path, folder: Path, shortcut: str | None = None) -> Path:
    """Compile a spec file, or spec text (resolved in specs/), for the PyTorch target."""
    if isinstance(source, Path):
        module = resdsl.parse_file(source)
    else:
        module = resdsl.parse(source, str(SPECS / "experiment.rds"))
    net = resdsl.check(resdsl.build(resdsl.link(module), shortcut=shortcut))
    write(emit(net, "torch"), folder)
    return folder


def train(code: Path, run_dir: Path, *flags) -> tuple[RunLog, float]:
    """Run train.py on digits; the run's log and its wall time in seconds."""
    start = time.time()
    subprocess.run(
        [sys.executable, "train.py", "--data", "digits", "--out", str(run_dir), *map(str, flags)],
        cwd=code,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return read_run(run_dir), time.time() - start


def final(run: RunLog, split: str = "test") -> float:
    return [r for r in run.evals if r["split"] == split][-1]["error"]


def table(headers: list[str], rows: list[list]) -> str:
    def cell(value):
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def report(out: Path, name: str, title: str, text: str) -> Path:
    path = out / f"{name}.md"
    path.write_text(f"# {title}\n\n{text.strip()}\n")
    print(path.read_text())
    return path
