"""The PyTorch target: model.py in the shape of torchvision's resnet.py, and train.py.

Block classes are written from the IR's block templates (their parameters stay parameters); the
network class is written from the IR's sections and nodes (its values are concrete). Every IR node
except the input and the additions becomes a module whose attribute path is the node's name, so
state_dict keys are the IR names and torchvision's weights load with strict=True.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..emit import LINE, Call, lay_out, literal, register, render, source_file, where
from ..ir import BlockInstance, BlockTemplate, Const, Network, Node, TemplateOp
from .python import FRESH, flag, is_default, param_names, py, relu_in_place, size
from .training import train_files

TARGET = "torch"


@register(TARGET)
def files(net: Network) -> dict[str, str]:
    return {
        "model.py": render(TARGET, "model.py.j2", m=ModelView.of(net)),
        **train_files(TARGET, net),
    }


# ---------------------------------------------------------------- the view-model


@dataclass
class BlockClass:
    name: str  # BasicBlock
    kind: str  # basic
    residual: bool
    dropped_add: bool  # the definition's add, dropped by shortcut policy none
    where: str
    signature: list[str] = field(default_factory=list)  # the laid-out `def __init__(...):`
    init: list[str] = field(default_factory=list)  # laid-out lines of __init__'s body
    forward: list[str] = field(default_factory=list)
    last_bn: str | None = None  # the branch's final BN, zeroed by zero_init_residual
    branch_bns: list[str] = field(default_factory=list)  # BNs before the addition

    @property
    def branch_bns_literal(self) -> str:
        return literal(tuple(self.branch_bns))


@dataclass
class ModelView:
    network: str
    class_name: str
    source: str
    input_shape: tuple
    classes: int
    blocks: list[BlockClass]
    init: list[str]  # laid-out lines of the network's __init__ body
    forward: list[str]
    uses: set[str]  # the helper classes it needs: Subsample, ZeroPad, FlatLinear

    @classmethod
    def of(cls, net: Network) -> ModelView:
        uses: set[str] = set()
        blocks = [_block_class(net, t, uses) for t in net.templates.values()]
        init, forward = _network_body(net, uses)
        return cls(
            network=net.name,
            class_name=net.class_name,
            source=source_file(net.span, net.span),
            input_shape=net.input_shape,
            classes=net.classes,
            blocks=blocks,
            init=init,
            forward=forward,
            uses=uses,
        )


# ---------------------------------------------------------------- block classes (symbolic)


def _block_class(net: Network, template: BlockTemplate, uses: set[str]) -> BlockClass:
    names = param_names(template)
    cls = BlockClass(
        name=template.class_name,
        kind=template.kind,
        residual=template.residual,
        dropped_add=template.has_add and not template.residual,
        where=where(template.span, net.span),
    )
    ops = list(template.ops)
    tensor = Tensor("x", "out")
    for index, op in enumerate(ops):
        if op.op == "add":
            cls.forward += tensor.spatial()
            if tensor.value == "x":
                cls.forward.append("out = x")
            cls.forward += [
                "if self.downsample is not None:",
                "    identity = self.downsample(x)",
                "out = out + identity",
            ]
            tensor.value = "out"
            if index and ops[index - 1].op == "bn":
                cls.last_bn = ops[index - 1].name
            continue
        ctor = _template_op(net, op, names, relu_in_place(ops, index), uses)
        cls.init += lay_out(ctor, 8, f"self.{op.name} = ")
        cls.forward += tensor.apply(op.op, f"self.{op.name}")
        if op.op == "bn" and op.role == "branch":
            cls.branch_bns.append(op.name)
    cls.forward += tensor.spatial()
    cls.forward.append(f"return {tensor.value}")
    signature = Call("def __init__", "self", "in_channels", *names.values())
    if template.residual:
        cls.forward.insert(0, "identity = x")
        cls.init.append("        self.downsample = downsample")
        signature.args.append(("downsample=", "None"))
    cls.signature = lay_out(signature, 4, "", ":")
    return cls


class Tensor:
    """The tensor a forward() is computing, and whether an fc has flattened it to (N, C)."""

    def __init__(self, value: str, target: str):
        self.value, self.target, self.flat = value, target, False

    def apply(self, op: str, module: str) -> list[str]:
        """Lines that apply ``module`` (an ``op``), flattening before an fc as it needs."""
        lines = []
        if op == "fc" and not self.flat:
            lines.append(f"{self.target} = torch.flatten({self.value}, 1)")
            self.value, self.flat = self.target, True
        elif op not in ("fc", "relu", "dropout"):
            lines += self.spatial()
        lines.append(f"{self.target} = {module}({self.value})")
        self.value = self.target
        return lines

    def spatial(self) -> list[str]:
        """Lines that give a flattened (N, C) tensor back its 1x1 map: (N, C, 1, 1)."""
        if not self.flat:
            return []
        self.flat = False
        line = f"{self.target} = {self.value}[:, :, None, None]"
        self.value = self.target
        return [line]


def _template_op(
    net: Network, op: TemplateOp, names: dict[str, str], in_place: bool, uses: set[str]
) -> Call:
    """The constructor of one op inside a block class, over the block's parameters."""
    a = op.arg
    channels = py(op.in_channels, names)
    if op.op == "conv":
        kw = {"kernel_size": py(a["kernel"], names)}
        kw.update({} if is_default(a["stride"], 1) else {"stride": py(a["stride"], names)})
        kw.update({} if is_default(a["pad"], 0) else {"padding": py(a["pad"], names)})
        kw.update({} if is_default(a["groups"], 1) else {"groups": py(a["groups"], names)})
        kw["bias"] = flag(a["bias"], names)
        return Call("nn.Conv2d", channels, py(a["out"], names), **kw)
    if op.op == "bn":
        return Call("nn.BatchNorm2d", channels)
    if op.op == "relu":
        return Call("nn.ReLU", inplace="True") if in_place else Call("nn.ReLU")
    if op.op == "dropout":
        return Call("nn.Dropout", p=py(a["p"], names))
    if op.op in ("maxpool", "avgpool"):
        if a["kernel"] == Const(None):
            return Call("nn.AdaptiveAvgPool2d", "1")
        name = "nn.MaxPool2d" if op.op == "maxpool" else "nn.AvgPool2d"
        return Call(
            name,
            kernel_size=py(a["kernel"], names),
            stride=py(a["stride"], names),
            padding=py(a["pad"], names),
        )
    if op.op == "fc":
        kw = {} if is_default(a["bias"], 1) else {"bias": flag(a["bias"], names)}
        return Call("nn.Linear", py(a["in_features"], names), py(a["out"], names), **kw)
    if op.op == "subsample":
        uses.add("Subsample")
        return Call("Subsample", py(a["stride"], names))
    if op.op == "zeropad":
        uses.add("ZeroPad")
        return Call("ZeroPad", py(a["channels"], names))
    if op.op == "block":
        inner = net.templates[op.template]
        call = Call(inner.class_name, channels)
        call.args += [(f"{py_name}=", py(a[p], names)) for p, py_name in inner.param_names]
        if op.shortcut:
            parts = [_template_op(net, s, names, False, uses) for s in op.shortcut]
            call.args.append(("downsample=", Call("nn.Sequential", *parts)))
        return call
    raise AssertionError(f"the torch target cannot express `{op.op}`: not an op of ops.py")


