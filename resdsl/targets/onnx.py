"""The ONNX target: model.onnx, the network's inference graph with its weights, from the IR alone.

Each IR node becomes one ONNX node of its name (``layer1.0.conv1``) writing a tensor of that name;
weights are initialisers named as in the npz and the state_dict (``layer1.0.bn1.running_mean``).
The semantics are PyTorch's in eval mode: explicit symmetric padding, floor rounding, max pools
padded with -inf, average pools counting the padding, BN with epsilon 1e-5, dropout
as ONNX's Dropout (the identity in inference) and drop path as Identity.
The input is ``input`` (N, C, H, W), N symbolic; the output ``logits`` (N, classes). An op the
table marks ``flattens`` (fc) flattens its input (``fc.flatten``) and leaves (N, out); the
``pointwise`` ones keep that flat, others read it as (N, out, 1, 1) (``fc.unflatten``).

The weights come from either target's save_npz, or are drawn as the PyTorch target's
build_model() draws them, from a fixed seed: the same spec and weights give the same bytes.
onnx (with numpy) is the `onnx` extra, imported only when this target runs.
"""

from __future__ import annotations

import json

from ..emit import TargetError, register, source_file
from ..identity import KEY, identity
from ..ir import Network, Node
from ..ops import OPS, adaptive_bins, average_counts, binomial, blur_padding
from .weights import checked, fresh

TARGET = "onnx"
OPSET = 17
IR_VERSION = 8  # the oldest IR version that carries opset 17, so older runtimes load it too
EPSILON = 1e-5  # PyTorch's GroupNorm (a BN's is its own argument)
SEED = 0  # the fresh weights' generator
BATCH = "N"  # the symbolic batch dimension
INPUT, OUTPUT = "input", "logits"


@register(TARGET)
def files(net: Network, weights=None) -> dict[str, bytes]:
    """``{"model.onnx": bytes}``. ``weights`` is a save_npz file (a path) or a mapping of arrays
    under the same names; without it, fresh weights as the PyTorch target's build_model()."""
    try:
        import onnx  # noqa: F401  (and numpy, which onnx needs)
    except ImportError:
        message, hint = "the onnx target needs the onnx package", "pip install 'resdsl[onnx]'"
        raise TargetError(message, hint=hint, code="RDS406") from None
    arrays = fresh(net, SEED) if weights is None else checked(net, weights)
    return {"model.onnx": _Graph(net, arrays).model().SerializeToString()}


# ---------------------------------------------------------------- the graph


class _Graph:
    """The ONNX graph being written, in node order; knows which tensors an fc left flat."""

    def __init__(self, net: Network, arrays: dict):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.net, self.arrays, self.nodes, self.initializers = net, arrays, [], []
        self.owned: dict[str, list[str]] = {}  # IR node -> its parameters, in the op's order
        for name in arrays:
            self.owned.setdefault(name.rpartition(".")[0], []).append(name)
        self.flat: set[str] = set()  # IR nodes whose tensor is (N, C): fc outputs, relus of them
        self.maps: dict[str, str] = {}  # a flat tensor reshaped to (N, C, 1, 1), once needed

    def model(self):
        from onnx import TensorProto

        helper = self.helper
        first, *nodes = self.net.nodes()
        self.maps[first.name] = INPUT  # the input node writes the graph's input
        for node in nodes:  # the op table says which ops flatten and which work on flat tensors
            row = OPS[node.op]
            inputs = [self.read(name, row.pointwise) for name in node.inputs]
            if row.flattens and node.inputs[0] not in self.flat:
                inputs = [self.add("Flatten", inputs, f"{node.name}.flatten", axis=1)]
            SPELL[node.op](self, node, inputs)
            if row.flattens or row.pointwise and node.inputs[0] in self.flat:
                self.flat.add(node.name)
        last = self.net.output
        if last.name in self.flat:
            self.nodes[-1].output[0] = OUTPUT  # the last node's op writes the logits itself
            nodes.pop()
        else:
            self.add(
                "Flatten", [self.read(last.name, False)], f"{last.name}.flatten", OUTPUT, axis=1
            )

        def info(name: str, dims) -> object:
            return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, *dims])

        graph = helper.make_graph(
            self.nodes,
            self.net.name,
            [info(INPUT, self.net.input_shape)],
            [info(OUTPUT, [self.net.classes])],
            self.initializers,
            doc_string=f"{self.net.name}, from {source_file(self.net.span, self.net.span)}",
            value_info=[info(n.name, n.shape[: 1 if n.name in self.flat else 3]) for n in nodes],
        )
        opset = [helper.make_opsetid("", OPSET)]
        model = helper.make_model(
            graph, opset_imports=opset, ir_version=IR_VERSION, producer_name="resdsl"
        )
        helper.set_model_props(model, {KEY: json.dumps(identity(self.net))})
        return model

    def read(self, name: str, flat_ok: bool) -> str:
        """The tensor IR node ``name`` wrote; as a map (N, C, 1, 1) unless ``flat_ok``."""
        if name in self.flat and not flat_ok and name not in self.maps:
            shape = self.ints(f"{name}.unflatten.shape", [0, self.net.node(name).shape[0], 1, 1])
            self.maps[name] = self.add("Reshape", [name, shape], f"{name}.unflatten")
        return name if flat_ok and name in self.flat else self.maps.get(name, name)

    def add(self, op: str, inputs: list[str], name: str, output: str | None = None, **attrs):
        """Append one ONNX node called ``name``; returns the tensor it writes."""
        self.nodes.append(self.helper.make_node(op, inputs, [output or name], name=name, **attrs))
        return output or name

    def ints(self, name: str, values: list[int]) -> str:
        """A Constant node of int64 ``values`` (Slice, Pad and Reshape take them as inputs)."""
        return self.add("Constant", [], name, value_ints=values)

    def weights(self, node: Node) -> list[str]:
        """The initialisers of ``node``'s parameters, in the order its ONNX op reads them."""
        names = self.owned[node.name]
        self.initializers += [self.numpy_helper.from_array(self.arrays[n], n) for n in names]
        return names


