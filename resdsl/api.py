"""The drivers: a spec file to checked networks, in one call each.

``load`` is parse, link, build and check for one network; ``check_spec`` does the same for every
concrete network a file defines, linking the file once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .check import check
from .elaborate import build
from .errors import Related, ResdslError, raise_all, unique
from .linker import concrete, defaulted, link
from .lints import lints
from .parser import parse_file
from .resolve import resolve


def load(path, network: str | None = None, shortcut: str | None = None):
    """Parse, build and check a spec file: the IR of a sound network, or a ResdslError. Every
    definition's names are resolved, used or not, as `resdsl check` resolves them."""
    module = parse_file(path)
    program = link(module)
    raise_all(unique(resolve(program, module)))
    return check(build(program, network=network, shortcut=shortcut))


@dataclass
class Checked:
    """What checking a module finds: its networks that check, by name, its errors (names of
    every definition, then each network's), its warnings, and the families built at their
    defaults."""

    networks: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    defaults: list = field(default_factory=list)


def check_module(
    module, program, network: str | None = None, shortcut: str | None = None, build_all=True
) -> Checked:
    """Check a parsed and linked module without raising: every definition's names, the
    warnings, and (where ``build_all``) each concrete network, or just ``network``, and each
    family whose parameters all have defaults, built at them (its errors noted so)."""
    out = Checked(defaults=[] if network else defaulted(module))
    out.errors = resolve(program, module)
    out.warnings = lints(program, module, shortcut)
    names = [network] if network else concrete(module) + out.defaults
    for name in names if build_all else ():
        try:
            out.networks[name] = check(build(program, network=name, shortcut=shortcut))
        except ResdslError as exc:
            found = getattr(exc, "errors", [exc])
            if name in out.defaults:  # say which values the family was checked at
                note = defaults_note(program.networks[name])
                for error in found:
                    error.related = (*error.related, note)
            out.errors.extend(found)
    return out


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
    checked = check_module(module, link(module), network, shortcut)
    if defaults is not None:
        defaults += checked.defaults
    if warnings is not None:
        warnings += checked.warnings
    raise_all(unique(checked.errors))
    return list(checked.networks.values())


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
