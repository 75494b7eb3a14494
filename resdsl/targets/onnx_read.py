"""The ONNX target read back: ONNX nodes as the op table's ops, for ``resdsl import``.

Beside :data:`resdsl.targets.onnx.SPELL`, how every op that target writes reads back, and what
PyTorch's exporter writes for the modules resdsl's ops are.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ResdslError
from ..ops import OpProblem, average_counts, binomial, blur_padding
from ..reading import Op, real, refuse
from .onnx import EPSILON, pool_matrix

# ---------------------------------------------------------------- reading: nodes back to ops
#
# Beside SPELL, how ONNX nodes read back as the op table's ops: every op this target writes, and
# what PyTorch's exporter writes for the modules resdsl's ops are. A reader takes the graph being
# read and a node, and gives one of:
# - a Read: the node completes an op (a Conv, or the Mul that ends a SiLU);
# - the name of the tensor it passes on (a flatten, an identity, a dropout in eval);
# - None: a helper whose op a later node completes (the Sigmoid of a SiLU is an op until its Mul
#   takes it in; a ReduceMean of a weight standardisation is nothing until its Conv).
# What ends a graph as a helper is refused by the node that began it.


@dataclass
class Read:
    kind: str
    args: dict
    inputs: list[str]  # the tensors it reads, which earlier ops wrote
    weight: str | None = None  # its first tensor's name, which names its module
    absorbs: tuple[str, ...] = ()  # earlier ops' tensors it is made of: no longer ops of their own


class Graph:
    """An ONNX graph read in node order: its constants, the node that wrote each tensor, and the
    op (or helper node) holding each tensor's value."""

    def __init__(self, graph, arrays: dict):
        from onnx import numpy_helper

        self.initialisers = set(arrays)
        self.arrays = dict(arrays)  # and the Constant nodes' values
        for node in graph.node:
            if node.op_type == "Constant" and len(node.attribute) == 1:
                attr = node.attribute[0]
                if attr.name == "value":
                    self.arrays[node.output[0]] = numpy_helper.to_array(attr.t)
                elif attr.name in ("value_ints", "value_floats"):
                    values = attr.ints if attr.name == "value_ints" else attr.floats
                    self.arrays[node.output[0]] = list(values)
        self.writer = {out: node for node in graph.node for out in node.output}
        self.readers: dict[str, int] = {}
        for node in graph.node:
            for name in node.input:
                self.readers[name] = self.readers.get(name, 0) + 1
        self.made: dict[str, object] = {}  # tensor -> its Op, or the helper node that wrote it
        self.cause: dict[str, object] = {}  # a helper's tensor -> the node its helpers began at

    def const(self, name: str):
        """The value of a constant tensor (an initialiser's or a Constant node's), else None."""
        return self.arrays.get(name) if name else None

    def op(self, name: str) -> Op | None:
        value = self.made.get(name)
        return value if isinstance(value, Op) else None

    def node(self, name: str, *op_types: str):
        """The node that wrote ``name``, where it is one of ``op_types``; else None."""
        node = self.writer.get(name)
        return node if node is not None and node.op_type in op_types else None

    def alone(self, name: str) -> bool:
        """Whether one node reads ``name``, so that an op reading it may take it in."""
        return self.readers.get(name, 0) == 1


def read_graph(graph, arrays: dict, input_shape) -> list[Op]:
    """The ops of an ONNX graph, in order, through :data:`READ`."""
    shapes = {}
    for info in [*graph.value_info, *graph.output, *graph.input]:
        shapes[info.name] = tuple(d.dim_value for d in info.type.tensor_type.shape.dim)[1:]
    g = Graph(graph, arrays)
    (first,) = [i for i in graph.input if i.name not in arrays]
    start = Op("input", {}, "", "", shape=tuple(input_shape))
    g.made[first.name] = start
    ops = [start]
    for node in graph.node:
        if node.op_type == "Constant" or node.op_type == "Identity" and node.input[0] in arrays:
            continue
        reader = READ.get(node.op_type)
        if reader is None and node.op_type not in HELPERS:
            raise refuse(f"{_where(node)}: ONNX's {node.op_type} has no resdsl form")
        found = _read(reader, g, node)
        if isinstance(found, Read) and not all(g.op(name) for name in found.inputs):
            found = None  # it reads a helper: a helper itself
        out = node.output[0]
        if isinstance(found, str):
            g.made[out] = g.made.get(found)
            if found in g.cause:
                g.cause[out] = g.cause[found]
            continue
        if found is None:
            g.made[out] = node
            pending = [g.cause[name] for name in node.input if name in g.cause]
            g.cause[out] = pending[0] if pending else node
            continue
        for name in found.absorbs:
            taken = g.made.get(name)
            if isinstance(taken, Op) and taken in ops:
                ops.remove(taken)
        op = _op(node, found, [g.op(name) for name in found.inputs], shapes.get(out, ()))
        ops.append(op)
        g.made[out] = op
    (last,) = graph.output
    if not isinstance(g.made.get(last.name), Op):
        cause = g.cause.get(last.name)
        where = _where(cause) if cause is not None else last.name
        kind = cause.op_type if cause is not None else "output"
        raise refuse(f"{where}: ONNX's {kind} has no resdsl form")
    return ops


