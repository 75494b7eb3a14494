"""The TensorFlow target: Keras 3 model.py and a custom-loop train.py, in parity with PyTorch.

Block templates become functions of the Keras functional API; the network becomes `build_model()`,
written from the IR's sections and nodes. Layer names are the IR's names, so the
framework-neutral .npz files (IR names, PyTorch layout) move weights between the two targets.
Semantics follow the PyTorch target: explicit symmetric padding with "valid" convolutions and
pools, BN epsilon 1e-5 and momentum 0.9 (PyTorch's 0.1), and the same initialisation.
"""

from __future__ import annotations

from ..emit import register, where
from ..ir import IN_CHANNELS, BlockInstance, BlockTemplate, Network, Shortcut, as_expr, params_of
from .layout import Call, lay_out, literal
from .python import Body, OpView, Tensor, Writer, py

PATH_PARAMS = {"out": "channels", "stride": "stride"}  # a shortcut's parameters, as printed


def _pool(name: str):
    def spell(v: OpView) -> Call:
        if v.global_pool:
            return Call("global_avg_pool", v.value, name=v.label)
        kernel, stride = v["kernel"], v["stride"]
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
        "fc": lambda v: Call("dense", v.value, v["out"], **v.given(bias=("bias", 1)), name=v.label),
        "subsample": lambda v: Call("subsample", v.value, v["stride"], name=v.label),
        "zeropad": lambda v: Call("zeropad", v.value, v["channels"], name=v.label),
    }
    MODULE = frozenset(
        {"math", "keras", "np", "layers", "ops", "INPUT_SHAPE", "NUM_CLASSES", "FC_INPUTS",
         "he_fan_out", "conv2d", "TorchConv2D", "torch_conv2d", "batch_norm", "group_norm",
         "ChannelConv", "channel_conv", "BlurPool", "blur_pool", "branch_bns",
         "relu", "activation", "leaky_relu", "add", "multiply", "concatenate", "dropout",
         "DropPath", "drop_path", "AvgPool",
         "global_avg_pool", "flatten", "unflatten", "dense", "Pad", "max_pool", "avg_pool",
         "Subsample", "ZeroPad", "subsample", "zeropad", "pad", "build_model", "torch_layout",
         "_fc_to_torch", "_fc_from_torch", "save_npz", "load_npz", "responses"}
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

    def join(self, tensor: Tensor, start: str) -> list:
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
                name = self.block_label(f"{op.name}.downsample")
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
            label = literal(f"{inst.name}.downsample")
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
