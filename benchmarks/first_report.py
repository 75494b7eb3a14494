"""How soon the README's main job shows a person something: its banner and first progress report.

The goal (issue 9): the banner at once, the first progress report within 10 s on the 2-core
machine. The job is the README's quick start (ResNet-110 on digits, 200 iterations at batch 64),
run twice per target: once on a terminal (a pseudo-terminal, where train.py draws its live bar)
and once into a pipe (where it prints plain lines). Each run is stopped with SIGINT as soon as
its first progress report appears; the seconds are counted from the start of the process.

    python benchmarks/first_report.py                   # PyTorch
    python benchmarks/first_report.py --target tf
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import resdsl
from resdsl.emit import emit, write

SPECS = Path(__file__).resolve().parent.parent / "specs"
JOB = ["--data", "digits", "--iters", "200", "--batch-size", "64"]
PROGRESS = re.compile(rb"iter \d+/200  lr ")  # a report with figures, not the bar's first frame


def watch(code: Path, run: Path, terminal: bool, limit: float) -> tuple[float, float]:
    """Seconds until the banner and until the first progress report, from the process' start."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "160"}
    command = [sys.executable, "train.py", *JOB, "--out", str(run)]
    start = time.perf_counter()
    if terminal:
        leader, follower = pty.openpty()
        proc = subprocess.Popen(command, cwd=code, stdout=follower, stderr=follower, env=env)
        os.close(follower)
        stream = leader
    else:
        proc = subprocess.Popen(
            command, cwd=code, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        stream = proc.stdout.fileno()
    seen, banner, first = b"", None, None
    try:
        while first is None and time.perf_counter() - start < limit:
            ready, _, _ = select.select([stream], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(stream, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            seen += chunk
            now = time.perf_counter() - start
            if banner is None and b" parameters on " in seen:
                banner = now
            if banner is not None and PROGRESS.search(seen):
                first = now
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        if terminal:
            os.close(leader)
    return banner or float("nan"), first or float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=("torch", "tf"), default="torch")
    parser.add_argument("--limit", type=float, default=120, help="give up after these seconds")
    args = parser.parse_args()
    net = resdsl.load(SPECS / "resnet110.rds")
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "code"
        write(emit(net, args.target), code)
        print(f"README main job, {args.target}: " + " ".join(JOB))
        for terminal in (True, False):
            run = Path(tmp) / f"run-{terminal}"
            banner, first = watch(code, run, terminal, args.limit)
            where = "terminal (live bar)" if terminal else "pipe (plain lines)"
            print(
                f"{where:<20} banner at {banner:5.1f} s, first progress report at {first:5.1f} s "
                f"(goal: 10 s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
