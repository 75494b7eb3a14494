"""What a target's read table gives back: a graph of ops, each the op table's row with resdsl's
arguments, and the refusal of what has none.

The pipeline run backwards starts here. A target reads a model of its framework (PyTorch modules
traced by torch.fx, ONNX nodes) through a table beside the one it writes with, into
:class:`Op` s; :mod:`resdsl.structure` finds blocks and stages among them and
:mod:`resdsl.importer` writes the spec. This module knows no framework and imports none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ResdslError

INPUT_SIZE = (3, 224, 224)  # torchvision's and timm's default, where a model does not say


class ImportError_(ResdslError):  # noqa: N801 - not the builtin ImportError
    """A source that cannot be imported: unknown, failing, or with no resdsl form."""


def refuse(message: str, hint: str | None = None, code: str = "RDS432") -> ImportError_:
    return ImportError_(message, hint=hint, code=code)


@dataclass(eq=False)
class Op:
    """One call of the source network, as a resdsl op (``kind``) with resdsl's arguments."""

    kind: str  # a row of the op table, or input
    args: dict
    path: str  # the module's path ("layer1.0.conv1"); a function's is its scope's
    scope: str  # the innermost module the call happens in
    inputs: list[Op] = field(default_factory=list)
    shape: tuple = ()  # its output, without the batch dimension
    weights: bool = False  # it owns parameters or buffers, so its name is a state_dict key

    def __repr__(self) -> str:  # for messages
        return f"{self.path or '<top>'} ({self.kind})"


def pair(value) -> tuple[int, int]:
    """A size as resdsl's pair: ``3`` or ``(3, 3)`` as ``(3, 3)``."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def one(value, what: str, path: str) -> int:
    """A stride or dilation, which resdsl takes equal in both directions."""
    h, w = pair(value)
    if h != w:
        raise refuse(f"{path}: a {what} of {h}x{w} has no resdsl form (it takes one {what})")
    return h


def real(value) -> float:
    """A float32 of a model as the shortest decimal that is that float32 (an epsilon of 1e-3 is
    0.001, not 0.0010000000474974513)."""
    import numpy as np

    return float(str(np.float32(value)))


def as_array(value):
    """A tensor of a source (PyTorch's, detached to the CPU) or an array, as a numpy array."""
    import numpy as np

    detach = getattr(value, "detach", None)
    return np.asarray(detach().cpu().numpy() if detach else value)


def sample(input_shape):
    """The proofs' input: 2 images of ``input_shape`` (C, H, W), standard normal, from seed 0."""
    import numpy as np

    return np.random.default_rng(0).standard_normal((2, *input_shape)).astype(np.float32)


TF_TIMEOUT = 900  # seconds for a TensorFlow process: starting, building a model, one batch


def in_tensorflow(code: str, *args: str, paths: list[str] | None = None, memory: int = 0):
    """Run ``code`` with ``args`` in a Python process of its own, as TensorFlow needs (it shares
    no process with PyTorch): the finished process, or None where it ran past TF_TIMEOUT.
    ``paths`` go first on its PYTHONPATH; ``memory``, where given, bounds the bytes of data the
    process may allocate (RLIMIT_DATA), so that a model whose layers claim more fails there."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)

    def bounded():  # in the child, before it runs a line of Python
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))

    try:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=TF_TIMEOUT,
            env=env,
            preexec_fn=bounded if memory and hasattr(os, "fork") else None,
        )
    except subprocess.TimeoutExpired:
        return None


def last_line(done) -> str:
    """The last line a finished process wrote, for its refusal."""
    return ((done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"])[0]


def load_problem(exc: BaseException) -> str:
    """PyTorch's load_state_dict error in one line: its first problem, with at most four of the
    keys it names (a strange file may miss hundreds)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = lines[1] if len(lines) > 1 else (lines or [type(exc).__name__])[0]
    head, colon, keys = line.partition(": ")
    names = [k.strip().rstrip(".") for k in keys.split(", ")] if colon else []
    if len(names) > 4 and all(n.startswith('"') for n in names):
        return f"{head}: {', '.join(names[:4])} and {len(names) - 4} more"
    return line


def needs(module: str, extra: str):
    """Import ``module`` for a reader, or refuse with the install that gives it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise refuse(
            f"resdsl import needs {module.partition('.')[0]}: {exc}",
            f"pip install {extra}",
            code="RDS434",
        ) from None
