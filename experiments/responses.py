"""Layer responses (He et al. 2015, Fig. 7): the std of each 3x3 layer's output after BN.

Residual nets should respond less than plain ones, and deeper residual nets less still.

    python experiments/responses.py              # about 4 minutes on 2 CPU cores
    python experiments/responses.py --quick
"""

import json
import statistics

from common import SPECS, arguments, budget, compile_net, report, table, train

from resdsl.plot import response_curves, save

NETS = ["plain20", "resnet20", "resnet56"]


def main():
    args = arguments(__doc__.split("\n")[0])
    iters, batch, flags = budget(args, 500, evals=1)
    rows, paths = [], []
    for name in NETS:
        code = compile_net(SPECS / f"{name}.rds", args.work / name)
        run, _ = train(code, args.work / f"run-{name}", *flags, "--log-responses")
        paths.append(run.path)
        stds = [x["std"] for x in json.loads((run.path / "responses.json").read_text())["layers"]]
        rows.append([name, len(stds), statistics.mean(stds), statistics.median(stds), max(stds)])
    save(response_curves(paths), args.out / "responses.png")
    mean = {row[0]: row[2] for row in rows}
    text = table(["network", "BN layers", "mean std", "median std", "max std"], rows)
    text += (
        f"\n\nAfter {iters} iterations at batch {batch} on digits, measured on the test split. "
        "Each value is the std of a residual-branch BN output, before the addition or ReLU.\n\n"
        f"- resnet20 responds less than plain20: **{mean['resnet20'] < mean['plain20']}**\n"
        f"- resnet56 responds less than resnet20: **{mean['resnet56'] < mean['resnet20']}**\n\n"
        "![responses](responses.png)\n"
    )
    report(args.out, "responses", "Layer responses of plain and residual nets", text)


if __name__ == "__main__":
    main()
