"""The `train` section: settings interpreted into a typed :class:`TrainConfig`.

A setting is a run of options (``optimizer sgd lr 0.1 momentum 0.9``). Each statement starts with
one of the heads in :data:`SCHEMAS`; several statements may share a line. This module checks names,
value kinds and counts (a :class:`SpecError`); the checker judges the values themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import syntax as ast
from .errors import Span, SpecError, did_you_mean, raise_all, unknown

# Datasets the targets load: images in the training set (before any validation split),
# classes, and the image size they arrive at. digits keeps a fixed stratified 20% test split.
DATASETS = {
    "cifar10": {"train": 50000, "test": 10000, "classes": 10, "size": 32},
    "imagenet": {"train": 1281167, "test": 50000, "classes": 1000, "size": None},
    "digits": {"train": 1437, "test": 360, "classes": 10, "size": 8},
    "synthetic": {"train": None, "test": None, "classes": None, "size": None},
}


@dataclass(frozen=True)
class Data:
    name: str
    split: tuple[int, int] | None = None  # (train, val) images


@dataclass(frozen=True)
class Augment:
    pad: int = 0
    crop: int | None = None
    flip: bool = False
    scale: tuple[int, int] | None = None  # shorter side drawn from [lo, hi]
    color: bool = False


@dataclass(frozen=True)
class Normalize:
    kind: str = "none"  # none | pixel_mean | mean_std
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Optimizer:
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False


@dataclass(frozen=True)
class Schedule:
    kind: str = "constant"  # constant | step | cosine | plateau
    milestones: tuple[int, ...] = ()
    factor: float = 0.1
    min_lr: float = 0.0
    patience: int = 5  # evaluations without improvement, for plateau


@dataclass(frozen=True)
class Warmup:
    kind: str  # error: `lr` until the running training error < threshold | linear: a ramp
    lr: float | None = None
    threshold: float | None = None  # percent, for kind == "error"
    iterations: int | None = None  # ramp length, for kind == "linear"
    start_lr: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    name: str
    data: Data
    augment: Augment
    normalize: Normalize
    batch: int
    optimizer: Optimizer
    schedule: Schedule
    iterations: int
    warmup: Warmup | None
    span: Span
    spans: dict[str, Span] = field(default_factory=dict, compare=False, repr=False)


# The recipe when a spec has no train section: a short run that suits the embedded digits data.
DEFAULT_RECIPE = TrainConfig(
    name="default",
    data=Data("digits"),
    augment=Augment(),
    normalize=Normalize("pixel_mean"),
    batch=64,
    optimizer=Optimizer("sgd", lr=0.1, momentum=0.9, weight_decay=1e-4),
    schedule=Schedule(),
    iterations=1000,
    warmup=None,
    span=None,
)
# K: the paper's warmup watches the running training error of the last K minibatches
WARMUP_WINDOW = 10
# how often a run evaluates, checkpoints and logs by default: a share of its iterations, capped
EVALS, CHECKPOINTS, LOGS = 10, 4, 100
MAX_EVAL_EVERY, MAX_CKPT_EVERY, MAX_LOG_EVERY = 1000, 5000, 100


# For each statement head: its options and what each takes. "name" is the first option after the
# head, a bare word (a dataset, an optimiser, a schedule kind). Value kinds: int, num (int or
# float), percent, ratio, metric; a count of "+" means one or more.
SCHEMAS: dict[str, dict] = {
    "data": {"name": set(DATASETS), "split": ("ratio", 1)},
    "augment": {
        "pad": ("int", 1),
        "crop": ("int", 1),
        "flip": (None, 0),
        "scale": ("int", 2),
        "color": (None, 0),
    },
    "normalize": {
        "pixel_mean": (None, 0),
        "mean": ("num", "+"),
        "std": ("num", "+"),
        "none": (None, 0),
    },
    "batch": {"batch": ("int", 1)},
    "optimizer": {
        "name": {"sgd"},
        "lr": ("num", 1),
        "momentum": ("num", 1),
        "weight_decay": ("num", 1),
        "nesterov": (None, 0),
    },
    "schedule": {
        "name": {"constant", "step", "cosine", "plateau"},
        "at": ("int", "+"),
        "by": ("num", 1),
        "min_lr": ("num", 1),
        "patience": ("int", 1),
    },
    "iterations": {"iterations": ("int", 1)},
    "warmup": {
        "linear": ("int", 1),
        "from": ("num", 1),
        "lr": ("num", 1),
        "until": ("metric", 2),
    },
}


def spell(head: str, value) -> str:
    """A resolved setting as the statement that writes it (the syntax of SCHEMAS above), e.g.
    ``warmup lr 0.01 until train_error < 80%``: what a hover shows."""
    words = [head]
    if isinstance(value, Data):
        words.append(value.name)
        if value.split:
            words += ["split", f"{value.split[0]}/{value.split[1]}"]
    elif isinstance(value, Augment):
        words += ["pad", str(value.pad)] if value.pad else []
        words += ["crop", str(value.crop)] if value.crop is not None else []
        words += ["flip"] if value.flip else []
        words += ["scale", *map(str, value.scale)] if value.scale else []
        words += ["color"] if value.color else []
    elif isinstance(value, Normalize):
        if value.kind == "mean_std":
            words += ["mean", ", ".join(map(_number, value.mean))]
            words += ["std", ", ".join(map(_number, value.std))]
        else:
            words.append(value.kind)
    elif isinstance(value, Optimizer):
        words += [value.name, "lr", _number(value.lr)]
        words += ["momentum", _number(value.momentum)] if value.momentum else []
        words += ["weight_decay", _number(value.weight_decay)] if value.weight_decay else []
        words += ["nesterov"] if value.nesterov else []
    elif isinstance(value, Schedule):
        words.append(value.kind)
        if value.kind == "step":
            words += ["at", ", ".join(map(str, value.milestones)), "by", _number(value.factor)]
        elif value.kind == "plateau":
            words += ["by", _number(value.factor), "patience", str(value.patience)]
        elif value.kind == "cosine" and value.min_lr:
            words += ["min_lr", _number(value.min_lr)]
    elif isinstance(value, Warmup):
        if value.kind == "linear":
            words += ["linear", str(value.iterations)]
            words += ["from", _number(value.start_lr)] if value.start_lr else []
        else:
            words += [
                "lr",
                _number(value.lr),
                "until",
                f"train_error < {_number(value.threshold)}%",
            ]
    elif value is None:
        words.append("(none)")
    else:
        words.append(_number(value))
    return " ".join(words)


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _written(value: ast.Value) -> str:
    """A value as the spec wrote it (`000`, not 0)."""
    span = value.span
    return span.source.line(span.line)[span.column - 1 : span.end_column - 1]


def _unknown_setting(option: ast.Option) -> SpecError:
    """RDS301 for a train section's first word: where it is an option of a setting (`lr 0.1`)
    that setting is shown; `epochs` is told that resdsl counts iterations."""
    message = f"unknown train setting `{option.name}`"
    owners = [head for head, schema in SCHEMAS.items() if option.name in schema]
    if owners:
        where = " and of ".join(f"`{head}`" for head in owners)
        hint = f"`{option.name}` is an option of {where}, e.g. `{_EXAMPLE_OF[owners[0]]}`"
        return SpecError(message, option.span, hint, code="RDS301")
    if option.name.lower() in ("epochs", "epoch", "steps", "max_steps"):
        hint = (
            "resdsl counts iterations (batches), as the paper does: `iterations 64000` at "
            "batch 128 is 182 epochs of 45,000 images"
        )
        return SpecError(message, option.span, hint, code="RDS301")
    return unknown(message, option.span, option.name, SCHEMAS, "settings", code="RDS301")


REQUIRED = ("data", "batch", "optimizer", "iterations")
METRICS = {"train_error"}


def statements(train: ast.TrainDef) -> dict[str, tuple[ast.Option, ...]]:
    """Split a train section's settings into statements keyed by head, checking the heads."""
    found: dict[str, tuple[ast.Option, ...]] = {}
    errors = []
    for setting in train.settings:
        groups: list[list[ast.Option]] = []
        for option in setting:
            if option.name in SCHEMAS:
                groups.append([option])
            elif groups:
                groups[-1].append(option)
            else:
                errors.append(_unknown_setting(option))
                break
        for group in groups:
            head = group[0]
            if head.name in found:
                errors.append(
                    SpecError(
                        f"`{head.name}` is given twice in this train section",
                        head.span,
                        code="RDS302",
                    )
                )
            found[head.name] = tuple(group)
    if errors:
        raise_all(errors)
    return found


