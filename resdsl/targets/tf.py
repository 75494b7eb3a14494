"""The TensorFlow target: Keras 3 model.py and a custom-loop train.py, in parity with PyTorch.

Block kinds become functions of the Keras functional API, written from their definitions; the
network becomes `build_model()`, written from the IR. Layer names are the IR's names, so the
framework-neutral .npz files (IR names, PyTorch layout) move weights between the two targets.
Semantics follow the PyTorch target: explicit symmetric padding with "valid" convolutions and
pools, BN epsilon 1e-5 and momentum 0.9 (PyTorch's 0.1), and the same initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ops
from .. import syntax as ast
from ..emit import Call, TargetError, lay_out, register, render, where
from ..ir import BlockInstance, Network, Node
from .python import (
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

TARGET = "tf"
# names the generated block functions use themselves; a block parameter may not take them
RESERVED = {"x", "out", "identity", "name", "downsample", "zero_init", "layers", "keras", "ops"}


@register(TARGET)
def files(net: Network) -> dict[str, str]:
    return {
        "model.py": render(TARGET, "model.py.j2", m=ModelView.of(net)),
        "train.py": render(TARGET, "train.py.j2", t=train_view(net)),
    }


@dataclass
class BlockFunction:
    name: str  # basic_block
    residual: bool
    where: str
    header: str
    signature: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)  # laid out at 4 spaces
    zero_init: bool = False  # the branch ends in a BN that zero_init_residual zeroes


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
        functions = _block_functions(net)
        body = _network_body(net, functions)
        nodes = net.nodes()
        return cls(
            network=net.name,
            source=where(net.span, net.span).rsplit(":", 1)[0],
            input_shape=net.input_shape,
            classes=net.classes,
            blocks=list(functions.values()),
            body=body,
            fc_inputs=[(n.name, net.node(n.inputs[0]).shape) for n in nodes if n.op == "fc"],
            branch_bns=_branch_bns(net),
            uses={n.op for n in nodes},
        )


def _function_name(kind: str, residual: bool, has_add: bool) -> str:
    base = kind if kind.endswith("block") else f"{kind}_block"
    return base if residual or not has_add else f"plain_{base}"


def _block_functions(net: Network) -> dict[tuple[str, bool], BlockFunction]:
    out: dict[tuple[str, bool], BlockFunction] = {}
    for inst in net.blocks:
        key = (inst.kind, inst.shortcut not in ("none", "plain"))
        if key not in out:
            out[key] = _block_function(net, net.definitions[inst.kind], residual=key[1])
    return out


def _block_function(net: Network, definition: ast.BlockDef, residual: bool) -> BlockFunction:
    params = [p.name for p in definition.params]
    for p in definition.params:
        if p.name in RESERVED:
            raise TargetError(
                f"the tf target uses the name `{p.name}` itself; rename this parameter", p.span
            )
    has_add = any(isinstance(s, ast.Add) for s in definition.body)
    header = definition.span.source.line(definition.span.line).strip().rstrip("{ ").strip()
    fn = BlockFunction(
        name=_function_name(definition.name, residual, has_add),
        residual=residual and has_add,
        where=where(definition.span, net.span),
        header=header,
    )
    counts: dict[str, int] = {}
    value = "x"
    last_bn = None
    lines: list[tuple[str, object]] = []  # (target variable, expression)
    for stmt in definition.body:
        if isinstance(stmt, ast.Add):
            if fn.residual:
                if last_bn is not None:
                    fn.zero_init = True
                    lines[-1] = (lines[-1][0], _with_zero_init(lines[-1][1]))
                lines.append(("if", "downsample"))
                lines.append(("out", Call("add", f"[{value}, identity]", name='f"{name}.add"')))
                value = "out"
            continue
        if stmt.name in net.definitions or stmt.name not in ops.OPS:
            raise TargetError(
                f"the tf target cannot yet express block `{definition.name}` calling "
                f"`{stmt.name}` inside it; write its layers out instead",
                stmt.span,
            )
        for _ in range(literal_repeat(stmt)):
            attr = next_name(counts, stmt.name)
            lines.append(("out", _symbolic_layer(stmt, value, f'f"{{name}}.{attr}"', params)))
            value = "out"
            last_bn = attr if stmt.name == "bn" else None
    body: list[str] = ["identity = x"] if fn.residual else []
    for target, expr in lines:
        if target == "if":
            body += ["if downsample is not None:", "    identity = downsample(x)"]
        else:
            body.append((target, expr))
    body.append(f"return {value}")
    fn.body = [
        line
        for item in body
        for line in (
            [" " * 4 + item] if isinstance(item, str) else lay_out(item[1], 4, f"{item[0]} = ")
        )
    ]
    signature = Call("def " + fn.name, "x", *params, "name")
    if fn.residual:
        signature.args.append(("downsample=", "None"))
    if fn.zero_init:
        signature.args.append(("zero_init=", "False"))
    fn.signature = lay_out(signature, 0, "", ":")
    return fn


def _with_zero_init(expr: Call) -> Call:
    expr.args.append(("zero=", "zero_init"))
    return expr


def _symbolic_layer(stmt: ast.Call, value: str, name: str, params) -> Call:
    """One primitive inside a block function, applied to ``value``."""
    args = symbolic_args(stmt)
    op = stmt.name
    if op == "conv":
        pad = args["pad"]
        pad = default_pad(args["kernel"], op, params) if pad is None else size(pad, params)
        kw = {}
        kw.update(keyword_arg("stride", args["stride"], 1, params))
        kw.update({"padding": pad} if pad != "0" else {})
        kw.update(keyword_arg("groups", args["groups"], 1, params))
        if flag(args["bias"], params) != "False":
            kw["bias"] = flag(args["bias"], params)
        out = py_expr(args["out"], params)
        return Call("conv2d", value, out, size(args["kernel"], params), **kw, name=name)
    if op == "bn":
        return Call("batch_norm", value, name=name)
    if op == "relu":
        return Call("relu", value, name=name)
    if op == "dropout":
        return Call("dropout", value, size(args["p"], params), name=name)
    if op in ("maxpool", "avgpool"):
        if args["kernel"] is None:
            return Call("global_avg_pool", value, name=name)
        pad = args["pad"]
        pad = default_pad(args["kernel"], op, params) if pad is None else size(pad, params)
        fn = "max_pool" if op == "maxpool" else "avg_pool"
        kernel, stride = size(args["kernel"], params), size(args["stride"], params)
        return Call(fn, value, kernel, stride=stride, padding=pad, name=name)
    raise TargetError(f"the tf target cannot use `{op}` inside a block", stmt.span)


# ---------------------------------------------------------------- the network (concrete)


def _network_body(net: Network, functions) -> list[str]:
    blocks = {b.name: b for b in net.blocks}
    owned = members(net)
    calls: list[tuple] = []  # (comment, call, loop key or None), in order
    section = None
    flat = False
    value = "inputs"
    for node in net.nodes():
        if node.op == "input":
            continue
        if node.block is None:
            if "." in node.name:
                raise TargetError(
                    "the tf target cannot yet express a layer directly inside a stage; "
                    "wrap it in a block",
                    node.span,
                )
            text = f"{node.path.split(' › ')[0]}: {where(node.span, net.span)}"
            if node.op == "fc" and not flat:
                calls.append((text, Call("flatten", value, name=f'"{node.name}.flatten"'), None))
                value, flat = "x", True
            calls.append((text, _concrete(net, node, value), None))
            value = "x"
            continue
        inst = blocks.get(node.block)
        if inst is None or node is not owned[node.block][0]:
            continue
        if "." in inst.name and inst.stage is None:
            raise TargetError("the tf target cannot yet express nested blocks", inst.span)
        text = (
            f"stage {inst.stage}: {where(inst.span, net.span)}"
            if inst.stage
            else where(inst.span, net.span)
        )
        calls.append((text, *_instance(net, inst, functions, owned[inst.name], value)))
        value = "x"
    lines: list[str] = []
    runs = _runs(calls)
    for text, group in runs:
        if text != section:
            lines.append(f"    # {text}")
            section = text
        lines += group
    lines.append(f"    return keras.Model(inputs, {value}, name={net.name!r})".replace("'", '"'))
    return lines


def _runs(calls) -> list[tuple[str, list[str]]]:
    """Lay out each call; runs of blocks that differ only in their index become a loop."""
    out = []
    i = 0
    while i < len(calls):
        text, call, key = calls[i]
        j = i + 1
        while key and j < len(calls) and calls[j][2] == (key[0], key[1], key[2] + j - i):
            j += 1
        if j - i > 1:
            template = calls[i][1].loop_template
            bounds = f"{key[2]}, {key[2] + j - i}" if key[2] else f"{j - i}"
            loop = [f"    for i in range({bounds}):"]
            out.append((text, loop + lay_out(template, 8, "x = ")))
        else:
            out.append((text, lay_out(call, 4, "x = ")))
        i = j
    return out


def _instance(net, inst: BlockInstance, functions, nodes: list[Node], value: str):
    """The call of one block instance, and a key that equal neighbours share (to make loops)."""
    fn = functions[(inst.kind, inst.shortcut not in ("none", "plain"))]
    kwargs = {k: repr(v) for k, v in inst.args}
    shortcut = [n for n in nodes if n.role == "shortcut"]
    extra = {}
    if shortcut:
        extra["downsample"] = _shortcut(shortcut, f"{inst.name}.downsample")
    if fn.zero_init:
        extra["zero_init"] = "zero_init_residual"
    call = Call(fn.name, value, **kwargs, name=f'"{inst.name}"', **extra)
    if inst.stage is None or shortcut:
        return call, None
    stage, index = inst.name.split(".")
    call.loop_template = Call(fn.name, "x", **kwargs, name=f'f"{stage}.{{i}}"', **extra)
    return call, (stage, str(call.loop_template), int(index))


def _shortcut(nodes: list[Node], name: str) -> Call:
    if nodes[0].op == "conv":
        a = nodes[0].arg
        return Call("projection", str(a["out"]), stride=str(a["stride"]), name=f'"{name}"')
    stride = next((n.arg["stride"] for n in nodes if n.op == "subsample"), 1)
    channels = next((n.arg["channels"] for n in nodes if n.op == "zeropad"), None)
    kw = {"stride": str(stride)} if stride != 1 else {}
    kw.update({"channels": str(channels)} if channels is not None else {})
    return Call("pad_shortcut", **kw, name=f'"{name}"')


def _concrete(net: Network, node: Node, value: str) -> Call:
    a = node.arg
    name = f'"{node.name}"'
    if node.op == "conv":
        kw = {"stride": str(a["stride"])} if a["stride"] != 1 else {}
        kw.update({"padding": pair(a["pad"])} if a["pad"] != (0, 0) else {})
        kw.update({"groups": str(a["groups"])} if a["groups"] != 1 else {})
        kw.update({"bias": "True"} if a["bias"] else {})
        return Call("conv2d", value, str(a["out"]), pair(a["kernel"]), **kw, name=name)
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
            pair(a["kernel"]),
            stride=str(a["stride"]),
            padding=pair(a["pad"]),
            name=name,
        )
    if node.op == "fc":
        kw = {} if a["bias"] else {"bias": "False"}
        return Call("dense", value, str(a["out"]), **kw, name=name)
    raise TargetError(f"the tf target cannot express `{node.op}` here", node.span)


def _branch_bns(net: Network) -> list[str]:
    """The BNs of each residual branch (before the addition), in layer order."""
    return [
        n.name for n in net.nodes() if n.op == "bn" and n.role == "branch" and n.block is not None
    ]
