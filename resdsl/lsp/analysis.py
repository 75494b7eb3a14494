"""The language server's analysis of a document: parsed, linked, each concrete network built and
checked, costs computed, and the positions of everything a request asks about."""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types as lsp
from pygls.uris import from_fs_path

import resdsl

from .. import diagnostics
from .. import syntax as ast
from ..api import check_module
from ..errors import Related, ResdslError, Span
from ..ir import without_gc
from ..linker import Program, concrete, link
from ..parser import alternatives, leading_words, parse, parse_file
from ..syntax import bare

# the keywords completion offers, as the grammar has them
NETWORK_WORDS = leading_words("net_stmt")  # input, classes, drop_path, shortcut, stem, ...
TOP_WORDS = leading_words("_item")  # import, block, shortcut, network, train
CASES = alternatives("CASE")  # a shortcut definition's cases: keep, change, always, ...
SHOWN = 8  # ops listed one by one in a hover before the rest are summed
DEBOUNCE = 0.25  # seconds without an edit before a document's diagnostics are published
HOVER_WAIT = 0.08  # seconds a hover waits for a running analysis before it answers from the last

# ---------------------------------------------------------------- analysis


@dataclass
class Built:
    """One checked network of a document, with each op's cost."""

    net: object  # resdsl.ir.Network
    costs: dict  # node name -> Cost
    by_span: dict = field(default_factory=dict)  # (file, line, col, end_line, end_col) -> nodes
    moved: dict = field(default_factory=dict)  # a span key of the built text -> today's span


@dataclass
class Analysis:
    path: str
    text: str
    module: ast.Module | None = None
    errors: list[ResdslError] = field(default_factory=list)
    networks: dict[str, Built] = field(default_factory=dict)
    meaning: tuple | None = None  # the module without its spans, and its imports' versions
    program: Program | None = None  # the module linked (with what could be read, on errors)
    stale: bool = False  # provisional: today's parse, the networks of an earlier text


def _key(span: Span) -> tuple:
    name = _canonical(span.source.name)
    return (name, span.line, span.column, span.end_line, span.end_column)


@functools.lru_cache(maxsize=256)
def _canonical(name: str) -> str:
    """A file's one name, however a span reached it (relative to the server's folder, through
    an import, or from an editor's URI)."""
    try:
        return str(Path(name).resolve())
    except (OSError, RuntimeError, ValueError):
        return name


MAX_NEIGHBOURS = 50  # .rds files beside a library that are read for its instances
MAX_INSTANCES = 4  # networks built from them


def _workspace_instances(analysis: Analysis) -> tuple[dict[str, Built], list[ResdslError]]:
    """For a file of definitions only (a library): the networks that the files beside it build
    from it, so that its hovers show shapes, and the errors those builds find in it, each with
    a note at the instance that found it. Only while the document is as saved, since those
    files import it from disk."""
    here = Path(analysis.path)
    try:
        if here.read_text(encoding="utf-8") != analysis.text:
            return {}, []
        me = here.resolve()
        others = sorted(p for p in me.parent.glob("*.rds") if p.resolve() != me)
    except (OSError, UnicodeDecodeError):
        return {}, []
    found: dict[str, Built] = {}
    problems: list[ResdslError] = []
    tried = 0
    for other in others[:MAX_NEIGHBOURS]:
        try:
            module = parse_file(other)
            imports = [i for i in module.items if isinstance(i, ast.Import)]
            if not any((other.parent / i.path).resolve() == me for i in imports):
                continue
            program = link(module)
        except (ResdslError, OSError, RecursionError):
            continue
        for name in concrete(module):
            if name in found or tried >= MAX_INSTANCES:
                continue
            tried += 1
            try:
                found[name] = _built(resdsl.check(resdsl.build(program, network=name)))
            except RecursionError:
                continue
            except ResdslError as exc:
                item = program.networks[name]
                note = Related(item.span, f"found when `{name}` is built from this file")
                for error in diagnostics.flatten(exc):
                    if error.span is not None and _same_file(error.span.source.name, str(me)):
                        error.related = (*error.related, note)
                        problems.append(error)
    return found, problems


def _built(net) -> Built:
    built = Built(net, resdsl.costs(net))
    for node in net.nodes():
        built.by_span.setdefault(_key(node.span), []).append(node)
    return built


def analyse(text: str, path: str, previous: Analysis | None = None) -> Analysis:
    """Parse ``text`` (the document at ``path``), build and check its networks, cost them.

    Where ``previous`` (the analysis before an edit) had the same meaning (the same AST but for
    positions, the same imported files) and no errors, its networks are kept and only their
    positions are moved: an edit to comments or layout costs a parse, not a build.
    """
    with without_gc():  # as a build does: it makes many objects and frees few
        return _analyse(text, path, previous)


