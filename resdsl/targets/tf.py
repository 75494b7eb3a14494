"""The TensorFlow target: Keras 3 model.py and a custom-loop train.py, in parity with PyTorch.

Block templates become functions of the Keras functional API; the network becomes `build_model()`,
written from the IR's sections and nodes. Layer names are the IR's names, so the
framework-neutral .npz files (IR names, PyTorch layout) move weights between the two targets.
Semantics follow the PyTorch target: explicit symmetric padding with "valid" convolutions and
pools, BN epsilon 1e-5 and momentum 0.9 (PyTorch's 0.1), and the same initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..emit import Call, lay_out, literal, register, render, source_file, where
from ..ir import (
    IN_CHANNELS,
    BlockInstance,
    BlockTemplate,
    Const,
    Network,
    Node,
    Shortcut,
    TemplateOp,
    params_of,
)
from .python import flag, is_default, param_names, py, size
from .training import train_files

TARGET = "tf"


@register(TARGET)
def files(net: Network) -> dict[str, str]:
    return {
        "model.py": render(TARGET, "model.py.j2", m=ModelView.of(net)),
        **train_files(TARGET, net),
    }


@dataclass
class BlockFunction:
    name: str  # basic_block
    kind: str
    residual: bool
    dropped_add: bool
    where: str
    signature: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)  # laid out at 4 spaces


@dataclass
class ModelView:
    network: str
    source: str
    input_shape: tuple
    classes: int
    blocks: list[BlockFunction]
    body: list[str]
    fc_inputs: list[tuple[str, tuple]]  # (fc layer, its input's C, H, W) for the npz layout
    branch_bns: list[str]  # every residual-branch BN, in layer order, for --log-responses
    uses: set[str]

    @classmethod
    def of(cls, net: Network) -> ModelView:
        nodes = net.nodes()
        uses = {n.op for n in nodes}
        zero_init = _zero_init(net)
        functions = [_block_function(net, t, zero_init, uses) for t in net.templates.values()]
        return cls(
            network=net.name,
            source=source_file(net.span, net.span),
            input_shape=net.input_shape,
            classes=net.classes,
            blocks=functions,
            body=_network_body(net, zero_init, uses),
            fc_inputs=[(n.name, net.node(n.inputs[0]).shape) for n in nodes if n.op == "fc"],
            branch_bns=[
                n.name for n in nodes if n.op == "bn" and n.role == "branch" and n.block is not None
            ],
            uses=uses,
        )


def _zero_init(net: Network) -> set[str]:
    """The templates that take `zero_init`: a residual branch ending in BN, or a nested one."""
    out: set[str] = set()
    for template in net.templates.values():  # nested templates come before their users
        ops = template.ops
        ends_in_bn = any(op.op == "add" and i and ops[i - 1].op == "bn" for i, op in enumerate(ops))
        nested = any(op.op == "block" and op.template in out for op in ops)
        if (template.residual and ends_in_bn) or nested:
            out.add(template.name)
    return out


class Tensor:
    """The tensor a function is computing, and whether an fc has flattened it to (N, C)."""

    def __init__(self, value: str, target: str, name, uses: set[str]):
        self.value, self.target, self.flat = value, target, False
        self.uses = uses
        self.name = name  # local name -> the expression of its layer name
        self.last_fc = ""

    def apply(self, op: str, call_of) -> list:
        """(target, call) pairs that apply an ``op``, flattening before an fc as it needs."""
        lines = []
        if op == "fc" and not self.flat:
            lines.append(Call("flatten", self.value, name=self.name(f"{call_of.local}.flatten")))
            self.value, self.flat = self.target, True
        elif op not in ("fc", "relu", "dropout"):
            lines += self.spatial()
        if op == "fc":
            self.last_fc = call_of.local
        lines.append(call_of(self.value))
        self.value = self.target
        return lines

    def spatial(self) -> list:
        if not self.flat:
            return []
        self.flat = False
        self.uses.add("unflatten")
        line = Call("unflatten", self.value, name=self.name(f"{self.last_fc}.unflatten"))
        self.value = self.target
        return [line]


class _Op:
    """A deferred call: what to apply once the input's name is known."""

    def __init__(self, local: str, make):
        self.local, self.make = local, make

    def __call__(self, value: str) -> Call:
        return self.make(value)


