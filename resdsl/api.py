"""The drivers: a spec file to checked networks, in one call each.

``load`` is parse, link, build and check for one network; ``check_spec`` does the same for every
concrete network a file defines, linking the file once.
"""

from __future__ import annotations

from .check import check
from .elaborate import build
from .errors import ResdslError, raise_all, unique
from .linker import concrete, link
from .lints import lints
from .parser import parse_file
from .resolve import resolve


def load(path, network: str | None = None, shortcut: str | None = None):
    """Parse, build and check a spec file: the IR of a sound network, or a ResdslError."""
    return check(build(link(parse_file(path)), network=network, shortcut=shortcut))


def check_spec(
    path, network: str | None = None, shortcut: str | None = None, warnings: list | None = None
) -> list:
    """Check every concrete network a file defines (or just ``network``).

    Every definition the file makes has its names resolved (resdsl.resolve), used or not, so a
    file of families only (a library such as specs/cifar.rds) is checked too; it returns no
    networks. Where ``warnings`` is a list, the file's warnings (resdsl.lints) are added to it,
    before any error is raised.
    """
    module = parse_file(path)
    program = link(module)
    names = [network] if network else concrete(module)
    checked, errors = [], resolve(program, module)
    if warnings is not None:
        warnings += lints(program, module, shortcut)
    for name in names:
        try:
            checked.append(check(build(program, network=name, shortcut=shortcut)))
        except ResdslError as exc:
            errors.extend(getattr(exc, "errors", [exc]))
    raise_all(unique(errors))
    return checked
