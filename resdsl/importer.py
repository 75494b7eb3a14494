"""`resdsl import`: an existing ResNet as a short spec, and the proof that nothing was lost.

The source is traced with torch.fx, its leaves kept whole (convs, norms, pools, activations), so
the graph is the network's data flow with each call's module path. The structure is read off it:

- a **block** is the innermost module that holds a residual addition; its two operands are the
  **branch** and the **shortcut** (the block's input itself, or a path of its own `downsample`
  module, read from the input or from a point of the branch, the unit's `tap`);
- **stages** are runs of blocks in one container (``layer1``, ``stages.0.blocks``);
- the **stem** and **head** are what comes before the first block and after the last; a module
  path with a container in it (timm's deep stem, ``conv1.0``) becomes a `group`.

Blocks of one form share a definition whose arguments are read across them (the first conv's
channels are ``width``, a channel count that is a multiple of it is written so, a varying stride
is ``stride``), and where the definition is one of the prelude's it is used as it stands; so are
the prelude's shortcuts. Module names are kept, with labels where resdsl's own names differ, so
the state_dict keys stay the source's. Then :func:`verify` compiles the spec for PyTorch, loads the
source's state_dict with ``strict=True`` and compares logits.

What has no spelling is refused by its module path and op, never guessed.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field

from . import ops
from .errors import ResdslError
from .linker import prelude as prelude_module
from .parser import parse
from .proof import network_of, torch_proof
from .reading import Op, as_array, refuse
from .sources import Source, load
from .structure import Block, Gate, blocks, outside_blocks
from .syntax import BlockDef, ShortcutDef, bare

# ---------------------------------------------------------------- spelling


def _value(value) -> str:
    if isinstance(value, tuple):
        h, w = value
        return str(h) if h == w else f"{h}x{w}"
    if isinstance(value, float):  # 1e-08 as 1e-8
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(value)).replace("e+", "e")
    return str(value)


def _writable(ops: list[Op]) -> None:
    """Refuses an op with a value the language has no literal for: negative, or not finite."""
    for op in ops:
        for name, value in op.args.items():
            parts = value if isinstance(value, tuple) else (value,)
            numbers = [v for v in parts if isinstance(v, int | float) and not isinstance(v, bool)]
            if any(v < 0 or not math.isfinite(v) for v in numbers):
                raise refuse(
                    f"{op.path or op.kind}: a {op.kind} with {name} {_shown(value)} has no resdsl "
                    "form (resdsl's values are finite and at least 0)"
                )


def _shown(value) -> str:
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def spell(kind: str, args: dict, exprs: dict | None = None, classes: int | None = None) -> str:
    """A layer statement: ``conv width 3x3 stride=stride``. ``exprs`` replaces an argument's
    value by an expression over the block's parameters; a value at its default is left out."""
    exprs = exprs or {}
    words, keyword = [kind], False
    for arg in ops.OPS[kind].args:
        if arg.name not in args:
            continue
        value = args[arg.name]
        if arg.name not in exprs and _at_default(kind, args, arg.name, classes):
            keyword = True  # a positional left out: the ones after it are written by name
            continue
        text = exprs.get(arg.name)
        if text is None:
            window = arg.name in ("kernel", "size") and isinstance(value, tuple)  # 3x3, always
            text = f"{value[0]}x{value[1]}" if window else _value(value)
        if arg.positional and not keyword and arg.type != "flag":
            words.append(text)
        else:
            words.append(f"{arg.name}={text}")
            keyword = True
    return " ".join(words)


def _at_default(kind: str, args: dict, name: str, classes) -> bool:
    arg = next(a for a in ops.OPS[kind].args if a.name == name)
    default = classes if arg.default is ops.CLASSES else arg.default
    if arg.default is ops.REQUIRED:
        return False
    if name == "pad" or (name == "stride" and args.get("kernel", 0) is None):
        rest = {k: v for k, v in args.items() if k != name}
        rest.setdefault("pad", None)
        return ops.complete(kind, {**rest, name: default})[name] == args[name]
    value = args[name]
    if isinstance(value, tuple) and not isinstance(default, tuple) and default is not None:
        default = (default, default)
    return value == default


SHORTCUT_SYMBOLS = ("stride", "out", "in")