# ---------------------------------------------------------------- the network class (concrete)


def _network_body(net: Network, uses: set[str]) -> tuple[list[str], list[str]]:
    shortcuts: dict[str, list[Node]] = {}
    for node in net.nodes():
        if node.role == "shortcut":
            shortcuts.setdefault(node.block, []).append(node)
    init: list[str] = []
    tensor = Tensor("x", "x")
    forward: list[str] = []
    for section in net.sections:
        label = f"stage {section.stage}" if section.kind == "stage" else section.kind
        init.append(f"        # {label}: {where(section.span, net.span)}")
        if section.kind == "stage":
            init.append(f"        self.{section.container} = nn.Sequential(")
            for entry in section.entries:
                if entry.kind == "op":
                    ctor = _concrete(net, net.node(entry.name), uses, in_sequential=True)
                else:
                    ctor = _instance(net, net.block(entry.name), shortcuts, uses)
                starred = f"*[{ctor} for _ in range({entry.count})],"
                if entry.count > 1 and len(starred) + 12 <= LINE:
                    init.append(" " * 12 + starred)
                elif entry.count > 1:  # as ruff lays out a long comprehension
                    init.append(" " * 12 + "*[")
                    init += lay_out(ctor, 16)
                    init += [" " * 16 + f"for _ in range({entry.count})", " " * 12 + "],"]
                else:
                    init += lay_out(ctor, 12, "", ",")
            init.append("        )")
            forward += tensor.spatial()
            forward.append(f"x = self.{section.container}(x)")
            continue
        for entry in section.entries:
            if entry.kind == "op":
                node = net.node(entry.name)
                init += lay_out(_concrete(net, node, uses), 8, f"self.{node.name} = ")
                forward += tensor.apply(node.op, f"self.{node.name}")
            else:
                inst = net.block(entry.name)
                init += lay_out(_instance(net, inst, shortcuts, uses), 8, f"self.{inst.name} = ")
                forward += tensor.spatial()
                forward.append(f"x = self.{inst.name}(x)")
    if not tensor.flat:
        forward.append("x = torch.flatten(x, 1)")
    forward.append("return x")
    return init, forward


