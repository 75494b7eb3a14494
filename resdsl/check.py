"""Checks on the IR: shapes, additions, the shortcut policy, the output and the train section.

Every problem is collected with its span, then all are raised together as one
:class:`resdsl.errors.ErrorGroup`. After :func:`check` passes, emitters trust the IR.
"""

from __future__ import annotations

import dataclasses
import gc
import math

from . import names, ops
from .errors import ResdslError, ShapeError, TrainError, raise_all
from .ir import Network
from .recipe import DATASETS


def check(net: Network) -> Network:
    """Return ``net`` if it is sound; otherwise raise every problem found."""
    enabled = gc.isenabled()
    gc.disable()  # the IR holds no cycles; see resdsl.ir.without_gc
    try:
        errors = lint(net) + shapes(net) + sizes(net) + output(net) + train(net)
    finally:
        if enabled:
            gc.enable()
    raise_all(errors)
    return net


def lint(net: Network) -> list[ResdslError]:
    """The IR's own invariants, as torch.fx's Graph.lint checks them (bugs, not user errors).

    The graph: every node after its inputs, edges matching inputs, each op with as many inputs as
    its row says. The names: each part of a module path an attribute name, and each block's
    template known. (The names a target prints come from its own namespaces.)
    """
    position = {name: i for i, name in enumerate(net.graph.nodes)}
    pred = net.graph.pred
    for node in net.nodes():
        if pred[node.name].keys() != set(node.inputs):
            raise AssertionError(f"IR node {node.name}: inputs disagree with the graph's edges")
        if any(position[i] >= position[node.name] for i in node.inputs):
            raise AssertionError(f"IR node {node.name} comes before one of its inputs")
        if node.op not in ops.OPS:
            raise AssertionError(f"IR node {node.name}: unknown op {node.op!r}")
        if len(node.inputs) != ops.OPS[node.op].inputs:
            raise AssertionError(f"IR node {node.name} has {len(node.inputs)} inputs")
        _lint_attribute(node.local, node.name)
    for block in net.blocks:
        _lint_attribute(block.local, block.name)
        if block.template not in net.templates:
            raise AssertionError(f"block {block.name}: no template {block.template!r}")
    return []


def _lint_attribute(local: str, name: str) -> None:
    if local.isdigit() or name == "input" or "-" in local and names.MEMBER.fullmatch(local):
        return  # a container's member: 0, 1, ..., block1-0
    if not local.isidentifier() or local in names.ATTRIBUTE_RESERVED or local.startswith("_"):
        raise AssertionError(f"IR name {name!r}: {local!r} cannot be an attribute")


def shapes(net: Network) -> list[ResdslError]:
    """Each op that cannot work on its input, as the elaborator found when it inferred shapes."""
    return [
        ShapeError(
            f"{node.path}: {node.problem[0]}",
            node.problem[3] or node.span,
            node.problem[1],
            code=node.problem[2],
        )
        for node in net.nodes()
        if node.problem is not None
    ]


MAX_TENSOR = 2**31 - 1  # elements of one weight or one sample's activation the targets allocate


def sizes(net: Network) -> list[ResdslError]:
    """Ops whose weights or outputs no framework would allocate (the shapes themselves fit)."""
    errors: list[ResdslError] = []
    shapes: dict[str, tuple] = {}
    for node in net.nodes():
        shapes[node.name] = node.shape
        if node.shape is None:
            continue
        ins = [shapes[i] for i in node.inputs]
        params = ops.OPS[node.op].params(node.arg, ins)
        elements = node.shape[0] * node.shape[1] * node.shape[2]
        if max(params, elements) > MAX_TENSOR:
            what = f"{params:,} parameters" if params > MAX_TENSOR else f"{elements:,} outputs"
            errors.append(
                ShapeError(
                    f"{node.path}: {what}, more than the {MAX_TENSOR:,} a tensor may hold",
                    node.span,
                    "check the widths and the input size",
                    code="RDS208",
                )
            )
    return errors


def output(net: Network) -> list[ResdslError]:
    last = net.output
    want = (net.classes, 1, 1)
    if last.shape is None or last.shape == want:
        return []
    span, block = last.span, last.block
    while block is not None:  # at the call a person wrote, not inside the block's definition
        instance = net.block(block)
        span, block = instance.span, instance.parent
    if any(section.kind == "head" for section in net.sections):
        hint = "end the head with `avgpool; fc`, or an fc of `classes` outputs"
    else:
        hint = "the network has no head: add `head { avgpool; fc }`"
    return [
        ShapeError(
            f"the network ends in {ops.fmt(last.shape)}, but it has {net.classes} classes "
            f"(expected {ops.fmt(want)})",
            span,
            hint,
            code="RDS210",
        )
    ]


# the code of a train section's error, by the setting (or setting.option) at fault
TRAIN_CODES = {
    "data": "RDS310",
    "data.split": "RDS311",
    "augment": "RDS312",
    "normalize": "RDS313",
    "batch": "RDS314",
    "iterations": "RDS314",
    "optimizer": "RDS315",
    "schedule": "RDS316",
    "schedule.at": "RDS316",
    "schedule.by": "RDS317",
    "schedule.min_lr": "RDS317",
    "schedule.patience": "RDS317",
    "warmup": "RDS318",
}


def _numbers(cfg):
    """Every number of a train section, as (setting.option, value)."""
    for part in dataclasses.fields(cfg):
        value = getattr(cfg, part.name)
        if not dataclasses.is_dataclass(value):
            continue
        for item in dataclasses.fields(value):
            field = getattr(value, item.name)
            for number in field if isinstance(field, tuple) else (field,):
                if isinstance(number, float):
                    yield f"{part.name}.{item.name}", number