def _read(reader, g: Graph, node):
    """What ``reader`` makes of ``node``; a node whose inputs or attributes are unlike any the
    reader knows is refused by its name, not reported as the reader's own error."""
    if reader is None:
        return None
    try:
        return reader(g, node)
    except ResdslError:
        raise
    except Exception as exc:  # noqa: BLE001 - a node unlike any exporter writes
        raise refuse(
            f"{_where(node)}: ONNX's {node.op_type} with inputs {list(node.input)} and attributes "
            f"{sorted(a.name for a in node.attribute)} cannot be read "
            f"({type(exc).__name__}: {exc})"
        ) from None


def _op(node, found: Read, inputs: list[Op], shape: tuple) -> Op:
    """The op a Read makes, named by its weight (``layer1.0.conv1.weight``) or its node: this
    target's (``layer1.0.relu``) or PyTorch's exporter's (``/layer1/layer1.0/relu/Relu``)."""
    if found.weight and "." not in found.weight:
        raise refuse(
            f"{_where(node)}: its weight `{found.weight}` has lost its module's name",
            "export with torch.onnx.export(..., do_constant_folding=False): folding merges "
            "each BN into its conv and renames the weights",
        )
    if "/" in node.name:  # each level's qualified name: /layer1/layer1.0/conv1/Conv
        path = ""
        for part in node.name.strip("/").split("/")[:-1]:
            path = part if not path or part.startswith(path + ".") else f"{path}.{part}"
        scope = path
    else:
        path, scope = node.name, node.name.rpartition(".")[0]
    if found.weight:
        path = scope = found.weight.rpartition(".")[0]
    return Op(found.kind, found.args, path, scope, inputs, shape, weights=bool(found.weight))


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _where(node) -> str:
    return node.name or node.op_type


def _symmetric(node, kind: str) -> dict:
    """A window's stride, padding and dilation, which resdsl takes equal on both sides."""
    a = _attrs(node)
    top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
    strides, dilations = a.get("strides", [1, 1]), a.get("dilations", [1, 1])
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise refuse(f"{_where(node)}: a {kind} with auto_pad has no resdsl form")
    if top != bottom or left != right or len(set(strides)) > 1 or len(set(dilations)) > 1:
        raise refuse(f"{_where(node)}: a {kind} with asymmetric padding, strides or dilations")
    return {"stride": int(strides[0]), "pad": (int(top), int(left)), "dilation": int(dilations[0])}


def _read_conv(g: Graph, node) -> Read | None:
    x, w, *bias = node.input
    weight, ws = w, 0.0
    div = g.node(w, "Div")
    if div is not None:  # weight standardisation: (w - mean) / sqrt(var + eps)
        weight, ws = _standardised(g, div)
        if weight is None:
            return None
    array = g.const(weight)
    if array is None or getattr(array, "ndim", 0) != 4:
        return None  # a 1-D conv is a channel conv's, which its last Transpose completes
    if weight not in g.initialisers:
        return _blur(g, node, array)
    window = _symmetric(node, "Conv")
    args = {
        "out": int(array.shape[0]),
        "kernel": tuple(int(k) for k in array.shape[2:]),
        "stride": window["stride"],
        "pad": window["pad"],
        "groups": int(_attrs(node).get("group", 1)),
        "bias": int(bool(bias and bias[0])),
        "dilation": window["dilation"],
        "ws": ws,
    }
    return Read("conv", args, [x], weight)


def _standardised(g: Graph, div) -> tuple[str | None, float]:
    """The weight and eps of this target's standardisation of a conv's weight."""
    centred, std = g.node(div.input[0], "Sub"), g.node(div.input[1], "Sqrt")
    shifted = std and g.node(std.input[0], "Add")
    if centred is None or not shifted or centred.input[0] not in g.initialisers:
        return None, 0.0
    eps = next((g.const(n) for n in shifted.input if g.const(n) is not None), None)
    return (None, 0.0) if eps is None else (centred.input[0], real(eps))


