"""How the resdsl pipeline scales with depth, on the CIFAR family of He et al. 2015.

For each n, the spec::

    import "cifar.rds"
    network bench = cifar_resnet(n = N)

is taken through the three public phases, each timed on its own with ``time.perf_counter``:

* parse: ``resdsl.parse`` (text to AST; the spec text itself is two lines for every n),
* build: ``resdsl.link`` then ``resdsl.build`` (reads cifar.rds, expands 6n + 2 layers),
* check: ``resdsl.check`` (graph invariants, shapes, output and train section).

Each phase keeps the best of R repeats. The table gives the time per layer (6n + 2 layers), which
stays flat if the pipeline is linear in depth; the last line compares it at the largest n with
n = 200 (ResNet-1202).

Run from anywhere::

    python benchmarks/check_scaling.py              # n up to 2000 (12,002 layers), 3 repeats
    python benchmarks/check_scaling.py --max-n 500 --repeat 5
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import resdsl
from resdsl.parser import grammar

SPECS = Path(__file__).resolve().parent.parent / "specs"
SIZES = (3, 9, 18, 50, 200, 500, 1000, 2000)
BIG_N = 1000  # from this n on, one repeat is enough (and keeps the run short)
REFERENCE_N = 200  # ResNet-1202, the deepest network of the paper
SPEC = 'import "cifar.rds"\nnetwork bench = cifar_resnet(n = {n})\n'


def best_of(repeat: int, phase, *args):
    """The result of ``phase(*args)`` and its best wall time over ``repeat`` runs, in ms."""
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()  # do not bill one run for the garbage of the last (timeit does the same)
        start = time.perf_counter()
        result = phase(*args)
        best = min(best, time.perf_counter() - start)
    return result, best * 1000


def measure(n: int, repeat: int) -> dict:
    """Time parse, build and check of ``cifar_resnet(n)``; the best of ``repeat`` runs each."""
    # the name places the (virtual) file in specs/, so that `import "cifar.rds"` resolves there
    name = str(SPECS / f"bench_n{n}.rds")
    module, parse_ms = best_of(repeat, resdsl.parse, SPEC.format(n=n), name)
    net, build_ms = best_of(repeat, lambda m: resdsl.build(resdsl.link(m)), module)
    _, check_ms = best_of(repeat, resdsl.check, net)
    layers = 6 * n + 2
    total_ms = parse_ms + build_ms + check_ms
    return {
        "n": n,
        "layers": layers,
        "nodes": len(net.graph),
        "parse": parse_ms,
        "build": build_ms,
        "check": check_ms,
        "total": total_ms,
        "us_per_layer": total_ms * 1000 / layers,
    }


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'n':>6} {'layers':>7} {'IR nodes':>9} {'parse ms':>9} {'build ms':>9} "
        f"{'check ms':>9} {'total ms':>9} {'µs/layer':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['n']:>6} {r['layers']:>7} {r['nodes']:>9} {r['parse']:>9.2f} {r['build']:>9.2f} "
            f"{r['check']:>9.2f} {r['total']:>9.2f} {r['us_per_layer']:>9.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=max(SIZES), help="largest n to time")
    parser.add_argument(
        "--repeat", type=int, default=3, help=f"repeats per phase, best kept (1 for n >= {BIG_N})"
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    # The first parse builds lark's LALR parser (then cached); do it here, outside the timings.
    grammar()

    sizes = [n for n in SIZES if n <= args.max_n]
    if not sizes:
        parser.error(f"--max-n must be at least {min(SIZES)}")
    rows = [measure(n, args.repeat if n < BIG_N else 1) for n in sizes]
    print_table(rows)

    print()
    by_n = {r["n"]: r for r in rows}
    if REFERENCE_N in by_n:
        ref = by_n[REFERENCE_N]
        verdict = "under" if ref["total"] < 1000 else "NOT under"
        print(
            f"ResNet-{ref['layers']} (n={REFERENCE_N}): {ref['total']:.1f} ms total, "
            f"{verdict} one second"
        )
        last = rows[-1]
        ratio = last["us_per_layer"] / ref["us_per_layer"]
        print(
            f"flatness: µs/layer at n={last['n']} / at n={REFERENCE_N} = {ratio:.2f} "
            "(~1.0 is linear)"
        )
    else:
        print(f"(n={REFERENCE_N} was not timed: no ResNet-1202 summary or flatness figure)")


if __name__ == "__main__":
    main()
