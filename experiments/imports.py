"""What `resdsl import` makes of every classification model torchvision has.

For each model of ``torchvision.models.list_models(module=torchvision.models)`` (random weights;
nothing is downloaded), ``resdsl import torchvision:NAME`` runs with its proof: the spec it
writes, compiled for PyTorch, loads the model's state_dict strictly and gives its logits. The
table (Markdown) gives each model's result: ``imported`` with its parameters, or the refusal's
first line, which names the module and what has no resdsl form. A traceback would be a bug.

    python experiments/imports.py              # every model (several minutes on a CPU)
    python experiments/imports.py vgg16 alexnet
"""

from __future__ import annotations

import argparse
import sys
import time

import torchvision

from resdsl.errors import ResdslError
from resdsl.importer import import_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="the models to import (default: every one)")
    args = parser.parse_args()
    names = args.models or sorted(torchvision.models.list_models(module=torchvision.models))
    print("| model | result | seconds |")
    print("|---|---|---|")
    imported = 0
    for name in names:
        start = time.perf_counter()
        try:
            result = import_source(f"torchvision:{name}")
            outcome = result.report.splitlines()[-1]
            imported += "logits equal" in outcome
        except ResdslError as exc:
            outcome = "refused: " + str(exc).splitlines()[0]
        seconds = time.perf_counter() - start
        print(f"| `{name}` | {outcome.replace('|', '/')} | {seconds:.0f} |")
        sys.stdout.flush()
    print(f"\n{imported} of {len(names)} import and prove themselves.")


if __name__ == "__main__":
    main()
