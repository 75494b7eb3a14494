"""Shortcut options A, B and C (He et al. 2015, section 3.3 and Table 3) on the same network.

python experiments/shortcuts.py              # about 3 minutes on 2 CPU cores
python experiments/shortcuts.py --quick
"""

from common import SPECS, arguments, budget, compile_net, final, report, table, train

import resdsl
from resdsl.plot import error_curves, save


def main():
    args = arguments(__doc__.split("\n")[0])
    iters, batch, flags = budget(args, 500)
    rows, paths = [], []
    for policy in ("A", "B", "C"):
        spec = SPECS / "resnet32.rds"
        params = resdsl.summary(resdsl.load(spec, shortcut=policy))["params"]
        code = compile_net(spec, args.work / policy, shortcut=policy)
        run, seconds = train(code, args.work / f"run-{policy}", *flags)
        paths.append(run.path)
        rows.append([policy, f"{params:,}", run.train[-1]["error"], final(run), round(seconds)])
    labels = [f"resnet32, option {p}" for p in ("A", "B", "C")]
    save(error_curves(paths, labels), args.out / "shortcuts.png")
    text = table(
        ["shortcut", "params", "final training error (%)", "final test error (%)", "seconds"],
        rows,
    )
    text += (
        f"\n\nresnet32, {iters} iterations at batch {batch} on digits, torch target, CPU. "
        "The paper finds C slightly better than B and B slightly better than A on ImageNet, "
        "and calls the differences small.\n\n![curves](shortcuts.png)\n"
    )
    report(args.out, "shortcuts", "Shortcut options A, B and C", text)


if __name__ == "__main__":
    main()
