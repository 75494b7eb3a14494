"""The npz layout every target shares: a network's tensors under their IR names (the state_dict's,
``layer1.0.bn1.running_mean``), in PyTorch's layout, with the network's identity beside them.

Which tensors there are, their shapes and how they start are the op table's rows
(:class:`resdsl.ops.Tensor`); nothing here lists an op. The ONNX target writes them as
initialisers, `resdsl import --weights` and `resdsl port` write them from a source, and each
target's model.py reads them (its load_npz). numpy is imported only when weights are handled.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from ..emit import TargetError
from ..identity import KEY, identity, identity_problem
from ..ir import Network
from ..ops import OPS


def tensors(net: Network) -> dict[str, tuple[tuple, tuple]]:
    """Every tensor the network's ops own, in node order: ``{name: (shape, (init, scale))}``."""
    wanted = {}
    for node in net.nodes():
        if OPS[node.op].tensors:
            shape = net.node(node.inputs[0]).shape
            for suffix, dims, row in OPS[node.op].owned(node.arg, shape):
                wanted[f"{node.name}.{suffix}"] = (dims, row.init(node.arg, shape))
    return wanted


def fresh(net: Network, seed: int) -> dict:
    """Weights drawn as the PyTorch target's build_model() draws them, from ``seed``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    draw = {
        "he": lambda scale, shape: rng.normal(0.0, scale, shape),
        "uniform": lambda scale, shape: rng.uniform(-scale, scale, shape),
        "fill": lambda value, shape: np.full(shape, value),
    }
    return {
        name: draw[init](scale, shape).astype(np.float32)
        for name, (shape, (init, scale)) in tensors(net).items()
    }


def checked(net: Network, weights, where: str | None = None) -> dict:
    """The weights (an npz path, or a mapping of arrays) as float32 arrays of ``net``'s tensors,
    or a TargetError saying how they do not fit it."""
    import numpy as np

    if isinstance(weights, str | os.PathLike):
        shapes = {name: shape for name, (shape, _) in tensors(net).items()}
        where, given = str(weights), read(Path(weights), shapes)
    else:
        where, given = where or "weights", dict(weights)

    def bad(message: str):
        hint = "give the npz that save_npz writes for this network (either target's model.py)"
        return TargetError(f"{where}: {message}", hint=hint, code="RDS405")

    held = given.pop(KEY, None)
    problem = identity_problem(None if held is None else str(held), identity(net), "weights")
    if problem:
        raise bad(f"these are the {problem}")
    wanted = tensors(net)
    missing = [name for name in wanted if name not in given]
    unexpected = sorted(name for name in given if name not in wanted)
    if missing or unexpected:
        parts = [f"missing {_some(missing)}"] if missing else []
        parts += [f"unexpected {_some(unexpected)}"] if unexpected else []
        raise bad(f"the names do not match network `{net.name}`: {'; '.join(parts)}")
    arrays = {}
    for name, (shape, _) in wanted.items():
        array = np.asarray(given[name])
        if array.dtype.kind not in "fiu":
            raise bad(f"{name} holds {array.dtype} values, not real numbers")
        if array.shape != shape:
            raise bad(f"{name} has shape {array.shape}; network `{net.name}` expects {shape}")
        array = array.astype(np.float32)
        if not np.isfinite(array).all():
            count = int(array.size - np.isfinite(array).sum())
            raise bad(f"{name} has {count} non-finite value{'s' * (count != 1)} (inf or nan)")
        if name.endswith(".running_var") and (array < 0).any():
            raise bad(f"{name} has negative variances")
        arrays[name] = array
    return arrays


def read(path: Path, shapes: dict | None = None) -> dict:
    """The named arrays of an npz file, never unpickled. Where ``shapes`` ({name: shape}) is
    given, each array's header is held to it before any array is read: a file of a few
    kilobytes cannot unpack into gigabytes."""
    import numpy as np

    def bad(reason: str):
        hint = "give the .npz that save_npz writes (python train.py --export-weights W.npz)"
        return TargetError(f"cannot read the weights {path}: {reason}", hint=hint, code="RDS404")

    if not path.is_file():  # a FIFO would block, a device never end
        raise bad("not a regular file" if path.exists() else "no such file")
    try:
        if shapes is not None:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    with archive.open(info) as f:
                        problem = _header_problem(f, info.filename.removesuffix(".npy"), shapes)
                    if problem:
                        raise bad(problem)
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise bad(getattr(exc, "strerror", None) or "not an .npz file") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise bad("one .npy array, not an .npz of named arrays")
    with archive:
        arrays = {}
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise bad(f"array {name!r} cannot be read ({exc})") from None
        return arrays


def _header_problem(f, name: str, shapes: dict) -> str | None:
    """What is wrong with one array of an npz, read from its header alone: a name the network
    does not hold, another shape, a dtype that is no real number; the identity is one short
    string."""
    import numpy as np

    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        return f"{name} is an .npy of version {version}"
    header = np.lib.format
    read = header.read_array_header_1_0 if version == (1, 0) else header.read_array_header_2_0
    shape, _, dtype = read(f)
    if name == KEY:
        return (
            None
            if shape == () and dtype.kind == "U" and dtype.itemsize <= 1 << 16
            else ("its identity is not one short string")
        )
    if name not in shapes:
        return f"{name} is not a tensor of the network"
    if tuple(shape) != tuple(shapes[name]) or dtype.kind not in "fiu":
        return f"{name} holds {dtype} of shape {tuple(shape)}; the network expects {shapes[name]}"
    return None


def npz(net: Network, weights) -> bytes:
    """The bytes of the npz that save_npz writes for ``weights`` (checked against ``net``), with
    ``net``'s identity; :func:`resdsl.emit.write` puts them on disk whole or not at all."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **checked(net, weights), **{KEY: np.array(json.dumps(identity(net)))})
    return buffer.getvalue()


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")
