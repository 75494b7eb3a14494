"""The TensorFlow target: Keras 3 model.py and a custom-loop train.py, in parity with PyTorch.

Block templates become functions of the Keras functional API; the network becomes `build_model()`,
written from the IR's sections and nodes. Layer names are the IR's names, so the
framework-neutral .npz files (IR names, PyTorch layout) move weights between the two targets.
Semantics follow the PyTorch target: explicit symmetric padding with "valid" convolutions and
pools, BN epsilon 1e-5 and momentum 0.9 (PyTorch's 0.1), and the same initialisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..emit import register, where
from ..ir import IN_CHANNELS, BlockInstance, BlockTemplate, Network, Shortcut, as_expr, params_of
from ..reading import Op, one, pair, real, refuse
from .layout import Call, lay_out, literal
from .python import Body, OpView, Tensor, Writer, py

PATH_PARAMS = {"out": "channels", "stride": "stride"}  # a shortcut's parameters, as printed


def _pool(name: str):
    def spell(v: OpView) -> Call:
        if v.global_pool:
            return Call("global_avg_pool", v.value, name=v.label)
        kernel, stride = v["kernel"], v["stride"]
        if name == "max_pool" and v.given(ceil=("ceil", 0)):  # a layer of this target's own
            return Call("ceil_max_pool", v.value, kernel, stride, v["pad"], name=v.label)
        kw = {"ceil": ("ceil", 0), "include_pad": ("include_pad", 1)}
        kw = v.given(**{k: a for k, a in kw.items() if a[0] in v.args})
        return Call(name, v.value, kernel, stride=stride, padding=v["pad"], **kw, name=v.label)

    return spell


def _conv(v: OpView) -> Call:
    kw = v.given(
        stride=("stride", 1),
        padding=("pad", 0),
        groups=("groups", 1),
        bias=("bias", 0),
        dilation=("dilation", 1),
        ws=("ws", 0.0),
    )
    func = "conv2d" if "dilation" not in kw and "ws" not in kw else "torch_conv2d"
    return Call(func, v.value, v["out"], v["kernel"], **kw, name=v.label)


def _bn(v: OpView) -> Call:
    kw = {"zero": "zero_init"} if v.zero else {}
    kw.update({"branch": "True"} if v.role == "branch" else {})
    kw.update(v.given(eps=("eps", 1e-5)))
    return Call("batch_norm", v.value, name=v.label, **kw)


# Each weighted op's tensors (the op table's rows, by their PyTorch names) as Keras holds them:
# the layer class that holds them, and each tensor's variable with the relation of its layout to
# PyTorch's: "oihw" (a conv's kernel, HWIO in Keras), "fc" (a Dense kernel: transposed, and where
# it reads a flattened map, NHWC's order of the values to NCHW's), "conv1d" (a channel conv's),
# or "" (the same array). model.py's torch_layout and load_npz, and the reader below, follow it.
VARIABLES = {
    "conv": ("layers.Conv2D", {"weight": ("kernel", "oihw"), "bias": ("bias", "")}),
    "bn": (
        "layers.BatchNormalization",
        {
            "weight": ("gamma", ""),
            "bias": ("beta", ""),
            "running_mean": ("moving_mean", ""),
            "running_var": ("moving_variance", ""),
        },
    ),
    "gn": ("layers.GroupNormalization", {"weight": ("gamma", ""), "bias": ("beta", "")}),
    "channel_conv": ("ChannelConv", {"weight": ("kernel", "conv1d")}),
    "fc": ("layers.Dense", {"weight": ("kernel", "fc"), "bias": ("bias", "")}),
}


def to_torch(array, layout: str, flat=None):
    """A Keras variable's array in PyTorch's layout (see :data:`VARIABLES`); ``flat`` is the
    (C, H, W) an fc reads flattened."""
    if layout == "oihw":
        return array.transpose(3, 2, 0, 1)
    if layout == "conv1d":
        return array.transpose(2, 1, 0)
    if layout == "fc":
        c, h, w = flat if flat is not None else (array.shape[0], 1, 1)
        return array.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(-1, c * h * w)
    return array


class KerasWriter(Writer):
    TARGET = "tf"
    TRANSFORMS = {
        "conv": _conv,
        "bn": _bn,
        "gn": lambda v: Call("group_norm", v.value, v["groups"], name=v.label),
        "channel_conv": lambda v: Call("channel_conv", v.value, v["kernel"], name=v.label),
        "blurpool": lambda v: Call(
            "blur_pool", v.value, **v.given(size=("size", 3), stride=("stride", 2)), name=v.label
        ),
        "relu": lambda v: Call("relu", v.value, name=v.label),
        "sigmoid": lambda v: Call("activation", v.value, '"sigmoid"', name=v.label),
        "hardsigmoid": lambda v: Call("activation", v.value, '"hard_sigmoid"', name=v.label),
        "relu6": lambda v: Call("activation", v.value, '"relu6"', name=v.label),
        "hardswish": lambda v: Call("activation", v.value, '"hard_silu"', name=v.label),
        "silu": lambda v: Call("activation", v.value, '"silu"', name=v.label),
        "leakyrelu": lambda v: Call(
            "leaky_relu", v.value, **v.given(slope=("slope", 0.01)), name=v.label
        ),
        "dropout": lambda v: Call("dropout", v.value, v["p"], name=v.label),
        "pad": lambda v: Call(
            "pad", v.value, v["size"], **v.given(value=("value", 0.0)), name=v.label
        ),
        "droppath": lambda v: Call("drop_path", v.value, v["p"], name=v.label),
        "maxpool": _pool("max_pool"),
        "avgpool": _pool("avg_pool"),
        "adaptive_avgpool": lambda v: Call("adaptive_avg_pool", v.value, v["size"], name=v.label),
        "fc": lambda v: Call("dense", v.value, v["out"], **v.given(bias=("bias", 1)), name=v.label),
        "subsample": lambda v: Call("subsample", v.value, v["stride"], name=v.label),
        "zeropad": lambda v: Call("zeropad", v.value, v["channels"], name=v.label),
    }
    MODULE = frozenset(
        {"math", "keras", "np", "layers", "ops", "INPUT_SHAPE", "NUM_CLASSES", "FC_INPUTS",
         "he_fan_out", "conv2d", "TorchConv2D", "torch_conv2d", "batch_norm", "group_norm",
         "ChannelConv", "channel_conv", "BlurPool", "blur_pool", "branch_bns",
         "relu", "activation", "leaky_relu", "add", "multiply", "concatenate", "dropout",
         "DropPath", "drop_path", "AvgPool", "AdaptiveAvgPool", "adaptive_avg_pool",
         "global_avg_pool", "flatten", "unflatten", "dense", "Pad", "max_pool", "avg_pool",
         "window_count", "MaxPool", "ceil_max_pool",
         "Subsample", "ZeroPad", "subsample", "zeropad", "pad", "build_model", "torch_layout",
         "VARIABLES", "variables", "to_torch", "from_torch", "save_npz", "load_npz", "responses"}
    )  # fmt: skip
    LOCALS = frozenset(
        {
            "x",
            "out",
            "gate",
            "side",
            "preact",
            "identity",
            "downsample",
            "in_channels",
            "name",
            "zero_init",
        }
    )
    INDENT = 4
    INPUT = "inputs"

    def __init__(self, net: Network):
        super().__init__(net)
        # the templates that take `zero_init`, filled as each is written (nested ones first)
        self.zero_init: set[str] = set()
        # each shortcut path's function and the names of its parameters
        self.path_names = {
            t.name: self.module.create_name(f"shortcut_{t.name.lower()}")
            for t in net.shortcuts.values()
        }
        self.path_params = {
            t.name: {p: PATH_PARAMS[p] for p in t.params} for t in net.shortcuts.values()
        }

    def extras(self) -> dict:
        """model.py's VARIABLES (the layer classes of the ops this network uses, with theirs),
        and the recursion limit building it needs: Keras builds a functional model by walking
        its graph recursively, a frame or two a layer (explicit paddings included); seen, 675
        IR nodes build under Python's default limit of 1,000 and 4,210 do not."""
        nodes = self.net.nodes()
        used = [op for op in VARIABLES if any(node.op == op for node in nodes)]
        held = [(VARIABLES[op][0], list(VARIABLES[op][1].items())) for op in used]
        layouts = {layout for _, variables in held for _, (_, layout) in variables}
        frames = 2 * len(nodes) + 1000 if len(nodes) > 800 else 0
        return {"variables": held, "layouts": layouts, "nodes": len(nodes), "frames": frames}

    def block_name(self, template: BlockTemplate) -> str:
        name = template.kind if template.kind.endswith("block") else f"{template.kind}_block"
        return name if template.residual or not template.has_add else "plain_" + name

    def block_label(self, local: str) -> str:
        return f'f"{{name}}.{local}"'

    def flatten(self, value: str, label: str) -> Call:
        return Call("flatten", value, name=label)

    def unflatten(self, value: str, label: str) -> Call:
        self.uses.add("unflatten")
        return Call("unflatten", value, name=label)

    def merge(self, op: str, main: str, side: str, name: str) -> Call:
        func = {"mul": "multiply", "concat": "concatenate"}[op]
        self.uses.add(func)
        return Call(func, f"[{main}, {side}]", name=self.block_label(name))

    def join(self, tensor: Tensor, start: str, container: str) -> list:
        add = Call("add", f"[{tensor.value}, identity]", name=self.block_label("add"))
        return ["if downsample is not None:", f"    identity = downsample({start})", ("out", add)]

    def layer(self, out: Body, view: OpView, tensor: Tensor, spelled, stage=None) -> list:
        def call(value: str) -> Call:
            view.value = value
            return spelled(view)

        return tensor.apply(view.op, view.name, call)

    def nested(self, view: OpView, inner: BlockTemplate, op):
        def spell(v: OpView) -> Call:
            call = Call(self.block_names[inner.name], v.value)
            call.args += self.arguments(inner, {p: v[p] for p in inner.params})
            call.args.append(("name=", v.label))
            if op.shortcut:
                name = self.block_label(f"{op.name}.{inner.shortcut_name}")
                call.args.append(("downsample=", self.shortcut(op.plan, v.names, name)))
            if inner.name in self.zero_init:
                call.args.append(("zero_init=", "zero_init"))
            return call

        return spell

    def shortcut(self, plan: Shortcut, names: dict[str, str], name: str) -> Call:
        """The call that makes ``plan``'s path function, its arguments over ``names``."""
        call = Call(self.path_names[plan.path])
        params = self.path_params[plan.path]
        call.args += [(f"{params[p]}=", py(as_expr(v), names)) for p, v in plan.args]
        call.args.append(("name=", name))
        return call

    def path(self, template: BlockTemplate) -> Body:
        """A shortcut path as a function that returns its shortcut, as blocks take it."""
        names = self.path_params[template.name]
        out = Body(
            self.path_names[template.name], template.kind, where(template.span, self.net.span)
        )
        tensor = Tensor(self, "x", "x", self.block_label)
        for op in template.ops:
            view = OpView(op.op, op.name, op.arg, op.in_channels, names)
            view.role, view.label = "shortcut", self.block_label(op.name)
            out.body += self.layer(out, view, tensor, self.spell)
        _infer_in_channels(out, template)
        out.body.append(f"return {tensor.value}")
        signature = Call("def " + out.name, *names.values(), "*", "name")
        out.signature = lay_out(signature, 0, "", ":")
        out.indent = 4
        return out

    def finish(self, out: Body, template: BlockTemplate) -> None:
        nested = any(op.template in self.zero_init for op in template.ops)
        if template.residual and out.last_bn or nested:  # a branch ending in BN, or one inside
            self.zero_init.add(template.name)
        _infer_in_channels(out, template)
        signature = Call("def " + out.name, "x")
        signature.args += out.signature + [("", "*"), ("", "name")]
        if template.residual:
            signature.args.append(("downsample=", "None"))
        if template.name in self.zero_init:
            signature.args.append(("zero_init=", "False"))
        out.signature = lay_out(signature, 0, "", ":")

    def open(self, out: Body, tensor: Tensor, stage: str | None, names=()) -> None:
        if stage is not None:
            out.body += tensor.spatial()

    def instance(self, out: Body, tensor, inst: BlockInstance, count: int, stage) -> None:
        name = literal(inst.name)
        if count > 1:
            first = int(inst.local)
            bounds = f"{first}, {first + count}" if first else str(count)
            if tensor.value != "x":
                out.body.append(f"x = {tensor.value}")
            out.body.append(f"for i in range({bounds}):")
            name = f'f"{stage}.{{i}}"'
        call = self.call(inst, tensor.value if count == 1 else "x")
        call.args.append(("name=", name))
        if inst.shortcut.kind == "path":
            container = self.net.templates[inst.template].shortcut_name
            label = literal(f"{inst.name}.{container}")
            call.args.append(("downsample=", self.shortcut(inst.shortcut, {}, label)))
        if inst.template in self.zero_init:
            call.args.append(("zero_init=", "zero_init_residual"))
        out.body.append(lay_out(call, 4 + 4 * (count > 1), "x = "))
        tensor.value = "x"

    def end(self, out: Body, tensor: Tensor) -> None:
        model = Call("keras.Model", "inputs", tensor.value, name=literal(self.net.name))
        out.body.append(f"return {model}")


