"""Text to AST: the lark grammar in grammars/resdsl.lark and a transformer into resdsl.syntax."""

from __future__ import annotations

import functools
import os
import re
import stat
from pathlib import Path
from typing import NamedTuple

from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError
from lark.visitors import Transformer_NonRecursive

from . import syntax as ast
from .errors import (
    ParseError,
    ParseErrorGroup,
    Related,
    ResdslError,
    Source,
    Span,
    did_you_mean,
    raise_all,
)
from .resources import resource

MAX_BYTES = 1 << 20  # a spec is a page of text; ResNet-1202's is 300 bytes
MAX_DIGITS = 15  # integer literals: sizes, counts and iterations, never 10**15 or more
MAX_DEPTH = 100  # operators in one expression, so no stage recurses without bound

# Where the parser expects most of a construct's first tokens, the hint names the construct.
_CONSTRUCTS = (
    ("a value (a number, a size such as 3x3, or a name)", {
        "a name", "an integer", "a number", "dimensions such as 3x3", "`(`"}),
    ("a network setting or section (input, classes, shortcut, stem, stage, head...)", {
        "`input`", "`classes`", "`shortcut`", "`drop_path`", "`stem`", "`stage`", "`head`"}),
    ("a train setting (data, batch, optimizer, schedule, iterations...)", {
        "`data`", "`augment`", "`normalize`", "`batch`", "`optimizer`", "`schedule`",
        "`iterations`", "`warmup`"}),
    ("a definition (import, block, shortcut, network or train)", {
        "`import`", "`block`", "`shortcut`", "`network`", "`train`"}),
)  # fmt: skip
# How the parser's expected-terminal names read in an error message.
_TERMINAL_WORDS = {
    "IDENT": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "DIMS": "dimensions such as 3x3",
    "PERCENT": "a percentage",
    "RATIO": "a split such as 45000/5000",
    "CASE": "a shortcut case (keep, change, always, channels or stride)",
    "FROM_TAP": "`from tap`",
    "MUL": "`mul`",
    "CONCAT": "`concat`",
    "OFF": "`off`",
    "STRING": 'a quoted path such as "cifar.rds"',
    "_SEP": "the statement's end (a newline or `;`)",
    "$END": "the end of the file",
}


class WholeWords:
    """Lark's post-lexer hook, used only for its ``always_accept``: names are read whole in every
    parser state, so a keyword is a keyword only as a whole word. Without it, where the grammar
    expects a keyword but no name (`train` at the top level, `stage` in a network), `training`
    would read as `train` then `ing`, and `stages {` as a stage with module path `s`."""

    always_accept = ("IDENT",)

    def process(self, stream):
        return stream


def leading_words(rule: str) -> tuple[str, ...]:
    """The keywords that begin ``rule``'s statements, in the grammar's order: following rules
    that stand for others (``_item``'s definitions), e.g. ``net_stmt``'s ``input, classes, ...``."""
    parser = grammar()
    terminals = {t.name: t for t in parser.terminals}
    words: list[str] = []

    def first(name: str, seen: frozenset) -> None:
        if name in terminals:
            pattern = terminals[name].pattern
            word = pattern.value if pattern.type == "str" else ""
            if word.isidentifier() and word not in words:
                words.append(word)
            return
        for r in parser.rules:
            if r.origin.name == name and r.expansion and name not in seen:
                first(r.expansion[0].name, seen | {name})

    first(rule, frozenset())
    return tuple(words)


def alternatives(terminal: str) -> tuple[str, ...]:
    """The words a terminal of the form ``\\b(a|b|c)\\b`` matches (a shortcut's cases)."""
    (pattern,) = [t.pattern.value for t in grammar().terminals if t.name == terminal]
    return tuple(re.findall(r"\w+", pattern.replace("\\b", " ")))