def train(net: Network, input_shape=None) -> list[ResdslError]:
    """The train section's problems. The elaborator calls this before it builds the network,
    with the network's outline (its train config, name, classes) and its input shape."""
    cfg = net.train
    input_shape = input_shape or net.input_shape
    if cfg is None:
        return []
    errors: list[ResdslError] = []

    def fail(key: str, message: str, hint: str | None = None) -> None:
        span = cfg.spans.get(key) or cfg.spans.get(key.split(".")[0]) or cfg.span
        code = TRAIN_CODES.get(key) or TRAIN_CODES[key.split(".")[0]]
        errors.append(TrainError(message, span, hint, code=code))

    for key, value in _numbers(cfg):
        if not math.isfinite(value):
            fail(key, f"{key.split('.')[-1]} {value} is not a finite number")
    if errors:
        return errors  # the checks below compare these values

    dataset = DATASETS[cfg.data.name]
    if dataset["classes"] and dataset["classes"] != net.classes:
        fail(
            "data",
            f"{cfg.data.name} has {dataset['classes']} classes, but network "
            f"`{net.name}` has {net.classes}",
        )
    if cfg.data.split:
        used, size = sum(cfg.data.split), dataset["train"]
        if cfg.data.split[0] < 1:
            fail("data.split", "the training part of the split must hold at least 1 image")
        if size is not None and used > size:
            fail(
                "data.split",
                f"the split {cfg.data.split[0]}/{cfg.data.split[1]} needs {used} "
                f"images, but the {cfg.data.name} training set has {size}",
            )
    aug = cfg.augment
    _, height, width = input_shape
    if aug.crop is not None:
        if aug.crop < 1:
            fail("augment.crop", f"crop {aug.crop} must be at least 1")
        elif aug.crop != height or aug.crop != width:
            fail(
                "augment.crop",
                f"crop {aug.crop} does not match the network's input {height}x{width}",
            )
    if aug.pad < 0:
        fail("augment.pad", f"pad {aug.pad} cannot be negative")
    if aug.scale is not None and not 1 <= aug.scale[0] <= aug.scale[1]:
        fail(
            "augment.scale",
            f"scale {aug.scale[0]} to {aug.scale[1]} must be an increasing range of positive sizes",
        )
    norm = cfg.normalize
    if norm.kind == "mean_std":
        channels = input_shape[0]
        if len(norm.mean) != channels or len(norm.std) != channels:
            fail("normalize", f"mean and std need {channels} values each, one per input channel")
        if any(s <= 0 for s in norm.std):
            fail("normalize.std", "every std must be above 0")
    if cfg.batch < 1:
        fail("batch", f"batch {cfg.batch} must be at least 1")
    if cfg.iterations < 1:
        fail("iterations", f"iterations {cfg.iterations} must be at least 1")
    opt = cfg.optimizer
    if opt.lr <= 0:
        fail("optimizer.lr", f"lr {opt.lr:g} must be above 0")
    if not 0 <= opt.momentum < 1:
        fail("optimizer.momentum", f"momentum {opt.momentum:g} must be in [0, 1)")
    if opt.weight_decay < 0:
        fail("optimizer.weight_decay", f"weight_decay {opt.weight_decay:g} cannot be negative")
    if opt.nesterov and opt.momentum == 0:
        fail("optimizer.nesterov", "nesterov needs a momentum above 0")
    sched = cfg.schedule
    if sched.kind == "step" and not sched.milestones:
        fail("schedule", "a step schedule needs milestones, e.g. `at 32000, 48000`")
    if sched.milestones and sched.kind != "step":
        fail("schedule.at", f"milestones (`at`) only apply to a step schedule, not {sched.kind}")
    steps = sched.milestones
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        fail("schedule.at", "milestones must be strictly increasing: " + ", ".join(map(str, steps)))
    if steps and (steps[-1] >= cfg.iterations or steps[0] < 1):
        fail(
            "schedule.at",
            f"milestones must lie between 1 and the iteration count "
            f"({cfg.iterations}); got {', '.join(map(str, steps))}",
        )
    if not 0 < sched.factor <= 1:
        fail("schedule.by", f"the factor {sched.factor:g} must be in (0, 1]")
    if sched.min_lr != 0 and not 0 <= sched.min_lr < opt.lr:
        fail("schedule.min_lr", f"min_lr {sched.min_lr:g} must be in [0, lr)")
    if sched.patience < 1:
        fail("schedule.patience", f"patience {sched.patience} must be at least 1")
    warm = cfg.warmup
    if warm is not None and warm.kind == "linear":
        if warm.iterations < 1:
            fail("warmup.linear", f"a linear warmup of {warm.iterations} iterations is empty")
        limit = steps[0] if steps else cfg.iterations
        if warm.iterations >= limit:
            what = f"the first milestone ({limit})" if steps else f"the run ({limit} iterations)"
            fail(
                "warmup.linear", f"the warmup ({warm.iterations} iterations) must end before {what}"
            )
        if not 0 <= warm.start_lr < opt.lr:
            fail(
                "warmup.from",
                f"a warmup starts below the lr: {warm.start_lr:g} is not in [0, {opt.lr:g})",
            )
    if warm is not None and warm.kind == "error":
        if warm.lr <= 0:
            fail("warmup.lr", f"warmup lr {warm.lr:g} must be above 0")
        if not 0 < warm.threshold < 100:
            fail(
                "warmup.until",
                f"the error threshold {warm.threshold:g}% must be between 0% and 100%",
            )
    return errors
