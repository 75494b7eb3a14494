"""`resdsl import FILE.onnx`: an ONNX graph read as :mod:`resdsl.importer` reads a traced model.

Each node becomes the op it is (Conv, BatchNormalization, Gemm, pools, activations, Add), its
module path taken from its weights' names (``layer1.0.conv1.weight``, the state_dict's as
PyTorch's exporter keeps them) or from its node name (``/layer1/layer1.0/Add``). Identity nodes
that alias a shared initializer give the alias's name back. The proof runs the file itself in
onnxruntime, where it is installed.

The file must keep what a spec needs: BatchNormalization nodes (PyTorch's exporter folds them
into the convs unless ``do_constant_folding=False``) and the parameters' names.
"""

from __future__ import annotations

from pathlib import Path

from .importer import INPUT_SIZE, Op, Source, _spec_name, refuse

# ONNX ops that pass their input on: reshapes and flattens before an fc, dropout in inference
PASS = {"Identity", "Flatten", "Reshape", "Dropout", "Squeeze"}


class OnnxSource(Source):
    def __init__(self, path: Path, model, arrays: dict):
        shape = _input_shape(model)
        super().__init__(None, _spec_name(path.stem), str(path), shape)
        self.path, self.graph, self.arrays = path, model.graph, arrays
        self._ops: list[Op] | None = None

    def ops(self) -> list[Op]:
        if self._ops is None:
            self._ops = _ops(self.graph, self.arrays, self.input_shape)
        return self._ops

    def kind(self, path: str) -> str:
        return "Unit"  # an ONNX graph keeps no class names

    def members(self, path: str) -> list[str] | None:
        """A container's members as its ops' names show them; numbers from 0 with the gaps an
        identity leaves (an ONNX graph has no nn.Identity)."""
        names = []
        for op in self.ops():
            if op.path.startswith(path + "."):
                local = op.path[len(path) + 1 :].split(".")[0]
                if local not in names:
                    names.append(local)
        if names and all(n.isdigit() for n in names):
            return [str(i) for i in range(max(map(int, names)) + 1)]
        return names or None

    def state(self) -> dict:
        import torch

        return {k: torch.from_numpy(v.copy()) for k, v in self.arrays.items() if "." in k}

    def forward(self, x):
        try:
            import onnxruntime
        except ImportError:
            return None
        import numpy as np

        try:
            session = onnxruntime.InferenceSession(
                str(self.path), providers=["CPUExecutionProvider"]
            )
            name = session.get_inputs()[0].name
            # one image a run: a file exported at batch 1 takes no other
            return np.concatenate(
                [session.run(None, {name: x[i : i + 1].numpy()})[0] for i in range(len(x))]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own refusal of the file
            raise refuse(
                f"onnxruntime cannot run {self.path}: {type(exc).__name__}: {exc}", code="RDS433"
            ) from None

    @property
    def parameters(self) -> int:
        return sum(
            int(v.size)
            for k, v in self.arrays.items()
            if "." in k and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        )


def load_onnx(source: str) -> OnnxSource:
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise refuse(
            "resdsl import FILE.onnx needs onnx", "pip install onnx", code="RDS434"
        ) from None
    path = Path(source)
    try:
        model = onnx.load(str(path))
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise refuse(
            f"cannot read {source} as an ONNX model: {type(exc).__name__}: {exc}", code="RDS430"
        ) from None
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:  # an exporter's alias of a shared tensor gives the name back
        if node.op_type == "Identity" and node.input[0] in arrays:
            arrays[node.output[0]] = arrays[node.input[0]]
    return OnnxSource(path, model, arrays)


def _input_shape(model) -> tuple[int, int, int]:
    graph = model.graph
    init = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init]
    if len(inputs) != 1:
        raise refuse(f"an ONNX model with {len(inputs)} inputs: resdsl networks take one")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in _dims(inputs[0])]
    if len(dims) != 4:
        raise refuse(f"an ONNX input of {len(dims)} dimensions: resdsl networks read NCHW")
    chw = tuple(dims[1:])
    return chw if all(chw) else INPUT_SIZE


def _dims(info):
    return info.type.tensor_type.shape.dim


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _scope(name: str) -> str:
    """``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``: each level's qualified name."""
    if "/" not in name:  # a module path of its own (resdsl's ONNX target names nodes so)
        return name.rpartition(".")[0]
    path = ""
    for part in name.strip("/").split("/")[:-1]:
        path = part if not path or part.startswith(path + ".") else f"{path}.{part}"
    return path