def interpret(name: str, stmts: dict[str, tuple[ast.Option, ...]], span: Span) -> TrainConfig:
    """Typed config from statements (after family and instance sections are merged)."""
    errors: list[SpecError] = []
    spans: dict[str, Span] = {}
    opts: dict[str, dict] = {}
    for head, group in stmts.items():
        opts[head] = _options(head, group, spans, errors)
    for head in REQUIRED:
        if head not in stmts:
            errors.append(
                SpecError(
                    f"train section `{name}` has no `{head}` setting",
                    span,
                    _EXAMPLES[head],
                    code="RDS303",
                )
            )
    if errors:
        raise_all(errors)

    data = opts["data"]
    aug = opts.get("augment", {})
    norm = opts.get("normalize", {})
    opt = opts["optimizer"]
    sched = opts.get("schedule", {})
    warm = opts.get("warmup")
    normalize = Normalize()
    if "pixel_mean" in norm:
        normalize = Normalize("pixel_mean")
    elif "mean" in norm or "std" in norm:
        if "mean" not in norm or "std" not in norm:
            raise SpecError(
                "`normalize mean ...` needs both `mean` and `std`",
                spans["normalize"],
                code="RDS305",
            )
        normalize = Normalize("mean_std", tuple(norm["mean"]), tuple(norm["std"]))
    warmup = None
    if warm is not None:
        if "linear" in warm:
            warmup = Warmup(
                "linear",
                iterations=warm["linear"][0],
                start_lr=float(warm.get("from", [0.0])[0]),
            )
        elif "until" in warm and "lr" in warm:
            warmup = Warmup("error", lr=float(warm["lr"][0]), threshold=warm["until"][1])
        else:
            raise SpecError(
                "a warmup is `warmup lr 0.01 until train_error < 80%` or `warmup linear 400`",
                spans["warmup"],
                code="RDS305",
            )
    return TrainConfig(
        name=name,
        data=Data(data["name"], tuple(data["split"][0]) if "split" in data else None),
        augment=Augment(
            pad=aug.get("pad", [0])[0],
            crop=aug.get("crop", [None])[0],
            flip="flip" in aug,
            scale=tuple(aug["scale"]) if "scale" in aug else None,
            color="color" in aug,
        ),
        normalize=normalize,
        batch=opts["batch"]["batch"][0],
        optimizer=Optimizer(
            name=opt["name"],
            lr=float(opt.get("lr", [0.1])[0]),
            momentum=float(opt.get("momentum", [0.0])[0]),
            weight_decay=float(opt.get("weight_decay", [0.0])[0]),
            nesterov="nesterov" in opt,
        ),
        schedule=Schedule(
            kind=sched.get("name", "constant"),
            milestones=tuple(sched.get("at", ())),
            factor=float(sched.get("by", [0.1])[0]),
            min_lr=float(sched.get("min_lr", [0.0])[0]),
            patience=sched.get("patience", [5])[0],
        ),
        iterations=opts["iterations"]["iterations"][0],
        warmup=warmup,
        span=span,
        spans=spans,
    )


