"""IR to files: the target registry and the Jinja environment the targets render with.

A target is one module in resdsl/targets/ (registered with :func:`register`) and, where it prints
code, one folder of templates in templates/<name>/. The target computes a view-model; its
templates only print it. A file's contents are text, or bytes for a binary format (ONNX).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ResdslError, Span
from .ir import Network
from .resources import resource

if TYPE_CHECKING:
    import jinja2

TARGETS: dict[str, Callable[..., dict[str, str | bytes]]] = {}
BUILTIN = ("torch", "tf", "onnx")  # modules under resdsl.targets, imported on first use


class TargetError(ResdslError):
    """A construct that a target cannot express."""


def register(name: str):
    """Register ``files(net, **options) -> {filename: text or bytes}`` as the target ``name``.

    Its keyword parameters after ``net`` are the options it takes (the onnx target's ``weights``).
    """

    def decorate(function):
        TARGETS[name] = function
        return function

    return decorate


def targets() -> list[str]:
    for name in BUILTIN:
        importlib.import_module(f"resdsl.targets.{name}")
    return sorted(TARGETS)


def options_of(target: str) -> tuple[str, ...]:
    """The options ``target`` takes: its files function's keyword parameters after ``net``."""
    parameters = list(inspect.signature(TARGETS[target]).parameters.values())[1:]
    return tuple(p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))


def emit(net: Network, target: str, **options) -> dict[str, str | bytes]:
    """The files of ``net`` for ``target``, as {filename: text or bytes}. ``net`` must have been
    checked. ``options`` go to the target as they are (see :func:`options_of`)."""
    if target not in targets():
        raise TargetError(
            f"unknown target {target!r}; choose from {', '.join(targets())}", code="RDS401"
        )
    return TARGETS[target](net, **options)


def write(files: dict[str, str | bytes], directory: str | Path) -> list[Path]:
    """Write the files (text as UTF-8, or bytes) into ``directory``, all or none; their paths.

    Each is written to a temporary file beside its place, with the permissions the umask gives a
    new file, then all are renamed into place; if any write fails, every temporary file is
    removed and a ResdslError says why.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ResdslError(f"cannot write to {directory}: {reason}", code="RDS403") from None
    mode = 0o666 & ~_umask()
    staged: list[tuple[str, Path]] = []
    try:
        for name, content in files.items():
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
            staged.append((tmp, directory / name))
            if isinstance(content, bytes):
                with os.fdopen(fd, "wb") as handle:
                    handle.write(content)
            else:
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                    handle.write(content)
            os.chmod(tmp, mode)
        for tmp, path in staged:
            os.replace(tmp, path)
    except OSError as exc:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise ResdslError(
            f"cannot write to {directory}: {exc.strerror or exc}", code="RDS403"
        ) from None
    return [path for _, path in staged]


def write_text(path: str | Path, text: str) -> None:
    """Replace one file's text atomically; a ResdslError where it cannot be written."""
    path = Path(path)
    write({path.name: text}, path.parent)


def check_output(directory: str | Path) -> None:
    """Refuse an output folder that cannot be one, before anything is compiled or written."""
    if not str(directory).strip():
        raise ResdslError("the output folder is empty: give -o a folder", code="RDS403")
    path = Path(directory)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                raise ResdslError(f"cannot write to {path}: {part} is not a folder", code="RDS403")
            if not os.access(part, os.W_OK | os.X_OK):
                raise ResdslError(f"cannot write to {path}: {part} is not writable", code="RDS403")
            return


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@functools.cache
def environment(target: str) -> jinja2.Environment:
    import jinja2  # only where code is generated: `check` never pays for it

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(
            [str(resource("templates") / target), str(resource("templates") / "common")]
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


def render(target: str, template: str, **view) -> str:
    return environment(target).get_template(template).render(**view)


def where(span: Span, root: Span) -> str:
    """``file:line`` for a generated comment, relative to the root spec so output is portable."""
    return f"{source_file(span, root)}:{span.line}"


def source_file(span: Span, root: Span) -> str:
    """The file of ``span`` as a generated comment cites it: relative to the root spec."""
    source = span.source
    if source.builtin:
        name = f"resdsl/{Path(source.name).name}"
    else:
        base = Path(root.source.name).parent
        name = os.path.relpath(source.name, base) if base != Path("") else source.name
    return cite(Path(name).as_posix())


def cite(text: str) -> str:
    """Text from a path, safe inside a generated comment or docstring: ASCII word characters and
    ``./+-`` only, anything else as ``?`` (a quote or a newline there could end the comment)."""
    return re.sub(r"[^A-Za-z0-9_./+-]", "?", text)