# ---------------------------------------------------------------- the ops, one entry each


def _window(node: Node) -> dict:
    (ph, pw), s, kernel = node.arg["pad"], node.arg["stride"], node.arg["kernel"]
    return {"kernel_shape": list(kernel), "strides": [s, s], "pads": [ph, pw, ph, pw]}


def _conv(g: _Graph, node: Node, x: list[str]) -> None:
    d, groups = node.arg["dilation"], node.arg["groups"]
    weight, *bias = g.weights(node)
    if node.arg["ws"]:  # weight standardisation, in the graph: each filter over axes 1, 2, 3
        import numpy as np

        at, axes = f"{node.name}.ws", [1, 2, 3]
        mean = g.add("ReduceMean", [weight], f"{at}.mean", axes=axes, keepdims=1)
        centred = g.add("Sub", [weight, mean], f"{at}.centred")
        square = g.add("Mul", [centred, centred], f"{at}.square")
        var = g.add("ReduceMean", [square], f"{at}.var", axes=axes, keepdims=1)
        eps = g.numpy_helper.from_array(np.array(node.arg["ws"], np.float32), f"{at}.eps")
        shifted = g.add("Add", [var, g.add("Constant", [], f"{at}.eps", value=eps)], f"{at}.shift")
        std = g.add("Sqrt", [shifted], f"{at}.std")
        weight = g.add("Div", [centred, std], at)
    g.add("Conv", [*x, weight, *bias], node.name, group=groups, dilations=[d, d], **_window(node))


def _bn(g: _Graph, node: Node, x: list[str]) -> None:
    g.add("BatchNormalization", x + g.weights(node), node.name, epsilon=node.arg["eps"])


def _gn(g: _Graph, node: Node, x: list[str]) -> None:
    """Group norm as opset 17 can say it: each group of channels as one instance, normalised,
    then the per-channel scale and shift."""
    import numpy as np

    c, h, w = g.net.node(node.inputs[0]).shape
    groups, at = node.arg["groups"], node.name
    grouped = g.add("Reshape", x + [g.ints(f"{at}.groups", [0, groups, -1])], f"{at}.grouped")
    unit = [g.numpy_helper.from_array(np.full(groups, v, np.float32), f"{at}.{n}") for n, v in (
        ("ones", 1.0), ("zeros", 0.0))]  # fmt: skip
    consts = [g.add("Constant", [], array.name, value=array) for array in unit]
    normed = g.add("InstanceNormalization", [grouped, *consts], f"{at}.norm", epsilon=EPSILON)
    back = g.add("Reshape", [normed, g.ints(f"{at}.shape", [0, c, h, w])], f"{at}.maps")
    column = g.ints(f"{at}.column", [c, 1, 1])
    weight, bias = (g.add("Reshape", [p, column], f"{p}.column") for p in g.weights(node))
    g.add("Add", [g.add("Mul", [back, weight], f"{at}.scaled"), bias], at)


