"""Text to AST: the lark grammar in grammars/resdsl.lark and a transformer into resdsl.syntax."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import NamedTuple

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

from . import syntax as ast
from .errors import ParseError, Related, ResdslError, Source, Span
from .resources import resource

# How the parser's expected-terminal names read in an error message.
_TERMINAL_WORDS = {
    "IDENT": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "DIMS": "dimensions such as 3x3",
    "PERCENT": "a percentage",
    "RATIO": "a split such as 45000/5000",
    "POLICY": "a shortcut policy (A, B, C or none)",
    "STRING": 'a quoted path such as "cifar.rds"',
    "_SEP": "a newline or `;`",
    "$END": "the end of the file",
}


@functools.cache
def grammar() -> Lark:
    """The resdsl parser, built once."""
    return Lark.open(
        str(resource("grammars") / "resdsl.lark"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
    )


def parse(text: str, name: str = "<string>", *, builtin: bool = False) -> ast.Module:
    """Parse resdsl text into a :class:`resdsl.syntax.Module`; errors are :class:`ParseError`."""
    source = Source(name, text, builtin)
    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = grammar().parse(text)
    except UnexpectedInput as exc:
        raise _parse_error(source, exc) from None
    try:
        return _ToAst(source).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ResdslError):
            raise exc.orig_exc from None
        raise


def parse_file(path: str | Path, *, builtin: bool = False) -> ast.Module:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ParseError(f"cannot read {path}: {reason}", code="RDS005") from None
    return parse(text, str(path), builtin=builtin)


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
        return ParseError(f"unexpected {what}", span, _expected_hint(exc), code="RDS002")
    opened = [Related(brace, "this `{` is not closed") for brace in unclosed(source)]
    return ParseError(
        "unexpected end of file", span, _expected_hint(exc), code="RDS003", related=opened[-1:]
    )


_BRACKETS = re.compile(r'#[^\n]*|"[^"\\\n]*"|[{}]')


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
    return "expected " + ", ".join(sorted(words))


@v_args(meta=True, inline=True)
class _ToAst(Transformer):
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
        return ast.Num(int(tok), self._tok(tok))

    def float_(self, meta, tok):
        return ast.Num(float(tok), self._tok(tok))

    def dims(self, meta, tok):
        return ast.Dims(tuple(int(v) for v in tok.split("x")), self._tok(tok))

    def name(self, meta, tok):
        return ast.Name(str(tok), self._tok(tok))

    def _binop(op):  # noqa: N805 - a factory used in the class body
        def method(self, meta, left, right):
            return ast.BinOp(op, left, right, self._span(meta))

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

    @v_args(meta=True, inline=False)
    def call(self, meta, children):
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
            str(name), tuple(args), tuple(kwargs), repeat, self._span(meta), self._tok(name)
        )

    def add(self, meta):
        return ast.Add(self._span(meta))

    @v_args(meta=True, inline=False)
    def params(self, meta, children):
        return tuple(children)

    @v_args(meta=True, inline=False)
    def param(self, meta, children):
        name = children[0]
        default = children[1] if len(children) > 1 else None
        return ast.Param(str(name), default, self._span(meta))

    @v_args(meta=True, inline=False)
    def block_def(self, meta, children):
        name, *rest = children
        params = rest.pop(0) if rest and isinstance(rest[0], tuple) else ()
        return ast.BlockDef(str(name), params, tuple(rest), self._span(meta))

    # ------------------------------------------------------------ networks
    def input(self, meta, tok):
        return ast.Setting("input", tuple(int(v) for v in tok.split("x")), self._span(meta))

    def classes(self, meta, expr):
        return ast.Setting("classes", expr, self._span(meta))

    def shortcut(self, meta, tok):
        return ast.Setting("shortcut", str(tok), self._span(meta))

    def stride(self, meta, expr):
        return ast.Setting("stride", expr, self._span(meta))

    def _section(kind):  # noqa: N805 - a factory used in the class body
        @v_args(meta=True, inline=False)
        def method(self, meta, children):
            return ast.Section(kind, tuple(children), self._span(meta))

        return method

    stem = _section("stem")
    stage = _section("stage")
    head = _section("head")

    @v_args(meta=True, inline=False)
    def network_def(self, meta, children):
        name, *rest = children
        params = rest.pop(0) if rest and isinstance(rest[0], tuple) else ()
        return ast.NetworkDef(str(name), params, tuple(rest), self._span(meta))

    @v_args(meta=True, inline=False)
    def network_inst(self, meta, children):
        name, family, *rest = children
        shortcut = None
        if rest and isinstance(rest[-1], Token) and rest[-1].type == "POLICY":
            shortcut = str(rest.pop())
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
        return ast.TrainDef(str(name), tuple(settings), self._span(meta))

    # ------------------------------------------------------------ files
    def import_(self, meta, tok):
        return ast.Import(str(tok)[1:-1], self._span(meta))

    @v_args(meta=True, inline=False)
    def start(self, meta, children):
        return ast.Module(self.source, tuple(children))


class _Repeat(NamedTuple):
    count: ast.Expr


def _value(v):
    if isinstance(v, ast.Value):
        return v
    kind = "int" if isinstance(v.value, int) else "float"
    return ast.Value(kind, v.value, v.span)
