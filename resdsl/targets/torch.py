"""The PyTorch target: model.py in the shape of torchvision's resnet.py, and train.py.

Block classes are written from the block definitions (their parameters stay parameters); the
network class is written from the IR (its values are concrete). Every IR node except the input and
the additions becomes a module whose attribute path is the node's name, so state_dict keys are the
IR names and torchvision's weights load with strict=True.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ops
from .. import syntax as ast
from ..emit import LINE, Call, TargetError, lay_out, literal, register, render, where
from ..ir import BlockInstance, Network, Node
from .python import (
    camel,
    default_pad,
    flag,
    keyword_arg,
    literal_repeat,
    members,
    next_name,
    pair,
    py_expr,
    size,
    symbolic_args,
    train_view,
)

TARGET = "torch"
# names the generated block classes use themselves; a block parameter may not take them
RESERVED = {
    "self",
    "x",
    "out",
    "identity",
    "in_channels",
    "downsample",
    "nn",
    "torch",
    "F",
    "super",
}


@register(TARGET)
def files(net: Network) -> dict[str, str]:
    return {
        "model.py": render(TARGET, "model.py.j2", m=ModelView.of(net)),
        "train.py": render(TARGET, "train.py.j2", t=train_view(net)),
    }


# ---------------------------------------------------------------- the view-model


@dataclass
class BlockClass:
    name: str  # BasicBlock
    kind: str  # basic
    residual: bool
    params: list[str]
    where: str
    header: str  # the definition's first line, for the docstring
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
    uses_subsample: bool
    uses_zeropad: bool

    @classmethod
    def of(cls, net: Network) -> ModelView:
        classes = _block_classes(net)
        init, forward = _network_body(net, classes)
        ops_used = {n.op for n in net.nodes()}
        return cls(
            network=net.name,
            class_name=camel(net.name),
            source=where(net.span, net.span).rsplit(":", 1)[0],
            input_shape=net.input_shape,
            classes=net.classes,
            blocks=list(classes.values()),
            init=init,
            forward=forward,
            uses_subsample="subsample" in ops_used,
            uses_zeropad="zeropad" in ops_used,
        )


# ---------------------------------------------------------------- block classes (symbolic)


def _class_name(kind: str, residual: bool, has_add: bool) -> str:
    base = camel(kind)
    if not base.endswith("Block") and kind != "bottleneck":
        base += "Block"
    return base if residual or not has_add else "Plain" + base


def _block_classes(net: Network) -> dict[tuple[str, bool], BlockClass]:
    """One class per block kind, and a plain variant where a policy of `none` drops its add."""
    out: dict[tuple[str, bool], BlockClass] = {}
    for inst in net.blocks:
        if "." in inst.name and not inst.name.startswith("layer"):
            continue  # nested blocks are refused in _block_class of their parent
        key = (inst.kind, inst.shortcut not in ("none", "plain"))
        if key not in out:
            out[key] = _block_class(net, net.definitions[inst.kind], residual=key[1])
    return out


def _block_class(net: Network, definition: ast.BlockDef, residual: bool) -> BlockClass:
    params = [p.name for p in definition.params]
    for p in definition.params:
        if p.name in RESERVED:
            raise TargetError(
                f"the torch target uses the name `{p.name}` itself; rename this parameter",
                p.span,
            )
    has_add = any(isinstance(s, ast.Add) for s in definition.body)
    lines = [line.strip() for line in definition.span.source.text.split("\n")]
    cls = BlockClass(
        name=_class_name(definition.name, residual, has_add),
        kind=definition.name,
        residual=residual and has_add,
        params=params,
        where=where(definition.span, net.span),
        header=lines[definition.span.line - 1].rstrip("{ ").strip(),
    )
    counts: dict[str, int] = {}
    channels = "in_channels"
    value = "x"  # the tensor the next op reads
    last_bn = None
    seen_add = False
    for stmt in definition.body:
        if isinstance(stmt, ast.Add):
            seen_add = True
            if cls.residual:
                if value == "x":
                    cls.forward.append("out = x")
                cls.forward += [
                    "if self.downsample is not None:",
                    "    identity = self.downsample(x)",
                    "out = out + identity",
                ]
                cls.last_bn = last_bn
            continue
        if stmt.name in net.definitions or stmt.name not in ops.OPS:
            raise TargetError(
                f"the torch target cannot yet express block `{definition.name}` calling "
                f"`{stmt.name}` inside it; write its layers out instead",
                stmt.span,
            )
        for _ in range(literal_repeat(stmt)):
            attr = next_name(counts, stmt.name)
            ctor, channels = _symbolic_layer(stmt, channels, params, first=value == "x")
            cls.init += lay_out(ctor, 8, f"self.{attr} = ")
            cls.forward.append(f"out = self.{attr}({value})")
            value = "out"
            if stmt.name == "bn" and not seen_add:
                cls.branch_bns.append(attr)
            last_bn = attr if stmt.name == "bn" else None
    cls.forward.append(f"return {value}")
    signature = Call("def __init__", "self", "in_channels", *params)
    if cls.residual:
        cls.forward.insert(0, "identity = x")
        cls.init.append("        self.downsample = downsample")
        signature.args.append(("downsample=", "None"))
    cls.signature = lay_out(signature, 4, "", ":")
    return cls


def _symbolic_layer(stmt: ast.Call, channels: str, params, first: bool) -> tuple[Call, str]:
    """The constructor of one primitive inside a block class, and the channels after it."""
    args = symbolic_args(stmt)
    op = stmt.name
    if op == "conv":
        out = py_expr(args["out"], params)
        pad = args["pad"]
        pad = default_pad(args["kernel"], op, params) if pad is None else size(pad, params)
        kw = {"kernel_size": size(args["kernel"], params)}
        kw.update(keyword_arg("stride", args["stride"], 1, params))
        kw.update({"padding": pad} if pad != "0" else {})
        kw.update(keyword_arg("groups", args["groups"], 1, params))
        kw["bias"] = flag(args["bias"], params)
        return Call("nn.Conv2d", channels, out, **kw), out
    if op == "bn":
        return Call("nn.BatchNorm2d", channels), channels
    if op == "relu":
        # in place, except on the block's input, which the shortcut still reads
        return (Call("nn.ReLU") if first else Call("nn.ReLU", inplace="True")), channels
    if op == "dropout":
        return Call("nn.Dropout", p=size(args["p"], params)), channels
    if op in ("maxpool", "avgpool"):
        if args["kernel"] is None:
            return Call("nn.AdaptiveAvgPool2d", "1"), channels
        pad = args["pad"]
        pad = default_pad(args["kernel"], op, params) if pad is None else size(pad, params)
        name = "nn.MaxPool2d" if op == "maxpool" else "nn.AvgPool2d"
        kernel, stride = size(args["kernel"], params), size(args["stride"], params)
        return Call(name, kernel_size=kernel, stride=stride, padding=pad), channels
    raise TargetError(f"the torch target cannot use `{op}` inside a block", stmt.span)


# ---------------------------------------------------------------- the network class (concrete)


def _network_body(net: Network, classes) -> tuple[list[str], list[str]]:
    blocks = {b.name: b for b in net.blocks}
    owned = members(net)
    init: list[str] = []
    forward: list[str] = []
    stages: dict[str, list] = {}
    section = None
    flat = False

    def comment(text: str) -> None:
        nonlocal section
        if text != section:
            init.append(f"        # {text}")
            section = text

    for node in net.nodes():
        if node.op == "input":
            continue
        if node.block is None:
            if "." in node.name:
                raise TargetError(
                    "the torch target cannot yet express a layer directly inside a stage; "
                    "wrap it in a block",
                    node.span,
                )
            if node.op == "fc" and not flat:
                forward.append("x = torch.flatten(x, 1)")
                flat = True
            comment(f"{node.path.split(' › ')[0]}: {where(node.span, net.span)}")
            init.extend(lay_out(_concrete(net, node), 8, f"self.{node.name} = "))
            forward.append(f"x = self.{node.name}(x)")
            continue
        inst = blocks.get(node.block)
        if inst is None or node is not owned[node.block][0]:
            continue  # a block is emitted once, at its first node; nested ones were refused
        ctor = _instance(net, inst, classes, owned[inst.name])
        if inst.stage is None:
            comment(where(inst.span, net.span))
            init.extend(lay_out(ctor, 8, f"self.{inst.name} = "))
            forward.append(f"x = self.{inst.name}(x)")
            continue
        stage = inst.name.split(".")[0]
        if stage not in stages:
            stages[stage] = []
            comment(f"stage {inst.stage}: {where(inst.span, net.span)}")
            init.append(f"        self.{stage} = nn.Sequential(")
            init.append(stage)  # replaced by the stage's entries below
            init.append("        )")
            forward.append(f"x = self.{stage}(x)")
        stages[stage].append(ctor)
    for stage, entries in stages.items():
        at = init.index(stage)
        init[at : at + 1] = [line for entry in _group(entries) for line in entry]
    forward.append("return x")
    return init, forward


def _group(entries: list[Call]) -> list[list[str]]:
    """Runs of identical blocks become `*[Block(...) for _ in range(k)]`, each laid out."""
    out, i = [], 0
    while i < len(entries):
        j = i
        while j < len(entries) and str(entries[j]) == str(entries[i]):
            j += 1
        starred = f"*[{entries[i]} for _ in range({j - i})],"
        if j - i > 1 and len(starred) + 12 <= LINE:
            out.append([" " * 12 + starred])
        else:
            out += [lay_out(entries[k], 12, "", ",") for k in range(i, j)]
        i = j
    return out


def _instance(net: Network, inst: BlockInstance, classes, nodes: list[Node]) -> Call:
    if "." in inst.name and inst.stage is None:
        raise TargetError("the torch target cannot yet express nested blocks", inst.span)
    cls = classes[(inst.kind, inst.shortcut not in ("none", "plain"))]
    call = Call(cls.name, str(net.node(inst.input).shape[0]), **{k: repr(v) for k, v in inst.args})
    shortcut = [n for n in nodes if n.role == "shortcut"]
    if shortcut:
        call.args.append(
            ("downsample=", Call("nn.Sequential", *(_concrete(net, n) for n in shortcut)))
        )
    return call


def _concrete(net: Network, node: Node) -> Call:
    """The constructor of one IR node, with its values."""
    a = node.arg
    in_shape = net.node(node.inputs[0]).shape
    if node.op == "conv":
        kw = {"kernel_size": pair(a["kernel"])}
        kw.update({"stride": str(a["stride"])} if a["stride"] != 1 else {})
        kw.update({"padding": pair(a["pad"])} if a["pad"] != (0, 0) else {})
        kw.update({"groups": str(a["groups"])} if a["groups"] != 1 else {})
        kw["bias"] = repr(bool(a["bias"]))
        return Call("nn.Conv2d", str(in_shape[0]), str(a["out"]), **kw)
    if node.op == "bn":
        return Call("nn.BatchNorm2d", str(in_shape[0]))
    if node.op == "relu":
        return Call("nn.ReLU", inplace="True")
    if node.op == "dropout":
        return Call("nn.Dropout", p=repr(a["p"]))
    if node.op in ("maxpool", "avgpool"):
        if a["kernel"] is None:
            return Call("nn.AdaptiveAvgPool2d", "1")
        name = "nn.MaxPool2d" if node.op == "maxpool" else "nn.AvgPool2d"
        return Call(
            name, kernel_size=pair(a["kernel"]), stride=str(a["stride"]), padding=pair(a["pad"])
        )
    if node.op == "fc":
        features = str(in_shape[0] * in_shape[1] * in_shape[2])
        if a["bias"]:
            return Call("nn.Linear", features, str(a["out"]))
        return Call("nn.Linear", features, str(a["out"]), bias="False")
    if node.op == "subsample":
        return Call("Subsample", str(a["stride"]))
    if node.op == "zeropad":
        return Call("ZeroPad", str(a["channels"]))
    raise TargetError(f"the torch target cannot express `{node.op}`", node.span)