def _block_function(
    net: Network, template: BlockTemplate, zero_init: set[str], uses: set[str]
) -> BlockFunction:
    names = param_names(template)
    fn = BlockFunction(
        name=template.function_name,
        kind=template.kind,
        residual=template.residual,
        dropped_add=template.has_add and not template.residual,
        where=where(template.span, net.span),
    )

    def layer_name(local: str) -> str:
        return f'f"{{name}}.{local}"'

    tensor = Tensor("x", "out", layer_name, uses)
    ops = list(template.ops)
    body: list = ["identity = x"] if template.residual else []
    for index, op in enumerate(ops):
        if op.op == "add":
            body += tensor.spatial()
            body += ["if downsample is not None:", "    identity = downsample(x)"]
            body.append(Call("add", f"[{tensor.value}, identity]", name=layer_name("add")))
            tensor.value = "out"
            continue
        zero = template.residual and index + 1 < len(ops) and ops[index + 1].op == "add"
        zero = zero and op.op == "bn"

        def make(value, op=op, zero=zero):
            return _template_op(net, op, value, names, layer_name, zero, zero_init, uses)

        body += tensor.apply(op.op, _Op(op.name, make))
    body += tensor.spatial()
    body.append(f"return {tensor.value}")
    if _reads_in_channels(template):  # Keras layers infer their inputs; an expression may not
        body.insert(0, "in_channels = x.shape[-1]")
    fn.body = [
        line
        for item in body
        for line in ([" " * 4 + item] if isinstance(item, str) else lay_out(item, 4, "out = "))
    ]
    signature = Call("def " + fn.name, "x", *names.values(), "name")
    if fn.residual:
        signature.args.append(("downsample=", "None"))
    if template.name in zero_init:
        signature.args.append(("zero_init=", "False"))
    fn.signature = lay_out(signature, 0, "", ":")
    return fn


def _reads_in_channels(template: BlockTemplate) -> bool:
    """Whether an argument the function prints is an expression of its input's channels."""

    def reads(op: TemplateOp) -> bool:
        exprs = [e for _, e in op.args if e is not None]
        return any(IN_CHANNELS in params_of(e) for e in exprs) or any(map(reads, op.shortcut))

    return any(reads(op) for op in template.ops)


def _template_op(net, op: TemplateOp, value, names, layer_name, zero, zero_init, uses) -> Call:
    """One op inside a block function, over the block's parameters, applied to ``value``."""
    a = op.arg
    name = layer_name(op.name)
    if op.op == "conv":
        kw = {} if is_default(a["stride"], 1) else {"stride": py(a["stride"], names)}
        kw.update({} if is_default(a["pad"], 0) else {"padding": py(a["pad"], names)})
        kw.update({} if is_default(a["groups"], 1) else {"groups": py(a["groups"], names)})
        if not is_default(a["bias"], 0):
            kw["bias"] = flag(a["bias"], names)
        out, kernel = py(a["out"], names), py(a["kernel"], names)
        return Call("conv2d", value, out, kernel, **kw, name=name)
    if op.op == "bn":
        return Call("batch_norm", value, name=name, **({"zero": "zero_init"} if zero else {}))
    if op.op == "relu":
        return Call("relu", value, name=name)
    if op.op == "dropout":
        return Call("dropout", value, py(a["p"], names), name=name)
    if op.op in ("maxpool", "avgpool"):
        if a["kernel"] == Const(None):
            return Call("global_avg_pool", value, name=name)
        fn = "max_pool" if op.op == "maxpool" else "avg_pool"
        kernel, stride = py(a["kernel"], names), py(a["stride"], names)
        return Call(fn, value, kernel, stride=stride, padding=py(a["pad"], names), name=name)
    if op.op == "fc":
        kw = {} if is_default(a["bias"], 1) else {"bias": flag(a["bias"], names)}
        return Call("dense", value, py(a["out"], names), **kw, name=name)
    if op.op == "block":
        inner = net.templates[op.template]
        call = Call(inner.function_name, value)
        call.args += [(f"{py_name}=", py(a[p], names)) for p, py_name in inner.param_names]
        call.args.append(("name=", name))
        if op.shortcut:
            call.args.append(("downsample=", _symbolic_shortcut(op, names, layer_name, uses)))
        if op.template in zero_init:
            call.args.append(("zero_init=", "zero_init"))
        return call
    raise AssertionError(f"the tf target cannot express `{op.op}`: not an op of ops.py")


def _symbolic_shortcut(op: TemplateOp, names, layer_name, uses: set[str]) -> Call:
    """A nested block's shortcut, over the enclosing block's parameters."""
    name = layer_name(f"{op.name}.downsample")
    return _shortcut(op.plan, lambda expr: py(expr, names), name, uses)