class Namer:
    """resdsl's own names in one scope, followed as a spec's layers are made, so that a label is
    written only where the source's name differs (see :meth:`resdsl.elaborate._Scope.name`)."""

    def __init__(self):
        self.counts: dict[str, int] = {}

    def label(self, op: Op, local: str) -> str | None:
        from .names import counted, module_suffix

        n = self.counts.get(op.kind, 0) + 1
        numbered = op.kind in ops.OPS and ops.OPS[op.kind].numbered
        auto = op.kind + module_suffix(n, numbered)
        if not op.weights or auto == local:
            self.counts[op.kind] = n
            return None
        self.counts[op.kind] = max(n - 1, counted(op.kind, local, numbered))  # as a label counts
        if local.isdigit():
            raise refuse(
                f"{op.path}: resdsl cannot give a layer the name `{local}`",
                "the network's own layers are not numbered (an nn.Sequential of layers is not "
                "a network resdsl writes)",
            )
        return named(local, op.path, "a layer")


# a spec that gives one name as a label, a group or a stage's module path
_USES = {
    "label": "stem {{ {}: conv 4 3x3 }}",
    "group": "stem {{ group {} {{ conv 4 3x3 }} }}",
    "stage": "stage {}.0 {{ basic 4 }}",
}


@functools.cache
def _refused(name: str, use: str) -> str | None:
    """Why the language refuses ``name`` as a label, a group or a stage's module, from its own
    parser and resolver: a spec that uses it so is checked. None where it takes it."""
    from . import build, check, link

    body = _USES[use].format(name)
    text = f"network n {{\n input 3x8x8\n classes 2\n {body}\n head {{ avgpool; fc }}\n}}\n"
    try:
        check(build(link(parse(text, "<label>"))))
    except ResdslError as exc:
        first = getattr(exc, "errors", [exc])[0]
        return first.message
    return None


def named(name: str, path: str, what: str, use: str = "label") -> str:
    """``name`` as a label, group or stage part of the spec, where the language takes it;
    refused by the source's module path where it does not, before any spec is written."""
    reason = "it is not one word" if not name.isidentifier() else _refused(name, use)
    if reason is not None and f"`{name}`" in reason:  # the resolver's own words name it
        raise refuse(f"{path}: {reason}")
    if reason is not None:
        raise refuse(f"{path}: resdsl cannot give {what} the name {name!r}: {reason}")
    return name


# ---------------------------------------------------------------- definitions


CHANNELS = ops.counting("channels")
STRIDES = ops.counting("stride")


@dataclass
class Definition:
    name: str
    params: list[str]  # width first, stride last (with its default 1) where it has them
    lines: list[str]  # the body, one statement a line
    values: dict = field(default_factory=dict)  # block path -> {param: value}


def _keywords() -> set[str]:
    """The language's words, which no definition may be called: the grammar's own."""
    from .parser import grammar

    return {
        t.pattern.value
        for t in grammar().terminals
        if t.pattern.type == "str" and t.pattern.value.isidentifier()
    }


def _gate_slot(kind: str) -> ops.Arg | None:
    """The argument a gate's weighted op takes from the gate's parameters: its first positional
    count (a conv's or an fc's channels, a channel conv's kernel)."""
    if not ops.weighted(kind):
        return None
    first = next((a for a in ops.OPS[kind].args if a.positional), None)
    return first if first is not None and first.type == "int" else None


def _gate_key(gate: Gate) -> tuple:
    if gate.inline:
        (op,) = gate.ops
        return ("layer", gate.join.kind, gate.child, op.kind, tuple(sorted(op.args)))
    namer = Namer()
    ops = tuple(
        (x.kind, namer.label(x, x.path[len(gate.path) + 1 :]), tuple(sorted(x.args)))
        for x in gate.ops
    )
    return ("gate", gate.join.kind, gate.kind, ops)


def _gate_values(gate: Gate) -> list:
    return [x.args[_gate_slot(x.kind).name] for x in gate.ops if x.weights and _gate_slot(x.kind)]


def _body_key(block: Block) -> tuple:
    """What blocks of one definition share: their statements' kinds, labels and arguments given."""
    namer, key = Namer(), []
    for item in block.body:
        if item == "tap":  # where a shortcut may start: every block of the form has it there
            continue
        if isinstance(item, Gate):
            key.append((item.child, _gate_key(item)))
            continue
        if isinstance(item, str):
            key.append(item)
        else:
            local = item.path[len(block.path) + 1 :]
            key.append((item.kind, namer.label(item, local), tuple(sorted(item.args))))
    return tuple(key)