@functools.cache
def grammar() -> Lark:
    """The resdsl parser, built once per process; lark's LALR tables are cached on disk (lark's
    own `cache=`), which halves a short command's time."""
    path = resource("grammars") / "resdsl.lark"
    return Lark.open(
        str(path),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        postlex=WholeWords(),
        cache=_cache_file(path) or False,
        cache_grammar=True,  # the grammar itself too: hypothesis' from_lark reads it
    )


def _cache_file(grammar_path: Path) -> str | None:
    """Where the tables of this grammar (and lark version) are kept: in the user's own cache
    folder (``$XDG_CACHE_HOME/resdsl``, else ``~/.cache/resdsl``), never a shared temporary
    folder, since lark unpickles the file. None where there is no such folder to be had: then
    the tables are built every time, as they would be anyway."""
    import hashlib

    import lark

    try:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        folder = Path(base) / "resdsl"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder.stat().st_uid != os.getuid() or not os.access(folder, os.W_OK):
            return None
        key = hashlib.sha256(grammar_path.read_bytes() + lark.__version__.encode()).hexdigest()
    except (OSError, RuntimeError, AttributeError):  # no home, a read-only disk, no getuid
        return None
    return str(folder / f"grammar-{key[:16]}.lark-cache")


def parse(text: str, name: str = "<string>", *, builtin: bool = False) -> ast.Module:
    """Parse resdsl text into a :class:`resdsl.syntax.Module`; errors are :class:`ParseError`.

    A leading UTF-8 byte-order mark (Notepad writes one) is not text: it is skipped.
    """
    text = text.removeprefix(BOM)
    source = Source(name, text, builtin)
    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = grammar().parse(text)
    except UnexpectedInput as exc:
        first = _parse_error(source, exc)
        later = [] if first.message.startswith(MISSING) else _later_errors(source, text, exc)
        raise_all([first, *later], ParseErrorGroup)
    try:
        return _ToAst(source).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ResdslError):
            raise exc.orig_exc from None
        raise


BOM = "\ufeff"
# words that open a body of their own where the grammar allows them, and where that is
MISPLACED = {
    join: (
        f"`{join}` is a block's statement: it cannot be in a section or a shortcut case",
        f"write it in a block, `block b(w) {{ conv w 3x3; {join} {{ ... }} }}`, and call that",
    )
    for join in ("mul", "concat")
} | {
    "group": (
        "`group` is a statement of a section, a stage, a block or a group: it cannot be in a "
        "side path or a shortcut case",
        "label a layer instead (`proj: conv 8 1x1`)",
    )
}
_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*$")
_AFTER = re.compile(r"\s*([^\s;,(){}]+)")
_STATEMENT = re.compile(r"(?:^|[;{}])\s*([A-Za-z_]\w*)[^;{}]*$")  # the words before a `{`


def _token_hint(source: Source, line: int, column: int, exc: UnexpectedInput) -> str | None:
    """What an unexpected `:` or `,` usually means, where the grammar's expectations say less:
    a value by name written as Python's or YAML's (`stride: 2`), statements joined by commas."""
    token, row = str(exc.token), source.line(line)
    expected = getattr(exc, "expected", None) or set()
    if token == ":" and "EQUAL" in expected:
        name, value = _BEFORE.search(row[: column - 1]), _AFTER.match(row[column:])
        if name and value:
            return f"a value is given by name with `=`: `{name.group(1)}={value.group(1)}`"
        return "a value is given by name with `=`, e.g. `stride=2`"
    if token == "-" and "INT" in expected:
        return "resdsl has no negative values: its sizes, counts and rates are at least 0"
    if token == "," and "COMMA" not in expected and "_SEP" in expected:
        return "statements are separated by `;` or a newline, not `,`"
    return None


MAX_SYNTAX_ERRORS = 10  # reported from one file