_EXAMPLE_OF = {  # each setting as the paper's recipe writes it
    "data": "data cifar10 split 45000/5000",
    "augment": "augment pad 4 crop 32 flip",
    "normalize": "normalize pixel_mean",
    "batch": "batch 128",
    "optimizer": "optimizer sgd lr 0.1 momentum 0.9 weight_decay 1e-4",
    "schedule": "schedule step at 32000, 48000 by 0.1",
    "iterations": "iterations 64000",
    "warmup": "warmup lr 0.01 until train_error < 80%",
}
_EXAMPLES = {head: f"for example: {_EXAMPLE_OF[head]}" for head in REQUIRED}


def _options(head: str, group, spans, errors) -> dict:
    schema = SCHEMAS[head]
    out: dict = {}
    spans[head] = group[0].span
    rest = list(group)
    if head not in schema:  # the head itself takes no values; the rest are options
        rest = rest[1:]
        if group[0].values:
            errors.append(
                SpecError(
                    f"`{head}` takes no value here",
                    group[0].values[0].span,
                    f"its values follow its options' names, e.g. `{_EXAMPLE_OF[head]}`",
                    code="RDS304",
                )
            )
    if "name" in schema:
        if rest and rest[0].name in schema["name"] and rest[0].values:
            errors.append(_values_without_option(head, schema, rest[0]))
            return out
        if not rest or rest[0].name not in schema["name"] or rest[0].values:
            where = rest[0].span if rest else group[0].span
            got = f"`{rest[0].name}`" if rest else "nothing"
            hint = did_you_mean(rest[0].name, schema["name"]) if rest else None
            errors.append(
                SpecError(
                    f"`{head}` needs one of {', '.join(sorted(schema['name']))}; got {got}",
                    where,
                    hint or "choices: " + ", ".join(sorted(schema["name"])),
                    code="RDS304",
                )
            )
            return out
        out["name"] = rest.pop(0).name
    for before, option in zip([None, *rest], rest, strict=False):
        spec = schema.get(option.name)
        suffix = _SUFFIXES.get(option.name.lower())
        if spec is None and suffix and before is not None and _touches(before, option):
            number = before.values[-1]
            errors.append(
                SpecError(
                    f"`{_show(number)}{option.name}` is not a number resdsl reads",
                    _cover(number.span, option.span),
                    f"write it out: `{before.name} {number.value * suffix}`",
                    code="RDS304",
                )
            )
            continue
        if spec is None or option.name == "name":
            choices = [k for k in schema if k != "name"]
            errors.append(
                unknown(
                    f"unknown option `{option.name}` for `{head}`",
                    option.span,
                    option.name,
                    choices,
                    "options",
                    code="RDS301",
                )
            )
            continue
        if option.name in out:
            errors.append(SpecError(f"`{option.name}` is given twice", option.span, code="RDS302"))
            continue
        kind, count = spec
        values = option.values
        if count == "+" and not values or count != "+" and len(values) != count:
            want = "one or more values" if count == "+" else f"{count} value(s)"
            hint = None
            if count == 1 and len(values) > 1 and all(v.kind == "int" for v in values):
                digits = "".join(_written(v) for v in values)  # `64,000`: a thousands separator
                hint = f"numbers take no separators: `{option.name} {digits}`"
            errors.append(
                SpecError(
                    f"`{option.name}` takes {want}, got {len(values)}",
                    option.span,
                    hint,
                    code="RDS304",
                )
            )
            continue
        bad = [v for v in values if not _fits(kind, v)]
        if bad:
            errors.append(
                SpecError(
                    f"`{option.name}` takes {_KIND_WORDS[kind]}, "
                    f"got {bad[0].kind} `{_show(bad[0])}`",
                    bad[0].span,
                    code="RDS304",
                )
            )
            continue
        if kind == "metric":
            metric, limit = values
            if metric.value not in METRICS or limit.kind != "percent":
                errors.append(
                    SpecError(
                        "a warmup condition reads `until train_error < 80%`",
                        option.span,
                        code="RDS305",
                    )
                )
                continue
            out[option.name] = (metric.value, limit.value)
        else:
            out[option.name] = [v.value for v in values]
        spans[f"{head}.{option.name}"] = option.span
    return out


