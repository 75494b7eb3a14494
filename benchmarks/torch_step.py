"""The generated PyTorch code's speed, measured side by side in one run.

1. Train-step time of the generated model against torchvision's hand-written model of the same
   architecture (resnet18; resnet50_v1_5 at 224), interleaved step by step so that both see the
   same machine load. Prints the median ratio generated / torchvision: at most 1.05 is the target.
2. Training images per second for ResNet-20 at 32x32, with and without channels-last memory,
   through the generated train.py on synthetic data.

    python benchmarks/torch_step.py                 # the defaults below
    python benchmarks/torch_step.py --steps 10 --batch 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import torch
import torchvision

import resdsl
from resdsl.emit import emit, write

SPECS = Path(__file__).resolve().parent.parent / "specs"


def generated(spec: str):
    source = emit(resdsl.load(SPECS / f"{spec}.rds"), "torch")["model.py"]
    module = types.ModuleType(f"generated_{spec}")
    exec(compile(source, spec, "exec"), module.__dict__)
    return module.build_model()


def step_time(model, optimizer, x, y) -> float:
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    return time.perf_counter() - start


def compare(spec: str, reference, steps: int, batch: int) -> dict:
    torch.manual_seed(0)
    models = {"generated": generated(spec), "torchvision": reference()}
    models["generated"].load_state_dict(models["torchvision"].state_dict())
    optimizers = {
        k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in models.items()
    }
    x, y = torch.randn(batch, 3, 224, 224), torch.randint(0, 1000, (batch,))
    for name in models:  # warm up allocators and kernels
        step_time(models[name], optimizers[name], x, y)
    times = {name: [] for name in models}
    for i in range(steps):
        order = list(models) if i % 2 == 0 else list(reversed(models))
        for name in order:
            times[name].append(step_time(models[name], optimizers[name], x, y))
    ratios = [g / t for g, t in zip(times["generated"], times["torchvision"], strict=True)]
    return {
        "spec": spec,
        "generated_ms": 1000 * statistics.median(times["generated"]),
        "torchvision_ms": 1000 * statistics.median(times["torchvision"]),
        "ratio": statistics.median(ratios),
    }


def images_per_s(iters: int, batch: int) -> dict:
    """ResNet-20 through the generated train.py on synthetic data, plain and channels-last."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "code"
        write(emit(resdsl.load(SPECS / "resnet20.rds"), "torch"), code)
        for label, flags in (("default", []), ("channels_last", ["--channels-last"])):
            run = Path(tmp) / label
            subprocess.run(
                [
                    sys.executable,
                    "train.py",
                    "--data",
                    "synthetic",
                    "--iters",
                    str(iters),
                    "--batch-size",
                    str(batch),
                    "--out",
                    str(run),
                    "--eval-every",
                    str(10**6),
                    "--log-every",
                    str(iters),
                    *flags,
                ],
                cwd=code,
                check=True,
                capture_output=True,
            )
            records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
            out[label] = [r for r in records if r["kind"] == "train"][-1]["images_per_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="interleaved steps per model")
    parser.add_argument("--batch", type=int, default=4, help="images per step at 224")
    parser.add_argument("--iters", type=int, default=60, help="ResNet-20 iterations per run")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"{'model':<16}{'generated ms':>14}{'torchvision ms':>16}{'ratio':>8}")
    for spec, reference in (
        ("resnet18", torchvision.models.resnet18),
        ("resnet50_v1_5", torchvision.models.resnet50),
    ):
        r = compare(spec, reference, args.steps, args.batch)
        print(f"{spec:<16}{r['generated_ms']:>14.1f}{r['torchvision_ms']:>16.1f}{r['ratio']:>8.3f}")
    rates = images_per_s(args.iters, 128)
    print(
        f"\nResNet-20 at 32x32, batch 128, train.py --data synthetic: "
        f"{rates['default']:.0f} img/s, channels-last {rates['channels_last']:.0f} img/s "
        f"(ratio {rates['channels_last'] / rates['default']:.2f})"
    )


if __name__ == "__main__":
    main()
