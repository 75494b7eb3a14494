"""The walk every Python target shares: block templates and the network, written once.

A target is a subclass of :class:`Writer`. It spells each op in a table, ``TRANSFORMS``, as
sqlglot's generators do, and says how a few statements read in its framework: a layer applied,
the shortcut joined, a block called, a stage opened. The walk is here, once: ops in order, a
flatten before an fc and a map again after it, the join, nested blocks and their shortcuts,
sections and runs of repeats. Every name a target prints comes from its own namespace, one per
generated file; the IR's names are module paths and stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..emit import render, source_file, where
from ..identity import KEY as IDENTITY_KEY
from ..identity import SOURCE as IDENTITY_SOURCE
from ..identity import identity
from ..ir import IN_CHANNELS, BinOp, BlockInstance, BlockTemplate, Const, Expr, Network, Param
from ..names import RESERVED, Namespace, class_name
from ..ops import OPS
from .layout import LINE, Call, lay_out, literal
from .training import train_files

PRECEDENCE = {"+": 1, "-": 1, "*": 2, "//": 2}


def py(expr: Expr, names: dict[str, str]) -> str:
    """``expr`` as a Python expression; ``names`` maps each parameter to its Python name."""
    if isinstance(expr, Const):
        return size(expr.value) if isinstance(expr.value, tuple) else literal(expr.value)
    if isinstance(expr, Param):
        return "in_channels" if expr.name == IN_CHANNELS else names[expr.name]
    left = _side(expr.left, expr.op, names, right=False)
    return f"{left} {expr.op} {_side(expr.right, expr.op, names, right=True)}"


def _side(expr: Expr, op: str, names: dict[str, str], right: bool) -> str:
    text = py(expr, names)
    if isinstance(expr, BinOp):
        inner, outer = PRECEDENCE[expr.op], PRECEDENCE[op]
        if inner < outer or right and inner == outer and not (op == expr.op and op in "+*"):
            return f"({text})"
    return text


def size(value) -> str:
    """A kernel, stride or padding: ``3`` for 3x3, ``(3, 1)`` otherwise."""
    if isinstance(value, tuple):
        h, w = value
        return str(h) if h == w else f"({h}, {w})"
    return str(value)


def is_default(expr: Expr | None, default) -> bool:
    """Whether an argument can be left out: a constant equal to the framework's default."""
    if not isinstance(expr, Const):
        return False
    value = expr.value
    if isinstance(value, tuple) and len(set(value)) == 1:
        value = value[0]
    return value == default


def _last_of_branch(ops) -> int | None:
    """The index of the residual branch's last op before the add, past any side path and any
    dropout or drop path: the BN that zero_init_residual zeroes, where it is one."""
    add = next((i for i, op in enumerate(ops) if op.role == "add"), None)
    main = [
        i
        for i in range(add or 0)
        if ops[i].role == "branch"
        and ops[i].op != "tap"
        and not (ops[i].op in OPS and (OPS[ops[i].op].inputs == 2 or OPS[ops[i].op].stochastic))
    ]
    return main[-1] if main else None


def _members(entries) -> list[str]:
    """A container's members' names, each of a run of equal blocks its own (``layer1.0``, ...)."""
    out = []
    for entry in entries:
        base, _, local = entry.name.rpartition(".")
        first = int(local) if local.isdigit() else None
        numbers = [local] if first is None else range(first, first + entry.count)
        out += [f"{base}.{n}" for n in numbers]
    return out