def _later_errors(source: Source, text: str, first: UnexpectedInput) -> list[ParseError]:
    """The syntax errors after the first, found by parsing again with each faulty line blanked.

    A line is blanked only where its braces balance, so the structure around it is kept; the
    search stops where that cannot be, at the end of the file, or at a fault at the start of a
    line (a statement the parser no longer expects: the echo of an earlier fault)."""
    found: list[ParseError] = []
    rows, line = text.split("\n"), first.line
    while len(found) < MAX_SYNTAX_ERRORS - 1 and 0 < line <= len(rows):
        braces = [m.group() for m in _BRACKETS.finditer(rows[line - 1]) if m.group() in "{}"]
        if braces.count("{") != braces.count("}"):
            break
        rows[line - 1] = " " * len(rows[line - 1])
        try:
            grammar().parse("\n".join(rows))
            break  # the rest parses
        except UnexpectedInput as exc:
            token = getattr(exc, "token", None)
            if isinstance(exc, UnexpectedEOF) or getattr(token, "type", None) == "$END":
                break
            row = rows[exc.line - 1] if 0 < exc.line <= len(rows) else ""
            leading = exc.column == len(row) - len(row.lstrip()) + 1
            if exc.line <= line or token is not None and leading or _left_open(source, exc.line):
                break  # before the last, a statement's start, or inside a section left open
            found.append(_parse_error(source, exc))
            line = exc.line
        except RecursionError:
            break
    return found


def parse_file(path: str | Path, *, builtin: bool = False) -> ast.Module:
    """Parse a spec file: a regular file of at most MAX_BYTES bytes of UTF-8."""
    return parse(read(path), str(path), builtin=builtin)


