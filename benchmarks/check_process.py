"""`resdsl check` as a person feels it: the whole process, imports included, side by side with
another commit.

The other commit is checked out into a temporary git worktree and run from there (its own
package, the same Python and packages), with bytecode caching on as in a person's Python (this
machine's environment sets PYTHONDONTWRITEBYTECODE, which the runs drop) and after one warm-up
run of each tree. The two trees run in turn, R times each on each spec, so
that the machine's noise falls on both alike; the table gives each tree's median wall time and
their ratio. The goals (issue 17): under 0.5 s for ResNet-20 and under 0.9 s for ResNet-1202 on
a 2-core machine.

Run from the repository::

    python benchmarks/check_process.py                  # against HEAD~1, 9 runs each
    python benchmarks/check_process.py --against v0.1 --repeat 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ("specs/resnet20.rds", "specs/resnet1202.rds")
GOALS = {"specs/resnet20.rds": 0.5, "specs/resnet1202.rds": 0.9}


def once(tree: Path, spec: str) -> float:
    """One `python -m resdsl check SPEC` run in ``tree``, whose package `-m` finds first."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)  # as a person's Python runs it: with bytecode caching
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "resdsl", "check", str(ROOT / spec)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{tree}: check {spec} failed:\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", default="HEAD~1", help="the commit to compare with")
    parser.add_argument("--repeat", type=int, default=9, help="runs per tree and spec")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        other = Path(folder) / "other"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(other), args.against],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            print(f"resdsl check, whole process: this tree vs {args.against}", end=" ")
            print(f"(median of {args.repeat})")
            print(f"{'spec':<24} {'this':>8} {args.against:>10} {'ratio':>7}  goal")
            for spec in SPECS:
                times = {ROOT: [], other: []}
                for tree in (ROOT, other):  # a first run writes bytecode and lark's tables
                    once(tree, spec)
                for _ in range(args.repeat):
                    for tree in (ROOT, other):
                        times[tree].append(once(tree, spec))
                ours, theirs = (statistics.median(times[t]) for t in (ROOT, other))
                met = "met" if ours < GOALS[spec] else "MISSED"
                print(
                    f"{spec:<24} {ours:>7.3f}s {theirs:>9.3f}s {ours / theirs:>7.2f}  "
                    f"< {GOALS[spec]} s: {met}"
                )
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, capture_output=True
            )


if __name__ == "__main__":
    main()
