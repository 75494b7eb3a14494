"""The sources `resdsl import` reads: a PyTorch module (torchvision's, timm's, a user's factory)
or an ONNX file, each with its weights, its class names and a forward pass for the proof.

A source gives its graph of ops through its target's read table (:func:`resdsl.targets.torch.trace`,
:func:`resdsl.targets.onnx.read_graph`); what it is made of beyond that (its containers' members,
its modules' class names) it answers itself. The frameworks are imported only when a source is
loaded.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import did_you_mean
from .ops import buffer_names
from .reading import INPUT_SIZE, Op, needs, refuse


@dataclass
class Source:
    """A model to import: a PyTorch module, or (:class:`OnnxSource`) an ONNX graph."""

    model: object  # the nn.Module, in eval mode; None for an ONNX graph
    name: str  # the network's name in the spec
    origin: str  # what the user asked for, for the spec's header
    input_shape: tuple[int, int, int] = INPUT_SIZE

    def ops(self) -> list[Op]:
        from .targets.torch import trace

        return trace(self.model, self.input_shape)

    def kind(self, path: str) -> str:
        """The class of the module at ``path``, which names a block's definition."""
        return type(self.model.get_submodule(path)).__name__

    def members(self, path: str) -> list[str] | None:
        """The names of the container at ``path``'s members, in order; None if it has none."""
        try:
            return [n for n, _ in self.model.get_submodule(path).named_children()]
        except AttributeError:
            return None

    def state(self) -> dict:
        return self.model.state_dict()

    def forward(self, x):
        return self.model(x)

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def load(source: str, checkpoint: str | None = None) -> Source:
    """The model a SOURCE names: ``torchvision:NAME``, ``timm:NAME``,
    ``module:package.module:factory`` or a path to an .onnx file."""
    if source.endswith(".onnx"):
        if checkpoint is not None:
            raise refuse(
                "an ONNX file brings its own weights: --checkpoint is for PyTorch sources",
                code="RDS430",
            )
        return load_onnx(source)
    loaded = _load_torch(source)
    if checkpoint is not None:
        load_checkpoint(loaded.model, checkpoint, source)
    return loaded


def _load_torch(source: str) -> Source:
    _torch()
    kind, _, rest = source.partition(":")
    if kind == "torchvision":
        return _torchvision(rest, source)
    if kind == "timm":
        return _timm(rest, source)
    if kind == "module":
        module_name, _, factory = rest.partition(":")
        if not module_name or not factory:
            raise refuse(
                f"`{source}` names no factory",
                "write module:PACKAGE.MODULE:FACTORY, e.g. module:mynets:build",
                code="RDS430",
            )
        return _factory(module_name, factory, source)
    raise refuse(
        f"`{source}` is not a source resdsl imports",
        "give torchvision:NAME, timm:NAME, module:PACKAGE.MODULE:FACTORY or FILE.onnx",
        code="RDS430",
    )


ONNX_LIMIT = 2 << 30  # bytes: protobuf's own limit for one message
CHECKPOINT_LIMIT = 8 << 30  # bytes: larger than any ResNet's float32 weights several times over


