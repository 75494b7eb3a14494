"""The zoo's table: each spec of specs/zoo/ against the models it is named after.

For each reference (torchvision's and timm's models, random weights, ``pretrained=False``), the
PyTorch target's model is built (for keras.applications' models, the TensorFlow target's, its
weights copied by layer name), the reference's state_dict is loaded into it with
``strict=True`` and no key mapping, BN statistics are randomised, and the eval-mode logits of a
random batch are compared. The table (Markdown, as the README shows it) gives each spec's
parameters and MACs at 224x224 (resdsl's count), its references, and how far the logits are
apart: ``bitwise`` where they are equal to the bit.

    python experiments/zoo.py            # every model, at 3x224x224 (a few minutes on a CPU)
    python experiments/zoo.py --size 64  # faster: every reference is fully convolutional
    python experiments/zoo.py vgg16 alexnet  # some of them
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import resdsl
from resdsl.emit import emit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "targets"))

from test_zoo import KERAS, REFERENCES, ZOO, keras_logits, randomise, reference  # noqa: E402

from helpers import module_from  # noqa: E402


def compare(spec: str, lib: str, size: int) -> str:
    torch.manual_seed(0)
    ref = reference(lib, spec).eval()
    randomise(ref)
    net = resdsl.load(ZOO / f"{spec}.rds")
    model = module_from(emit(net, "torch")["model.py"], f"zoo_{spec}").build_model().eval()
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected, got = ref(x), model(x)
    if torch.equal(expected, got):
        return "bitwise"
    return f"max abs diff {(expected - got).abs().max().item():.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("models", nargs="*", help="the specs to compare (default: every one)")
    args = parser.parse_args()
    wanted = set(args.models) or set(REFERENCES) | set(KERAS)
    print("| model | params | MACs | reference | exact |")
    print("|---|---|---|---|---|")
    for spec, libs in REFERENCES.items():
        if spec not in wanted:
            continue
        info = resdsl.summary(resdsl.load(ZOO / f"{spec}.rds"))
        results = {lib: compare(spec, lib, args.size) for lib in libs}
        exact = ", ".join(sorted(set(results.values())))
        if len(set(results.values())) > 1:
            exact = "; ".join(f"{lib}: {r}" for lib, r in results.items())
        macs = f"{info['macs'] / 1e9:.2f}G"
        print(f"| `{spec}` | {info['params']:,} | {macs} | {', '.join(libs)} | {exact} |")
        sys.stdout.flush()
    for spec, model in KERAS.items():  # the TensorFlow target against keras.applications
        if spec not in wanted:
            continue
        info = resdsl.summary(resdsl.load(ZOO / f"{spec}.rds"))
        expected, got = keras_logits(spec, args.size)
        diff = abs(expected - got).max()
        exact = "bitwise" if diff == 0 else f"max abs diff {diff:.1e}"
        macs = f"{info['macs'] / 1e9:.2f}G"
        print(f"| `{spec}` | {info['params']:,} | {macs} | keras `{model}` | {exact} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