def _ops(graph, arrays: dict, input_shape) -> list[Op]:
    shapes = {}
    for info in [*graph.value_info, *graph.output, *graph.input]:
        dims = [d.dim_value for d in _dims(info)]
        shapes[info.name] = tuple(dims[1:])
    (first,) = [i for i in graph.input if i.name not in arrays]
    start = Op("input", {}, "", "", shape=tuple(input_shape))
    made = {first.name: start}
    ops = [start]
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in arrays:
            continue
        tensors = [made[n] for n in node.input if n in made]
        if node.op_type in PASS or node.op_type == "Constant":
            if tensors:
                made[node.output[0]] = tensors[0]
            continue
        kind, args, weight = _op(node, arrays)
        if weight and "." not in weight:
            raise refuse(
                f"{node.name or node.op_type}: its weight `{weight}` has lost its module's name",
                "export with torch.onnx.export(..., do_constant_folding=False): folding merges "
                "each BN into its conv and renames the weights",
            )
        scope = _scope(node.name)
        path = weight.rpartition(".")[0] if weight else scope
        op = Op(
            kind, args, path, scope if not weight else path, tensors, shapes.get(node.output[0], ())
        )
        op.weights = bool(weight)
        ops.append(op)
        made[node.output[0]] = op
    return ops


def _op(node, arrays) -> tuple[str, dict, str | None]:
    """A node as a resdsl op, its arguments, and the name of its weight (None without one)."""
    a, kind = _attrs(node), node.op_type
    where = node.name or kind
    if kind == "Conv":
        w = arrays.get(node.input[1])
        if w is None or w.ndim != 4 or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise refuse(f"{where}: a Conv whose weight is not a 4-D initializer")
        top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
        strides, dilations = a.get("strides", [1, 1]), a.get("dilations", [1, 1])
        if top != bottom or left != right or len(set(strides)) > 1 or len(set(dilations)) > 1:
            raise refuse(f"{where}: a Conv with asymmetric padding, strides or dilations")
        args = {
            "out": int(w.shape[0]),
            "kernel": tuple(int(k) for k in w.shape[2:]),
            "stride": int(strides[0]),
            "pad": (int(top), int(left)),
            "groups": int(a.get("group", 1)),
            "bias": int(len(node.input) > 2 and bool(node.input[2])),
            "dilation": int(dilations[0]),
            "ws": 0.0,
        }
        return "conv", args, node.input[1]
    if kind == "BatchNormalization":
        return "bn", {"eps": round(float(a.get("epsilon", 1e-5)), 12)}, node.input[1]
    if kind == "Gemm":
        w = arrays.get(node.input[1])
        if w is None or a.get("transB") != 1 or a.get("transA", 0) or a.get("alpha", 1.0) != 1:
            raise refuse(f"{where}: a Gemm that is not an fc (x W^T + b)")
        bias = int(len(node.input) > 2 and bool(node.input[2]))
        return "fc", {"out": int(w.shape[0]), "bias": bias}, node.input[1]
    if kind in ("MaxPool", "AveragePool"):
        top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
        strides = a.get("strides", [1, 1])
        if (
            top != bottom
            or left != right
            or len(set(strides)) > 1
            or any(d != 1 for d in a.get("dilations", [1, 1]))
        ):
            raise refuse(f"{where}: a {kind} with asymmetric padding, strides or a dilation")
        args = {"kernel": tuple(a["kernel_shape"]), "stride": int(strides[0]), "pad": (top, left)}
        if kind == "MaxPool":
            if a.get("ceil_mode", 0):
                raise refuse(f"{where}: a MaxPool with ceil_mode has no resdsl form")
            return "maxpool", args, None
        args |= {
            "ceil": int(a.get("ceil_mode", 0)),
            "include_pad": int(a.get("count_include_pad", 0)),
        }
        return "avgpool", args, None
    if kind == "GlobalAveragePool":
        return "avgpool", {"kernel": None}, None
    simple = {"Relu": "relu", "Sigmoid": "sigmoid", "Add": "add", "Mul": "mul"}
    if kind in simple:
        return simple[kind], {}, None
    if kind == "LeakyRelu":
        return "leakyrelu", {"slope": round(float(a.get("alpha", 0.01)), 9)}, None
    raise refuse(f"{where}: ONNX's {kind} has no resdsl form")
