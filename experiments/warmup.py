"""Warmup (He et al. 2015, section 4.2): ResNet-110 at lr 0.1 from the start, against the paper's
rule (lr 0.01 until the training error is below 80%, then back to 0.1).

    python experiments/warmup.py                 # about 6 minutes on 2 CPU cores
    python experiments/warmup.py --quick
"""

from common import SPECS, arguments, budget, compile_net, final, report, table, train

from resdsl.plot import error_curves, save

NO_WARMUP = 'import "cifar.rds"\nnetwork resnet110 = cifar_resnet(n = 18)\n'


def below(run, threshold=80.0):
    """The first iteration whose running training error is below the threshold."""
    return next((r["iter"] for r in run.train if r["error"] < threshold), "never")


def main():
    args = arguments(__doc__.split("\n")[0])
    iters, batch, flags = budget(args, 300, evals=6, logs=300)
    rows, paths = [], []
    for label, source in (
        ("lr 0.1 from the start", NO_WARMUP),
        ("paper's warmup", SPECS / "resnet110.rds"),
    ):
        folder = args.work / label.split()[0].strip("'")
        run, seconds = train(compile_net(source, folder), args.work / f"run-{folder.name}", *flags)
        paths.append(run.path)
        end = [e["iter"] for e in run.events if e["event"] == "warmup_end"]
        rows.append(
            [
                label,
                below(run),
                end[0] if end else "-",
                run.train[-1]["lr"],
                run.train[-1]["error"],
                final(run),
                round(seconds),
            ]
        )
    save(error_curves(paths, [r[0] for r in rows]), args.out / "warmup.png")
    text = table(
        [
            "run",
            "first iteration with training error < 80%",
            "warmup_end",
            "final lr",
            "final training error (%)",
            "final test error (%)",
            "seconds",
        ],
        rows,
    )
    text += (
        f"\n\nresnet110, {iters} iterations at batch {batch} on digits, torch target, CPU. "
        "The training error is the running error over the last 10 minibatches.\n\n"
        "![curves](warmup.png)\n"
    )
    report(args.out, "warmup", "Warmup of ResNet-110", text)


if __name__ == "__main__":
    main()