def _infer_in_channels(out: Body, template: BlockTemplate) -> None:
    """Read ``in_channels`` off the input where an op prints it: Keras layers infer theirs."""
    if any(IN_CHANNELS in params_of(e) for op in template.ops for e in _exprs(op)):
        out.body.insert(0, "in_channels = x.shape[-1]")


def _exprs(op):
    """Every expression an op prints, its nested shortcut's arguments included."""
    yield from (e for _, e in op.args if e is not None)
    if op.plan is not None:
        yield from (as_expr(e) for _, e in op.plan.args)


@register(KerasWriter.TARGET)
def files(net: Network) -> dict[str, str]:
    return KerasWriter(net).files()


# ---------------------------------------------------------------- reading: Keras layers back to ops
#
# Beside TRANSFORMS, how each Keras layer this target writes, and the kinds keras.applications
# uses, reads back as the op table's ops. The table's keys are Keras' registered names ("Conv2D",
# this target's own "resdsl>Pad"); a reader takes the layer and the graph read so far and gives a
# Read, or a layer name where the layer only passes its input on (Flatten, a linear Activation).
# It runs where Keras is imported: in a process of its own (see resdsl.sources.KerasSource),
# since TensorFlow and PyTorch do not share one.


@dataclass
class Read:
    kind: str
    args: dict
    arrays: dict = field(default_factory=dict)  # its tensors in PyTorch's layout, by suffix
    absorbs: Op | None = None  # the padding before it, taken in: it reads what that read
    then: tuple = ()  # a fused activation: (kind, args) after it, in the same layer