def _shortcut(plan: Shortcut, value, name: str, uses: set[str]) -> Call:
    """The shortcut helper that makes ``plan``; ``value`` prints its stride and channels."""
    if plan.kind == "projection":
        return Call("projection", value(plan.channels), stride=value(plan.stride), name=name)
    uses.add("zeropad")  # pad_shortcut is defined with option A's layers
    kw = {} if plan.stride is None else {"stride": value(plan.stride)}
    kw.update({} if plan.channels is None else {"channels": value(plan.channels)})
    return Call("pad_shortcut", **kw, name=name)


# ---------------------------------------------------------------- the network (concrete)


def _network_body(net: Network, zero_init: set[str], uses: set[str]) -> list[str]:
    lines: list[str] = []
    tensor = Tensor("inputs", "x", literal, uses)

    def emit(items: list, indent: int = 4) -> None:
        for item in items:
            lines.extend(lay_out(item, indent, "x = "))

    for section in net.sections:
        label = f"stage {section.stage}" if section.kind == "stage" else section.kind
        lines.append(f"    # {label}: {where(section.span, net.span)}")
        if section.kind == "stage":
            emit(tensor.spatial())
        for entry in section.entries:
            if entry.kind == "op":
                node = net.node(entry.name)
                op = _Op(node.name, lambda value, node=node: _concrete(net, node, value))
                emit(tensor.apply(node.op, op))
                continue
            emit(tensor.spatial())
            inst = net.block(entry.name)
            if entry.count == 1:
                emit([_instance(net, inst, tensor.value, literal(inst.name), zero_init, uses)])
                tensor.value = "x"
                continue
            first = int(inst.local)
            bounds = f"{first}, {first + entry.count}" if first else str(entry.count)
            if tensor.value != "x":
                lines.append(f"    x = {tensor.value}")
                tensor.value = "x"
            lines.append(f"    for i in range({bounds}):")
            name = f'f"{section.container}.{{i}}"'
            emit([_instance(net, inst, "x", name, zero_init, uses)], indent=8)
    if not tensor.flat:
        last = net.output.name
        emit([Call("flatten", tensor.value, name=literal(f"{last}.flatten"))])
        tensor.value = "x"
    lines.append(f"    return keras.Model(inputs, {tensor.value}, name={literal(net.name)})")
    return lines


def _instance(net, inst: BlockInstance, value, name, zero_init, uses) -> Call:
    template = net.templates[inst.template]
    args = dict(inst.args)
    call = Call(template.function_name, value)
    call.args += [(f"{py_name}=", literal(args[p])) for p, py_name in template.param_names]
    call.args.append(("name=", name))
    if inst.shortcut.ops():
        name = literal(f"{inst.name}.downsample")
        call.args.append(("downsample=", _shortcut(inst.shortcut, str, name, uses)))
    if template.name in zero_init:
        call.args.append(("zero_init=", "zero_init_residual"))
    return call


def _concrete(net: Network, node: Node, value: str) -> Call:
    a = node.arg
    name = literal(node.name)
    if node.op == "conv":
        kw = {"stride": str(a["stride"])} if a["stride"] != 1 else {}
        kw.update({"padding": size(a["pad"])} if a["pad"] != (0, 0) else {})
        kw.update({"groups": str(a["groups"])} if a["groups"] != 1 else {})
        kw.update({"bias": "True"} if a["bias"] else {})
        return Call("conv2d", value, str(a["out"]), size(a["kernel"]), **kw, name=name)
    if node.op == "bn":
        return Call("batch_norm", value, name=name)
    if node.op == "relu":
        return Call("relu", value, name=name)
    if node.op == "dropout":
        return Call("dropout", value, repr(a["p"]), name=name)
    if node.op in ("maxpool", "avgpool"):
        if a["kernel"] is None:
            return Call("global_avg_pool", value, name=name)
        fn = "max_pool" if node.op == "maxpool" else "avg_pool"
        return Call(
            fn,
            value,
            size(a["kernel"]),
            stride=str(a["stride"]),
            padding=size(a["pad"]),
            name=name,
        )
    if node.op == "fc":
        kw = {} if a["bias"] else {"bias": "False"}
        return Call("dense", value, str(a["out"]), **kw, name=name)
    raise AssertionError(f"the tf target cannot express `{node.op}`: not an op of ops.py")
