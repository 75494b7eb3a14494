"""The sources `resdsl import` reads: a PyTorch module (torchvision's, timm's, a user's factory)
or an ONNX file, each with its weights, its class names and a forward pass for the proof.

A source gives its graph of ops through its target's read table (:func:`resdsl.targets.torch.trace`,
:func:`resdsl.targets.onnx.read_graph`); what it is made of beyond that (its containers' members,
its modules' class names) it answers itself. The frameworks are imported only when a source is
loaded.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import ResdslError, did_you_mean
from .ops import buffer_names
from .reading import (
    INPUT_SIZE,
    TF_TIMEOUT,
    Op,
    in_tensorflow,
    last_line,
    load_problem,
    needs,
    refuse,
)


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
    ``module:package.module:factory``, a path to an .onnx file, or a Keras model:
    ``keras:NAME`` (keras.applications'), ``keras:package.module:factory`` or a .keras file."""
    if source.startswith("keras:") or source.endswith(".keras"):
        if checkpoint is not None:
            raise refuse(
                "a Keras model brings its own weights: --checkpoint is for PyTorch sources",
                code="RDS430",
            )
        return load_keras(source)
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
        "give torchvision:NAME, timm:NAME, module:PACKAGE.MODULE:FACTORY, FILE.onnx, "
        "keras:NAME, keras:PACKAGE.MODULE:FACTORY or FILE.keras",
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
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()
    ):
        raise bad("it holds no state_dict of tensors under names")
    if state and all(str(k).startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise bad(
            f"it is not {source}'s: {load_problem(exc)}",
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
    module, function = _user_function(module_name, factory, "an nn.Module")
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
    return _called(function, source, _torch().nn.Module, "an nn.Module").eval()


USER_CODE_TIMEOUT = 600  # seconds a user's module may take to import, or a factory to build


class _Overtime(BaseException):
    """Raised in a user's code that runs past USER_CODE_TIMEOUT (a loop that never ends)."""


@contextlib.contextmanager
def _deadline(what: str):
    """Stops the user's code that ``what`` runs once it is past USER_CODE_TIMEOUT, where this is
    the main thread (a Python-level loop is stopped; a call blocked inside C returns first)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def overtime(signum, frame):
        raise _Overtime

    previous = signal.signal(signal.SIGALRM, overtime)
    signal.setitimer(signal.ITIMER_REAL, USER_CODE_TIMEOUT)
    try:
        yield
    except _Overtime:
        raise refuse(
            f"{what} ran past {USER_CODE_TIMEOUT} s and was stopped",
            "a model that builds in seconds imports; look for a loop that does not end",
            code="RDS431",
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _called(function, source: str, kind: type, what: str):
    """What a user's factory returns, where it is a ``kind``; its failure (an exception, or an
    exit it asks for) reported, never a traceback or an exit of resdsl's, and its run bounded
    in time."""
    try:
        with _deadline(f"{source}: building the model"):
            model = function()
    except (KeyboardInterrupt, ResdslError):
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's code: any failure is reported
        raise refuse(
            f"{source}: building the model raised {type(exc).__name__}: {_first(exc)}",
            code="RDS431",
        ) from None
    if not isinstance(model, kind):
        raise refuse(f"{source} returned {type(model).__name__}, not {what}", code="RDS431")
    return model


def spec_name(name: str) -> str:
    name = re.sub(r"\W", "_", name.split(".")[0])
    return name if name and not name[0].isdigit() else f"m_{name}"


# ---------------------------------------------------------------- ONNX files


class GraphSource(Source):
    """A source read as a graph of named layers, without modules: an ONNX graph, a Keras model."""

    def kind(self, path: str) -> str:
        return "Unit"  # a graph keeps no class names for its blocks

    def members(self, path: str) -> list[str] | None:
        """A container's members as its ops' names show them; numbers from 0 with the gaps an
        identity leaves (a graph has no nn.Identity)."""
        names = []
        for op in self.ops():
            if op.path.startswith(path + "."):
                local = op.path[len(path) + 1 :].split(".")[0]
                if local not in names:
                    names.append(local)
        if names and all(n.isdigit() for n in names):
            return [str(i) for i in range(max(map(int, names)) + 1)]
        return names or None


class OnnxSource(GraphSource):
    def __init__(self, path: Path, model, arrays: dict):
        shape = _input_shape(model)
        super().__init__(None, spec_name(path.stem), str(path), shape)
        self.path, self.graph, self.arrays = path, model.graph, arrays
        self._ops: list[Op] | None = None

    def ops(self) -> list[Op]:
        if self._ops is None:
            from .targets.onnx_read import read_graph

            self._ops = read_graph(self.graph, self.arrays, self.input_shape)
        return self._ops

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
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise refuse(
            f"cannot read {source} as an ONNX model: {type(exc).__name__}: {_first(exc)}",
            code="RDS430",
        ) from None
    try:  # the onnx package's own rules: inputs, attributes and types as each op's schema says
        onnx.checker.check_model(model, full_check=True)
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    except Exception as exc:  # noqa: BLE001 - a file that breaks ONNX's rules, or an initialiser
        raise refuse(
            f"{source} is not a valid ONNX model: {_first(exc)}",
            "onnx.checker.check_model(model, full_check=True) says so too",
            code="RDS430",
        ) from None
    unreal = next((k for k, v in arrays.items() if v.dtype.kind not in "fiub"), None)
    if unreal is not None:
        raise refuse(
            f"{source}: the initialiser `{unreal}` holds {arrays[unreal].dtype} values, "
            "not numbers",
            code="RDS430",
        )
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


# ---------------------------------------------------------------- Keras models
#
# TensorFlow and PyTorch do not share a process, so a Keras model is read in a process of its
# own: it is built or loaded there, read through the TensorFlow target's read table
# (:func:`resdsl.targets.tf.read_model`), and run on the proofs' input; what comes back is the
# graph of ops, the weights in the npz layout's names and PyTorch's layout, and the logits.

KERAS_LIMIT = 8 << 30  # bytes of a .keras file, as a checkpoint's

_KERAS_CHILD = "import sys; from resdsl.sources import keras_child; keras_child(*sys.argv[1:])"


class KerasSource(GraphSource):
    def __init__(self, origin: str, found: dict, arrays: dict, logits):
        super().__init__(None, found["name"], origin, tuple(found["input_shape"]))
        self.arrays, self.logits, self.count = arrays, logits, found["parameters"]
        self._ops = _ops_from(found["ops"])

    def ops(self) -> list[Op]:
        return self._ops

    def state(self) -> dict:
        import torch

        return {k: torch.from_numpy(v.copy()) for k, v in self.arrays.items()}

    def forward(self, x):
        """The logits on the proofs' input, which the model's own process computed."""
        import numpy as np

        from .reading import sample

        x = np.asarray(x)
        if x.shape != (2, *self.input_shape) or not np.array_equal(x, sample(self.input_shape)):
            raise refuse(f"{self.origin} was run on the proofs' input only", code="RDS433")
        return self.logits

    @property
    def parameters(self) -> int:
        return self.count


KERAS_MEMORY = 6 << 30  # bytes a Keras model's process may allocate, beside its file's size


def _keras_memory(source: str) -> int:
    """What reading ``source`` may allocate: TensorFlow and a keras.applications model run on
    the proofs' input (ResNet152V2 needs under 2 GiB), and 8 times a .keras file's own bytes; a
    file whose layers claim more than its weights hold fails in its process, not here."""
    try:
        size = Path(source).stat().st_size if source.endswith(".keras") else 0
    except OSError:
        size = 0
    return KERAS_MEMORY + 8 * size


def load_keras(source: str) -> KerasSource:
    """The Keras model ``source`` names, read in a process of its own."""
    import json
    import tempfile

    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        paths = [str(Path.cwd()), *(p for p in sys.path if p)]  # the user's modules, as here
        done = in_tensorflow(
            _KERAS_CHILD, source, folder, paths=paths, memory=_keras_memory(source)
        )
        if done is None:
            raise refuse(f"reading {source} took over {TF_TIMEOUT} s", code="RDS431")
        out = Path(folder)
        if (out / "error.json").exists():
            error = json.loads((out / "error.json").read_text(encoding="utf-8"))
            raise refuse(error["message"], error["hint"], code=error["code"])
        if done.returncode != 0 or not (out / "graph.json").exists():
            raise refuse(f"reading {source} failed: {last_line(done)}", code="RDS431")
        found = json.loads((out / "graph.json").read_text(encoding="utf-8"))
        with np.load(out / "weights.npz") as archive:
            arrays = {k: archive[k] for k in archive.files}
        logits = np.load(out / "logits.npy")
    return KerasSource(source, found, arrays, logits)


def _ops_from(rows: list[dict]) -> list[Op]:
    ops: list[Op] = []
    for row in rows:
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in row["args"].items()}
        inputs = [ops[i] for i in row["inputs"]]
        shape = tuple(row["shape"])
        ops.append(Op(row["kind"], args, row["path"], row["scope"], inputs, shape, row["weights"]))
    return ops


def keras_child(source: str, folder: str) -> None:
    """In the model's own process: build or load it, read it, run it; write what was found into
    ``folder`` (graph.json, weights.npz, logits.npy), or error.json with the refusal."""
    import json

    import numpy as np

    from .errors import ResdslError
    from .reading import sample

    out = Path(folder)
    try:
        model, name = _keras_model(source)
        from .targets.tf import read_model

        ops, arrays = read_model(model)
        x = sample(ops[0].shape)
        try:
            logits = np.asarray(model(x.transpose(0, 2, 3, 1), training=False))
        except Exception as exc:  # noqa: BLE001 - the user's model: any failure is reported
            raise refuse(
                f"{source} does not run: {type(exc).__name__}: {_first(exc)}", code="RDS431"
            ) from None
    except ResdslError as exc:
        error = {"message": exc.message, "hint": exc.hint, "code": exc.code}
        (out / "error.json").write_text(json.dumps(error), encoding="utf-8")
        return
    index = {id(op): i for i, op in enumerate(ops)}
    rows = [
        {
            "kind": op.kind,
            "args": op.args,
            "path": op.path,
            "scope": op.scope,
            "inputs": [index[id(given)] for given in op.inputs],
            "shape": [int(d) for d in op.shape],
            "weights": op.weights,
        }
        for op in ops
    ]
    found = {
        "name": name,
        "input_shape": list(ops[0].shape),
        "parameters": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "ops": rows,
    }
    np.savez(out / "weights.npz", **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
    np.save(out / "logits.npy", logits.reshape(len(x), -1))
    (out / "graph.json").write_text(json.dumps(found), encoding="utf-8")


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _keras_model(source: str):
    """The model and its spec's name: keras.applications' NAME built with random weights and
    logits out, a user's factory called, or a .keras file loaded (safe_mode: no code runs)."""
    keras = needs("keras", "'resdsl[tf]'")
    if source.endswith(".keras") and not source.startswith("keras:"):
        problem = _unreadable(source, KERAS_LIMIT)
        if problem:
            raise refuse(f"cannot read {source} as a Keras model: {problem}", code="RDS430")
        try:
            model = keras.saving.load_model(source, compile=False, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - any damaged file, or an unknown layer
            raise refuse(
                f"cannot read {source} as a Keras model: {type(exc).__name__}: {_first(exc)}",
                "a model with layers of its own loads where they are registered: give "
                "keras:PACKAGE.MODULE:FACTORY for the module that defines them",
                code="RDS430",
            ) from None
        if not isinstance(model, keras.Model):
            raise refuse(f"{source} holds {type(model).__name__}, not a keras.Model", code="RDS430")
        return model, _keras_name(model, Path(source).stem)
    rest = source[len("keras:") :]
    module_name, _, factory = rest.partition(":")
    if factory:
        _, function = _user_function(module_name, factory, "a keras.Model")
        name = factory if factory not in ("build", "model", "build_model") else module_name
        model = _called(function, source, keras.Model, "a keras.Model")
        return model, _keras_name(model, name.rpartition(".")[2])
    names = sorted(
        n
        for n in dir(keras.applications)
        if n[:1].isupper() and callable(getattr(keras.applications, n))
    )
    if rest not in names:
        raise refuse(
            f"keras.applications has no model `{rest}`",
            did_you_mean(rest, names) or "see dir(keras.applications)",
            code="RDS430",
        )
    build = getattr(keras.applications, rest)
    model = _called(
        lambda: build(weights=None, classifier_activation=None), source, keras.Model, "a model"
    )
    return model, spec_name(rest)


def _keras_name(model, otherwise: str) -> str:
    """The spec's name: the model's own (resdsl's model.py gives the network's), unless Keras
    made it up (``functional_3``)."""
    own = str(getattr(model, "name", "") or "")
    made_up = re.fullmatch(r"(functional|sequential|model)(_\d+)?", own)
    return spec_name(own if own and not made_up else otherwise)


def _user_function(module_name: str, factory: str, returns: str):
    """A user's module and its function ``factory``, which should return ``returns``."""
    module = _user_module(module_name)
    function = getattr(module, factory, None)
    if not callable(function):
        public = [n for n in dir(module) if not n.startswith("_")]
        raise refuse(
            f"{module_name} has no function `{factory}`",
            did_you_mean(factory, public) or f"give a function that returns {returns}",
            code="RDS431",
        )
    return module, function


def _user_module(module_name: str):
    """A user's module, imported as `python -m` finds it (the current folder first)."""
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        with _deadline(f"importing {module_name}"):
            return importlib.import_module(module_name)
    except (KeyboardInterrupt, ResdslError):
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's code: any failure is reported
        raise refuse(
            f"cannot import {module_name}: {type(exc).__name__}: {_first(exc)}",
            "the module must be importable from here (check the name and PYTHONPATH)"
            if isinstance(exc, ImportError)
            else "importing the module runs its code, which failed",
            code="RDS431",
        ) from None