class OpView:
    """One op as a target spells it: a template's op (symbolic) or a node (concrete) alike."""

    def __init__(self, op: str, name: str, args: dict, channels: Expr, names: dict[str, str]):
        self.op, self.name, self.args, self.names = op, name, args, names
        self.channels = py(channels, names)
        self.flags = {a.name for a in OPS[op].args if a.type == "flag"} if op in OPS else set()
        self.role: str | None = None  # within its block: branch | post | shortcut
        self.in_place = False  # it reads a fresh tensor that nothing else reads
        self.contained = False  # a member of a container (a stage's nn.Sequential)
        self.zero = False  # a BN that ends a residual branch (zero_init_residual)
        self.label = ""  # its layer name as the target prints it
        self.value = ""  # the tensor it reads, where the target calls functions

    def __getitem__(self, key: str) -> str:
        expr = self.args[key]
        if key in self.flags and isinstance(expr, Const):
            return repr(bool(expr.value))
        text = py(expr, self.names)
        return f"bool({text})" if key in self.flags else text

    def given(self, **keywords: tuple[str, object]) -> dict[str, str]:
        """``keyword=(arg, default)``: each printed argument that is not at its default."""
        return {k: self[a] for k, (a, d) in keywords.items() if not is_default(self.args[a], d)}

    @property
    def global_pool(self) -> bool:
        return self.args.get("kernel") == Const(None)


class Tensor:
    """The tensor a forward pass is computing, and whether an fc has flattened it to (N, C)."""

    def __init__(self, writer: Writer, value: str, target: str, label: Callable[[str], str]):
        self.writer, self.value, self.target, self.label = writer, value, target, label
        self.flat, self.fc = False, ""

    def apply(self, op: str, name: str, spelled: Callable[[str], object]) -> list:
        """Statements that apply an op to the tensor, flattening before an fc as it needs."""
        opdef = OPS.get(op)
        out = []
        if opdef is not None and opdef.flattens:
            if not self.flat:
                line = self.writer.flatten(self.value, self.label(f"{name}.flatten"))
                out.append((self.target, line))
                self.value, self.flat = self.target, True
            self.fc = name
        elif opdef is None or not opdef.pointwise:
            out += self.spatial()
        out.append((self.target, spelled(self.value)))
        self.value = self.target
        return out

    def spatial(self) -> list:
        """A statement that gives a flattened (N, C) tensor back its 1x1 map, where it is flat."""
        if not self.flat:
            return []
        self.flat = False
        line = (self.target, self.writer.unflatten(self.value, self.label(f"{self.fc}.unflatten")))
        self.value = self.target
        return [line]


@dataclass
class Body:
    """What a walk writes: a block class's or function's parts, or the network's."""

    name: str = ""
    kind: str = ""
    where: str = ""
    residual: bool = False
    dropped_add: bool = False  # the definition's add, dropped by shortcut policy none
    signature: list[str] = field(default_factory=list)
    init: list = field(default_factory=list)  # statements of a constructor, where there is one
    body: list = field(default_factory=list)  # statements of forward() or of the function
    branch_bns: list[str] = field(default_factory=list)  # BNs before the addition
    last_bn: str | None = None  # the branch's final BN, zeroed by zero_init_residual
    indent: int = 0  # beyond the target's INDENT: a function nested in another
    tap: bool = False  # its shortcut starts at `preact`, the tensor at its `tap`

    @property
    def members(self) -> list[str]:
        """A block class's own members, each with its comment: beside it where it fits."""
        lines, bns = [], tuple(self.branch_bns)
        for name, value, comment in (
            ("branch_bns", bns, "the residual branch's BNs, for --log-responses"),
            ("last_bn", self.last_bn, "zeroed by zero_init_residual"),
        ):
            if not value:
                continue
            line = f"    {name} = {literal(value)}  # {comment}"
            if len(line) > LINE:
                items = Call("", *map(literal, value)) if len(value) > 1 else literal(value)
                lines += [f"    # {comment}", *lay_out(items, 4, f"{name} = ")]
            else:
                lines.append(line)
        return lines


