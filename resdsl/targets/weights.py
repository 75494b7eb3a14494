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
import warnings
import zipfile
import zlib
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
    or a TargetError saying how they do not fit it. A file's names, shapes and dtypes are held
    to the network from its headers, before any array is read: a file of a few kilobytes cannot
    unpack into gigabytes."""
    import numpy as np

    wanted = tensors(net)

    def bad(message: str):
        hint = "give the npz that save_npz writes for this network (either target's model.py)"
        return TargetError(f"{where}: {message}", hint=hint, code="RDS405")

    def fit(kinds: dict) -> None:  # {name: (shape, dtype)}, the identity's left out
        missing = [name for name in wanted if name not in kinds]
        unexpected = sorted(name for name in kinds if name not in wanted)
        if missing or unexpected:
            parts = [f"missing {_some(missing)}"] if missing else []
            parts += [f"unexpected {_some(unexpected)}"] if unexpected else []
            raise bad(f"the names do not match network `{net.name}`: {'; '.join(parts)}")
        for name, (shape, _) in wanted.items():
            if kinds[name][1].kind not in "fiu":
                raise bad(f"{name} holds {kinds[name][1]} values, not real numbers")
            if tuple(kinds[name][0]) != shape:
                got = tuple(kinds[name][0])
                raise bad(f"{name} has shape {got}; network `{net.name}` expects {shape}")

    if isinstance(weights, str | os.PathLike):
        where = str(weights)
        headers = _headers(Path(weights))
        fit({k: v for k, v in headers.items() if k != KEY})
        given = read(Path(weights))
    else:
        where, given = where or "weights", dict(weights)
    held = given.pop(KEY, None)
    problem = identity_problem(None if held is None else str(held), identity(net), "weights")
    if problem:
        raise bad(f"these are the {problem}")
    fit({k: (np.shape(v), np.asarray(v).dtype) for k, v in given.items()})
    arrays = {}
    for name in wanted:
        array = np.asarray(given[name]).astype(np.float32)
        if not np.isfinite(array).all():
            count = int(array.size - np.isfinite(array).sum())
            raise bad(f"{name} has {count} non-finite value{'s' * (count != 1)} (inf or nan)")
        if name.endswith(".running_var") and (array < 0).any():
            raise bad(f"{name} has negative variances")
        arrays[name] = array
    return arrays


# what zipfile, zlib and numpy raise on a damaged or foreign file (a bad zip is told apart)
DAMAGED = (OSError, ValueError, EOFError, RuntimeError, zlib.error)


def _unreadable(path: Path, reason: str) -> TargetError:
    hint = "give the .npz that save_npz writes (python train.py --export-weights W.npz)"
    return TargetError(f"cannot read the weights {path}: {reason}", hint=hint, code="RDS404")


def _headers(path: Path) -> dict:
    """Each array of an npz file as (shape, dtype), from its header alone; the identity must be
    one short string. A FIFO or a device is refused before it is opened."""
    import numpy as np

    if path.exists() and not path.is_file():  # a FIFO would block, a device never end
        raise _unreadable(path, "not a regular file")
    out = {}
    try:
        with zipfile.ZipFile(path) as archive, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy's note on a header in Python 2's form
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):  # np.load gives such a member as bytes
                    raise _unreadable(path, f"{info.filename!r} is not an .npy array")
                name = info.filename.removesuffix(".npy")
                with archive.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version not in ((1, 0), (2, 0)):
                        raise _unreadable(path, f"{name} is an .npy of version {version}")
                    header = np.lib.format
                    read_ = (
                        header.read_array_header_1_0
                        if version == (1, 0)
                        else header.read_array_header_2_0
                    )
                    shape, _, dtype = read_(f)
                out[name] = (tuple(shape), dtype)
    except zipfile.BadZipFile:
        with open(path, "rb") as f:
            one = f.read(6) == b"\x93NUMPY"
        raise _unreadable(
            path, "one .npy array, not an .npz of named arrays" if one else "not an .npz file"
        ) from None
    except DAMAGED as exc:
        raise _unreadable(path, getattr(exc, "strerror", None) or "not an .npz file") from None
    shape, dtype = out.get(KEY, ((), np.dtype("U1")))
    if shape != () or dtype.kind != "U" or dtype.itemsize > 1 << 16:
        raise _unreadable(path, "its identity is not one short string")
    return out


def read(path: Path) -> dict:
    """The named arrays of an npz file whose headers :func:`_headers` has held to the network
    (a regular file, of arrays it expects), never unpickled."""
    import numpy as np

    with np.load(path, allow_pickle=False) as archive:
        arrays = {}
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except (*DAMAGED, zipfile.BadZipFile) as exc:
                raise _unreadable(path, f"array {name!r} cannot be read ({exc})") from None
        return arrays


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
