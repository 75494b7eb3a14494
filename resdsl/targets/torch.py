"""The PyTorch target: model.py in the shape of torchvision's resnet.py, and train.py.

Block classes are written from the IR's block templates (their parameters stay parameters); the
network class is written from the IR's sections and nodes (its values are concrete). Every IR node
except the input and the additions becomes a module whose attribute path is the node's name, so
state_dict keys are the IR names and torchvision's weights load with strict=True.
"""

from __future__ import annotations

from ..emit import register
from ..ir import BlockInstance, BlockTemplate, Const, Network
from ..names import class_name
from .layout import LINE, Call, lay_out, literal
from .python import Body, OpView, Tensor, Writer, is_default


def _pool(name: str):
    def spell(v: OpView) -> Call:
        if v.global_pool:
            return Call("nn.AdaptiveAvgPool2d", "1")
        kw = {"ceil_mode": ("ceil", 0), "count_include_pad": ("include_pad", 1)}
        kw = v.given(**{k: a for k, a in kw.items() if a[0] in v.args})
        return Call(name, kernel_size=v["kernel"], stride=v["stride"], padding=v["pad"], **kw)

    return spell


def _conv(v: OpView) -> Call:
    kw = v.given(
        stride=("stride", 1), padding=("pad", 0), dilation=("dilation", 1), groups=("groups", 1)
    )
    ws = v.args.get("ws")
    if ws is not None and not is_default(ws, 0.0):  # weight standardisation, with its eps
        call = Call("StdConv2d", v.channels, v["out"], kernel_size=v["kernel"], **kw)
        call.args += [("bias=", v["bias"]), ("eps=", v["ws"])]
        return call
    return Call("nn.Conv2d", v.channels, v["out"], kernel_size=v["kernel"], **kw, bias=v["bias"])


def _pad(v: OpView) -> Call:
    size = v.args["size"]
    if isinstance(size, Const) and size.value[0] != size.value[1]:
        h, w = size.value
        return Call("nn.ConstantPad2d", f"({w}, {w}, {h}, {h})", v["value"])
    return Call("nn.ConstantPad2d", v["size"], v["value"])


def _leaky(v: OpView) -> Call:
    kw = v.given(negative_slope=("slope", 0.01))
    return Call("nn.LeakyReLU", **kw, **({"inplace": "True"} if v.in_place else {}))


