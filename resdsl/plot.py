"""Figures of training runs, in the style of the paper: Fig. 6 (error curves) and Fig. 7
(layer responses). Reads the run folders the generated train.py files write; needs matplotlib.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ResdslError


class RunError(ResdslError):
    """A run folder that lacks what a figure needs."""


@dataclass
class RunLog:
    path: Path
    label: str
    train: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


def read_run(path: str | Path) -> RunLog:
    """A run folder's metrics.jsonl and config.json."""
    path = Path(path)
    metrics = path / "metrics.jsonl"
    if not metrics.is_file():
        raise RunError(
            f"{path} has no metrics.jsonl",
            hint="pass the --out folder of a train.py run",
            code="RDS421",
        )
    config = {}
    try:
        if (path / "config.json").is_file():
            config = json.loads((path / "config.json").read_text())
        lines = metrics.read_text().splitlines()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"cannot read the run in {path}: {exc}", code="RDS421") from None
    name = config.get("network") if isinstance(config, dict) else None
    run = RunLog(path, name if isinstance(name, str) else path.name)
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            raise RunError(f"{metrics}:{number}: not a JSON object", code="RDS421")
        {"train": run.train, "eval": run.evals, "event": run.events}.get(
            record.get("kind"), []
        ).append(record)
    if not run.train:
        raise RunError(f"{metrics} has no training records", code="RDS421")
    return run


def _labels(runs: list[RunLog], labels) -> list[str]:
    if labels:
        if len(labels) != len(runs):
            raise RunError(f"{len(labels)} labels for {len(runs)} runs", code="RDS421")
        return list(labels)
    names = [r.label for r in runs]
    return [f"{r.label} ({r.path.name})" if names.count(r.label) > 1 else r.label for r in runs]


def _figure(*size):
    import matplotlib

    matplotlib.use("Agg")  # headless
    from matplotlib import pyplot

    return pyplot.figure(figsize=size)


def error_curves(paths, labels=None, split: str = "test"):
    """Fig. 6: error (%) against iterations; thin dashed training error, bold ``split`` error,
    one colour per run. Returns the matplotlib Figure."""
    runs = [read_run(p) for p in paths]
    figure = _figure(7, 4.5)
    axes = figure.add_subplot()
    for index, (run, label) in enumerate(zip(runs, _labels(runs, labels), strict=True)):
        colour = f"C{index}"
        axes.plot(
            [r["iter"] for r in run.train],
            [r["error"] for r in run.train],
            linestyle="--",
            linewidth=0.8,
            color=colour,
            label="_nolegend_",
        )
        evals = [r for r in run.evals if r["split"] == split]
        axes.plot(
            [r["iter"] for r in evals],
            [r["error"] for r in evals],
            linewidth=2.2,
            color=colour,
            label=label,
        )
    axes.set_xlabel("iterations")
    axes.set_ylabel("error (%)")
    axes.set_title(f"dashed: training error, bold: {split} error")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return figure


def response_curves(paths, labels=None):
    """Fig. 7: the std of each residual-branch BN output, in layer order and sorted."""
    runs = [read_run(p) for p in paths]
    figure = _figure(9, 4)
    by_layer, by_size = figure.subplots(1, 2)
    for index, (run, label) in enumerate(zip(runs, _labels(runs, labels), strict=True)):
        file = run.path / "responses.json"
        if not file.is_file():
            raise RunError(
                f"{run.path} has no responses.json",
                hint="train with --log-responses",
                code="RDS421",
            )
        stds = [layer["std"] for layer in json.loads(file.read_text())["layers"]]
        layers = range(1, len(stds) + 1)
        by_layer.plot(layers, stds, marker=".", color=f"C{index}", label=label)
        by_size.plot(layers, sorted(stds, reverse=True), color=f"C{index}", label=label)
    by_layer.set_xlabel("layer index (original)")
    by_size.set_xlabel("layer index (sorted by magnitude)")
    for axes in (by_layer, by_size):
        axes.set_ylabel("std")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    return figure


def save(figure, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    except (OSError, ValueError) as exc:  # an unwritable folder, an unknown image format
        raise RunError(f"cannot write {path}: {exc}", code="RDS421") from None
    return path