def _instance(
    net: Network, inst: BlockInstance, shortcuts: dict[str, list[Node]], uses: set[str]
) -> Call:
    template = net.templates[inst.template]
    args = dict(inst.args)
    call = Call(template.class_name, str(net.node(inst.input).shape[0]))
    call.args += [(f"{py_name}=", literal(args[p])) for p, py_name in template.param_names]
    if inst.name in shortcuts:
        parts = (_concrete(net, n, uses) for n in shortcuts[inst.name])
        call.args.append(("downsample=", Call("nn.Sequential", *parts)))
    return call


def _concrete(net: Network, node: Node, uses: set[str], in_sequential: bool = False) -> Call:
    """The constructor of one IR node, with its values."""
    a = node.arg
    in_shape = net.node(node.inputs[0]).shape
    if node.op == "conv":
        kw = {"kernel_size": size(a["kernel"])}
        kw.update({"stride": str(a["stride"])} if a["stride"] != 1 else {})
        kw.update({"padding": size(a["pad"])} if a["pad"] != (0, 0) else {})
        kw.update({"groups": str(a["groups"])} if a["groups"] != 1 else {})
        kw["bias"] = repr(bool(a["bias"]))
        return Call("nn.Conv2d", str(in_shape[0]), str(a["out"]), **kw)
    if node.op == "bn":
        return Call("nn.BatchNorm2d", str(in_shape[0]))
    if node.op == "relu":
        source = net.node(node.inputs[0])
        fresh = source.op in FRESH and net.graph.out_degree(source.name) == 1
        return Call("nn.ReLU", inplace="True") if fresh else Call("nn.ReLU")
    if node.op == "dropout":
        return Call("nn.Dropout", p=repr(a["p"]))
    if node.op in ("maxpool", "avgpool"):
        if a["kernel"] is None:
            return Call("nn.AdaptiveAvgPool2d", "1")
        name = "nn.MaxPool2d" if node.op == "maxpool" else "nn.AvgPool2d"
        return Call(
            name, kernel_size=size(a["kernel"]), stride=str(a["stride"]), padding=size(a["pad"])
        )
    if node.op == "fc":
        linear = "nn.Linear"
        if in_sequential:
            linear = "FlatLinear"
            uses.add("FlatLinear")
        features = str(in_shape[0] * in_shape[1] * in_shape[2])
        if a["bias"]:
            return Call(linear, features, str(a["out"]))
        return Call(linear, features, str(a["out"]), bias="False")
    if node.op == "subsample":
        uses.add("Subsample")
        return Call("Subsample", str(a["stride"]))
    if node.op == "zeropad":
        uses.add("ZeroPad")
        return Call("ZeroPad", str(a["channels"]))
    raise AssertionError(f"the torch target cannot express `{node.op}`: not an op of ops.py")