_KIND_WORDS = {
    "int": "integers",
    "num": "numbers",
    "ratio": "a split such as 45000/5000",
    "metric": "a condition",
    None: "no value",
}


def _cover(first: Span, last: Span) -> Span:
    return Span(first.source, first.line, first.column, last.end_line, last.end_column)


_SUFFIXES = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}  # what people write for 64000


def _touches(before: ast.Option, option: ast.Option) -> bool:
    """Whether ``option``'s name follows ``before``'s last value with no space: ``64k``."""
    if not before.values or not isinstance(before.values[-1].value, int):
        return False
    end = before.values[-1].span
    return (end.end_line, end.end_column) == (option.span.line, option.span.column)


def _values_without_option(head: str, schema: dict, option: ast.Option) -> SpecError:
    """``schedule step 32000, 48000``: values after the kind, where an option's name belongs."""
    values = option.values
    fits = [
        name
        for name, spec in schema.items()
        if name != "name"
        and all(_fits(spec[0], v) for v in values)
        and (spec[1] == "+" or spec[1] == len(values))
    ]
    written = ", ".join(_show(v) for v in values)
    options = ", ".join(k for k in schema if k != "name")
    return SpecError(
        f"`{head} {option.name}` takes no values itself; they follow an option's name",
        _cover(values[0].span, values[-1].span),
        # the one option these values fit, or the options to choose from
        f"did you mean `{head} {option.name} {fits[0]} {written}`?"
        if len(fits) == 1
        else f"options: {options}",
        code="RDS304",
    )


def _fits(kind, value: ast.Value) -> bool:
    if kind == "num":
        return value.kind in ("int", "float")
    if kind == "metric":
        return True
    return value.kind == kind


def _show(value: ast.Value) -> str:
    if value.kind == "ratio":
        return "/".join(str(v) for v in value.value)
    if value.kind == "percent":
        return f"{value.value:g}%"
    return str(value.value)


def inherit(trains: dict, item, family) -> TrainConfig | None:
    """A network's own train section over its family's, statement by statement; None where it
    has neither. ``trains`` are the linked program's, by network or family name."""
    own = trains.get(item.name)
    inherited = trains.get(family.name) if family is not item else None
    if own is None and inherited is None:
        return None
    stmts = statements(inherited) if inherited else {}
    if own is not None:
        stmts.update(statements(own))
    return interpret(item.name, stmts, (own or inherited).span)
