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
import gc
import re
import sys
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

import resdsl

from .. import ops, recipe
from .. import syntax as ast
from ..errors import ResdslError, Source, Span
from ..fmt import format_text
from ..linker import prelude
from ..parser import parse
from .analysis import (
    CASES,
    DEBOUNCE,
    HOVER_WAIT,
    NETWORK_WORDS,
    TOP_WORDS,
    Analysis,
    _line_span,
    _range,
    analyse,
    to_diagnostic,
)
from .hover import _item_at, hover

__all__ = ["analyse", "hover", "serve", "to_diagnostic"]


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
            "stage": ("stride", "shortcut", "names", "group"),
            "block": ("add", "tap", "mul", "concat", "group"),
            "stem": ("group",),
            "head": ("group",),
            "group": ("group",),
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