def load_checkpoint(model, path: str, source: str) -> None:
    """Load a file of trained weights into ``model``, strictly: safetensors, or a PyTorch file
    read with ``torch.load(weights_only=True)`` (never unpickled), its state_dict at the top or
    under ``state_dict`` or ``model``, with DistributedDataParallel's ``module.`` prefix dropped."""
    torch = _torch()

    def bad(reason: str, hint: str | None = None):
        return refuse(f"cannot load the checkpoint {path}: {reason}", hint, code="RDS435")

    problem = _unreadable(path, CHECKPOINT_LIMIT)
    if problem:
        raise bad(problem)
    try:
        if str(path).endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except ImportError:
        raise bad("reading .safetensors needs safetensors", "pip install safetensors") from None
    except Exception as exc:  # noqa: BLE001 - any damaged file, or one that needs unpickling
        raise bad(
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            "give a safetensors file or a state_dict saved with torch.save; resdsl never "
            "unpickles a checkpoint",
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise bad("it holds no state_dict of tensors")
    if state and all(str(k).startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise bad(
            f"it is not {source}'s: {lines[1] if len(lines) > 1 else lines[0]}",
            "a checkpoint loads into the model it was saved from, by its names and shapes",
        ) from None


def _unreadable(path, limit: int) -> str | None:
    """Why a file cannot be read whole, before a byte is read: missing, not a regular file (a
    FIFO would block, a device never end) or over ``limit`` bytes; None where it can."""
    import os
    import stat

    try:
        info = os.stat(path)
    except OSError as exc:
        return exc.strerror or "it cannot be read"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size > limit:
        return f"{info.st_size:,} bytes, over the limit of {limit:,}"
    return None


def _torch():
    """torch, with torch.fx, which reading a module needs; or the refusal that says so."""
    needs("torch.fx", "'resdsl[torch]'")
    return needs("torch", "'resdsl[torch]'")


def _torchvision(name: str, source: str) -> Source:
    try:
        import torchvision
    except ImportError:
        raise refuse(
            "torchvision is not installed", "pip install torchvision", code="RDS434"
        ) from None
    names = sorted(torchvision.models.list_models(module=torchvision.models))
    if name not in names:
        raise refuse(
            f"torchvision has no classification model `{name}`",
            did_you_mean(name, names) or "see torchvision.models.list_models()",
            code="RDS430",
        )
    model = _build(lambda: torchvision.models.get_model(name, weights=None), source)
    return Source(model, spec_name(name), source)


def _timm(name: str, source: str) -> Source:
    try:
        import timm
    except ImportError:
        raise refuse("timm is not installed", "pip install timm", code="RDS434") from None
    names = timm.list_models()
    if name not in names:
        raise refuse(
            f"timm has no model `{name}`",
            did_you_mean(name, names) or "see timm.list_models()",
            code="RDS430",
        )
    model = _build(lambda: timm.create_model(name, pretrained=False), source)
    size = tuple(getattr(model, "pretrained_cfg", {}).get("input_size", INPUT_SIZE))
    return Source(model, spec_name(name), source, size if len(size) == 3 else INPUT_SIZE)


def _factory(module_name: str, factory: str, source: str) -> Source:
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as `python -m` finds the user's own modules
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the user's code: any failure is reported
        raise refuse(
            f"cannot import {module_name}: {type(exc).__name__}: {exc}",
            "the module must be importable from here (check the name and PYTHONPATH)",
            code="RDS431",
        ) from None
    function = getattr(module, factory, None)
    if not callable(function):
        public = [n for n in dir(module) if not n.startswith("_")]
        raise refuse(
            f"{module_name} has no function `{factory}`",
            did_you_mean(factory, public) or "give a function that returns an nn.Module",
            code="RDS431",
        )
    model = _build(function, source)
    name = factory if factory not in ("build", "model") else module_name.rpartition(".")[2]
    return Source(model, spec_name(name), source, _declared_shape(module))


def _declared_shape(module) -> tuple[int, int, int]:
    """The input's (C, H, W) that the factory's module declares as ``INPUT_SHAPE`` (resdsl's
    model.py does), else torchvision's default."""
    shape = getattr(module, "INPUT_SHAPE", None)
    fits = isinstance(shape, tuple | list) and len(shape) == 3
    if fits and all(type(d) is int and 0 < d <= 4096 for d in shape):
        return tuple(shape)
    return INPUT_SIZE


def _build(function, source: str):
    torch = _torch()
    try:
        model = function()
    except Exception as exc:  # noqa: BLE001 - the user's code: any failure is reported
        raise refuse(
            f"{source}: building the model raised {type(exc).__name__}: {exc}",
            code="RDS431",
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise refuse(f"{source} returned {type(model).__name__}, not an nn.Module", code="RDS431")
    return model.eval()


def spec_name(name: str) -> str:
    name = re.sub(r"\W", "_", name.split(".")[0])
    return name if name and not name[0].isdigit() else f"m_{name}"


# ---------------------------------------------------------------- ONNX files


class OnnxSource(Source):
    def __init__(self, path: Path, model, arrays: dict):
        shape = _input_shape(model)
        super().__init__(None, spec_name(path.stem), str(path), shape)
        self.path, self.graph, self.arrays = path, model.graph, arrays
        self._ops: list[Op] | None = None

    def ops(self) -> list[Op]:
        if self._ops is None:
            from .targets.onnx import read_graph

            self._ops = read_graph(self.graph, self.arrays, self.input_shape)
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
            if "." in k and k.rpartition(".")[2] not in buffer_names()
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
    problem = _unreadable(path, ONNX_LIMIT)
    if problem:
        raise refuse(f"cannot read {source} as an ONNX model: {problem}", code="RDS430")
    try:
        model = onnx.load(str(path))
        model = onnx.shape_inference.infer_shapes(model)
        arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    except Exception as exc:  # noqa: BLE001 - any unreadable file, or initialiser
        raise refuse(
            f"cannot read {source} as an ONNX model: {type(exc).__name__}: {exc}", code="RDS430"
        ) from None
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
