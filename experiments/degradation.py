"""Degradation (He et al. 2015, Fig. 6 and Table 6): plain and residual nets at two depths.

Does the deeper plain net reach a *higher training error* than the shallower one, while the
deeper residual net does not? Plain20/plain56 and resnet20/resnet56, equal budgets on digits.

    python experiments/degradation.py            # about 6 minutes on 2 CPU cores
    python experiments/degradation.py --quick    # the same pipeline at a tiny size
"""

from common import SPECS, arguments, budget, compile_net, final, report, table, train

from resdsl.plot import error_curves, save

NETS = ["plain20", "plain56", "resnet20", "resnet56"]


def main():
    args = arguments(__doc__.split("\n")[0])
    iters, batch, flags = budget(args, 500)
    runs, rows = {}, []
    for name in NETS:
        code = compile_net(SPECS / f"{name}.rds", args.work / name)
        run, seconds = train(code, args.work / f"run-{name}", *flags)
        runs[name] = run
        train_error = run.train[-1]["error"]
        rows.append(
            [
                name,
                train_error,
                final(run),
                min(r["error"] for r in run.evals if r["split"] == "test"),
                round(seconds),
            ]
        )
    for family in ("plain", "resnet"):
        paths = [runs[n].path for n in NETS if n.startswith(family)]
        save(error_curves(paths), args.out / f"degradation-{family}.png")
    deeper_plain_worse = runs["plain56"].train[-1]["error"] > runs["plain20"].train[-1]["error"]
    deeper_res_better = runs["resnet56"].train[-1]["error"] <= runs["resnet20"].train[-1]["error"]
    text = table(
        [
            "network",
            "final training error (%)",
            "final test error (%)",
            "best test error (%)",
            "seconds",
        ],
        rows,
    )
    text += (
        f"\n\n{iters} iterations at batch {batch} on digits (resized to 32x32), torch target, "
        f"CPU. Training error is the running error over the last 10 minibatches.\n\n"
        f"- Deeper plain net has the higher training error: **{deeper_plain_worse}**\n"
        f"- Deeper residual net has a training error no higher than the shallower one: "
        f"**{deeper_res_better}**\n\n"
        "![plain](degradation-plain.png) ![resnet](degradation-resnet.png)\n"
    )
    report(args.out, "degradation", "Degradation: plain against residual nets", text)


if __name__ == "__main__":
    main()