@dataclass
class ModelView:
    network: str
    class_name: str
    source: str
    input_shape: tuple
    classes: int
    blocks: list[Body]
    paths: list[Body]  # the shortcut paths, where the target writes them as functions
    net: Body
    uses: set[str]  # the helpers model.py defines: the spelled calls' names
    fc_inputs: list[tuple[str, tuple]]  # (fc layer, its input's C, H, W)
    identity: list[tuple[str, str]]  # IDENTITY's keys and values, as literals
    identity_source: str  # identity_problem, as resdsl.identity writes it
    identity_key: str  # the identity's name in a .npz, as a literal
    extras: dict = field(default_factory=dict)  # what only its target's template reads


class Writer:
    """The shared walk; a target overrides the table and the statements below it."""

    TARGET = ""
    TRANSFORMS: dict[str, Callable[[OpView], Call]] = {}
    MODULE: frozenset[str] = frozenset()  # module-level names the target's model.py defines
    # ... and those every target's model.py defines: the network's identity (resdsl.identity)
    SHARED = frozenset({"json", "zipfile", "IDENTITY", "WeightsMismatch", "identity_problem"})
    LOCALS: frozenset[str] = frozenset()  # names a block's function uses for itself
    INDENT = 8  # where a block's statements start
    INPUT = "x"  # the network's input tensor

    def __init__(self, net: Network):
        self.net, self.uses = net, set()
        self.module = module = Namespace(RESERVED | self.MODULE | self.SHARED)
        self.class_name = module.create_name(class_name(net.name))
        self.block_names = {t.name: module.create_name(self.block_name(t)) for t in self.templates}
        self.params = {}
        for t in self.templates:
            own = self.LOCALS | {t.shortcut_name}
            local = Namespace(RESERVED | self.MODULE | self.SHARED | module.used | own)
            self.params[t.name] = {p: local.create_name(p) for p in t.params}

    @property
    def templates(self) -> list[BlockTemplate]:
        return list(self.net.templates.values())

    def files(self) -> dict[str, str]:
        view = ModelView(
            network=self.net.name,
            class_name=self.class_name,
            source=source_file(self.net.span, self.net.span),
            input_shape=self.net.input_shape,
            classes=self.net.classes,
            blocks=[self.block(t) for t in self.templates],
            paths=[self.path(t) for t in self.net.shortcuts.values()],
            net=self.network(),
            uses=self.uses,
            fc_inputs=[
                (n.name, self.net.node(n.inputs[0]).shape)
                for n in self.net.nodes()
                if OPS[n.op].flattens
            ],
            identity=[(literal(k), literal(v)) for k, v in identity(self.net).items()],
            identity_source=IDENTITY_SOURCE.rstrip(),
            identity_key=literal(IDENTITY_KEY),
            extras=self.extras(),
        )
        for part in (*view.blocks, *view.paths, view.net):
            part.init = self.lay_out(part.init, self.INDENT + part.indent)
            part.body = self.lay_out(part.body, self.INDENT + part.indent)
        model = render(self.TARGET, "model.py.j2", m=view)
        return {"model.py": model, **train_files(self.TARGET, self.net)}

    def extras(self) -> dict:
        """What only this target's template reads, as ``m.extras``."""
        return {}

    def spell(self, view: OpView) -> Call:
        call = self.TRANSFORMS[view.op](view)
        self.uses.add(call.func)
        return call

    # ------------------------------------------------------------ blocks (symbolic)
    def block(self, template: BlockTemplate) -> Body:
        names = self.params[template.name]
        out = Body(
            self.block_names[template.name],
            template.kind,
            where(template.span, self.net.span),
            template.residual,
            template.has_add and not template.residual,
        )
        tensor = Tensor(self, "x", "out", self.block_label)
        ops = template.ops
        out.body = ["identity = x"] if template.residual else []
        last = _last_of_branch(ops) if template.residual else None
        side: Tensor | None = None  # a side path's tensor, from its first op to its join
        group: list = []  # the members of a group written so far: (path in it, view, spelled)
        for index, op in enumerate(ops):
            root = op.name.partition(".")[0] if "." in op.name else None
            if group and root != group[0][1].name.partition(".")[0]:
                out.body += self.group(out, group, tensor)
                group = []
            if op.role == "add":
                start = "preact" if out.tap else "x"
                out.body += tensor.spatial() + self.join(tensor, start, template.shortcut_name)
                tensor.value = "out"
                continue
            if op.op == "tap":  # where this template's shortcut starts
                if template.from_tap:
                    out.body += tensor.spatial() + [f"preact = {tensor.value}"]
                    out.tap = True
                continue
            if op.op in OPS and OPS[op.op].inputs == 2:  # a side path's join
                value = tensor.value if side is None else side.value
                out.body += (side.spatial() if side else []) + tensor.spatial()
                out.body.append((tensor.target, self.merge(op.op, tensor.value, value, op.name)))
                tensor.value, side = tensor.target, None
                continue
            view = OpView(op.op, op.name, op.arg, op.in_channels, names)
            view.role = op.role
            before = OPS.get(ops[index - 1].op) if index else None
            view.in_place = before is not None and before.fresh
            if op.role == "side" and side is None:  # it reads what the join reads again
                join = next(o.op for o in ops[index:] if o.role != "side")
                name = "gate" if join == "mul" else "side"
                side, view.in_place = Tensor(self, tensor.value, name, self.block_label), False
            view.zero = index == last and op.op == "bn"
            if view.zero:
                out.last_bn = op.name
            view.label = self.block_label(op.name)
            if op.template is not None:
                spelled = self.nested(view, self.net.templates[op.template], op)
            else:
                spelled = self.spell
                if op.op == "bn" and op.role == "branch":
                    out.branch_bns.append(op.name)
            if root is not None:  # a member of a group of the block's, written as one
                group.append((op.name.partition(".")[2], view, spelled))
                continue
            out.body += self.layer(out, view, side if op.role == "side" else tensor, spelled)
        if group:
            out.body += self.group(out, group, tensor)
        out.body += tensor.spatial()
        out.body.append(f"return {tensor.value}")
        defaults, params = dict(template.defaults), list(names.items())
        first = len(params)  # a trailing run of parameters with defaults prints them
        while first and params[first - 1][0] in defaults:
            first -= 1
        out.signature = [
            (f"{n}=", literal(defaults[p])) if i >= first else ("", n)
            for i, (p, n) in enumerate(params)
        ]
        self.finish(out, template)
        return out

    def path(self, template: BlockTemplate) -> Body:
        """A shortcut path, where the target writes it as a function; by default it does not."""
        return Body()

    def arguments(self, template: BlockTemplate, values: dict[str, str]) -> list:
        """A block call's keyword arguments: each parameter under its printed name."""
        return [(f"{py_name}=", values[p]) for p, py_name in self.params[template.name].items()]

    # ------------------------------------------------------------ the network (concrete)
    def network(self) -> Body:
        out = Body()
        tensor = Tensor(self, self.INPUT, "x", literal)
        for section in self.net.sections:
            label = f"stage {section.stage}" if section.kind == "stage" else section.kind
            self.comment(out, f"# {label}: {where(section.span, self.net.span)}")
            stage = section.container if section.kind == "stage" else None
            self.open(out, tensor, stage, _members(section.entries) if stage else ())
            for entry in section.entries:
                if entry.kind == "group" and stage is None:  # a container, as a stage is
                    self.open(out, tensor, entry.name, [m.name for m in entry.members])
                    for member in entry.members:
                        self.entry(out, tensor, member, entry.name)
                    self.close(out, tensor, entry.name)
                else:
                    self.entry(out, tensor, entry, stage)
            self.close(out, tensor, stage)
        if not tensor.flat:
            label = literal(f"{self.net.output.name}.flatten")
            out.body.append((tensor.target, self.flatten(tensor.value, label)))
            tensor.value = tensor.target
        self.end(out, tensor)
        return out

    def entry(self, out: Body, tensor: Tensor, entry, container: str | None) -> None:
        """One op, block instance or group of the network, in ``container`` where it has one."""
        if entry.kind == "group":  # a group inside a stage's or a group's container
            self.inner_group(out, tensor, entry, container)
            return
        if entry.kind == "op":
            view = self.node_view(self.net.node(entry.name))
            out.body += self.layer(out, view, tensor, self.spell, container)
            return
        out.body += tensor.spatial()
        self.instance(out, tensor, self.net.block(entry.name), entry.count, container)

    def node_view(self, node) -> OpView:
        shape = self.net.node(node.inputs[0]).shape
        args = {k: Const(v) for k, v in node.args}
        if OPS[node.op].flattens:
            args["in_features"] = Const(shape[0] * shape[1] * shape[2])
        view = OpView(node.op, node.name, args, Const(shape[0]), {})
        source = self.net.node(node.inputs[0])
        fresh = OPS[source.op].fresh and self.net.graph.out_degree(source.name) == 1
        view.in_place, view.label = fresh, literal(node.name)
        return view

    def inner_group(self, out: Body, tensor: Tensor, entry, container: str) -> None:
        """A group that is a member of a container; by default, its members one by one."""
        for member in entry.members:
            self.entry(out, tensor, member, entry.name)

    def call(self, inst: BlockInstance, first: str) -> Call:
        """The call that makes one block instance, with its concrete arguments."""
        template = self.net.templates[inst.template]
        values = {p: literal(v) for p, v in inst.args}
        call = Call(self.block_names[template.name], first)
        call.args += self.arguments(template, values)
        return call

    # ------------------------------------------------------------ what a target spells
    def block_name(self, template: BlockTemplate) -> str:
        raise NotImplementedError

    def block_label(self, local: str) -> str:
        return local

    def flatten(self, value: str, label: str):
        raise NotImplementedError

    def merge(self, op: str, main: str, side: str, name: str):
        """A join of a side path (``mul``): the expression that makes the joined tensor."""
        raise NotImplementedError

    def unflatten(self, value: str, label: str):
        raise NotImplementedError

    def join(self, tensor: Tensor, start: str, container: str) -> list:
        """The shortcut joined to the branch: its ops read ``start`` (the input, or the tap);
        ``container`` is its module's name in the block (``downsample``, or the add's label)."""
        raise NotImplementedError

    def layer(self, out: Body, view: OpView, tensor: Tensor, spelled, stage=None) -> list:
        raise NotImplementedError

    def nested(self, view: OpView, inner: BlockTemplate, op) -> Callable[[OpView], Call]:
        raise NotImplementedError

    def group(self, out: Body, members: list, tensor: Tensor) -> list:
        """A group of a block's (``conv`` of ``conv.0.0``, ``conv.1``, ...): its members as
        ``(path in the group, view, spelled)``; by default, each a layer of its own."""
        return [
            line for _, view, spelled in members for line in self.layer(out, view, tensor, spelled)
        ]

    def finish(self, out: Body, template: BlockTemplate) -> None:
        raise NotImplementedError

    def comment(self, out: Body, text: str) -> None:
        out.body.append(text)

    def open(self, out: Body, tensor: Tensor, stage: str | None, names=()) -> None:
        """A stage's or group's container opens; ``names`` are a group's members' names."""

    def close(self, out: Body, tensor: Tensor, stage: str | None) -> None:
        pass

    def instance(self, out: Body, tensor, inst: BlockInstance, count: int, stage) -> None:
        raise NotImplementedError

    def end(self, out: Body, tensor: Tensor) -> None:
        out.body.append(f"return {tensor.value}")

    @staticmethod
    def lay_out(statements: list, indent: int) -> list[str]:
        """Statements as lines: an assignment ``(target, value)`` laid out as ruff would."""
        lines = []
        for item in statements:
            if isinstance(item, tuple):
                lines += lay_out(item[1], indent, f"{item[0]} = ")
            elif isinstance(item, list):  # lines laid out already
                lines += item
            else:
                lines.append(" " * indent + item if item else "")
        return lines
