"""The drivers: a spec file to checked networks, in one call each.

``load`` is parse, link, build and check for one network; ``check_spec`` does the same for every
concrete network a file defines, linking the file once.
"""

from __future__ import annotations

from .check import check
from .elaborate import build
from .errors import Related, ResdslError, raise_all, unique
from .linker import concrete, defaulted, link
from .lints import lints
from .parser import parse_file
from .resolve import resolve


def load(path, network: str | None = None, shortcut: str | None = None):
    """Parse, build and check a spec file: the IR of a sound network, or a ResdslError."""
    return check(build(link(parse_file(path)), network=network, shortcut=shortcut))


def check_spec(
    path,
    network: str | None = None,
    shortcut: str | None = None,
    warnings: list | None = None,
    defaults: list | None = None,
) -> list:
    """Check every concrete network a file defines (or just ``network``), and every family
    whose parameters all have defaults, built at them.

    Every definition the file makes has its names resolved (resdsl.resolve), used or not, so a
    file of families only (a library such as specs/cifar.rds) is checked too. Where ``warnings``
    is a list, the file's warnings (resdsl.lints) are added to it, before any error is raised;
    where ``defaults`` is, the names of the families checked at their defaults.
    """
    module = parse_file(path)
    program = link(module)
    at_defaults = [] if network else defaulted(module)
    if defaults is not None:
        defaults += at_defaults
    names = [network] if network else concrete(module) + at_defaults
    checked, errors = [], resolve(program, module)
    if warnings is not None:
        warnings += lints(program, module, shortcut)
    for name in names:
        try:
            checked.append(check(build(program, network=name, shortcut=shortcut)))
        except ResdslError as exc:
            found = getattr(exc, "errors", [exc])
            if name in at_defaults:  # say which values the family was checked at
                note = defaults_note(program.networks[name])
                for error in found:
                    error.related = (*error.related, note)
            errors.extend(found)
    raise_all(unique(errors))
    return checked


def defaults_note(family) -> Related:
    """A note at a family's name: the defaults it was built at, as the spec writes them."""
    written = []
    for param in family.params:
        span = param.span
        line = span.source.line(span.line)
        end = span.end_column - 1 if span.end_line == span.line else len(line)
        written.append(" ".join(line[span.column - 1 : end].split()))
    where = family.name_span or family.span
    return Related(where, f"`{family.name}` checked at its defaults: " + ", ".join(written))
