"""`resdsl lsp`: a language server over stdio, built on pygls and lsprotocol (the lsp extra).

Each open document is analysed when it opens or changes: parsed, each concrete network built and
checked, and the costs of every op computed. The analysis answers every request until the next
change:

- diagnostics with ranges and codes (errors in imported files point at the import);
- hover: a layer or block line shows each op's (or each block instance's) output shape,
  parameters and MACs; a network name its totals; a `train` setting its value after
  inheritance from the family's section;
- go to definition of blocks, families, networks, parameters and import paths;
- completion of layers, blocks, keyword arguments, policies and `train` settings;
- formatting with `resdsl fmt`; document symbols for networks, their stages, blocks and trains.

Only resdsl's public API is used (parse, build, check, costs, the IR's nodes and blocks).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import os
import re
import sys
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

import resdsl

from . import diagnostics, ops, recipe
from . import syntax as ast
from .api import defaults_note
from .costs import summary
from .elaborate import without_gc
from .errors import Related, ResdslError, Source, Span
from .fmt import format_text
from .linker import Program, concrete, defaulted, link, prelude
from .lints import lints
from .parser import parse, parse_file
from .resolve import resolve

NETWORK_WORDS = ("input", "classes", "shortcut", "drop_path", "stem", "stage", "head")
TOP_WORDS = ("import", "block", "shortcut", "network", "train")
CASES = ("keep", "change", "always", "channels", "stride")  # a shortcut definition's cases
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
    result.meaning = (_strip(result.module), _versions(result.program))
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

    for error in [
        *errors,
        *resolve(result.program, result.module),
        *lints(result.program, result.module),
    ]:  # every definition, used or not, and the warnings
        report(error)
    families = defaulted(result.module)
    for name in [*concrete(result.module), *families] if not errors else ():
        try:
            net = resdsl.check(resdsl.build(result.program, network=name))
        except ResdslError as exc:
            for error in diagnostics.flatten(exc):
                if name in families:
                    error.related = (*error.related, defaults_note(result.program.networks[name]))
                report(error)
            continue
        result.networks[name] = _built(net)
    if not concrete(result.module) and not errors:  # a library: its workspace's instances
        found, problems = _workspace_instances(result)
        for name, built in found.items():
            result.networks.setdefault(name, built)
        for error in problems:
            report(error)
    return result


def _strip(value):
    """An AST without its positions: what it means."""
    if dataclasses.is_dataclass(value) and not isinstance(value, Span):
        return (type(value).__name__,) + tuple(
            _strip(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.name.endswith("span") and f.name != "source"
        )
    if isinstance(value, tuple):
        return tuple(_strip(v) for v in value)
    return value


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


# ---------------------------------------------------------------- hover


def _fmt(shape) -> str:
    return "x".join(map(str, shape)) if shape else "?"


def _cost_of(built: Built, names) -> tuple[int, int]:
    costs = [built.costs[n] for n in names]
    return sum(c.params for c in costs), sum(c.macs for c in costs)


def _item_at(module: ast.Module, line: int, column: int):
    return next((i for i in module.items if _contains(i.span, line, column)), None)


def _statement_at(body, line: int, column: int):
    for stmt in body:
        if _contains(stmt.span, line, column):
            if isinstance(stmt, ast.Section | ast.Group | ast.Case | ast.Join):
                return _statement_at(stmt.body or (), line, column) or stmt
            return stmt
    return None


def hover(analysis: Analysis, line: int, column: int) -> str | None:
    """Markdown for the 1-based position, or None where there is nothing to say."""
    if analysis.module is None:
        return None
    item = _item_at(analysis.module, line, column)
    if item is None:
        return None
    if isinstance(item, ast.Import):
        target = Path(analysis.path).parent / item.path
        return f"import `{target}`" + ("" if target.is_file() else " (no such file)")
    if isinstance(item, ast.NetworkInst) or (
        isinstance(item, ast.NetworkDef) and line == item.span.line
    ):
        return _network_hover(analysis, item.name)
    if isinstance(item, ast.TrainDef):
        return _train_hover(analysis, item, line, column)
    if isinstance(item, ast.ShortcutDef):
        stmt = _statement_at(item.cases, line, column)
        if isinstance(stmt, ast.Call):
            return _call_hover(analysis, stmt)
        return _shortcut_hover(analysis, item.name)
    body = item.body
    stmt = _statement_at(body, line, column)
    if isinstance(stmt, ast.Call):
        return _call_hover(analysis, stmt)
    if isinstance(item, ast.NetworkDef) and isinstance(stmt, ast.Section | ast.Setting):
        return _section_hover(analysis, item, stmt)
    if isinstance(stmt, ast.Add) and isinstance(item, ast.BlockDef):
        return _add_hover(analysis, item.name)
    if isinstance(item, ast.BlockDef) and line == item.span.line:
        instances = [
            (name, b)
            for name, built in analysis.networks.items()
            for b in built.net.blocks
            if b.kind == item.name
        ]
        counts = {}
        for name, _ in instances:
            counts[name] = counts.get(name, 0) + 1
        used = ", ".join(f"{n} ({c}x)" for n, c in counts.items()) or "no network of this file"
        return f"block `{item.name}`: used by {used}"
    return None


def _built_for(analysis: Analysis, item: ast.NetworkDef | ast.TrainDef) -> Built | None:
    """The network a definition (or its train section) makes: itself, or the first instance
    of it in this file."""
    if item.name in analysis.networks:
        return analysis.networks[item.name]
    return next(
        (
            analysis.networks[i.name]
            for i in analysis.module.items
            if isinstance(i, ast.NetworkInst)
            and i.family == item.name
            and i.name in analysis.networks
        ),
        None,
    )


def _section_hover(analysis: Analysis, item: ast.NetworkDef, stmt) -> str | None:
    """A section (`stage`, `stem`, `head`) or a setting (`input`, `classes`, `shortcut`, a
    stage's `stride`): what it made in the network, as `summary` groups it."""
    if isinstance(stmt, ast.Setting) and stmt.key == "shortcut":
        return _shortcut_hover(analysis, stmt.value)
    word = stmt.key if isinstance(stmt, ast.Setting) else stmt.kind
    built = _built_for(analysis, item)
    if built is None:
        return f"`{word}`: no network of this file is built from `{item.name}`"
    net = built.net
    if word == "input":
        c, h, w = net.input_shape
        return f"**input** of `{net.name}`: {c} channels of {h}x{w} (NCHW; TensorFlow: NHWC)"
    if word == "classes":
        return f"**classes** of `{net.name}`: {net.classes}, the logits its last layer gives"
    sections = [s for s in item.body if isinstance(s, ast.Section)]
    section = stmt if isinstance(stmt, ast.Section) else None
    section = section or next((s for s in sections if stmt in s.body), None)
    groups = summary(net)["groups"]
    if section is None or sections.index(section) >= len(groups):
        return None
    group = groups[sections.index(section)]
    blocks = [c for c in group["children"] if c["children"]]
    kinds = ", ".join(dict.fromkeys(b["kind"] for b in blocks))
    made = f"{len(blocks)} blocks ({kinds})" if blocks else f"{len(group['children'])} ops"
    rows = [
        f"**{group['kind']} `{group['name']}`** of `{net.name}`: {made}",
        f"{_fmt(group['input'])} → {_fmt(group['shape'])}, {group['params']:,} params, "
        f"{group['macs']:,} MACs",
    ]
    if word == "stride" and blocks:
        first = blocks[0]
        moves = f"{_fmt(first['input'])} → {_fmt(first['shape'])}"
        rows.insert(0, f"**stride**: the stage's first block, `{first['name']}`, strides: {moves}")
    return "\n\n".join(rows)


def _add_hover(analysis: Analysis, block: str) -> str:
    """Where the block's shortcut joins its branch, and what the shortcuts were."""
    seen: dict[str, int] = {}
    for built in analysis.networks.values():
        for instance in built.net.blocks:
            if instance.kind == block:
                plan = instance.shortcut
                plain = plan.kind in ("identity", "none", "plain")
                label = plan.kind if plain else f"{plan.policy} ({plan.case})"
                seen[label] = seen.get(label, 0) + 1
    head = f"**add**: `{block}`'s shortcut joins its branch here"
    if not seen:
        return f"{head}; no network of this file uses `{block}`"
    return f"{head}. In this file: " + ", ".join(f"{k} ×{n}" for k, n in seen.items())


def _shortcut_hover(analysis: Analysis, name: str) -> str:
    """Where a shortcut definition joins, by the case that applied, in the built networks."""
    counts: dict[tuple[str, str], int] = {}
    for net_name, built in analysis.networks.items():
        for b in built.net.blocks:
            if b.shortcut.policy == name:
                case = b.shortcut.case or "identity"
                counts[net_name, case] = counts.get((net_name, case), 0) + 1
    used = ", ".join(f"{n}: {c} {case}" for (n, case), c in counts.items())
    return f"shortcut `{name}`: " + (used or "no block of this file's networks uses it")


def _network_hover(analysis: Analysis, name: str) -> str | None:
    built = analysis.networks.get(name)
    if built is None and analysis.stale:
        return f"network `{name}`: being built"
    if built is None:
        return (
            f"network `{name}`: not built (see its errors)"
            if name in concrete(analysis.module)
            else f"network family `{name}`: instantiate it to see shapes and costs"
        )
    net = built.net
    params = sum(c.params for c in built.costs.values())
    macs = sum(c.macs for c in built.costs.values())
    ops_count = sum(1 for n in net.nodes() if ops.OPS[n.op].inputs)  # all but the input
    convs = sum(1 for n in net.nodes() if ops.OPS[n.op].layer and n.role != "shortcut")
    return "\n".join(
        [
            f"**network {net.name}**",
            "",
            f"- input {_fmt(net.input_shape)} → output {_fmt(net.output.shape)}",
            f"- parameters: {params:,}",
            f"- MACs: {macs:,}",
            f"- {ops_count:,} ops, {convs} weighted layers, {len(net.blocks):,} blocks",
            f"- shortcut policy {net.policy}",
        ]
    )


def _call_hover(analysis: Analysis, call: ast.Call) -> str | None:
    rows = []
    key = _key(call.span)
    for name, built in analysis.networks.items():
        instances = [b for b in built.net.blocks if _moved_key(built, b.span) == key]
        if instances:
            rows.append(f"**{call.name}** in `{name}`: {len(instances)} block instance(s)")
            rows.append("")
            rows += _instance_rows(built, instances)
            continue
        nodes = built.by_span.get(key, [])
        if nodes:
            rows.append(f"**{call.name}** in `{name}`")
            rows.append("")
            rows += _node_rows(built, nodes)
    return "\n".join(rows) if rows else None


def _moved_key(built: Built, span: Span) -> tuple:
    moved = built.moved.get(_key(span))
    return _key(moved) if moved is not None else _key(span)


def _instance_rows(built: Built, instances) -> list[str]:
    """One table row per instance; runs of identical instances in one row."""
    entries = []
    for inst in instances:
        names = [n.name for n in built.net.nodes() if n.block and _inside(n.block, inst.name)]
        params, macs = _cost_of(built, names)
        out = built.net.node(inst.output).shape
        stage = f"stage {inst.stage}" if inst.stage else "—"
        entries.append((inst.name, stage, _fmt(out), params, macs))
    rows = ["| block | stage | output | params | MACs |", "|---|---|---|---:|---:|"]
    i = 0
    while i < len(entries):
        j = i
        while j + 1 < len(entries) and entries[j + 1][1:] == entries[i][1:]:
            j += 1
        name, stage, out, params, macs = entries[i]
        label = name if i == j else f"{name} … {entries[j][0]} ({j - i + 1}x)"
        rows.append(f"| {label} | {stage} | {out} | {params:,} | {macs:,} |")
        i = j + 1
    total_p = sum(e[3] for e in entries)
    total_m = sum(e[4] for e in entries)
    rows.append(f"| **all {len(entries)}** | | | {total_p:,} | {total_m:,} |")
    return rows


def _inside(block: str, instance: str) -> bool:
    return block == instance or block.startswith(instance + ".")


def _node_rows(built: Built, nodes) -> list[str]:
    rows = ["| op | output | params | MACs |", "|---|---|---:|---:|"]
    shown = nodes if len(nodes) <= SHOWN else nodes[: SHOWN - 1]
    for node in shown:
        cost = built.costs[node.name]
        rows.append(f"| {node.name} | {_fmt(node.shape)} | {cost.params:,} | {cost.macs:,} |")
    if len(nodes) > len(shown):
        params, macs = _cost_of(built, [n.name for n in nodes[len(shown) :]])
        rows.append(f"| … {len(nodes) - len(shown)} more | | {params:,} | {macs:,} |")
    if len(nodes) > 1:
        params, macs = _cost_of(built, [n.name for n in nodes])
        rows.append(f"| **all {len(nodes)}** | | {params:,} | {macs:,} |")
    return rows


def _train_hover(analysis: Analysis, item: ast.TrainDef, line: int, column: int) -> str | None:
    built = _built_for(analysis, item)  # a family's section: an instance that inherits it
    if built is None or built.net.train is None:
        return f"train `{item.name}`: no network of this file uses it"
    cfg = built.net.train
    setting = next(
        (s for s in item.settings if s and _contains(_setting_span(s), line, column)), None
    )
    heads = (
        [setting[0].name]
        if setting
        else [f.name for f in dataclasses.fields(cfg) if f.name not in ("name", "span", "spans")]
    )
    rows = [f"**train {built.net.name}** (resolved)", ""]
    for head in heads:
        value = getattr(cfg, head, None)
        origin = cfg.spans.get(head)
        origin = built.moved.get(_key(origin), origin) if origin else None
        where = f" — from {Path(origin.source.name).name}:{origin.line}" if origin else " — default"
        rows.append(f"- `{recipe.spell(head, value)}`{where}")
    return "\n".join(rows)


def _setting_span(setting) -> Span:
    first, last = setting[0].span, setting[-1].span
    return Span(first.source, first.line, 1, last.end_line, last.end_column)


# ---------------------------------------------------------------- definitions


@dataclass
class Definition:
    name: str
    kind: str  # block | network | family | train | param
    span: Span


def definitions(analysis: Analysis) -> dict[str, Definition]:
    """Blocks and networks visible from the document: its own, its imports', the prelude's."""
    table: dict[str, Definition] = {}
    program = analysis.program
    for item in prelude().items if program is None else ():  # the document does not parse
        kind = "shortcut" if isinstance(item, ast.ShortcutDef) else "block"
        table[item.name] = Definition(item.name, kind, item.span)
    if program is None:  # what the document defines, read off its text while it is broken
        source = Source(analysis.path, analysis.text)
        for match in _DEFINED.finditer(analysis.text):
            line = analysis.text.count("\n", 0, match.start(2)) + 1
            column = match.start(2) - analysis.text.rfind("\n", 0, match.start(2))
            span = Span(source, line, column, line, column + len(match.group(2)))
            table[match.group(2)] = Definition(match.group(2), match.group(1), span)
    if program is not None:
        for item in program.blocks.values():
            table[item.name] = Definition(item.name, "block", item.span)
        for item in program.shortcuts.values():
            table[item.name] = Definition(item.name, "shortcut", item.span)
        for item in program.networks.values():
            kind = "family" if getattr(item, "params", ()) else "network"
            table[item.name] = Definition(item.name, kind, item.span)
    return table


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEFINED = re.compile(r"^[ \t]*(block|shortcut)[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)


def word_at(text: str, line: int, column: int) -> str | None:
    """The name under the 1-based position."""
    lines = text.split("\n")
    if not 0 < line <= len(lines):
        return None
    for match in _WORD.finditer(lines[line - 1]):
        if match.start() < column <= match.end() + 1:
            return match.group()
    return None


def definition(analysis: Analysis, line: int, column: int) -> Span | Path | None:
    if analysis.module is None:
        return None
    item = _item_at(analysis.module, line, column)
    if isinstance(item, ast.Import):
        path = (Path(analysis.path).parent / item.path).resolve()
        return path if path.is_file() else None
    name = word_at(analysis.text, line, column)
    if name is None:
        return None
    for param in getattr(item, "params", ()) or ():
        if param.name == name:
            return param.span
    found = definitions(analysis).get(name)
    return found.span if found else None


# ---------------------------------------------------------------- completion

_OPENERS = re.compile(
    r'#[^\n]*|"[^"\n]*"|\b(block|network|train|stem|stage|head|shortcut|keep|change|always|group)\b'
    r"|[{}]"
)


def context(text: str, offset: int) -> tuple[str | None, list[str]]:
    """The innermost open body at ``offset`` (block, network, train, stem, stage, head or None
    at the top level) and the words of the statement typed so far."""
    stack: list[str | None] = []
    last = None
    for match in _OPENERS.finditer(text, 0, offset):
        token = match.group()
        if match.group(1):
            last = match.group(1)
        elif token == "{":
            stack.append(last)
            last = None
        elif token == "}" and stack:
            stack.pop()
    before = text[:offset]
    start = max(before.rfind("\n"), before.rfind(";"), before.rfind("{"), before.rfind("}"))
    words = before[start + 1 :].split()
    if before and not before[-1].isspace() and words:
        words = words[:-1]  # the word being typed
    return (stack[-1] if stack else None), words


def completions(analysis: Analysis, offset: int) -> list[lsp.CompletionItem]:
    where, words = context(analysis.text, offset)
    kind = lsp.CompletionItemKind
    layers = [name for name, op in ops.OPS.items() if op.user]
    blocks = [d for d in definitions(analysis).values() if d.kind == "block"]

    def items(names, item_kind, detail=""):
        return [lsp.CompletionItem(label=n, kind=item_kind, detail=detail) for n in names]

    picking = words[-1:] == ["shortcut"] and (where is not None or words[:1] == ["network"])
    if picking or where is not None and words[:1] == ["shortcut"]:  # a shortcut's name
        names = [d.name for d in definitions(analysis).values() if d.kind == "shortcut"]
        return items(names, kind.EnumMember, "shortcut")
    if where is None and words[:1] == ["network"] and words[2:3] == ["="]:  # `network x = `
        known = analysis
        if analysis.program is None:  # the line being typed does not parse: the text above it
            known = analyse(
                analysis.text[: analysis.text.rfind("\n", 0, offset) + 1], analysis.path
            )
        families = [d.name for d in definitions(known).values() if d.kind == "family"]
        return items(families, kind.Function, "network family")
    if where is None:
        return items(TOP_WORDS, kind.Keyword)
    if where == "shortcut":
        return items(CASES, kind.Keyword, "shortcut case") + items(["off"], kind.Keyword)
    if where == "train":
        if not words or words[0] not in recipe.SCHEMAS:
            return items(sorted(recipe.SCHEMAS), kind.Property, "train setting")
        schema = recipe.SCHEMAS[words[0]]
        out = items(sorted(k for k in schema if k != "name"), kind.Property, f"{words[0]} option")
        if "name" in schema and len(words) == 1:
            out += items(sorted(schema["name"]), kind.EnumMember, words[0])
        return out
    if where == "network":
        return items(NETWORK_WORDS, kind.Keyword)
    if not words:
        out = items(layers, kind.Function, "layer")
        out += [lsp.CompletionItem(label=b.name, kind=kind.Class, detail="block") for b in blocks]
        if where in CASES:  # a shortcut's case: layers, and what they read
            return items(layers, kind.Function, "layer") + items(
                ("in", "out", "stride"), kind.Variable, "the block's"
            )
        extra = {
            "stage": ("stride", "shortcut"),
            "block": ("add", "tap", "mul"),
            "stem": ("group",),
            "head": ("group",),
        }.get(where, ())
        return out + items(extra, kind.Keyword)
    head = words[0]
    if head in ops.OPS:
        return [
            lsp.CompletionItem(
                label=f"{a.name}=",
                kind=kind.Field,
                detail=f"{head} argument ({a.type})",
                insert_text=f"{a.name}=",
            )
            for a in ops.OPS[head].args
        ]
    block = next((b for b in blocks if b.name == head), None)
    if block is not None:
        params = _block_params(analysis, head)
        return [
            lsp.CompletionItem(label=f"{p}=", kind=kind.Field, detail=f"{head} parameter")
            for p in params
        ]
    return []


def _block_params(analysis: Analysis, name: str) -> list[str]:
    span = definitions(analysis)[name].span
    try:
        module = parse(span.source.text, span.source.name)
    except ResdslError:
        return []
    for item in module.items:
        if isinstance(item, ast.BlockDef) and item.name == name:
            return [p.name for p in item.params]
    return []


# ---------------------------------------------------------------- symbols


def symbols(analysis: Analysis) -> list[lsp.DocumentSymbol]:
    if analysis.module is None:
        return []
    out = []
    for item in analysis.module.items:
        span = item.span
        if isinstance(item, ast.BlockDef):
            out.append(_symbol(f"block {item.name}", lsp.SymbolKind.Function, span))
        elif isinstance(item, ast.ShortcutDef):
            out.append(_symbol(f"shortcut {item.name}", lsp.SymbolKind.Function, span))
        elif isinstance(item, ast.NetworkDef):
            children, stage = [], 0
            for stmt in item.body:
                if isinstance(stmt, ast.Section):
                    if stmt.kind == "stage":
                        stage += 1
                    label = f"stage {stage}" if stmt.kind == "stage" else stmt.kind
                    children.append(_symbol(label, lsp.SymbolKind.Namespace, stmt.span))
            out.append(
                _symbol(f"network {item.name}", lsp.SymbolKind.Class, span, children or None)
            )
        elif isinstance(item, ast.NetworkInst):
            label = f"network {item.name} = {item.family}(...)"
            out.append(_symbol(label, lsp.SymbolKind.Class, span))
        elif isinstance(item, ast.TrainDef):
            out.append(_symbol(f"train {item.name}", lsp.SymbolKind.Struct, span))
    return out


def _symbol(name: str, kind, span: Span, children=None) -> lsp.DocumentSymbol:
    return lsp.DocumentSymbol(
        name=name,
        kind=kind,
        range=_range(span),
        selection_range=_range(_line_span(span)),
        children=children,
    )


# ---------------------------------------------------------------- the server


class ResdslServer(LanguageServer):
    """Analyses run in one worker thread, so that a long build never holds up a request.

    A hover waits up to :data:`HOVER_WAIT` seconds for the analysis of the current text; past
    that it answers from the last finished analysis, and says that its figures are from before
    the edit. Definitions, completion and symbols need only the parse, which is immediate.
    """

    def __init__(self):
        super().__init__("resdsl", resdsl.__version__)
        self.analyses: dict[str, Analysis] = {}  # the last finished analysis of each document
        self.running: dict[str, tuple[str, Future]] = {}  # the text being analysed
        self.pending: dict[str, asyncio.TimerHandle] = {}
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="resdsl-analysis")

    def start(self, uri: str) -> Future:
        """The analysis of the document's current text: finished, running, or started now."""
        text = self.workspace.get_text_document(uri).source
        done = self.analyses.get(uri)
        if done is not None and done.text == text:
            future: Future = Future()
            future.set_result(done)
            return future
        running = self.running.get(uri)
        if running is not None and running[0] == text:
            return running[1]
        if running is not None:
            running[1].cancel()  # an older text's, if it has not started: it is not wanted now
        future = self.worker.submit(analyse, text, to_fs_path(uri) or uri, done)
        self.running[uri] = (text, future)
        future.add_done_callback(lambda f: self._finished(uri, text, f))
        return future

    def _finished(self, uri: str, text: str, future: Future) -> None:
        if not future.cancelled() and future.exception() is None:
            self.analyses[uri] = future.result()
        if self.running.get(uri, (None,))[0] == text:
            self.running.pop(uri, None)

    def analysis(self, uri: str, wait: float | None = None) -> Analysis:
        """The analysis of the document as it is now; with ``wait``, at most that many seconds
        for it, then a provisional one: today's parse with the last finished networks."""
        future = self.start(uri)
        try:
            return future.result(timeout=wait)
        except (TimeoutError, CancelledError):
            pass
        text = self.workspace.get_text_document(uri).source
        path = to_fs_path(uri) or uri
        provisional = Analysis(path, text, stale=True)
        with contextlib.suppress(ResdslError):
            provisional.module = parse(text, path)
        before = self.analyses.get(uri)
        if before is not None:
            provisional.networks = before.networks
        return provisional

    def publish_soon(self, uri: str) -> None:
        """Publish diagnostics once the edits pause and the analysis is done."""
        if uri in self.pending:
            self.pending.pop(uri).cancel()
        loop = asyncio.get_event_loop()
        self.pending[uri] = loop.call_later(DEBOUNCE, self.publish, uri)

    def publish(self, uri: str) -> None:
        self.pending.pop(uri, None)
        if uri not in self.workspace.text_documents:
            return
        version = self.workspace.get_text_document(uri).version
        loop = asyncio.get_event_loop()

        def send(future: Future) -> None:
            if future.cancelled() or future.exception() is not None:
                return
            analysis = future.result()
            document = self.workspace.text_documents.get(uri)
            if document is None or document.source != analysis.text:
                return  # the document changed since: its own analysis will publish
            self.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(
                    uri=uri,
                    version=version,
                    diagnostics=[to_diagnostic(e, analysis) for e in analysis.errors],
                )
            )

        self.start(uri).add_done_callback(lambda f: loop.call_soon_threadsafe(send, f))