def _channel_conv(g: _Graph, node: Node, x: list[str]) -> None:
    """A 1-D conv across channels: each position's channels as a sequence of one feature."""
    c, h, w = g.net.node(node.inputs[0]).shape
    at, p = node.name, (node.arg["kernel"] - 1) // 2
    last = g.add("Transpose", x, f"{at}.nhwc", perm=[0, 2, 3, 1])
    rows = g.add("Reshape", [last, g.ints(f"{at}.rows_shape", [-1, 1, c])], f"{at}.rows")
    conv = g.add("Conv", [rows, *g.weights(node)], f"{at}.conv", pads=[p, p])
    back = g.add("Reshape", [conv, g.ints(f"{at}.shape", [-1, h, w, c])], f"{at}.back")
    g.add("Transpose", [back], at, perm=[0, 3, 1, 2])


def _blurpool(g: _Graph, node: Node, x: list[str]) -> None:
    """Reflect padding, then a grouped conv by the fixed binomial filter (a constant)."""
    import numpy as np

    c = g.net.node(node.inputs[0]).shape[0]
    size, stride, p, at = node.arg["size"], node.arg["stride"], blur_padding(node.arg), node.name
    row = binomial(size)
    blur = np.broadcast_to(np.outer(row, row), (c, 1, size, size)).astype(np.float32)
    filt = g.add("Constant", [], f"{at}.filt", value=g.numpy_helper.from_array(blur, f"{at}.filt"))
    pads = g.ints(f"{at}.pads", [0, 0, p, p, 0, 0, p, p])
    padded = g.add("Pad", x + [pads], f"{at}.pad", mode="reflect")
    g.add("Conv", [padded, filt], at, group=c, kernel_shape=[size, size], strides=[stride] * 2)


def _pad(g: _Graph, node: Node, x: list[str]) -> None:
    import numpy as np

    (ph, pw), at = node.arg["size"], node.name
    pads = g.ints(f"{at}.pads", [0, 0, ph, pw, 0, 0, ph, pw])
    value = g.numpy_helper.from_array(np.array(node.arg["value"], np.float32), f"{at}.value")
    g.add("Pad", x + [pads, g.add("Constant", [], f"{at}.value", value=value)], at)