def _blur(g: Graph, node, filt) -> Read | None:
    """A Conv by a constant binomial filter per channel, after reflect padding: a blur pool."""
    import numpy as np

    pad = g.node(node.input[0], "Pad")
    if pad is None or _attrs(pad).get("mode") not in (b"reflect", "reflect"):
        return None
    size, stride = int(filt.shape[-1]), int(_attrs(node).get("strides", [1, 1])[0])
    row = np.array(binomial(size))
    if filt.shape[1:] != (1, size, size) or not np.allclose(filt[0, 0], np.outer(row, row)):
        return None
    args = {"stride": stride, "size": size}
    pads, p = g.const(pad.input[1]), blur_padding(args)
    if pads is None or _ints(pads) != [0, 0, p, p, 0, 0, p, p]:
        return None
    return Read("blurpool", args, [pad.input[0]])


def _read_pad(g: Graph, node) -> Read | None:
    pads = g.const(node.input[1]) if len(node.input) > 1 else _attrs(node).get("pads")
    if pads is None or _attrs(node).get("mode", b"constant") not in (b"constant", "constant"):
        return None
    n0, c0, top, left, n1, c1, bottom, right = _ints(pads)
    value = g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else 0.0
    x = g.op(node.input[0])
    if value is None or x is None or n0 or n1 or c0:
        return None
    if (top, left, bottom, right) == (0, 0, 0, 0) and c1 > 0 and float(value) == 0:
        return Read("zeropad", {"channels": x.shape[0] + c1}, [node.input[0]])
    if c1 or (top, left) != (bottom, right):
        return None  # an average pool's padding before its rescaling, or no resdsl form
    return Read("pad", {"size": (top, left), "value": real(value)}, [node.input[0]])


def _read_slice(g: Graph, node) -> Read | None:
    """x[:, :, ::s, ::s]: option A's subsample."""
    starts, ends, axes, steps = (g.const(n) for n in [*node.input[1:], "", ""][:4])
    x = g.op(node.input[0])
    if x is None or axes is None or steps is None or sorted(_ints(axes)) != [2, 3]:
        return None
    if any(_ints(starts)) or len(set(_ints(steps))) != 1 or min(_ints(ends)) < max(x.shape[1:]):
        return None
    return Read("subsample", {"stride": _ints(steps)[0]}, [node.input[0]])