def _analyse(text: str, path: str, previous: Analysis | None) -> Analysis:
    result = Analysis(path, text)
    try:
        result.module = parse(text, path)
    except ResdslError as exc:
        result.errors = diagnostics.flatten(exc)
        return result
    errors: list[ResdslError] = []
    result.program = link(result.module, errors)
    result.meaning = (bare(result.module), _versions(result.program))
    if (
        previous is not None
        and previous.meaning == result.meaning
        and not previous.errors
        and previous.module is not None
    ):
        moves = _moves(previous.module, result.module)
        for name, built in previous.networks.items():
            # compose the earlier moves with this edit's: built-text key -> today's span
            if built.moved:
                moved = {k: moves.get(_key(v), v) for k, v in built.moved.items()}
            else:
                moved = dict(moves)
            by_span = {}
            for nodes in built.by_span.values():
                new = moved.get(_key(nodes[0].span))
                by_span[_key(new) if new is not None else _key(nodes[0].span)] = nodes
            result.networks[name] = Built(built.net, built.costs, by_span, moved)
        return result
    seen = set()

    def report(error: ResdslError) -> None:
        key = (str(error), error.span and _key(error.span))
        if key not in seen:  # networks of one family share its errors
            seen.add(key)
            result.errors.append(error)

    checked = check_module(result.module, result.program, build_all=not errors)
    for error in [*errors, *checked.errors, *checked.warnings]:
        for each in diagnostics.flatten(error):
            report(each)
    for name, net in checked.networks.items():
        result.networks[name] = _built(net)
    if not concrete(result.module) and not errors:  # a library: its workspace's instances
        found, problems = _workspace_instances(result)
        for name, built in found.items():
            result.networks.setdefault(name, built)
        for error in problems:
            report(error)
    return result


def _moves(old, new, out=None) -> dict:
    """Each span key of ``old`` mapped to the span at the same place of ``new`` (same shape)."""
    out = {} if out is None else out
    if isinstance(old, Span):
        out[_key(old)] = new
    elif dataclasses.is_dataclass(old):
        for f in dataclasses.fields(old):
            if f.name != "source":
                _moves(getattr(old, f.name), getattr(new, f.name), out)
    elif isinstance(old, tuple):
        for a, b in zip(old, new, strict=True):
            _moves(a, b, out)
    return out


def _versions(program: Program) -> tuple:
    """The modification times of the files the program imports, directly or not."""
    out = []
    for module in program.modules[1:]:  # after the prelude, which does not change
        if module is not program.root:
            try:
                out.append((module.source.name, os.stat(module.source.name).st_mtime_ns))
            except OSError:
                out.append((module.source.name, None))
    return tuple(sorted(out, key=str))


# ---------------------------------------------------------------- positions


def _range(span: Span) -> lsp.Range:
    return lsp.Range(
        lsp.Position(span.line - 1, span.column - 1),
        lsp.Position(span.end_line - 1, max(span.end_column - 1, 0)),
    )


def _contains(span: Span, line: int, column: int) -> bool:
    """Whether the 1-based ``line``:``column`` lies in ``span`` (its end column included)."""
    if not span.line <= line <= span.end_line:
        return False
    if line == span.line and column < span.column:
        return False
    return not (line == span.end_line and column > span.end_column)


def _line_span(span: Span) -> Span:
    """The whole first line of ``span``: a header such as `network n(k) {`."""
    text = span.source.line(span.line)
    return Span(span.source, span.line, 1, span.line, len(text) + 1)


def to_diagnostic(error: ResdslError, analysis: Analysis) -> lsp.Diagnostic:
    span = error.span
    message = error.message
    related = [
        lsp.DiagnosticRelatedInformation(
            lsp.Location(from_fs_path(str(Path(r.span.source.name).resolve())), _range(r.span)),
            r.message,
        )
        for r in error.related
    ]
    where = None
    if span is not None and _same_file(span.source.name, analysis.path):
        where = _range(span)
    elif span is not None and not span.source.builtin:
        # an error in an imported file: shown on the import, with a link to its place
        related.append(
            lsp.DiagnosticRelatedInformation(
                lsp.Location(from_fs_path(str(Path(span.source.name).resolve())), _range(span)),
                message,
            )
        )
        message = f"{span}: {message}"
        item = _import_of(analysis, span.source.name)
        where = _range(item.span) if item is not None else None
    if where is None:
        where = lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    if error.hint:
        message += f"\nhint: {error.hint}"
    return lsp.Diagnostic(
        range=where,
        message=message,
        severity=lsp.DiagnosticSeverity.Warning
        if error.kind == "warning"
        else lsp.DiagnosticSeverity.Error,
        code=error.code,
        source="resdsl",
        related_information=related or None,
    )


def _same_file(a: str, b: str) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def _import_of(analysis: Analysis, name: str):
    """The import of the document that leads to the file ``name`` (the first, if not direct)."""
    if analysis.module is None:
        return None
    imports = [i for i in analysis.module.items if isinstance(i, ast.Import)]
    base = Path(analysis.path).parent
    for item in imports:
        if _same_file(str(base / item.path), name):
            return item
    return imports[0] if imports else None
