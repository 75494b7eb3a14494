"""Both targets' generated train.py, side by side in one run: images/s on synthetic data.

The goal (issue 9): TensorFlow's train.py at 0.9x PyTorch's or better on ResNet-20, batch 128.
The runs alternate (torch, tf, torch, tf, ...) so that the machine's load falls on both alike;
each rate counts from the end of the first step (warm-up and tracing excluded), as train.py's
own `images_per_s` does.

    python benchmarks/train_speed.py                      # ResNet-20, batch 128, 3 rounds
    python benchmarks/train_speed.py --spec resnet56 --iters 60 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import resdsl
from resdsl.emit import emit, write

SPECS = Path(__file__).resolve().parent.parent / "specs"
TARGETS = ("torch", "tf")


def rate(code: Path, run: Path, iters: int, batch: int) -> float:
    """images/s of one train.py run, from its last train record."""
    flags = ["--data", "synthetic", "--iters", iters, "--batch-size", batch]
    flags += ["--eval-every", 10**9, "--log-every", iters, "--out", run]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(
        [sys.executable, "train.py", *map(str, flags)],
        cwd=code,
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "train"][-1]["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="resnet20")
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    net = resdsl.load(SPECS / f"{args.spec}.rds")
    rates: dict[str, list[float]] = {t: [] for t in TARGETS}
    with tempfile.TemporaryDirectory() as tmp:
        for target in TARGETS:
            write(emit(net, target), Path(tmp) / target)
        for n in range(args.rounds):
            for target in TARGETS:
                run = Path(tmp) / f"run-{target}-{n}"
                rates[target].append(rate(Path(tmp) / target, run, args.iters, args.batch))
                print(f"round {n + 1} {target:<5} {rates[target][-1]:8.0f} images/s", flush=True)
    torch_rate, tf_rate = (statistics.median(rates[t]) for t in TARGETS)
    print(
        f"\n{args.spec}, batch {args.batch}, train.py --data synthetic, median of "
        f"{args.rounds}: torch {torch_rate:.0f}, tf {tf_rate:.0f} images/s; "
        f"tf / torch = {tf_rate / torch_rate:.2f} (goal: 0.9 or more)"
    )


if __name__ == "__main__":
    main()