def _read_transpose(g: Graph, node) -> Read | None:
    """The last Transpose of a channel conv: NHWC rows through a 1-D conv, back to NCHW."""
    if _ints(_attrs(node).get("perm", [])) != [0, 3, 1, 2]:
        return None
    back = g.node(node.input[0], "Reshape")
    conv = back and g.node(back.input[0], "Conv")
    rows = conv and g.node(conv.input[0], "Reshape")
    first = rows and g.node(rows.input[0], "Transpose")
    if not first or _ints(_attrs(first).get("perm", [])) != [0, 2, 3, 1] or len(conv.input) > 2:
        return None
    weight = g.const(conv.input[1])
    if weight is None or weight.ndim != 3 or weight.shape[:2] != (1, 1):
        return None
    k = int(weight.shape[-1])
    if _ints(_attrs(conv).get("pads", [0, 0])) != [(k - 1) // 2] * 2:
        return None
    return Read("channel_conv", {"kernel": k}, [first.input[0]], conv.input[1])


def _read_add(g: Graph, node) -> Read | None:
    a, b = node.input
    if g.op(a) and g.op(b):
        return Read("add", {}, [a, b])
    return _group_norm(g, node)


def _group_norm(g: Graph, node) -> Read | None:
    """This target's group norm: x as groups, InstanceNormalization, back, * weight + bias."""
    scaled, shift = g.node(node.input[0], "Mul"), g.node(node.input[1], "Reshape")
    back = scaled and g.node(scaled.input[0], "Reshape")
    scale = scaled and g.node(scaled.input[1], "Reshape")
    norm = back and g.node(back.input[0], "InstanceNormalization")
    grouped = norm and g.node(norm.input[0], "Reshape")
    if not (grouped and scale and shift):
        return None
    weight, bias, groups = scale.input[0], shift.input[0], g.const(grouped.input[1])
    if weight not in g.initialisers or bias not in g.initialisers or groups is None:
        return None
    if abs(float(_attrs(norm).get("epsilon", 1e-5)) - EPSILON) > 1e-12:
        raise refuse(f"{_where(node)}: a group norm's eps is {EPSILON} in resdsl")
    return Read("gn", {"groups": _ints(groups)[1]}, [grouped.input[0]], weight)


def _read_mul(g: Graph, node) -> Read | None:
    a, b = node.input
    x, y = g.op(a), g.op(b)
    for main, gate in ((x, y), (y, x)):  # opset 17 has no Swish: x * Sigmoid(x)
        if main and gate and gate.kind == "sigmoid" and gate.inputs == [main]:
            name = b if gate is y else a
            if g.alone(name):
                return Read("silu", {}, [a if gate is y else b], absorbs=(name,))
    if x and y:
        return Read("mul", {}, [a, b])
    scale = g.const(b)
    return None if scale is None else _rescaled_pool(g, a, scale)


def _rescaled_pool(g: Graph, pooled: str, scale) -> Read | None:
    """This target's average pool in ceil mode or without the padding: its input padded, pooled,
    then rescaled by PyTorch's window counts, which tell which of the options it is."""
    import numpy as np

    pool = g.node(pooled, "AveragePool")
    pad = pool and g.node(pool.input[0], "Pad")
    pads = pad and g.const(pad.input[1])
    x = pad and g.op(pad.input[0])
    if x is None or pads is None or any(_attrs(pool).get("pads", [0])):
        return None
    _, _, ph, pw, _, _, bottom, right = _ints(pads)
    a = _attrs(pool)
    args = {"kernel": tuple(_ints(a["kernel_shape"])), "stride": _ints(a["strides"])[0]}
    args |= {"pad": (ph, pw), "include_pad": a.get("count_include_pad", 0)}
    # ceil mode where the pool says so; else the padding and the scale tell (floor first: where
    # the pool could not say so, its windows not fitting, the two may agree)
    for ceil in (1,) if a.get("ceil_mode", 0) else (0, 1):
        try:
            (eh, rows), (ew, cols) = average_counts({**args, "ceil": ceil}, x.shape)
        except OpProblem:
            continue
        want = args["kernel"][0] * args["kernel"][1] / np.outer(rows, cols)
        if (bottom, right) != (ph + eh, pw + ew) or np.shape(scale)[-2:] != want.shape:
            continue
        if np.allclose(scale, want, atol=1e-6):
            args["ceil"] = ceil
            return Read("avgpool", args, [pad.input[0]], absorbs=(pooled, pool.input[0]))
    return None


def _read_matmul(g: Graph, node) -> Read | None:
    """This target's adaptive average pool: a constant matrix averaging rows, then columns."""
    import numpy as np

    first = g.node(node.input[0], "MatMul")
    if first is None:  # the rows' MatMul: a helper until the columns' takes it in
        if g.const(node.input[0]) is not None and g.op(node.input[1]) is not None:
            return None
        raise refuse(f"{_where(node)}: ONNX's MatMul has no resdsl form but as an adaptive pool")
    rows, cols, x = g.const(first.input[0]), g.const(node.input[1]), g.op(first.input[1])
    if rows is None or cols is None or x is None or np.ndim(rows) != 2 or np.ndim(cols) != 2:
        raise refuse(f"{_where(node)}: ONNX's MatMul has no resdsl form but as an adaptive pool")
    size = (int(np.shape(rows)[0]), int(np.shape(cols)[1]))
    for n, m, k in (
        (x.shape[1], np.asarray(rows), size[0]),
        (x.shape[2], np.asarray(cols).T, size[1]),
    ):
        want = pool_matrix(n, k)
        if m.shape != want.shape or not np.allclose(m, want, atol=1e-6) or size == (1, 1):
            raise refuse(f"{_where(node)}: a MatMul that is not an adaptive average pool")
    return Read("adaptive_avgpool", {"size": size}, [first.input[1]])


def _read_pool(kind: str):
    def read(g: Graph, node) -> Read:
        a, window = _attrs(node), _symmetric(node, node.op_type)
        if window.pop("dilation") != 1:
            raise refuse(f"{_where(node)}: a {node.op_type} with a dilation has no resdsl form")
        args = {"kernel": tuple(_ints(a["kernel_shape"])), **window}
        if kind == "maxpool":
            return Read("maxpool", args | {"ceil": int(a.get("ceil_mode", 0))}, [node.input[0]])
        args |= {"ceil": int(a.get("ceil_mode", 0))}
        args |= {"include_pad": int(a.get("count_include_pad", 0))}
        return Read("avgpool", args, [node.input[0]])

    return read


def _read_gemm(g: Graph, node) -> Read:
    a, w = _attrs(node), g.const(node.input[1])
    if w is None or a.get("transB") != 1 or a.get("transA", 0) or a.get("alpha", 1.0) != 1:
        raise refuse(f"{_where(node)}: a Gemm that is not an fc (x W^T + b)")
    bias = int(len(node.input) > 2 and bool(node.input[2]))
    return Read("fc", {"out": int(w.shape[0]), "bias": bias}, [node.input[0]], node.input[1])


def _read_reshape(g: Graph, node) -> str | None:
    """A flatten before an fc, or an fc's output as (N, C, 1, 1): the tensor it reads."""
    shape = g.const(node.input[1])
    if g.op(node.input[0]) is None or shape is None:
        return None
    dims = _ints(shape)
    return node.input[0] if len(dims) == 2 or len(dims) == 4 and dims[2:] == [1, 1] else None


def _read_hardsigmoid(g: Graph, node) -> Read:
    a = _attrs(node)
    if abs(a.get("alpha", 0.2) - 1 / 6) > 1e-6 or abs(a.get("beta", 0.5) - 0.5) > 1e-6:
        raise refuse(f"{_where(node)}: a HardSigmoid other than PyTorch's (x / 6 + 1 / 2)")
    return Read("hardsigmoid", {}, [node.input[0]])


def _read_concat(g: Graph, node) -> Read | None:
    if _attrs(node).get("axis") != 1 or len(node.input) != 2 or g.op(node.input[1]) is None:
        return None
    return Read("concat", {"side": g.op(node.input[1]).shape[0]}, list(node.input))


def _one_op(kind: str, **attrs):
    """A node that is one op, its arguments its attributes: ``{arg: (attribute, default)}``."""

    def read(g: Graph, node) -> Read:
        a = _attrs(node)
        args = {arg: real(a.get(at, default)) for arg, (at, default) in attrs.items()}
        return Read(kind, args, [node.input[0]])

    return read


def _read_clip(g: Graph, node) -> Read:
    """Clip to [0, 6] (bounds as inputs, or as opset 6's attributes): a ReLU6."""
    a = _attrs(node)
    bounds = [g.const(name) for name in node.input[1:3]]
    low = a.get("min", bounds[0] if bounds else None)
    high = a.get("max", bounds[1] if len(bounds) > 1 else None)
    if low is None or high is None or float(low) != 0.0 or float(high) != 6.0:
        raise refuse(f"{_where(node)}: a Clip to other bounds than [0, 6] has no resdsl form")
    return Read("relu6", {}, [node.input[0]])


def _read_dropout(g: Graph, node) -> Read:
    """A Dropout and its ratio (0.5 where it has none, as ONNX's default)."""
    import numpy as np

    given = len(node.input) > 1 and node.input[1]
    ratio = g.const(node.input[1]) if given else 0.5
    if ratio is None or np.size(ratio) != 1 or not 0 <= float(np.ravel(ratio)[0]) < 1:
        raise refuse(f"{_where(node)}: a Dropout whose ratio is not one constant in [0, 1)")
    return Read("dropout", {"p": real(np.ravel(ratio)[0])}, [node.input[0]])


def _read_bn(g: Graph, node) -> Read:
    eps = real(_attrs(node).get("epsilon", 1e-5))
    return Read("bn", {"eps": eps}, [node.input[0]], node.input[1])


READ = {
    "Conv": _read_conv,
    "BatchNormalization": _read_bn,
    "Gemm": _read_gemm,
    "MaxPool": _read_pool("maxpool"),
    "AveragePool": _read_pool("avgpool"),
    "GlobalAveragePool": lambda g, node: Read("avgpool", {"kernel": None}, [node.input[0]]),
    "MatMul": _read_matmul,
    "Relu": _one_op("relu"),
    "Sigmoid": _one_op("sigmoid"),
    "HardSigmoid": _read_hardsigmoid,
    "HardSwish": lambda g, node: Read("hardswish", {}, [node.input[0]]),
    "Clip": _read_clip,
    "LeakyRelu": _one_op("leakyrelu", slope=("alpha", 0.01)),
    "Add": _read_add,
    "Mul": _read_mul,
    "Concat": _read_concat,
    "Slice": _read_slice,
    "Pad": _read_pad,
    "Transpose": _read_transpose,
    "Reshape": _read_reshape,
    "Flatten": lambda g, node: node.input[0],
    "Squeeze": lambda g, node: node.input[0],
    # this target's drop path, in eval
    "Identity": lambda g, node: node.input[0],
    "Dropout": _read_dropout,
}
# what this target writes only as part of an op above: nothing on its own
HELPERS = frozenset({"ReduceMean", "Sub", "Sqrt", "Div", "InstanceNormalization"})