server = ResdslServer()


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: ResdslServer, params: lsp.DidOpenTextDocumentParams):
    ls.publish(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: ResdslServer, params: lsp.DidChangeTextDocumentParams):
    ls.start(params.text_document.uri)  # so that a hover a moment later finds it done
    ls.publish_soon(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: ResdslServer, params: lsp.DidSaveTextDocumentParams):
    ls.analyses.clear()  # an imported file may have changed
    ls.running.clear()
    for uri in list(ls.workspace.text_documents):
        ls.publish(uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: ResdslServer, params: lsp.DidCloseTextDocumentParams):
    ls.analyses.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(
        lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
    )


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def on_hover(ls: ResdslServer, params: lsp.HoverParams) -> lsp.Hover | None:
    position = params.position
    analysis = ls.analysis(params.text_document.uri, wait=HOVER_WAIT)
    text = hover(analysis, position.line + 1, position.character + 1)
    if text is not None and analysis.stale:
        text += "\n\n*(figures from before the last edit: the new build is still running)*"
    if text is None:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def on_definition(ls: ResdslServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    position = params.position
    found = definition(
        ls.analysis(params.text_document.uri, wait=0), position.line + 1, position.character + 1
    )
    if found is None:
        return None
    if isinstance(found, Path):
        start = lsp.Position(0, 0)
        return lsp.Location(from_fs_path(str(found)), lsp.Range(start, start))
    path = Path(found.source.name).resolve()
    return lsp.Location(from_fs_path(str(path)), _range(found))


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[" ", "\n"]))
def on_completion(ls: ResdslServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    analysis = ls.analysis(params.text_document.uri, wait=0)
    document = ls.workspace.get_text_document(params.text_document.uri)
    offset = document.offset_at_position(params.position)
    return lsp.CompletionList(is_incomplete=False, items=completions(analysis, offset))


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
def on_formatting(ls: ResdslServer, params: lsp.DocumentFormattingParams):
    document = ls.workspace.get_text_document(params.text_document.uri)
    try:
        new = format_text(document.source, to_fs_path(document.uri) or document.uri)
    except ResdslError:
        return None  # the diagnostics already say why
    if new == document.source:
        return []
    end = lsp.Position(len(document.lines), 0)
    return [lsp.TextEdit(lsp.Range(lsp.Position(0, 0), end), new)]


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def on_symbols(ls: ResdslServer, params: lsp.DocumentSymbolParams):
    return symbols(ls.analysis(params.text_document.uri, wait=0))


def serve() -> None:
    """Serve over stdin and stdout until the client says exit."""
    # the worker thread builds while this one answers: hand the GIL over more often than every
    # 5 ms, so that a request waits for at most a few of its slices
    sys.setswitchinterval(0.0005)
    # what is loaded now lives as long as the server: keep it out of the collector's full passes,
    # which otherwise walk pygls, lsprotocol and resdsl's modules (80 ms) in the middle of a build
    gc.freeze()
    server.start_io()