def _maxpool(g: _Graph, node: Node, x: list[str]) -> None:
    window = _window(node)
    if node.arg["ceil"]:
        # ONNX's ceil mode keeps a last window that starts in the right padding, which PyTorch
        # drops: where it would, the overhang is padding of the pool's own instead
        shape = g.net.node(node.inputs[0]).shape
        (eh, _), (ew, _) = average_counts(node.arg, shape)
        (kh, kw), (ph, pw), s = node.arg["kernel"], node.arg["pad"], node.arg["stride"]
        sides = zip(shape[1:], (kh, kw), (ph, pw), strict=True)
        if [-(-(n + 2 * p - k) // s) + 1 for n, k, p in sides] == list(node.shape[1:]):
            window["ceil_mode"] = 1
        else:
            window["pads"] = [ph, pw, ph + eh, pw + ew]
    g.add("MaxPool", x, node.name, **window)


def _avgpool(g: _Graph, node: Node, x: list[str]) -> None:
    if node.arg["kernel"] is None:
        g.add("GlobalAveragePool", x, node.name)
    elif node.arg["ceil"] or not node.arg["include_pad"]:
        # ONNX's ceil mode keeps a last window that starts in the right padding, which
        # PyTorch drops: pool the zero-padded input, then rescale by PyTorch's counts
        import numpy as np

        (eh, rows), (ew, cols) = average_counts(node.arg, g.net.node(node.inputs[0]).shape)
        (kh, kw), (ph, pw), s = node.arg["kernel"], node.arg["pad"], node.arg["stride"]
        pads = g.ints(f"{node.name}.pads", [0, 0, ph, pw, 0, 0, ph + eh, pw + ew])
        padded = g.add("Pad", x + [pads], f"{node.name}.pad")
        # the pool reads no padding of its own, so its count_include_pad changes nothing, nor
        # does ceil_mode where its windows fit the padded input exactly: they say which pool
        # this is, for a reader
        _, h, w = g.net.node(node.inputs[0]).shape
        fits = (h + 2 * ph + eh - kh) % s == 0 and (w + 2 * pw + ew - kw) % s == 0
        options = {
            "ceil_mode": node.arg["ceil"] * fits,
            "count_include_pad": node.arg["include_pad"],
        }
        pooled = g.add(
            "AveragePool", [padded], f"{node.name}.pool", kernel_shape=[kh, kw], strides=[s, s],
            **options,
        )  # fmt: skip
        scale = (kh * kw / np.outer(rows, cols)).astype(np.float32)[None, None]
        array = g.numpy_helper.from_array(scale, f"{node.name}.scale")
        g.add("Mul", [pooled, g.add("Constant", [], f"{node.name}.scale", value=array)], node.name)
    else:  # PyTorch's default: the zero padding counts
        g.add("AveragePool", x, node.name, count_include_pad=1, **_window(node))


def pool_matrix(n: int, size: int):
    """An adaptive average pool along one axis of ``n`` to ``size``, as a (size, n) matrix."""
    import numpy as np

    m = np.zeros((size, n), np.float32)
    for i, (start, end) in enumerate(adaptive_bins(n, size)):
        m[i, start:end] = 1 / (end - start)
    return m


def _adaptive_avgpool(g: _Graph, node: Node, x: list[str]) -> None:
    """Rows, then columns, each averaged by a constant matrix (opset 17 has no adaptive pool):
    ``rows @ x @ cols``, rows (h, H) and cols (W, w) of PyTorch's windows (ops.adaptive_bins)."""
    _, h, w = g.net.node(node.inputs[0]).shape
    (sh, sw), matrices = node.arg["size"], []
    for axis, m in (("rows", pool_matrix(h, sh)), ("cols", pool_matrix(w, sw).T)):
        array = g.numpy_helper.from_array(m, f"{node.name}.{axis}")
        matrices.append(g.add("Constant", [], f"{node.name}.{axis}", value=array))
    rows = g.add("MatMul", [matrices[0], *x], f"{node.name}.pool_rows")
    g.add("MatMul", [rows, matrices[1]], node.name)


def _dropout(g: _Graph, node: Node, x: list[str]) -> None:
    """ONNX's Dropout with its ratio: the identity in inference, the op kept for a reader."""
    import numpy as np

    ratio = g.numpy_helper.from_array(np.array(node.arg["p"], np.float32), f"{node.name}.ratio")
    g.add("Dropout", x + [g.add("Constant", [], f"{node.name}.ratio", value=ratio)], node.name)


def _subsample(g: _Graph, node: Node, x: list[str]) -> None:
    _, h, w = g.net.node(node.inputs[0]).shape
    s, at = node.arg["stride"], node.name
    slices = {"starts": [0, 0], "ends": [h, w], "axes": [2, 3], "steps": [s, s]}
    bounds = [g.ints(f"{at}.{part}", values) for part, values in slices.items()]
    g.add("Slice", x + bounds, at)  # x[:, :, ::s, ::s]


def _zeropad(g: _Graph, node: Node, x: list[str]) -> None:
    extra = node.arg["channels"] - g.net.node(node.inputs[0]).shape[0]
    pads = g.ints(f"{node.name}.pads", [0, 0, 0, 0, 0, extra, 0, 0])  # begins, then ends
    g.add("Pad", x + [pads], node.name)  # constant zeros after the last channel


def _relu6(g: _Graph, node: Node, x: list[str]) -> None:
    """Clip to [0, 6], its bounds as constants (opset 11's inputs), as PyTorch exports ReLU6."""
    import numpy as np

    bounds = []
    for end, value in (("min", 0.0), ("max", 6.0)):
        array = g.numpy_helper.from_array(np.array(value, np.float32), f"{node.name}.{end}")
        bounds.append(g.add("Constant", [], f"{node.name}.{end}", value=array))
    g.add("Clip", x + bounds, node.name)


# how each op is spelled, after the walker has flattened (or reshaped back) what it reads
SPELL = {
    "conv": _conv,
    "bn": _bn,
    "gn": _gn,
    "channel_conv": _channel_conv,
    "blurpool": _blurpool,
    "pad": _pad,
    "relu": lambda g, node, x: g.add("Relu", x, node.name),
    "sigmoid": lambda g, node, x: g.add("Sigmoid", x, node.name),
    "hardsigmoid": lambda g, node, x: g.add("HardSigmoid", x, node.name, alpha=1 / 6, beta=0.5),
    "relu6": _relu6,
    "hardswish": lambda g, node, x: g.add("HardSwish", x, node.name),
    "silu": lambda g, node, x: g.add(
        "Mul", x + [g.add("Sigmoid", x, f"{node.name}.sigmoid")], node.name
    ),  # opset 17 has no Swish
    "leakyrelu": lambda g, node, x: g.add("LeakyRelu", x, node.name, alpha=node.arg["slope"]),
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "adaptive_avgpool": _adaptive_avgpool,
    "fc": lambda g, node, x: g.add("Gemm", x + g.weights(node), node.name, transB=1),  # W (out, in)
    "dropout": _dropout,
    "droppath": lambda g, node, x: g.add("Identity", x, node.name),
    "add": lambda g, node, x: g.add("Add", x, node.name),
    "mul": lambda g, node, x: g.add("Mul", x, node.name),  # a gate broadcasts over H, W
    "concat": lambda g, node, x: g.add("Concat", x, node.name, axis=1),
    "subsample": _subsample,
    "zeropad": _zeropad,
}