class KerasGraph:
    """A Keras model read in layer order: each layer's name, the op holding its value, and how
    many layers read it."""

    def __init__(self, model):
        self.model = model
        self.made: dict[str, Op] = {}
        self.readers: dict[str, int] = {}
        for layer in model.layers:
            for name in inbound(layer):
                self.readers[name] = self.readers.get(name, 0) + 1

    def inputs(self, layer) -> list[Op]:
        return [self.made[name] for name in inbound(layer)]

    def padding(self, layer, value: float) -> Op | None:
        """The padding op a window layer takes in as its own: this layer's one input, a pad of
        ``value`` read by nothing else."""
        (name,) = inbound(layer)
        pad = self.made[name]
        if pad.kind == "pad" and pad.args["value"] == value and self.readers.get(name) == 1:
            return pad
        return None


def inbound(layer) -> list[str]:
    """The names of the layers whose outputs ``layer`` reads."""
    nodes = layer._inbound_nodes
    return [t._keras_history[0].name for t in nodes[0].input_tensors] if nodes else []


def _config(layer) -> dict:
    return layer.get_config()


def _same(layer, kernel, stride: int, dilation: int) -> tuple[int, int]:
    """Keras' "same" padding as resdsl's symmetric one, where it is symmetric."""
    _, h, w, _ = layer.input.shape
    pads = []
    for n, k in zip((h, w), kernel, strict=True):
        span = dilation * (k - 1) + 1
        total = max((-(-n // stride) - 1) * stride + span - n, 0)
        if total % 2:
            raise refuse(
                f'{layer.name}: "same" padding of {total} over {n} is asymmetric, which has no '
                "resdsl form",
                'pad explicitly (ZeroPadding2D) and use "valid", as PyTorch pads',
            )
        pads.append(total // 2)
    return tuple(pads)


def _window(g: KerasGraph, layer, kernel, stride: int, dilation: int, value: float):
    """A window layer's padding (its "same", or a padding it takes in) and what it reads."""
    c = _config(layer)
    if c.get("data_format", "channels_last") != "channels_last":
        raise refuse(f"{layer.name}: resdsl reads Keras models on NHWC (channels_last) input")
    if c.get("padding", "valid") == "same":
        return _same(layer, kernel, stride, dilation), None
    taken = g.padding(layer, value)
    return (taken.args["size"], taken) if taken else ((0, 0), None)


def _activation(layer) -> tuple:
    """A conv's or dense's fused activation, as an op after it."""
    name = _config(layer).get("activation", "linear")
    if name == "linear":
        return ()
    if name not in ACTIVATIONS or ACTIVATIONS[name] is None:
        raise refuse(f"{layer.name}: a fused activation `{name}` has no resdsl form")
    return ((ACTIVATIONS[name], {}),)


def _read_conv(g: KerasGraph, layer) -> Read:
    c = _config(layer)
    kernel = pair(c["kernel_size"])
    stride = one(c.get("step", c["strides"]), "stride", layer.name)
    dilation = one(c.get("dilation_rate", 1), "dilation", layer.name)
    if c.get("step") and one(c["strides"], "stride", layer.name) != 1:
        raise refuse(f"{layer.name}: a TorchConv2D with both a step and strides")
    pad, taken = _window(g, layer, kernel, stride, dilation, 0.0)
    depthwise = "depth_multiplier" in c
    channels = layer.input.shape[-1]
    args = {
        "out": channels * c["depth_multiplier"] if depthwise else c["filters"],
        "kernel": kernel,
        "stride": stride,
        "pad": pad,
        "groups": channels if depthwise else c.get("groups", 1),
        "bias": int(c["use_bias"]),
        "dilation": dilation,
        "ws": float(c.get("eps", 0.0)),
    }
    arrays = _arrays("conv", layer)
    if depthwise:  # (kh, kw, in, multiplier): output i * multiplier + m of input i
        kh, kw = kernel
        arrays["weight"] = layer.kernel.numpy().reshape(kh, kw, -1).transpose(2, 0, 1)[:, None]
    return Read("conv", args, arrays, taken, _activation(layer))


def _read_bn(g: KerasGraph, layer) -> Read:
    c = _config(layer)
    if c.get("axis") not in (-1, 3, [3], [-1]) or not (c["center"] and c["scale"]):
        raise refuse(
            f"{layer.name}: a BatchNormalization over other than the channels, or "
            "without its scale and offset, has no resdsl form"
        )
    return Read("bn", {"eps": real(c["epsilon"])}, _arrays("bn", layer))


def _read_gn(g: KerasGraph, layer) -> Read:
    c = _config(layer)
    if abs(c["epsilon"] - 1e-5) > 1e-12 or not (c["center"] and c["scale"]):
        raise refuse(f"{layer.name}: a group norm is resdsl's with eps 1e-5 and its weights")
    return Read("gn", {"groups": c["groups"]}, _arrays("gn", layer))


def _read_max(g: KerasGraph, layer) -> Read:
    c = _config(layer)
    kernel = pair(c["pool_size"])
    stride = one(c["strides"] or kernel, "stride", layer.name)
    pad, taken = _window(g, layer, kernel, stride, 1, float("-inf"))
    args = {"kernel": kernel, "stride": stride, "pad": pad}
    return Read("maxpool", args, absorbs=taken)


def _read_ceil_max(g: KerasGraph, layer) -> Read:
    """This target's MaxPool: PyTorch's ceil_mode, its padding its own."""
    c = _config(layer)
    kernel, stride, pad = pair(c["kernel_size"]), int(c["stride"]), pair(c["padding"])
    return Read("maxpool", {"kernel": kernel, "stride": stride, "pad": pad, "ceil": 1})


def _read_avg(g: KerasGraph, layer) -> Read:
    c = _config(layer)
    if "ceil" in c:  # this target's AvgPool: PyTorch's options, its padding its own
        kernel, stride = pair(c["kernel_size"]), int(c["stride"])
        args = {"kernel": kernel, "stride": stride, "pad": pair(c["padding"])}
        return Read(
            "avgpool", args | {"ceil": int(c["ceil"]), "include_pad": int(c["include_pad"])}
        )
    kernel = pair(c["pool_size"])
    stride = one(c["strides"] or kernel, "stride", layer.name)
    pad, taken = _window(g, layer, kernel, stride, 1, 0.0)
    same = c.get("padding") == "same"  # Keras' "same" counts only the input in each window
    args = {"kernel": kernel, "stride": stride, "pad": pad, "include_pad": int(not same)}
    return Read("avgpool", args, absorbs=taken)


def _read_global(g: KerasGraph, layer) -> Read:
    return Read("avgpool", {"kernel": None})


def _read_padding(g: KerasGraph, layer) -> Read:
    c = _config(layer)
    if c.get("data_format", "channels_last") != "channels_last":
        raise refuse(f"{layer.name}: resdsl reads Keras models on NHWC (channels_last) input")
    padding, value = c["padding"], float(c.get("value", 0.0))
    if isinstance(padding, int):
        size = (padding, padding)
    elif all(isinstance(p, int) for p in padding):
        size = tuple(padding)
    else:
        (top, bottom), (left, right) = padding
        if top != bottom or left != right:
            raise refuse(f"{layer.name}: an asymmetric padding has no resdsl form")
        size = (top, left)
    return Read("pad", {"size": size, "value": value})


def _read_dense(g: KerasGraph, layer) -> Read:
    c = _config(layer)
    if len(layer.input.shape) != 2:
        raise refuse(
            f"{layer.name}: a Dense on a {len(layer.input.shape) - 1}-d input "
            "(resdsl's fc reads a vector)"
        )
    (before,) = inbound(layer)
    flat = g.model.get_layer(before)
    shape = None
    if type(flat).__name__ == "Flatten" and len(flat.input.shape) == 4:
        _, h, w, channels = flat.input.shape  # the map it reads flattened, as C, H, W
        shape = (channels, h, w)
    args = {"out": c["units"], "bias": int(c["use_bias"])}
    return Read("fc", args, _arrays("fc", layer, shape), then=_activation(layer))


def _read_activation(g: KerasGraph, layer) -> Read | str:
    name = _config(layer)["activation"]
    if name == "linear":
        return inbound(layer)[0]
    if ACTIVATIONS.get(name) is None:
        raise refuse(f"{layer.name}: Keras' activation `{name}` has no resdsl form")
    return Read(ACTIVATIONS[name], {})


def _read_relu(g: KerasGraph, layer) -> Read:
    c = _config(layer)
    slope = float(c.get("negative_slope", 0.0))
    if c.get("max_value") == 6.0 and not slope and not c.get("threshold", 0.0):
        return Read("relu6", {})  # layers.ReLU(6.0), as keras.applications' MobileNetV2
    if c.get("max_value") is not None or c.get("threshold", 0.0):
        raise refuse(f"{layer.name}: a ReLU with a ceiling or a threshold has no resdsl form")
    return Read("leakyrelu", {"slope": real(slope)}) if slope else Read("relu", {})


def _read_join(kind: str):
    def read(g: KerasGraph, layer) -> Read:
        inputs = g.inputs(layer)
        if len(inputs) != 2:
            raise refuse(
                f"{layer.name}: a {type(layer).__name__} of {len(inputs)} tensors "
                "(resdsl's joins take two)"
            )
        if kind == "concat":
            if _config(layer).get("axis", -1) not in (-1, 3):
                raise refuse(f"{layer.name}: a Concatenate of other than the channels")
            return Read(kind, {"side": inputs[1].shape[0]})
        return Read(kind, {})

    return read


def _read_reshape(g: KerasGraph, layer) -> str:
    """An fc's output as a 1x1 map (this target's unflatten): the tensor it reads."""
    if tuple(layer.output.shape[1:3]) != (1, 1):
        raise refuse(
            f"{layer.name}: a Reshape to {tuple(layer.output.shape[1:])} has no resdsl form"
        )
    return inbound(layer)[0]


def _read_dropout(kind: str, attr: str):
    def read(g: KerasGraph, layer) -> Read | str:
        p = float(_config(layer)[attr])
        return Read(kind, {"p": real(p)}) if p else inbound(layer)[0]

    return read


def _read_channel_conv(g: KerasGraph, layer) -> Read:
    kernel = int(_config(layer)["kernel"])
    return Read("channel_conv", {"kernel": kernel}, _arrays("channel_conv", layer))


def _arrays(op: str, layer, flat=None) -> dict:
    """The layer's tensors of ``op`` in PyTorch's layout, by their names (:data:`VARIABLES`)."""
    _, held = VARIABLES[op]
    return {
        name: to_torch(getattr(layer, attr).numpy(), layout, flat)
        for name, (attr, layout) in held.items()
        if getattr(layer, attr, None) is not None
    }


def _arguments(kind: str, **read):
    """A layer that is one op, its arguments its configuration's: ``{arg: (key, cast)}``."""
    return lambda g, layer: Read(
        kind, {arg: cast(_config(layer)[key]) for arg, (key, cast) in read.items()}
    )


# Keras' activation names as ops (None: Keras has it, resdsl does not)
ACTIVATIONS = {
    "relu": "relu",
    "sigmoid": "sigmoid",
    "hard_sigmoid": "hardsigmoid",  # Keras 3's: relu6(x + 3) / 6, PyTorch's Hardsigmoid
    "silu": "silu",
    "swish": "silu",
    "softmax": None,
    "tanh": None,
    "gelu": None,
    "relu6": "relu6",
    "hard_silu": "hardswish",  # Keras 3's: x * relu6(x + 3) / 6, PyTorch's Hardswish
    "hard_swish": "hardswish",
    "elu": None,
}

READ = {
    "Conv2D": _read_conv,
    "DepthwiseConv2D": _read_conv,
    "resdsl>TorchConv2D": _read_conv,  # this target's: a stride beside a dilation, or ws
    "BatchNormalization": _read_bn,
    "GroupNormalization": _read_gn,
    "resdsl>ChannelConv": _read_channel_conv,
    "resdsl>BlurPool": _arguments("blurpool", stride=("stride", int), size=("size", int)),
    "ZeroPadding2D": _read_padding,
    "resdsl>Pad": _read_padding,
    "ReLU": _read_relu,
    "Activation": _read_activation,
    "LeakyReLU": _arguments("leakyrelu", slope=("negative_slope", real)),
    "MaxPooling2D": _read_max,
    "resdsl>MaxPool": _read_ceil_max,
    "AveragePooling2D": _read_avg,
    "resdsl>AvgPool": _read_avg,
    "GlobalAveragePooling2D": _read_global,
    "resdsl>AdaptiveAvgPool": _arguments("adaptive_avgpool", size=("size", pair)),
    "Dense": _read_dense,
    "Add": _read_join("add"),
    "Multiply": _read_join("mul"),
    "Concatenate": _read_join("concat"),
    "Dropout": _read_dropout("dropout", "rate"),
    "resdsl>DropPath": _read_dropout("droppath", "rate"),
    "resdsl>Subsample": _arguments("subsample", stride=("stride", int)),
    "resdsl>ZeroPad": _arguments("zeropad", channels=("channels", int)),
    "Flatten": lambda g, layer: inbound(layer)[0],
    "Reshape": _read_reshape,
}


# ---------------------------------------------------------------- reading: names as module paths
#
# A Keras model's layers have flat names. This target writes the IR's names (layer1.0.conv1),
# which are module paths as they stand; keras.applications' ResNets write `conv2_block1_1_conv`,
# read here as `conv2.0.conv1` (a stage, its blocks numbered from 0, a block's layers), with the
# shortcut's `0_conv` and `0_bn` as `downsample.0` and `.1`. Their weights go under the same paths.

BLOCK_NAME = re.compile(r"(?P<stage>[A-Za-z]\w*?\d+)_block(?P<n>\d+)_(?P<local>\w+)")
SHORTCUT_LOCALS = {"0_conv": "downsample.0", "0_bn": "downsample.1"}


def path_of(name: str) -> str:
    """A layer's module path: its name where it is one, else as :data:`BLOCK_NAME` reads it."""
    found = BLOCK_NAME.fullmatch(name)
    if found is None or "." in name:
        return name
    local = found["local"]
    numbered = re.fullmatch(r"(\d+)_([A-Za-z]\w*)", local)
    if local in SHORTCUT_LOCALS:
        local = SHORTCUT_LOCALS[local]
    elif numbered:
        local = f"{numbered[2]}{numbered[1]}"
    return f"{found['stage']}.{int(found['n']) - 1}.{local}"


def _automatic(layer) -> bool:
    """Whether the layer's name is one Keras made up (``max_pooling2d_3``)."""
    snake = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", type(layer).__name__)  # as Keras' own rule
    snake = re.sub(r"([a-z])([A-Z])", r"\1_\2", snake).lower()
    return re.fullmatch(rf"{snake}(_\d+)?", layer.name) is not None


def read_model(model) -> tuple[list[Op], dict]:
    """The ops of a Keras model, in order, through :data:`READ`, and their tensors in PyTorch's
    layout under their paths (the npz layout's names)."""
    import keras

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise refuse(
            f"a Keras model of {len(model.inputs)} inputs and {len(model.outputs)} "
            "outputs: a network takes one and gives one"
        )
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or not all(shape):
        raise refuse(f"a Keras input of shape {shape}: resdsl networks read H x W x C images")
    h, w, c = shape
    g = KerasGraph(model)
    start = Op("input", {}, "", "", shape=(c, h, w))
    g.made[model.inputs[0]._keras_history[0].name] = start
    ops, arrays = [start], {}
    for layer in model.layers:
        kind = keras.saving.get_registered_name(type(layer))
        if kind == "InputLayer":
            continue
        if len(layer._inbound_nodes) != 1:
            raise refuse(
                f"{layer.name}: a layer called {len(layer._inbound_nodes)} times "
                "(each of resdsl's layers is called once)"
            )
        reader = READ.get(kind)
        if reader is None:
            raise refuse(f"{layer.name}: Keras' {kind} has no resdsl form")
        found = reader(g, layer)
        if isinstance(found, str):  # it passes its input on
            g.made[layer.name] = g.made[found]
            continue
        if found.absorbs is not None:
            ops.remove(found.absorbs)
        path = path_of(layer.name)
        if _automatic(layer):
            path = _placed(g, layer, path)
        steps = [(found.kind, found.args), *found.then]
        inputs = found.absorbs.inputs if found.absorbs is not None else g.inputs(layer)
        for i, (op_kind, args) in enumerate(steps):
            weights = i == 0 and bool(found.arrays)
            scope = path if weights else path.rpartition(".")[0]
            op = Op(
                op_kind,
                args,
                path,
                scope,
                inputs if i == 0 else [ops[-1]],
                _chw(layer),
                weights=weights,
            )
            ops.append(op)
        arrays |= {f"{path}.{suffix}": a for suffix, a in found.arrays.items()}
        g.made[layer.name] = ops[-1]
    out = g.made.get(model.outputs[0]._keras_history[0].name)
    if out is not ops[-1]:
        raise refuse(f"the model's output is not its last op ({out!r})")
    return ops, arrays


def _placed(g: KerasGraph, layer, path: str) -> str:
    """An unnamed layer's path: where it is the one layer between a block's input and its
    addition (keras.applications' ResNet v2 shortcut, a 1x1 max pool), that block's shortcut."""
    readers = [x for x in g.model.layers if layer.name in inbound(x)]
    if len(readers) == 1 and type(readers[0]).__name__ == "Add":
        block = path_of(readers[0].name).rpartition(".")[0]
        if block:
            return f"{block}.downsample.0"
    return path


def _chw(layer) -> tuple:
    shape = tuple(layer.output.shape[1:])
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape
