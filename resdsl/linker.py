"""The linker: the prelude, imports, symbol tables, and the choice of a network.

``link()`` reads each file once and returns a :class:`Program`: every block, network and train
section visible from a root module. The elaborator builds networks from a Program, so a file that
defines several networks is linked once, not once per network.
"""

from __future__ import annotations

import contextlib
import functools
import keyword
from dataclasses import dataclass, field
from pathlib import Path

from . import ops
from . import syntax as ast
from .errors import Related, ResdslError, Span, SpecError, did_you_mean, raise_all
from .parser import parse_file
from .resources import PACKAGE

PRELUDE = PACKAGE / "prelude.rds"
MAX_IMPORT_DEPTH = 32


@dataclass
class Program:
    """Every definition visible from a root module: the prelude, imports, and the root itself."""

    root: ast.Module
    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    shortcuts: dict[str, ast.ShortcutDef] = field(default_factory=dict)
    networks: dict[str, ast.NetworkDef | ast.NetworkInst] = field(default_factory=dict)
    trains: dict[str, ast.TrainDef] = field(default_factory=dict)
    modules: list[ast.Module] = field(default_factory=list)  # every file read, the prelude first


def link(module: ast.Module, errors: list[ResdslError] | None = None) -> Program:
    """Resolve imports (relative to the importing file) and collect definitions.

    The errors found are raised together; where ``errors`` is given they are added to it
    instead, and the program holds every definition that could be read (the language server
    links a file that is being edited).
    """
    program = Program(module)
    tolerant, errors = errors is not None, errors if errors is not None else []
    seen: set[str] = set()
    modules: list[ast.Module] = []

    def visit(mod: ast.Module, depth: int) -> None:
        base = Path(mod.source.name).parent
        for item in mod.items:
            if not isinstance(item, ast.Import):
                continue
            if depth >= MAX_IMPORT_DEPTH:
                errors.append(
                    SpecError(
                        f"imports nest more than {MAX_IMPORT_DEPTH} files deep",
                        item.span,
                        code="RDS107",
                    )
                )
                continue
            try:
                path = (base / item.path).resolve()
                key = str(path)
                if key in seen:
                    continue
                seen.add(key)
                module = parse_file(_display(path)) if path.is_file() else None
            except (OSError, ValueError, RuntimeError) as exc:  # NUL, too long, a symlink loop
                reason = getattr(exc, "strerror", None) or exc
                errors.append(
                    SpecError(f'cannot import "{item.path}": {reason}', item.span, code="RDS107")
                )
                continue
            except ResdslError as exc:
                errors.append(exc if exc.span else SpecError(exc.message, item.span, code=exc.code))
                continue
            if module is None:
                what = (
                    "an empty path names no file"
                    if not item.path
                    else f"{path} is a folder, not a spec"
                    if path.is_dir()
                    else f"{path} is not a regular file"
                    if path.exists()
                    else f"no such file {path}"
                )
                hint = _nearby(path) if not path.exists() else None
                message = f'cannot import "{item.path}": {what}'
                errors.append(SpecError(message, item.span, hint, code="RDS107"))
                continue
            visit(module, depth + 1)
        modules.append(mod)  # after its imports: a redefinition is reported where it is made

    visit(prelude(), 0)
    with contextlib.suppress(OSError, ValueError, RuntimeError):  # text parsed from a string
        seen.add(str(Path(module.source.name).resolve()))
    visit(module, 0)

    defined: dict[str, Span] = {}
    for mod in modules:
        for item in mod.items:
            if isinstance(item, ast.TrainDef):
                if item.name in program.trains:
                    errors.append(
                        _duplicate("train section for", item, program.trains[item.name], "RDS104")
                    )
                else:
                    program.trains[item.name] = item
                continue
            if not isinstance(
                item, (ast.BlockDef, ast.ShortcutDef, ast.NetworkDef, ast.NetworkInst)
            ):
                continue
            problem, code = _bad_identifier(item.name), "RDS105"
            if item.name in ops.OPS:
                problem = f"`{item.name}` is a built-in layer and cannot be redefined"
                code = "RDS106"
            if problem:
                errors.append(SpecError(problem, _name_span(item), code=code))
            elif item.name in defined:
                errors.append(_duplicate("definition of", item, defined[item.name], "RDS103"))
            else:
                defined[item.name] = _name_span(item)
                table = (
                    program.blocks
                    if isinstance(item, ast.BlockDef)
                    else program.shortcuts
                    if isinstance(item, ast.ShortcutDef)
                    else program.networks
                )
                table[item.name] = item
                if isinstance(item, ast.ShortcutDef):
                    errors += duplicate_case(item)
            for param in getattr(item, "params", ()):
                if problem := _bad_identifier(param.name):
                    errors.append(SpecError(problem, _name_span(param), code="RDS105"))
    for name, train in program.trains.items():
        if name not in program.networks:
            errors.append(
                SpecError(
                    f"train section for unknown network `{name}`",
                    train.name_span or train.span,
                    did_you_mean(name, program.networks),
                    code="RDS108",
                )
            )
    program.modules = modules
    if not tolerant:
        raise_all(errors)
    return program


@functools.cache
def prelude() -> ast.Module:
    """The prelude's module, parsed once per process (the AST is frozen, so it is shared)."""
    return parse_file(PRELUDE, builtin=True)


def _display(path: Path) -> Path:
    """A path as people see it: relative to the working directory where it lies below it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _name_span(item) -> Span:
    return getattr(item, "name_span", None) or item.span


def _duplicate(what: str, item, first, code: str) -> SpecError:
    first_span = first if isinstance(first, Span) else _name_span(first)
    return SpecError(
        f"duplicate {what} `{item.name}`",
        _name_span(item),
        related=[Related(first_span, "first defined here")],
        code=code,
    )


def _bad_identifier(name: str) -> str | None:
    if not name.isidentifier() or keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"`{name}` cannot be a name: it is a Python keyword"
    return None


def concrete(module: ast.Module) -> list[str]:
    """The networks a file defines that need no arguments: instances and parameterless ones."""
    return [
        item.name
        for item in module.items
        if isinstance(item, ast.NetworkInst) or isinstance(item, ast.NetworkDef) and not item.params
    ]


def _nearby(path: Path) -> str | None:
    """The spec beside a missing import that it likely means (`cifar` for `cifar.rds`)."""
    try:
        if not path.suffix and path.with_suffix(".rds").is_file():
            return f'did you mean "{path.name}.rds"?'
        names = [p.name for p in sorted(path.parent.glob("*.rds"))[:200]]
    except OSError:
        return None
    close = did_you_mean(path.name, names)
    return close.replace("`", '"') if close else None


def defaulted(module: ast.Module) -> list[str]:
    """The families a file defines whose every parameter has a default: checked at those."""
    return [
        item.name
        for item in module.items
        if isinstance(item, ast.NetworkDef)
        and item.params
        and all(p.default is not None for p in item.params)
    ]


def choose(program: Program, name: str | None) -> ast.NetworkDef | ast.NetworkInst:
    """The network to build: ``name``, or the file's only concrete network."""
    if name is not None:
        if name not in program.networks:
            raise SpecError(
                f"no network `{name}` in {program.root.source.name}",
                hint=did_you_mean(name, program.networks),
                code="RDS109",
            )
        return program.networks[name]
    concrete_ = concrete(program.root)
    if len(concrete_) == 1:
        return program.networks[concrete_[0]]
    start = Span(program.root.source, 1, 1, 1, 1)
    if not concrete_:
        families = [i.name for i in program.root.items if isinstance(i, ast.NetworkDef)]
        hint = (
            f"instantiate a family, e.g. `network mynet = {families[0]}(...)`" if families else None
        )
        raise SpecError(
            f"{program.root.source.name} defines no concrete network", start, hint, code="RDS110"
        )
    names = ", ".join(concrete_)
    raise SpecError(
        f"{program.root.source.name} defines several networks ({names})",
        program.networks[concrete_[1]].span,
        "choose one with --network",
        code="RDS111",
    )


def duplicate_case(item: ast.ShortcutDef) -> list[SpecError]:
    """A shortcut definition's cases: each at most once, and ``always`` alone."""
    errors, seen = [], {}
    for case in item.cases:
        clash = seen.get(case.name)
        if clash is None and seen and (case.name == "always" or "always" in seen):
            clash = next(iter(seen.values()))
        if clash is not None:
            message = (
                f"shortcut `{item.name}` gives its `{case.name}` case twice"
                if clash.name == case.name
                else f"shortcut `{item.name}` gives `always` beside its other cases"
            )
            errors.append(
                SpecError(
                    message,
                    case.name_span,
                    "`always` is every case: give it alone, or give the others",
                    related=[Related(clash.name_span, "given first here")],
                    code="RDS114",
                )
            )
        seen.setdefault(case.name, case)
    return errors