def define_gate(gates: list[Gate], name: str) -> Definition:
    """A gate's block: its layers over one parameter per conv's channels (c1, c2, ...)."""
    first, namer, lines, params = gates[0], Namer(), [], []
    for i, op in enumerate(first.ops):
        label = namer.label(op, op.path[len(first.path) + 1 :])
        exprs = {}
        slot = _gate_slot(op.kind) if op.weights else None
        if slot is not None:  # c1, c2, ... for channels; k for a channel conv's kernel
            params.append(f"c{len(params) + 1}" if slot.unit == "channels" else slot.name[0])
            exprs[slot.name] = params[-1]
        for arg in op.args:
            if arg not in exprs and len({repr(g.ops[i].args[arg]) for g in gates}) > 1:
                raise refuse(f"{op.path}: its {arg} differs between gates of one form")
        text = spell(op.kind, op.args, exprs)
        lines.append(f"{label}: {text}" if label else text)
    return Definition(name, params, lines)


def define(group: list[Block], name: str, gate_names: dict | None = None) -> Definition:
    """One definition for blocks of one form, its arguments read across them."""
    taps = {_tap_position(b) for b in group} - {None}
    if len(taps) > 1:
        raise refuse(f"{group[-1].path}: its shortcut starts elsewhere than its like blocks'")
    if taps:  # the blocks whose shortcut is the identity keep the tap of the others
        (at,) = taps
        for b in group:
            if "tap" not in b.body:
                b.body.insert(at, "tap")
    first = next(  # the first conv or fc: its channels are the block's width
        (i for i, x in enumerate(group[0].body) if isinstance(x, Op) and ops.OPS[x.kind].layer),
        None,
    )
    out = _gate_slot(group[0].body[first].kind).name if first is not None else None
    width = {b.path: b.body[first].args[out] for b in group} if first is not None else {}
    params: list[str] = ["width"] if width else []
    values = {b.path: ({"width": width[b.path]} if width else {}) for b in group}
    uses_stride = False
    lines = []
    namer = Namer()
    for i, item in enumerate(group[0].body):
        if isinstance(item, str):
            lines.append(item)
            continue
        if isinstance(item, Gate):
            exprs = []
            for j in range(len(_gate_values(item))):
                seen = [(b, _gate_values(b.body[i])[j]) for b in group]
                expr = _relative(seen, width) if width else None
                if expr is None and len({v for _, v in seen}) == 1:
                    expr = str(seen[0][1])
                if expr is None:
                    slots = [_gate_slot(x.kind) for x in item.ops if x.weights]
                    slot = [x for x in slots if x is not None][j]
                    expr = _fresh("c" if slot.unit == "channels" else slot.name[0], params)
                    params.append(expr)
                    for b, v in seen:
                        values[b.path][expr] = v
                exprs.append(expr)
            if item.inline:  # one layer: written as it stands, its channels as the blocks'
                op, slot = item.ops[0], _gate_slot(item.ops[0].kind)
                call = spell(op.kind, op.args, {slot.name: exprs[0]} if slot else {})
            else:
                call = " ".join([gate_names[_gate_key(item)], *exprs])
            child = named(item.child, item.path, "a gate")
            lines.append(f"{item.join.kind} {{ {child}: {call} }}")
            continue
        label = namer.label(item, item.path[len(group[0].path) + 1 :])
        exprs = {}
        for arg in item.args:
            seen = [(b, b.body[i].args[arg]) for b in group]
            expr = None
            if (item.kind, arg) in STRIDES and all(v == b.stride for b, v in seen):
                if any(v != 1 for _, v in seen):
                    expr, uses_stride = "stride", True
            elif (item.kind, arg) in CHANNELS and width and not _at_defaults(item.kind, arg, seen):
                expr = _relative(seen, width)
            if expr is None and len({repr(v) for _, v in seen}) > 1:
                if all(v == _as(v, b.stride) for b, v in seen):  # a pool's kernel of its stride
                    expr, uses_stride = "stride", True
                elif (item.kind, arg) not in CHANNELS:
                    raise refuse(
                        f"{item.path}: its {arg} differs between blocks of one form "
                        f"({', '.join(sorted({_value(v) for _, v in seen}))})"
                    )
                else:
                    expr = _fresh(arg, params)
                    params.append(expr)
                    for b, v in seen:
                        values[b.path][expr] = v
            if expr is not None:
                exprs[arg] = expr
        text = spell(item.kind, item.args, exprs)
        lines.append(f"{label}: {text}" if label else text)
    if uses_stride:
        params.append("stride")
        for b in group:
            values[b.path]["stride"] = b.stride
    return Definition(name, params, lines, values)


