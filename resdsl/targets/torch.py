"""The PyTorch target: model.py in the shape of torchvision's resnet.py, and train.py.

Block classes are written from the IR's block templates (their parameters stay parameters); the
network class is written from the IR's sections and nodes (its values are concrete). Every IR node
except the input and the additions becomes a module whose attribute path is the node's name, so
state_dict keys are the IR names and torchvision's weights load with strict=True.
"""

from __future__ import annotations

import re

from ..emit import register
from ..ir import BlockInstance, BlockTemplate, Const, Network
from ..names import class_name
from ..ops import weighted
from ..reading import Op, needs, one, pair, refuse
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
        "relu6": lambda v: Call("nn.ReLU6", inplace="True") if v.in_place else Call("nn.ReLU6"),
        "hardswish": lambda v: Call("nn.Hardswish"),
        "silu": lambda v: Call("nn.SiLU", inplace="True") if v.in_place else Call("nn.SiLU"),
        "leakyrelu": _leaky,
        "dropout": lambda v: Call("nn.Dropout", p=v["p"]),
        "pad": _pad,
        "droppath": lambda v: Call("DropPath", v["p"]),
        "maxpool": _pool("nn.MaxPool2d"),
        "avgpool": _pool("nn.AvgPool2d"),
        "adaptive_avgpool": lambda v: Call("nn.AdaptiveAvgPool2d", v["size"]),
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

    def join(self, tensor: Tensor, start: str, container: str) -> list:
        return ["out = x"] * (tensor.value == "x") + [
            f"if self.{container} is not None:",
            f"    identity = self.{container}({start})",
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
                call.args.append((f"{inner.shortcut_name}=", self.sequential(parts)))
            return call

        return spell

    def group(self, out: Body, members: list, tensor: Tensor) -> list:
        """A block's group as one nn.Sequential (nested where its members are groups), called
        once: torchvision's ``self.conv`` of MobileNetV2's inverted residual."""
        root = members[0][1].name.partition(".")[0]
        for _, view, _ in members:
            view.contained = True
        calls = [(path.split("."), spelled(view)) for path, view, spelled in members]
        out.init.append((f"self.{root}", self.container(calls)))
        return tensor.apply("", root, lambda value: Call(f"self.{root}", value))

    def container(self, members: list[tuple[list[str], Call]]) -> Call:
        """An nn.Sequential of ``(path, call)`` members: by position where they are numbered 0,
        1, ... in order, else as an OrderedDict of their names; a longer path is a member of a
        nested one."""
        keys: list[str] = []
        inner: dict[str, list] = {}
        for path, call in members:
            if path[0] not in inner:
                keys.append(path[0])
                inner[path[0]] = []
            inner[path[0]].append((path[1:], call))
        parts = [
            items[0][1] if not items[0][0] else self.container(items)
            for items in (inner[k] for k in keys)
        ]
        if keys == [str(i) for i in range(len(keys))]:
            return Call("nn.Sequential", *parts)
        self.uses.add("OrderedDict")
        pairs = [Call("", literal(k), p) for k, p in zip(keys, parts, strict=True)]
        return Call("nn.Sequential", Call("OrderedDict", Call("", *pairs, brackets="[]")))

    def sequential(self, parts: list[OpView]) -> Call:
        """A shortcut's nn.Sequential: nn.Identity() where an op that did nothing was left out,
        so each op keeps its index (timm's ResNet-D pool is downsample.0 even at stride 1);
        an OrderedDict of its ops by name where one has a label (timm's downsample.conv)."""
        names = [p.name.rpartition(".")[2] for p in parts]
        if not all(n.isdigit() for n in names):
            return self.container([([n], self.spell(p)) for n, p in zip(names, parts, strict=True)])
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
            name = template.shortcut_name
            out.init.append(f"self.{name} = {name}")
            signature.args.append((f"{name}=", "None"))
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
        # positional where the members are 0, 1, ...; else (name, module) pairs in an OrderedDict
        self.keyed = [n.rpartition(".")[2] for n in names] != [str(i) for i in range(len(names))]
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

    def inner_group(self, out: Body, tensor: Tensor, entry, container: str) -> None:
        """A group inside a container: one member of it, an nn.Sequential of its own."""
        out.init.append(self.member(entry.name, self.group_call(entry)))

    def group_call(self, entry) -> Call:
        members: list[tuple[list[str], Call]] = []
        for member in entry.members:
            local = member.name.rpartition(".")[2]
            if member.kind == "group":
                members.append(([local], self.group_call(member)))
            elif member.kind == "op":
                view = self.node_view(self.net.node(member.name))
                view.contained = True
                members.append(([local], self.spell(view)))
            else:  # a block, or a run of equal ones under the numbers that follow
                first = int(local) if local.isdigit() else None
                call = self.instance_call(self.net.block(member.name))
                names = [local] if first is None else range(first, first + member.count)
                members += [([str(n)], call) for n in names]
        return self.container(members)

    def instance_call(self, inst: BlockInstance) -> Call:
        """The call that makes one block instance, with its shortcut's nn.Sequential."""
        call = self.call(inst, str(self.net.node(inst.input).shape[0]))
        if inst.name in self.shortcuts:
            parts = [self.node_view(n) for n in self.shortcuts[inst.name]]
            container = self.net.templates[inst.template].shortcut_name
            call.args.append((f"{container}=", self.sequential(parts)))
        return call

    def instance(self, out: Body, tensor, inst: BlockInstance, count: int, stage) -> None:
        call = self.instance_call(inst)
        if stage is None:
            out.init.append((f"self.{inst.name}", call))
            out.body.append(f"x = self.{inst.name}(x)")
            return
        if self.keyed:  # in a group with labelled members: each block under its number or label
            first = int(inst.local) if inst.local.isdigit() else None
            for local in [inst.local] if first is None else map(str, range(first, first + count)):
                out.init.append(self.member(local, call))
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


# ---------------------------------------------------------------- reading: modules back to ops
#
# Beside TRANSFORMS, how each module this target writes (and the kinds real models use: timm's
# BatchNormAct2d, StdConv2d, BlurPool2d, DropPath, EcaModule) reads back as the op table's ops.
# A reader takes the module and its path and gives its ops in order ([] for an identity). The
# table's keys are class names, so that no torch import is needed to hold it; a module whose
# class is not a key, but a kind of one (a subclass), is refused by name rather than guessed.


def _read_conv(m, path: str) -> list[tuple[str, dict]]:
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise refuse(f"{path}: a {type(m).__name__} with padding {m.padding!r} has no resdsl form")
    args = {
        "out": m.out_channels,
        "kernel": pair(m.kernel_size),
        "stride": one(m.stride, "stride", path),
        "pad": pair(m.padding),
        "groups": m.groups,
        "bias": int(m.bias is not None),
        "dilation": one(m.dilation, "dilation", path),
        "ws": float(getattr(m, "eps", 0.0)) if type(m).__name__ == "StdConv2d" else 0.0,
    }
    return [("conv", args)]


def _read_std_conv(m, path: str) -> list[tuple[str, dict]]:
    if not hasattr(m, "eps"):
        raise refuse(f"{path}: a StdConv2d without its eps has no resdsl form")
    return _read_conv(m, path)


def _read_norm(m, path: str) -> list[tuple[str, dict]]:
    kind = type(m).__name__
    batch = hasattr(m, "track_running_stats")
    if batch and not (m.affine and m.track_running_stats) or not batch and not m.affine:
        raise refuse(f"{path}: a {kind} without its affine weights or statistics")
    if batch:
        out = [("bn", {"eps": float(m.eps)})]
    elif m.eps != 1e-5:
        raise refuse(f"{path}: a group norm's eps is 1e-5 in resdsl, not {m.eps}")
    else:
        out = [("gn", {"groups": m.num_groups})]
    if kind not in ("BatchNorm2d", "GroupNorm"):  # timm's BatchNormAct2d, GroupNormAct
        drop, act = getattr(m, "drop", None), getattr(m, "act", None)
        if type(drop).__name__ != "Identity" or act is None:
            raise refuse(f"{path}: {kind}, a kind of norm, has no resdsl form")
        out += read_module(act, f"{path}.act")
    return out


def _read_maxpool(m, path: str) -> list[tuple[str, dict]]:
    if one(m.dilation, "dilation", path) != 1:
        raise refuse(f"{path}: a max pool with a dilation has no resdsl form")
    kernel = pair(m.kernel_size)
    stride = one(m.stride or kernel, "stride", path)
    args = {"kernel": kernel, "stride": stride, "pad": pair(m.padding), "ceil": int(m.ceil_mode)}
    return [("maxpool", args)]


def _read_avgpool(m, path: str) -> list[tuple[str, dict]]:
    if m.divisor_override is not None:
        raise refuse(f"{path}: an average pool with divisor_override has no resdsl form")
    kernel = pair(m.kernel_size)
    args = {
        "kernel": kernel,
        "stride": one(m.stride or kernel, "stride", path),
        "pad": pair(m.padding),
        "ceil": int(m.ceil_mode),
        "include_pad": int(m.count_include_pad),
    }
    return [("avgpool", args)]


def _adaptive(size, path: str) -> list[tuple[str, dict]]:
    """An adaptive average pool to ``size``: global average pooling to 1x1."""
    if size is None or None in (size if isinstance(size, (tuple, list)) else [size]):
        raise refuse(f"{path}: an adaptive pool that keeps a dimension has no resdsl form")
    size = pair(size)
    return (
        [("avgpool", {"kernel": None})]
        if size == (1, 1)
        else [("adaptive_avgpool", {"size": size})]
    )


def _read_adaptive(m, path: str) -> list[tuple[str, dict]]:
    return _adaptive(m.output_size, path)


def _read_pad(m, path: str) -> list[tuple[str, dict]]:
    left, right, top, bottom = m.padding
    if left != right or top != bottom:
        raise refuse(f"{path}: an asymmetric padding has no resdsl form")
    return [("pad", {"size": (top, left), "value": float(getattr(m, "value", 0.0))})]


def _read_eca(m, path: str) -> list[tuple[str, dict]]:
    """timm's EcaModule: a global pool, a 1-D conv across channels, a sigmoid, and its input
    times that gate (``mul@``: the join, of the module's own input)."""
    conv = getattr(m, "conv", None)
    if type(conv).__name__ != "Conv1d":
        raise refuse(f"{path}: an ECA module whose conv is not a Conv1d has no resdsl form")
    if conv.bias is not None or conv.in_channels != 1 or conv.out_channels != 1:
        raise refuse(f"{path}: an ECA module whose conv is not one 1-D filter")
    if (
        pair(conv.padding)[0] != (conv.kernel_size[0] - 1) // 2
        or type(getattr(m, "gate", None)).__name__ != "Sigmoid"
        or getattr(m, "conv2", None) is not None
    ):
        raise refuse(f"{path}: an ECA module with other padding or gate has no resdsl form")
    return [
        ("avgpool", {"kernel": None}),
        ("channel_conv@conv", {"kernel": conv.kernel_size[0]}),
        ("sigmoid", {}),
        ("mul@", {}),
    ]


def _read_blurpool(m, path: str) -> list[tuple[str, dict]]:
    if getattr(m, "pad_mode", "reflect") != "reflect":
        raise refuse(f"{path}: a blur pool padded by {m.pad_mode!r} has no resdsl form")
    size = getattr(m, "filt_size", None) or m.filt.shape[-1]  # timm's, or this target's
    return [("blurpool", {"stride": int(m.stride), "size": int(size)})]


def _simple(kind: str, **read):
    """A reader of a module that is one op, its arguments read off its attributes."""
    return lambda m, path: [(kind, {arg: cast(getattr(m, a)) for arg, (a, cast) in read.items()})]


def _unless_zero(kind: str, attr: str):
    """Dropout and drop path: the op, or nothing where its probability is 0."""
    return lambda m, path: [(kind, {"p": float(getattr(m, attr))})] if getattr(m, attr) else []


_read_fc = _simple("fc", out=("out_features", int), bias=("bias", lambda b: int(b is not None)))

READ = {
    "Conv2d": _read_conv,
    "StdConv2d": _read_std_conv,  # timm's and this target's
    "BatchNorm2d": _read_norm,
    "BatchNormAct2d": _read_norm,  # timm's, with its activation
    "GroupNorm": _read_norm,
    "GroupNormAct": _read_norm,
    "ChannelConv": _simple("channel_conv", kernel=("weight", lambda w: int(w.shape[-1]))),
    "BlurPool": _read_blurpool,
    "BlurPool2d": _read_blurpool,  # timm's
    "ConstantPad2d": _read_pad,
    "ZeroPad2d": _read_pad,
    "ReLU": _simple("relu"),
    "Sigmoid": _simple("sigmoid"),
    "Hardsigmoid": _simple("hardsigmoid"),
    "ReLU6": _simple("relu6"),
    "Hardswish": _simple("hardswish"),
    "SiLU": _simple("silu"),
    "LeakyReLU": _simple("leakyrelu", slope=("negative_slope", float)),
    "Dropout": _unless_zero("dropout", "p"),
    "DropPath": lambda m, path: (  # timm's (drop_prob) and this target's (p)
        _unless_zero("droppath", "drop_prob" if hasattr(m, "drop_prob") else "p")(m, path)
    ),
    "MaxPool2d": _read_maxpool,
    "AvgPool2d": _read_avgpool,
    "AdaptiveAvgPool2d": _read_adaptive,
    "Linear": _read_fc,
    "FlatLinear": _read_fc,  # this target's, inside a section
    "Subsample": _simple("subsample", stride=("stride", int)),
    "ZeroPad": _simple("zeropad", channels=("channels", int)),
    "Identity": lambda m, path: [],
    "Flatten": lambda m, path: [],
    "EcaModule": _read_eca,  # timm's
}


def is_leaf(m) -> bool:
    """Whether the trace keeps ``m`` whole: a module this table reads, or a kind of one (which
    :func:`read_module` then refuses by name)."""
    return any(cls.__name__ in READ for cls in type(m).__mro__)


def read_module(m, path: str) -> list[tuple[str, dict]]:
    """The ops a leaf module is, in order; [] for an identity. Refuses what has none."""
    kind = type(m).__name__
    if kind in READ:
        return READ[kind](m, path)
    base = next((c.__name__ for c in type(m).__mro__ if c.__name__ in READ), None)
    if base is not None:
        raise refuse(f"{path}: {kind}, a kind of {base}, has no resdsl form")
    raise refuse(f"{path}: {kind} has no resdsl form")


def _function_reads() -> dict:
    """Function and method calls (fx's call_function and call_method targets) as ops."""
    import operator

    import torch
    from torch import fx
    from torch.nn import functional

    def of(kind):
        return lambda node: [(kind, {})]

    def joined(kind):  # x + y, x * y of two tensors; a constant operand has no resdsl form
        def read(node):
            operands = [*node.args, *node.kwargs.values()]
            return [(kind, {})] if all(isinstance(a, fx.Node) for a in operands) else None

        read.joins = True  # read_function names its constant operand where it has one
        return read

    def mean(node):
        if node.kwargs.get("keepdim") and tuple(node.args[1]) == (2, 3):
            return [("avgpool", {"kernel": None})]
        return None

    def adaptive(node):
        size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        return _adaptive(size, node.name)

    def cat(node):  # torch.cat([x, side], 1): a side path's channels after the tensor's
        tensors, dim = node.args[0], node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        if dim != 1 or not isinstance(tensors, (list, tuple)) or len(tensors) != 2:
            return None
        return [("concat", {"side": int(tensors[1].meta["tensor_meta"].shape[1])})]

    def dropout(node):  # F.dropout(x, p): the op, or nothing at p=0 (timm's legacy SE-ResNets)
        p = node.kwargs.get("p", node.args[1] if len(node.args) > 1 else 0.5)
        if not isinstance(p, (int, float)) or not 0 <= p < 1:
            return None
        return [("dropout", {"p": float(p)})] if p else []

    table = {"mean": mean, functional.adaptive_avg_pool2d: adaptive, torch.cat: cat}
    table[functional.dropout] = dropout
    for kind, targets in {
        "add": (operator.add, operator.iadd, torch.add, "add", "add_"),
        "mul": (operator.mul, operator.imul, torch.mul, "mul", "mul_"),
    }.items():
        table |= {target: joined(kind) for target in targets}
    for kind, targets in {
        "relu": (functional.relu, torch.relu, "relu", "relu_"),
        "relu6": (functional.relu6,),
        "hardswish": (functional.hardswish,),
        "sigmoid": (torch.sigmoid, functional.sigmoid, "sigmoid"),
    }.items():
        table |= {target: of(kind) for target in targets}
    for target in (torch.flatten, "flatten", "view", "reshape", "squeeze"):
        table[target] = lambda node: []
    # x[:, :, None, None]: an fc's (N, out) as maps again (this target's, before a map's op)
    unflatten = (slice(None), slice(None), None, None)
    table[operator.getitem] = lambda node: [] if node.args[1:] == (unflatten,) else None
    return table


def read_function(node, scope: str) -> list[tuple[str, dict]]:
    """The ops a function or method call is; [] for a flatten or a reshape."""
    reader = _function_reads().get(node.target)
    found = reader(node) if reader else None
    if found is None:
        where = scope or "the network's forward()"
        name = getattr(node.target, "__name__", str(node.target))
        constants = [repr(a) for a in node.args if not hasattr(a, "op")]
        if getattr(reader, "joins", False) and constants:  # 0.5 * x
            raise refuse(f"{where}: a `{name}` with the constant {constants[0]} has no resdsl form")
        raise refuse(f"{where}: a call of `{name}` has no resdsl form")
    return found


def trace(model, input_shape) -> list[Op]:
    """The network's ops in order, with shapes from a forward pass on one random input: torch.fx
    keeps the modules this target reads whole, and each is read through :data:`READ`."""
    import contextlib
    import io

    torch = needs("torch", "'resdsl[torch]'")
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return is_leaf(m) or super().is_leaf_module(m, qualname)

    tracer = Tracer()
    try:
        graph = tracer.trace(model)
        module = fx.GraphModule(tracer.root, graph)  # its code: a keyword as a name fails here
    except Exception as exc:  # noqa: BLE001 - torch.fx refuses data-dependent control flow
        raise refuse(
            f"torch.fx cannot trace the model: {type(exc).__name__}: {str(exc).splitlines()[0]}",
            "resdsl import reads models that torch.fx.symbolic_trace can trace",
        ) from None
    inputs = [n for n in graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise refuse(f"the model's forward() takes {len(inputs)} inputs: a network takes one")
    try:
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(module).propagate(torch.randn(1, *input_shape))
    except Exception as exc:  # noqa: BLE001
        raise refuse(
            f"the model does not run on a {'x'.join(map(str, input_shape))} input: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from None
    modules = dict(model.named_modules())
    made: dict = {}  # fx node -> the Op holding its value (None: not a tensor)
    ops: list[Op] = []
    for node in graph.nodes:
        scope = _fx_scope(node)
        shape = _fx_shape(node)
        if node.op == "placeholder":
            op = Op("input", {}, "", "", shape=shape)
            ops.append(op)
            made[node] = op
            continue
        if node.op == "output":
            made["output"] = made.get(node.args[0])
            continue
        if node.op == "get_attr" or shape is None:  # sizes, shapes and other non-tensors
            made[node] = None
            continue
        tensors = [made[a] for a in node.all_input_nodes if made.get(a) is not None]
        if node.op == "call_module":
            found = read_module(modules[node.target], node.target)
        else:
            found = read_function(node, scope)
        if not found:  # an identity: the value is its input's
            made[node] = tensors[0] if tensors else None
            continue
        for i, (kind, args) in enumerate(found):
            path = node.target if node.op == "call_module" else scope
            inputs = tensors if i == 0 else [ops[-1]]
            kind, at, child = kind.partition("@")  # a module's own member, or its join
            if at and not child:  # the join of a gate a module is (ECA): its input times it
                inputs, path = [tensors[0], ops[-1]], path
            elif child:
                path = f"{path}.{child}"
            op = Op(kind, args, path, node.target if at else scope, inputs, shape)
            op.weights = node.op == "call_module" and weighted(kind)
            ops.append(op)
            made[node] = op
    if made.get("output") is None:
        raise refuse("the model's output is not a tensor the trace follows")
    if made["output"] is not ops[-1]:
        raise refuse(f"the model's output is not its last op ({made['output']!r})")
    return ops


def _fx_scope(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return re.sub(r"@\d+$", "", next(reversed(stack))) if stack else ""


def _fx_shape(node):
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return None
    return tuple(meta.shape[1:])
