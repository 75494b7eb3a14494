"""train.py's view-model, the same for every target: the recipe as config literals, their flags,
and which parts of the skeletons (templates/common/*_skeleton.py.j2) the spec uses.

A generated train.py holds only what its spec names: its schedule and warmup, its augmentation and
normalisation, and its dataset besides the embedded digits and synthetic data. Every config value
has a flag of the same name (`batch_size` is `--batch-size`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import recipe
from ..emit import render, where
from ..ir import Network
from .layout import Call, lay_out, literal


@dataclass(frozen=True)
class Setting:
    """One config value: `name = value  # comment`, overridden by the flag --name."""

    name: str
    value: object
    comment: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def line(self) -> str:
        text = f"{self.name} = {literal(self.value)}"
        return f"{text}  # {self.comment}" if self.comment else text

    def flag(self) -> list[str]:
        """The argparse call that overrides this value, laid out as ruff formats it."""
        kwargs: dict[str, str] = {}
        value = self.value
        if isinstance(value, bool):
            kwargs["action"] = "argparse.BooleanOptionalAction"
        elif isinstance(value, tuple):
            kwargs["nargs"] = '"+"' if self.name == "milestones" else str(len(value))
            kwargs["type"] = type(value[0]).__name__
        elif self.choices:
            kwargs["choices"] = literal(self.choices)
        else:
            kwargs["type"] = type(value).__name__
        kwargs["default"] = self.name
        call = Call("p.add_argument", literal("--" + self.name.replace("_", "-")), **kwargs)
        return lay_out(call, 4)


def _settings(net: Network, cfg: recipe.TrainConfig, datasets: tuple[str, ...]) -> list[Setting]:
    aug, norm, opt = cfg.augment, cfg.normalize, cfg.optimizer
    sched, warm = cfg.schedule, cfg.warmup
    rows = [Setting("data", cfg.data.name, None, datasets)]
    if {"cifar10", "imagenet"} & set(datasets):
        rows.append(Setting("data_dir", "data", f"where {cfg.data.name} lies"))
    if cfg.data.split:
        rows.append(Setting("split", cfg.data.split, f"(train, val) images of {cfg.data.name}"))
    if aug.pad:
        rows.append(Setting("pad", aug.pad, "zero padding on each side, then a random crop"))
    if aug.scale:
        rows.append(Setting("scale", aug.scale, "the shorter side, drawn from [lo, hi]"))
    if aug.flip:
        rows.append(Setting("flip", True, "random horizontal flips (never on digits)"))
    if aug.color:
        rows.append(Setting("color", True, "a random contrast in [0.6, 1.4]"))
    if norm.kind != "none":
        comment = {"pixel_mean": "subtract the training split's per-pixel mean"}.get(norm.kind)
        rows.append(Setting("normalize", norm.kind, comment, (norm.kind, "none")))
    if norm.kind == "mean_std":
        rows += [Setting("mean", norm.mean, "per channel"), Setting("std", norm.std)]
    rows += [
        Setting("batch_size", cfg.batch, "global, over all devices and processes"),
        Setting("lr", opt.lr, "SGD"),
        Setting("momentum", opt.momentum),
        Setting("weight_decay", opt.weight_decay, "L2, added to the gradient as in the paper"),
    ]
    if opt.nesterov:
        rows.append(Setting("nesterov", True))
    if sched.kind == "step":
        rows.append(Setting("milestones", sched.milestones, "iterations where lr is multiplied"))
    if sched.kind in ("step", "plateau"):
        rows.append(Setting("factor", sched.factor, "by this factor"))
    if sched.kind == "cosine":
        rows.append(Setting("min_lr", sched.min_lr, "where the cosine ends"))
    if sched.kind == "plateau":
        rows.append(Setting("patience", sched.patience, "evaluations without improvement"))
    iters = cfg.iterations
    rows.append(Setting("iters", iters, "the run's length"))
    if warm and warm.kind == "error":
        rows += [
            Setting("warmup_lr", warm.lr, "until the running training error falls below"),
            Setting("warmup_threshold", float(warm.threshold), "percent"),
        ]
    if warm and warm.kind == "linear":
        rows += [
            Setting("warmup_iters", warm.iterations, "a linear ramp to lr over these"),
            Setting("warmup_from", warm.start_lr),
        ]
    rows += [
        Setting("eval_every", max(1, min(recipe.MAX_EVAL_EVERY, iters // recipe.EVALS))),
        Setting("ckpt_every", max(1, min(recipe.MAX_CKPT_EVERY, iters // recipe.CHECKPOINTS))),
        Setting("log_every", max(1, min(recipe.MAX_LOG_EVERY, iters // recipe.LOGS))),
        Setting("seed", 0, "the data order and augmentation; initialisation too"),
        Setting("out", f"runs/{net.name}", "the run folder"),
    ]
    return rows


def train_view(net: Network) -> dict:
    """What the train.py skeleton prints for this network: literals, flags and feature switches."""
    cfg = net.train or recipe.DEFAULT_RECIPE
    dataset = cfg.data.name
    datasets = tuple(dict.fromkeys((dataset, "digits", "synthetic")))
    settings = _settings(net, cfg, datasets)
    source = where(cfg.span, net.span) if cfg.span else where(net.span, net.span)
    warmup = cfg.warmup.kind if cfg.warmup else None
    lr_words = {
        "constant": "constant",
        "step": "multiplied by factor at each milestone",
        "cosine": "a cosine from lr to min_lr",
        "plateau": "multiplied by factor when the val error stops improving",
    }[cfg.schedule.kind]
    if warmup == "error":
        lr_words = f"the paper's warmup, then {lr_words}"
    elif warmup == "linear":
        lr_words = f"a linear warmup, then {lr_words}"
    return {
        "network": net.name,
        "network_literal": literal(net.name),
        "source": literal(source if net.train else f"{source.rsplit(':', 1)[0]} (no train)"),
        "config": [s.line for s in settings],
        "flags": [line for s in settings for line in s.flag()],
        "dataset": dataset,
        "datasets": datasets,
        "images": "imagenet" in datasets,  # image files, decoded as batches are drawn
        "split": cfg.data.split is not None,
        "pad": bool(cfg.augment.pad),
        "flip": cfg.augment.flip,
        "scale": cfg.augment.scale is not None,
        "color": cfg.augment.color,
        "normalize": cfg.normalize.kind,
        "schedule": cfg.schedule.kind,
        "lr_words": lr_words,
        "warmup": warmup,
        "warmup_window": recipe.WARMUP_WINDOW,
        "digits_test": recipe.DATASETS["digits"]["test"],
        "nesterov": cfg.optimizer.nesterov,
    }


def train_files(target: str, net: Network) -> dict[str, str]:
    """train.py and the two files beside it, each from its skeleton: data.py (the datasets) and
    runfolder.py (the run folder and the progress display)."""
    view = train_view(net)
    return {name: render(target, f"{name}.j2", t=view) for name in TRAIN_FILES}


TRAIN_FILES = ("data.py", "runfolder.py", "train.py")  # in the order they are written