def _at_defaults(kind: str, arg: str, seen: list) -> bool:
    """Whether every block leaves ``arg`` at its default (a conv's groups of 1), which no
    expression over the width should stand for."""
    default = next(a.default for a in ops.OPS[kind].args if a.name == arg)
    return all(v == default for _, v in seen)


def _tap_position(block: Block) -> int | None:
    return block.body.index("tap") if "tap" in block.body else None


def _relative(seen, width) -> str | None:
    """A channel count as ``width``, ``width*k`` or ``width//k`` where it is one for every block."""
    ratios = {v / width[b.path] for b, v in seen}
    if len(ratios) != 1:
        return None
    (ratio,) = ratios
    if ratio == 1:
        return "width"
    if ratio > 1 and ratio == int(ratio):
        return f"width*{int(ratio)}"
    if (
        ratio < 1
        and (1 / ratio) == int(1 / ratio)
        and all(width[b.path] // int(1 / ratio) == v for b, v in seen)
    ):
        return f"width//{int(1 / ratio)}"
    return None


def _fresh(arg: str, taken: list[str]) -> str:
    name, n = arg, 1
    while name in taken or name in ("width", "stride"):
        n += 1
        name = f"{arg}{n}"
    return name


def _blocks(module) -> dict[str, tuple]:
    """Each block definition of a module: its parameters and body, without their spans."""
    return {
        item.name: (bare(item.params), bare(item.body))
        for item in module.items
        if isinstance(item, BlockDef)
    }


def _prelude_match(d: Definition, prelude: dict[str, tuple]) -> str | None:
    """The prelude's block that says what ``d`` says, if one does."""
    try:
        (written,) = _blocks(parse("\n".join(_definition_text(d)), "<import>")).values()
    except ResdslError:  # a name the language keeps for itself: no prelude block has it
        return None
    return next((name for name, tree in prelude.items() if tree == written), None)


def _snake(name: str) -> str:
    """``PreActBottleneck`` -> ``pre_act_bottleneck``, ``SEModule`` -> ``se_module``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


# ---------------------------------------------------------------- the spec


def write_spec(source: Source) -> str:
    """The spec of ``source``'s model, fmt-clean."""
    from .fmt import format_text

    ops = source.ops()
    _writable(ops)
    found = blocks(source, ops)
    outside_blocks(ops, found)
    first = found[0].first if found else _plain_head(ops)
    last = found[-1].last if found else first - 1
    between = [
        i for b, nxt in zip(found, found[1:], strict=False) for i in range(b.last + 1, nxt.first)
    ]
    if between:
        raise refuse(f"{ops[between[0]].path}: a layer between two blocks has no resdsl form yet")
    stages = _stages(found)
    defs, calls = _definitions(found, source.name)
    policy, shortcut_text = _shortcut(found, source.name)
    containers = [s[0] for s in stages]
    default = [f"layer{n}" for n in range(1, len(stages) + 1)]
    reserved = {c.partition(".")[0] for c in containers} | {"input"}
    namer = Namer()
    stem = _section(ops[1:first], namer, reserved)
    head = _section(ops[last + 1 :], namer, reserved, classes=ops[-1].shape[0])
    origin = source.origin if source.origin.isprintable() else repr(source.origin)  # one line
    out = [f"# {source.name}, imported from {origin} by `resdsl import`.", ""]
    if shortcut_text:
        out += [shortcut_text, ""]
    for d in defs:
        out += _definition_text(d) + [""]
    c, h, w = source.input_shape
    net = [f"network {source.name} {{", f"    input {c}x{h}x{w}", f"    classes {ops[-1].shape[0]}"]
    if policy != "B":
        net.append(f"    shortcut {policy}")
    if stem:
        net.append(f"    stem {{ {'; '.join(stem)} }}")
    for container, members in stages:
        items, index, stride = [], 0, None
        head_call = calls[members[0].path]
        if members[0].stride > 1 and head_call.endswith(f" stride={members[0].stride}"):
            # the stage's stride goes to its first block, as a stage's `stride` does
            stride = f"stride {members[0].stride}"
            calls = {**calls, members[0].path: head_call[: -len(f" stride={members[0].stride}")]}
        while index < len(members):
            call, run = calls[members[index].path], 1
            while index + run < len(members) and calls[members[index + run].path] == call:
                run += 1
            items.append(call + (f" x {run}" if run > 1 else ""))
            index += run
        if stride:
            items.append(stride)
        path = "" if containers == default else f" {container}"
        net.append(f"    stage{path} {{ {'; '.join(items)} }}")
    if head:
        net.append(f"    head {{ {'; '.join(head)} }}")
    net.append("}")
    return format_text("\n".join(out + net) + "\n")


def _plain_head(ops: list[Op]) -> int:
    """Where a network without blocks (VGG, AlexNet) has its head: at the first pool or fc after
    its last conv and the container that holds it."""
    convs = [i for i, op in enumerate(ops) if op.kind == "conv"]
    if not convs:
        return len(ops)
    index, path = convs[-1] + 1, ops[convs[-1]].path
    root = path.partition(".")[0] if "." in path else None
    while index < len(ops) and (
        root is not None
        and ops[index].path.partition(".")[0] == root
        or ops[index].kind not in ("avgpool", "adaptive_avgpool", "maxpool", "fc", "dropout")
    ):
        index += 1
    return index


def _stages(found: list[Block]) -> list[tuple[str, list[Block]]]:
    stages: list[tuple[str, list[Block]]] = []
    for block in found:
        if stages and stages[-1][0] == block.container:
            stages[-1][1].append(block)
        else:
            if any(s[0] == block.container for s in stages):
                raise refuse(f"{block.path}: its container's blocks are not together")
            stages.append((block.container, [block]))
    for container, members in stages:
        numbers = [b.path.rpartition(".")[2] for b in members]
        if numbers != [str(i) for i in range(len(members))]:
            raise refuse(
                f"{container}: a stage's blocks are numbered 0, 1, ... (as nn.Sequential's), "
                f"not {', '.join(numbers[:4])}"
            )
        if not container:
            raise refuse(f"{members[0].path}: a block must be a member of a stage's container")
        for part in container.split("."):
            if not part.isdigit():
                named(part, members[0].path, "a stage's module", "stage")
    return stages


def _definitions(found: list[Block], network: str):
    """The block definitions the spec writes (none where the prelude's serve), and each block's
    call: ``bottleneck_v1_5 64 stride=2``."""
    groups: dict[tuple, list[Block]] = {}
    for block in found:
        groups.setdefault(_body_key(block), []).append(block)
    prelude = _blocks(prelude_module())
    taken = set(prelude) | {network}
    defs, calls, gate_names = [], {}, {}
    gates: dict[tuple, list[Gate]] = {}
    for block in found:
        for item in block.body:
            if isinstance(item, Gate) and not item.inline:
                gates.setdefault(_gate_key(item), []).append(item)
    for key, members in gates.items():
        d = define_gate(members, _free(_snake(members[0].kind), taken))
        gate_names[key] = d.name
        defs.append(d)
    for group in groups.values():
        name = _snake(group[0].cls)
        d = define(group, name, gate_names)
        match = _prelude_match(d, prelude)
        if match is not None:
            d.name = match
        else:
            d.name = _free(name, taken)
            defs.append(d)
        for block in group:
            values = d.values[block.path]
            words = [d.name] + [str(values["width"])] * ("width" in d.params)
            words += [f"{p}={values[p]}" for p in d.params if p not in ("width", "stride")]
            if "stride" in d.params and values["stride"] != 1:
                words.append(f"stride={values['stride']}")
            calls[block.path] = " ".join(words)
    return defs, calls


def _free(name: str, taken: set) -> str:
    """``name``, or a name like it that no other definition has; taken from now on."""
    clash = name in taken or name in ops.OPS or name in _keywords() or not name.isidentifier()
    base = f"{name}_block" if clash else name
    free, n = base, 1
    while free in taken:
        n += 1
        free = f"{base}{n}"
    taken.add(free)
    return free


def _definition_text(d: Definition) -> list[str]:
    """The definition as the prelude's are written: a line from each conv, add and tap."""
    params = ", ".join(p if p != "stride" else "stride = 1" for p in d.params)
    lines: list[list[str]] = []
    for statement in d.lines:
        kind = re.sub(r"^\w+: ", "", statement).split(" ")[0]
        starts = kind in ("add", "tap", "mul") or kind in ops.OPS and ops.OPS[kind].layer
        if not lines or starts or lines[-1][-1] in ("add", "tap") or "{" in lines[-1][-1]:
            lines.append([])
        lines[-1].append(statement)
    body = [f"    {'; '.join(line)}" for line in lines]
    return [f"block {d.name}({params}) {{", *body, "}"]


def _section(ops: list[Op], namer: Namer, reserved: set[str], classes=None) -> list[str]:
    """The stem's or head's statements; a module path with a container in it makes a group."""
    out: list[str] = []
    index = 0
    # a container holds weights, or is named; its first member may have none (AlexNet's dropout)
    containers = {op.path.partition(".")[0] for op in ops if op.weights} | reserved
    while index < len(ops):
        op = ops[index]
        root, _, rest = op.path.partition(".")
        if rest and root in containers:
            members = []
            while index < len(ops) and ops[index].path.partition(".")[0] == root:
                members.append(ops[index])
                index += 1
            out.append(_group(root, members, classes))
            continue
        label = namer.label(op, op.path)
        text = spell(op.kind, op.args, classes=classes)
        out.append(f"{label}: {text}" if label else text)
        index += 1
    return out


def _group(root: str, members: list[Op], classes) -> str:
    """``group conv1 { ... }``: members named by their position, or labelled."""
    named(root, members[0].path, "a group", "group")
    words = []
    for position, op in enumerate(members):
        local = op.path[len(root) + 1 :]
        text = spell(op.kind, op.args, classes=classes)
        if local == str(position) or not op.weights and not local.isidentifier():
            words.append(text)  # a function's call, or an op of the group's own forward
        elif local.isidentifier():
            words.append(f"{named(local, op.path, 'a layer')}: {text}")
        else:
            raise refuse(
                f"{op.path}: a member numbered {local} at position {position} of {root}",
                "resdsl numbers a group's members by their position",
            )
    return f"group {root} {{ {'; '.join(words)} }}"


def _case(block: Block) -> str:
    """The shortcut case a block takes (see :func:`resdsl.shortcuts.case_of`)."""
    if block.stride == 1 and block.in_channels == block.out_channels:
        return "keep"
    return "channels" if block.in_channels != block.out_channels else "stride"


def _shortcut(found: list[Block], network: str) -> tuple[str, str]:
    """The shortcut policy the blocks follow (B or C where it is the prelude's), and its
    definition: a case for the blocks that keep their shape, and for those whose channels or
    only whose stride change, joined as ``change`` and ``always`` where they agree."""
    by_case: dict[str, list[Block]] = {}
    for block in found:
        by_case.setdefault(_case(block), []).append(block)
    cases = {}
    for case, members in by_case.items():
        if not any(b.shortcut for b in members):
            continue  # the identity
        odd = next((b for b in members if not b.shortcut), None) or next(
            (b for b in members if b.from_tap != members[0].from_tap), None
        )
        names = {tuple(n for n, _ in b.shortcut) for b in members}
        if odd is not None or len(names) > 1:
            what = "is kept" if case == "keep" else f"{case} changes"
            raise refuse(
                f"{(odd or members[-1]).path}: its shortcut differs from other blocks' where "
                f"the {'shape' if case == 'keep' else ''}{what}".replace("the is", "the shape is")
            )
        statements = [_slot(members, i) for i in range(len(members[0].shortcut))]
        cases[case] = (members[0].from_tap, statements)
    # a change of channels and one of stride alike are `change`, as is one where the other
    # never happens; the same in every case is `always`
    channels, stride = cases.get("channels"), cases.get("stride")
    if channels and (channels == stride or stride is None and "stride" not in by_case):
        cases["change"] = cases.pop("channels")
        cases.pop("stride", None)
    elif stride and channels is None and "channels" not in by_case:
        cases["change"] = cases.pop("stride")
    if cases.get("keep") and cases.get("keep") == cases.get("change"):
        cases = {"always": cases["keep"]}

    def text(case):
        tap, statements = cases[case]
        return f"{case}{' from tap' if tap else ''} {{ {'; '.join(statements)} }}"

    if not cases:
        return "B", ""
    body = "\n    ".join(
        text(c) for c in ("keep", "channels", "stride", "change", "always") if c in cases
    )
    name = f"{network}_shortcut"
    definition = f"shortcut {name} {{\n    {body}\n}}"
    written = _cases(parse(definition, "<import>"))
    for prelude, cases_ in _cases(prelude_module()).items():  # the prelude's, as it stands
        if cases_ == written[name]:
            return prelude, ""
    return name, definition


def _cases(module) -> dict[str, tuple]:
    """Each shortcut definition of a module: its cases, as they read without their spans."""
    return {item.name: bare(item.cases) for item in module.items if isinstance(item, ShortcutDef)}


def _symbols(block: Block) -> dict[str, int]:
    return {"stride": block.stride, "out": block.out_channels, "in": block.in_channels}


def _slot(members: list[Block], slot: int) -> str:
    """One statement of a shortcut case, over ``in``, ``out`` and ``stride`` where the blocks'
    values differ, or where some hold an identity there that the op must be at their values."""
    local = members[0].shortcut[slot][0]
    present = [b for b in members if b.shortcut[slot][1] is not None]
    gaps = [b for b in members if b.shortcut[slot][1] is None]
    where = f"{members[0].path}.downsample.{local}"
    if not present:
        raise refuse(f"{where}: an identity in every block's shortcut has no resdsl form")
    first = present[0].shortcut[slot][1]
    if any(b.shortcut[slot][1].kind != first.kind for b in present):
        raise refuse(f"{where}: the blocks' shortcuts hold different layers here")
    exprs, loose = {}, {}  # loose: written as they are, though a symbol fits them too
    for arg in first.args:
        seen = [(b, b.shortcut[slot][1].args[arg]) for b in present]
        same = len({repr(v) for _, v in seen}) == 1
        unit = next(a.unit for a in ops.OPS[first.kind].args if a.name == arg)
        symbols = {"channels": ("out", "in"), "stride": ("stride",)}.get(unit, SHORTCUT_SYMBOLS)
        fits = [s for s in symbols if all(v == _as(v, _symbols(b)[s]) for b, v in seen)]
        if fits and (unit or not same):
            exprs[arg] = fits[0]
        elif not same:
            raise refuse(f"{where}: its {arg} differs between blocks in a way resdsl cannot write")
        elif fits:
            loose[arg] = fits[0]

    def does_nothing(b: Block, exprs: dict) -> bool:
        args = {
            k: _as(v, _symbols(b)[exprs[k]]) if k in exprs else v for k, v in first.args.items()
        }
        return ops.OPS[first.kind].identity(ops.complete(first.kind, args), b.in_channels)

    if not all(does_nothing(b, exprs) for b in gaps):  # at their values it may (a 1x1 pool)
        exprs |= loose
    for b in gaps:  # the op must do nothing where the source has an identity
        if not does_nothing(b, exprs):
            raise refuse(f"{b.path}.downsample.{local}: an identity here, a {first.kind} elsewhere")
    text = spell(first.kind, first.args, exprs)
    return text if local.isdigit() else f"{named(local, where, 'a shortcut layer')}: {text}"


def _as(like, value):
    return (value, value) if isinstance(like, tuple) else value


# ---------------------------------------------------------------- the proof


@dataclass
class Imported:
    text: str  # the spec
    report: str  # "imported resnet50: 25,557,032 parameters, strict load ok, logits equal ..."
    net: object = None  # the spec's network, checked (None where it was not verified)
    source: Source | None = None

    def weights(self) -> dict:
        """The source's weights under the network's names, as the npz layout holds them."""
        from .targets.weights import checked, tensors

        net = self.net if self.net is not None else network_of(self.text, self.source)
        state = self.source.state()
        wanted = {name: as_array(state[name]) for name in tensors(net) if name in state}
        return checked(net, wanted, where=f"{self.source.origin}'s weights")


def import_source(source: str, verify: bool = True, checkpoint: str | None = None) -> Imported:
    """``resdsl import SOURCE``: the spec, and with ``verify`` the round trip's result.
    ``checkpoint`` is a file of trained weights for a PyTorch source."""
    loaded = load(source, checkpoint)
    try:
        text = write_spec(loaded)
    except ResdslError:
        raise
    except Exception as exc:  # noqa: BLE001 - a model unlike any tried: refused, not a traceback
        raise refuse(
            f"resdsl import cannot read {source}: {type(exc).__name__}: {exc}",
            "its structure is one resdsl import does not know; please report it",
        ) from None
    if not verify:
        return Imported(text, f"imported {loaded.name} (not verified: --no-verify)", None, loaded)
    net = network_of(text, loaded)
    return Imported(text, torch_proof(net, loaded), net, loaded)