class TorchWriter(Writer):
    TARGET = "torch"
    TRANSFORMS = {
        "conv": _conv,
        "bn": lambda v: Call("nn.BatchNorm2d", v.channels, **v.given(eps=("eps", 1e-5))),
        "gn": lambda v: Call("nn.GroupNorm", v["groups"], v.channels),
        "channel_conv": lambda v: Call("ChannelConv", v["kernel"]),
        "blurpool": lambda v: Call("BlurPool", **v.given(size=("size", 3), stride=("stride", 2))),
        "relu": lambda v: Call("nn.ReLU", inplace="True") if v.in_place else Call("nn.ReLU"),
        "sigmoid": lambda v: Call("nn.Sigmoid"),
        "hardsigmoid": lambda v: Call("nn.Hardsigmoid"),
        "silu": lambda v: Call("nn.SiLU", inplace="True") if v.in_place else Call("nn.SiLU"),
        "leakyrelu": _leaky,
        "dropout": lambda v: Call("nn.Dropout", p=v["p"]),
        "pad": _pad,
        "droppath": lambda v: Call("DropPath", v["p"]),
        "maxpool": _pool("nn.MaxPool2d"),
        "avgpool": _pool("nn.AvgPool2d"),
        "fc": lambda v: Call(
            "FlatLinear" if v.contained else "nn.Linear",
            v["in_features"],
            v["out"],
            **v.given(bias=("bias", 1)),
        ),
        "subsample": lambda v: Call("Subsample", v["stride"]),
        "zeropad": lambda v: Call("ZeroPad", v["channels"]),
    }
    MODULE = frozenset(
        {"np", "torch", "nn", "F", "INPUT_SHAPE", "NUM_CLASSES", "Subsample", "ZeroPad",
         "FlatLinear", "ChannelConv", "BlurPool", "DropPath", "OrderedDict", "StdConv2d",
         "build_model",
         "save_npz", "load_npz", "responses", "_unwrap"}
    )  # fmt: skip
    LOCALS = frozenset({"self", "in_channels", "downsample"})  # __init__'s own

    def __init__(self, net: Network):
        super().__init__(net)
        self.containers: set[str] = set()  # the nn.ModuleDicts above stages' module paths
        self.keyed = False  # the open nn.Sequential takes (name, module) pairs
        self.shortcuts: dict[str, list] = {}  # each block instance's shortcut nodes, in order
        for node in net.nodes():
            if node.role == "shortcut":
                self.shortcuts.setdefault(node.block, []).append(node)

    def block_name(self, template: BlockTemplate) -> str:
        base = class_name(template.kind)
        if not base.endswith("Block") and template.kind != "bottleneck":
            base += "Block"
        return base if template.residual or not template.has_add else "Plain" + base

    def flatten(self, value: str, label: str) -> Call:
        return Call("torch.flatten", value, "1")

    def unflatten(self, value: str, label: str) -> str:
        return f"{value}[:, :, None, None]"  # (N, C) back to (N, C, 1, 1)

    def merge(self, op: str, main: str, side: str, name: str) -> str:
        return f"{main} * {side}" if op == "mul" else f"torch.cat([{main}, {side}], 1)"

    def join(self, tensor: Tensor, start: str) -> list:
        return ["out = x"] * (tensor.value == "x") + [
            "if self.downsample is not None:",
            f"    identity = self.downsample({start})",
            "out = out + identity",
        ]

    def layer(self, out: Body, view: OpView, tensor: Tensor, spelled, stage=None) -> list:
        view.contained = stage is not None
        if stage is not None:  # a member of the stage's or group's nn.Sequential
            out.init.append(self.member(view.name, spelled(view)))
            return []
        out.init.append((f"self.{view.name}", spelled(view)))
        return tensor.apply(view.op, view.name, lambda value: Call(f"self.{view.name}", value))

    def nested(self, view: OpView, inner: BlockTemplate, op):
        def spell(v: OpView) -> Call:
            call = Call(self.block_names[inner.name], v.channels)
            call.args += self.arguments(inner, {p: v[p] for p in inner.params})
            if op.shortcut:
                parts = [OpView(s.op, s.name, s.arg, s.in_channels, v.names) for s in op.shortcut]
                call.args.append(("downsample=", self.sequential(parts)))
            return call

        return spell

    def sequential(self, parts: list[OpView]) -> Call:
        """A shortcut's nn.Sequential: nn.Identity() where an op that did nothing was left out,
        so each op keeps its index (timm's ResNet-D pool is downsample.0 even at stride 1);
        an OrderedDict of its ops by name where one has a label (timm's downsample.conv)."""
        names = [p.name.rpartition(".")[2] for p in parts]
        if not all(n.isdigit() for n in names):
            self.uses.add("OrderedDict")
            pairs = [Call("", literal(n), self.spell(p)) for n, p in zip(names, parts, strict=True)]
            return Call("nn.Sequential", Call("OrderedDict", Call("", *pairs, brackets="[]")))
        by_index = {int(n): p for n, p in zip(names, parts, strict=True)}
        return Call(
            "nn.Sequential",
            *(
                self.spell(by_index[i]) if i in by_index else "nn.Identity()"
                for i in range(max(by_index) + 1)
            ),
        )

    def finish(self, out: Body, template: BlockTemplate) -> None:
        signature = Call("def __init__", "self", "in_channels")
        signature.args += out.signature
        if template.residual:
            out.init.append("self.downsample = downsample")
            signature.args.append(("downsample=", "None"))
        out.signature = lay_out(signature, 4, "", ":")

    def comment(self, out: Body, text: str) -> None:
        out.init.append(text)

    def member(self, name: str, call: Call) -> list[str]:
        """One member of an open nn.Sequential: by position, or as a (name, module) pair."""
        if not self.keyed:
            return lay_out(call, 12, "", ",")
        return lay_out(Call("", literal(name.rpartition(".")[2]), call), 20, "", ",")

    def open(self, out: Body, tensor: Tensor, stage: str | None, names=()) -> None:
        if stage is None:
            return
        parts = stage.split(".")  # a stage's module path: nn.ModuleDicts down to it
        for end in range(1, len(parts)):
            if ".".join(parts[:end]) not in self.containers:
                self.containers.add(".".join(parts[:end]))
                out.init.append(f"{_attribute(parts[:end])} = nn.ModuleDict()")
        self.keyed = not all(n.rpartition(".")[2].isdigit() for n in names)
        if self.keyed:  # a group with labelled members, named as nn.Sequential keeps them
            self.uses.add("OrderedDict")
            out.init += [f"{_attribute(parts)} = nn.Sequential(", "    OrderedDict(", "        ["]
        else:
            out.init.append(f"{_attribute(parts)} = nn.Sequential(")

    def close(self, out: Body, tensor: Tensor, stage: str | None) -> None:
        if stage is not None:
            out.init += ["        ]", "    )", ")"] if self.keyed else [")"]
            self.keyed = False
            out.body += tensor.spatial() + [f"x = {_attribute(stage.split('.'))}(x)"]

    def instance(self, out: Body, tensor, inst: BlockInstance, count: int, stage) -> None:
        call = self.call(inst, str(self.net.node(inst.input).shape[0]))
        if inst.name in self.shortcuts:
            parts = [self.node_view(n) for n in self.shortcuts[inst.name]]
            call.args.append(("downsample=", self.sequential(parts)))
        if stage is None:
            out.init.append((f"self.{inst.name}", call))
            out.body.append(f"x = self.{inst.name}(x)")
            return
        if self.keyed:  # in a group with labelled members: each block under its number
            for i in range(int(inst.local), int(inst.local) + count):
                out.init.append(self.member(str(i), call))
            return
        starred = f"*[{call} for _ in range({count})],"
        if count > 1 and len(starred) + 12 <= LINE:
            out.init.append([" " * 12 + starred])
        elif count > 1:  # as ruff lays out a long comprehension
            loop = [" " * 16 + f"for _ in range({count})", " " * 12 + "],"]
            out.init.append([" " * 12 + "*[", *lay_out(call, 16), *loop])
        else:
            out.init.append(lay_out(call, 12, "", ","))


def _attribute(parts: list[str]) -> str:
    """The module at a path of the network: ``self.layer1``, ``self.stages["0"]["blocks"]``."""
    return f"self.{parts[0]}" + "".join(f"[{literal(p)}]" for p in parts[1:])


@register(TorchWriter.TARGET)
def files(net: Network) -> dict[str, str]:
    return TorchWriter(net).files()