def read(path: str | Path) -> str:
    """The text of a spec file, or a ParseError: never a hang on a FIFO, never /dev/zero whole."""
    path = Path(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ParseError(f"cannot read {path}: not a regular file", code="RDS005")
        if info.st_size > MAX_BYTES:
            raise ParseError(
                f"cannot read {path}: {info.st_size:,} bytes, more than a spec's {MAX_BYTES:,}",
                code="RDS005",
            )
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ParseError(f"cannot read {path}: {reason}", code="RDS005") from None
    if len(data) > MAX_BYTES:
        raise ParseError(f"cannot read {path}: more than {MAX_BYTES:,} bytes", code="RDS005")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        source = Source(str(path), data.decode("utf-8", "replace"))
        raise ParseError(
            f"cannot read this file as UTF-8: byte 0x{data[exc.start]:02x} is not UTF-8 here",
            Span(source, line, column, line, column + 1),
            "save the file as UTF-8",
            code="RDS005",
        ) from None


def _parse_error(source: Source, exc: UnexpectedInput) -> ParseError:
    line, column = max(exc.line, 1), max(exc.column, 1)
    if isinstance(exc, UnexpectedEOF) or getattr(exc, "token", None) == "":
        lines = source.text.rstrip("\n").split("\n")
        line, column = len(lines), len(lines[-1]) + 1
    span = Span(source, line, column, line, column + 1)
    if isinstance(exc, UnexpectedCharacters):
        char = source.line(line)[column - 1 : column]
        return ParseError(
            f"unexpected character {char!r}", span, _expected_hint(exc), code="RDS001"
        )
    token = getattr(exc, "token", None)
    if isinstance(token, Token) and token.type != "$END":
        if token.type == "_SEP":
            what = "end of statement"
        else:
            what = f"`{token}`"
            span = Span(source, line, column, line, column + len(str(token)))
        hint = _expected_hint(exc)
        if token.type == "IDENT":  # a word where a keyword belongs: `training`, `stages`
            close = did_you_mean(str(token), _keywords(exc))
            hint = f"{close} ({hint})" if close and hint else close or hint
        hint = _token_hint(source, line, column, exc) or hint
        expected = getattr(exc, "expected", None) or set()
        after = _AFTER.match(source.line(line)[column + len(str(token)) - 1 :])
        if str(token) == "from" and "FROM_TAP" in expected and after:  # `from tab`
            start = column + len(str(token)) + after.start(1)
            span = Span(source, line, start, line, start + len(after.group(1)))
            return ParseError(
                f"unexpected `{after.group(1)}` after `from`",
                span,
                "a case starts `from tap` (the block's `tap` statement) or at the block's input",
                code="RDS002",
            )
        related = _left_open(source, line) or _not_closed_before(source, line, column, token)
        if related and token.type != "_SEP" and _opens_statement(source.line(line), column, token):
            return _missing_brace(source, line, related)
        statement = _STATEMENT.search(source.line(line)[: column - 1]) if token == "{" else None
        if statement is not None and statement.group(1) in MISPLACED:  # `mul {` in the stem
            start, word = statement.start(1) + 1, statement.group(1)
            span = Span(source, line, start, line, start + len(word))
            problem, hint = MISPLACED[word]
            return ParseError(problem, span, hint, code="RDS002", related=related)
        return ParseError(f"unexpected {what}", span, hint, code="RDS002", related=related)
    opened = [Related(brace, "this `{` is not closed") for brace in unclosed(source)]
    return ParseError(
        "unexpected end of file", span, _expected_hint(exc), code="RDS003", related=opened[-1:]
    )


_BRACKETS = re.compile(r'#[^\n]*|"[^"\\\n]*"|[{}]')


def _left_open(source: Source, line: int) -> list[Related]:
    """A note at a `{` that opened a section written on one line (`stage { basic 16`) and is
    still open at a later line's error: the `}` it lacks is the likely fault."""
    opened = unclosed(Source(source.name, "\n".join(source.text.split("\n")[: line - 1])))
    if not opened:
        return []
    brace = opened[-1]
    after = _BRACKETS.sub("", source.line(brace.line)[brace.column :]).strip()
    if brace.line >= line or not after:
        return []
    return [Related(brace, "this `{` is not closed on its line")]


DEFINITIONS = ("import", "block", "shortcut", "network", "train")
_OPENING = re.compile(r"\s*[A-Za-z_][\w.]*(\s+[\w.]+)*\s*$")  # `stage`, `stage layer1` before `{`


def _opens_statement(row: str, column: int, token) -> bool:
    """Whether the unexpected token starts its line's statement: a word at the line's start
    (`train`), or the `{` of a section or definition that the line opens (`stage {`)."""
    before = row[: column - 1]
    return not before.strip() or str(token) == "{" and bool(_OPENING.fullmatch(before))


MISSING = "missing `}`"  # what follows a `}` left out is its echo: no later errors are sought


def _missing_brace(source: Source, line: int, related: list[Related]) -> ParseError:
    """A `}` left out: marked where it belongs, with the `{` it closes as a note: at the end of
    that brace's line where a section is written on one line (`head { avgpool; fc`), else at the
    end of the last line of code before the statement it would close before."""
    brace = related[0].span
    before = line - 1
    if _code(source.line(brace.line)[brace.column :]):
        before = brace.line
    while before > 1 and not _code(source.line(before)):
        before -= 1
    column = len(_code(source.line(before))) + 1
    span = Span(source, before, column, before, column + 1)
    word = (source.line(line).split() or ["the next statement"])[0]
    return ParseError(
        f"{MISSING} before `{word}`",
        span,
        "end this line with `}`"
        if brace.line == before
        else f"write the `}}` of line {brace.line}'s `{{` after this line",
        code="RDS002",
        related=related,
    )


def _code(row: str) -> str:
    """A line without its comment and trailing blanks."""
    code = _BRACKETS.sub(lambda m: "" if m.group().startswith("#") else m.group(), row)
    return code.rstrip()


def _not_closed_before(source: Source, line: int, column: int, token) -> list[Related]:
    """A note where a definition starts (`train` at a line's start) inside a `{` left open:
    at a `{` of a one-line section that its line does not close (`head { avgpool; fc`), else
    at the outermost open `{`, whose `}` is missing."""
    row = source.line(line)
    if str(token) not in DEFINITIONS or column != len(row) - len(row.lstrip()) + 1:
        return []
    opened = unclosed(Source(source.name, "\n".join(source.text.split("\n")[: line - 1])))
    if not opened:
        return []
    for number in range(opened[0].line, line):
        text = _BRACKETS.sub(lambda m: m.group() if m.group() in "{}" else "", source.line(number))
        start = text.find("{")
        if start >= 0 and text.count("{") > text.count("}") and text[start + 1 :].strip():
            column = source.line(number).index("{") + 1
            brace = Span(source, number, column, number, column + 1)
            return [Related(brace, "this `{` is not closed on its line")]
    return [Related(opened[0], f"this `{{` is not closed before `{token}`")]


def unclosed(source: Source) -> list[Span]:
    """The spans of the `{` that are still open at the end of the text, outermost first."""
    stack: list[Span] = []
    for number, text in enumerate(source.text.split("\n"), start=1):
        for match in _BRACKETS.finditer(text):
            if match.group() == "{":
                column = match.start() + 1
                stack.append(Span(source, number, column, number, column + 1))
            elif match.group() == "}" and stack:
                stack.pop()
    return stack


def _keywords(exc: UnexpectedInput) -> list[str]:
    """The words the parser would have taken where it stopped (`train`, `stage`, ...)."""
    out = []
    for name in getattr(exc, "expected", None) or ():
        try:
            pattern = grammar().get_terminal(name).pattern
        except KeyError:
            continue
        if pattern.type == "str" and pattern.value.isidentifier():
            out.append(pattern.value)
        words = re.fullmatch(r"\\b\(([\w|]+)\)\\b", pattern.value) if pattern.type == "re" else None
        if words:  # a terminal of alternative words, such as CASE's
            out += words.group(1).split("|")
    return out


def _expected_hint(exc: UnexpectedInput) -> str | None:
    expected = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or set()
    words = set()
    parser = grammar()
    for name in expected:
        if name in _TERMINAL_WORDS:
            words.add(_TERMINAL_WORDS[name])
            continue
        try:
            pattern = parser.get_terminal(name).pattern
        except KeyError:
            continue
        if pattern.type == "str":
            words.add(f"`{pattern.value}`")
    if not words:
        return None
    for construct, members in _CONSTRUCTS:  # the construct, where most of its starts fit
        if len(words & members) >= min(3, len(members)):
            words = (words - members) | {construct}
    ordered = sorted(words, key=lambda w: (w.startswith("`"), w))  # constructs, then tokens
    if len(ordered) == 1:
        return f"expected {ordered[0]}"
    return "expected " + ", ".join(ordered[:-1]) + " or " + ordered[-1]


@v_args(meta=True, inline=True)
class _ToAst(Transformer_NonRecursive):
    """Tree to dataclasses. Values are converted here; the grammar only shapes."""

    def __init__(self, source: Source):
        super().__init__()
        self.source = source

    def _span(self, meta) -> Span:
        return Span.from_meta(self.source, meta)

    def _tok(self, token: Token) -> Span:
        return Span.from_token(self.source, token)

    # ------------------------------------------------------------ expressions
    def int_(self, meta, tok):
        return ast.Num(self._int(tok, str(tok)), self._tok(tok))

    def _int(self, tok: Token, digits: str) -> int:
        if len(digits.lstrip("0")) > MAX_DIGITS:
            raise ParseError(
                f"the integer {digits[:12]}... has more than {MAX_DIGITS} digits",
                self._tok(tok),
                "resdsl's values are sizes and counts; check this number",
                code="RDS006",
            )
        return int(digits)

    def float_(self, meta, tok):
        return ast.Num(float(tok), self._tok(tok))

    def dims(self, meta, tok):
        return ast.Dims(tuple(self._int(tok, v) for v in tok.split("x")), self._tok(tok))

    def name(self, meta, tok):
        return ast.Name(str(tok), self._tok(tok))

    def _binop(op):  # noqa: N805 - a factory used in the class body
        def method(self, meta, left, right):
            depth = 1 + max(getattr(left, "depth", 0), getattr(right, "depth", 0))
            if depth > MAX_DEPTH:
                raise ParseError(
                    f"an expression of more than {MAX_DEPTH} operators in a row",
                    self._span(meta),
                    "resdsl's expressions are short arithmetic on parameters",
                    code="RDS006",
                )
            return ast.BinOp(op, left, right, self._span(meta), depth)

        return method

    add_op = _binop("+")
    sub_op = _binop("-")
    mul_op = _binop("*")
    floordiv_op = _binop("//")

    # ------------------------------------------------------------ calls and blocks
    def kwarg(self, meta, name, value):
        return ast.Kwarg(str(name), value, self._span(meta))

    def repeat(self, meta, count):
        return _Repeat(count)

    def label(self, meta, tok):
        return _Label(str(tok), self._tok(tok))

    @v_args(meta=True, inline=False)
    def module_path(self, meta, tokens):
        return _Label(".".join(map(str, tokens)), self._span(meta))

    @v_args(meta=True, inline=False)
    def join(self, meta, children):
        kind, *body = children
        return ast.Join(str(kind), tuple(body), self._span(meta))

    @v_args(meta=True, inline=False)
    def call(self, meta, children):
        label = children.pop(0) if isinstance(children[0], _Label) else None
        name, *rest = children
        args, kwargs, repeat = [], [], None
        for child in rest:
            if isinstance(child, ast.Kwarg):
                kwargs.append(child)
            elif isinstance(child, _Repeat):
                repeat = child.count
            elif kwargs:
                raise ParseError(
                    "a positional value cannot follow a name=value argument",
                    child.span,
                    "put positional values first",
                    code="RDS004",
                )
            else:
                args.append(child)
        return ast.Call(
            str(name),
            tuple(args),
            tuple(kwargs),
            repeat,
            self._span(meta),
            self._tok(name),
            label and label.name,
            label and label.span,
        )

    @v_args(meta=True, inline=False)
    def add(self, meta, children):
        label = children[0] if children else None
        if label is None:
            return ast.Add(self._span(meta))
        return ast.Add(self._span(meta), label.name, label.span)

    def tap(self, meta):
        return ast.Tap(self._span(meta))

    @v_args(meta=True, inline=False)
    def params(self, meta, children):
        return tuple(children)

    @v_args(meta=True, inline=False)
    def param(self, meta, children):
        name = children[0]
        default = children[1] if len(children) > 1 else None
        return ast.Param(str(name), default, self._span(meta), self._tok(name))

    @v_args(meta=True, inline=False)
    def block_def(self, meta, children):
        name, *rest = children
        params = rest.pop(0) if rest and isinstance(rest[0], tuple) else ()
        return ast.BlockDef(str(name), params, tuple(rest), self._span(meta), self._tok(name))

    # ------------------------------------------------------------ shortcuts
    @v_args(meta=True, inline=False)
    def shortcut_def(self, meta, children):
        name, *cases = children
        return ast.ShortcutDef(str(name), tuple(cases), self._span(meta), self._tok(name))

    @v_args(meta=True, inline=False)
    def shortcut_case(self, meta, children):
        case, *body = children
        tap = bool(body) and isinstance(body[0], Token) and body[0].type == "FROM_TAP"
        body = body[1:] if tap else body
        off = len(body) == 1 and isinstance(body[0], Token) and body[0].type == "OFF"
        body = None if off else tuple(body)
        return ast.Case(str(case), body, self._span(meta), self._tok(case), tap)

    # ------------------------------------------------------------ networks
    @v_args(meta=True, inline=False)
    def group(self, meta, children):
        if children and isinstance(children[0], Token) and children[0].type == "IDENT":
            name, *body = children
            return ast.Group(str(name), tuple(body), self._span(meta), self._tok(name))
        return ast.Group(None, tuple(children), self._span(meta), None)

    def input(self, meta, tok):
        dims = tuple(self._int(tok, v) for v in tok.split("x"))
        return ast.Setting("input", dims, self._span(meta), self._tok(tok))

    def classes(self, meta, expr):
        return ast.Setting("classes", expr, self._span(meta))

    def drop_path(self, meta, expr):
        return ast.Setting("drop_path", expr, self._span(meta))

    def shortcut(self, meta, tok):
        return ast.Setting("shortcut", str(tok), self._span(meta), self._tok(tok))

    def stride(self, meta, expr):
        return ast.Setting("stride", expr, self._span(meta))

    @v_args(meta=True, inline=False)
    def names(self, meta, children):
        prefix, *start = children
        value = (str(prefix)[1:-1], int(start[0]) if start else 0)
        return ast.Setting("names", value, self._span(meta), self._tok(prefix))

    def _section(kind):  # noqa: N805 - a factory used in the class body
        @v_args(meta=True, inline=False)
        def method(self, meta, children):
            if children and isinstance(children[0], _Label):  # `stage stages.0.blocks { ... }`
                path, *children = children
                return ast.Section(kind, tuple(children), self._span(meta), *path)
            return ast.Section(kind, tuple(children), self._span(meta))

        return method

    stem = _section("stem")
    stage = _section("stage")
    head = _section("head")

    @v_args(meta=True, inline=False)
    def network_def(self, meta, children):
        name, *rest = children
        params = rest.pop(0) if rest and isinstance(rest[0], tuple) else ()
        return ast.NetworkDef(str(name), params, tuple(rest), self._span(meta), self._tok(name))

    @v_args(meta=True, inline=False)
    def network_inst(self, meta, children):
        name, family, *rest = children
        shortcut = shortcut_span = None
        if rest and isinstance(rest[-1], Token):
            token = rest.pop()
            shortcut, shortcut_span = str(token), self._tok(token)
        args, kwargs = [], []
        for child in rest:
            if isinstance(child, ast.Kwarg):
                kwargs.append(child)
            elif kwargs:
                raise ParseError(
                    "a positional value cannot follow a name=value argument",
                    child.span,
                    "put positional values first",
                    code="RDS004",
                )
            else:
                args.append(child)
        return ast.NetworkInst(
            str(name),
            str(family),
            tuple(args),
            tuple(kwargs),
            shortcut,
            self._span(meta),
            self._tok(family),
            self._tok(name),
            shortcut_span,
        )

    # ------------------------------------------------------------ training
    def percent(self, meta, tok):
        return ast.Value("percent", float(tok[:-1]), self._tok(tok))

    def ratio(self, meta, tok):
        a, b = tok.split("/")
        return ast.Value("ratio", (int(a), int(b)), self._tok(tok))

    @v_args(meta=True, inline=False)
    def option(self, meta, children):
        name, *values = children
        values = tuple(_value(v) for v in values)
        return ast.Option(str(name), values, self._span(meta))

    def until(self, meta, metric, value):
        value = _value(value)
        return ast.Option(
            "until", (ast.Value("name", str(metric), self._tok(metric)), value), self._span(meta)
        )

    @v_args(meta=True, inline=False)
    def setting(self, meta, children):
        return tuple(children)

    @v_args(meta=True, inline=False)
    def train_def(self, meta, children):
        name, *settings = children
        return ast.TrainDef(str(name), tuple(settings), self._span(meta), self._tok(name))

    # ------------------------------------------------------------ files
    def import_(self, meta, tok):
        return ast.Import(str(tok)[1:-1], self._tok(tok))

    @v_args(meta=True, inline=False)
    def start(self, meta, children):
        return ast.Module(self.source, tuple(children))


class _Repeat(NamedTuple):
    count: ast.Expr


class _Label(NamedTuple):
    name: str
    span: Span


def _value(v):
    if isinstance(v, ast.Value):
        return v
    kind = "int" if isinstance(v.value, int) else "float"
    return ast.Value(kind, v.value, v.span)
