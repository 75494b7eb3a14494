"""Source positions and the one error hierarchy.

Every error a person can cause carries a :class:`Span` and a stable code (see
:mod:`resdsl.diagnostics`, where every code is registered and explained), and renders like a
compiler::

    specs/bad.rds:4:12: error[RDS101]: unknown layer or block `convv`
        stage { convv 16 3x3 }
                ^~~~~
    hint: did you mean `conv`?
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    """A piece of resdsl text and the name it is reported under."""

    name: str
    text: str = field(repr=False, compare=False)
    builtin: bool = False

    def line(self, number: int) -> str:
        lines = self.text.split("\n")  # as lark counts lines; str.splitlines also splits at \f
        return lines[number - 1] if 0 < number <= len(lines) else ""


@dataclass(frozen=True)
class Span:
    """A 1-based line/column range in a :class:`Source`."""

    source: Source
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.source.name}:{self.line}:{self.column}"

    def __repr__(self) -> str:
        return f"Span({self})"

    @classmethod
    def from_meta(cls, source: Source, meta) -> Span:
        if getattr(meta, "empty", True):
            return cls(source, 1, 1, 1, 1)
        return cls(source, meta.line, meta.column, meta.end_line, meta.end_column)

    @classmethod
    def from_token(cls, source: Source, token) -> Span:
        return cls(source, token.line, token.column, token.end_line, token.end_column)


@dataclass(frozen=True)
class Related:
    """Another place that explains an error, e.g. where a duplicate name was first defined."""

    span: Span
    message: str


class ResdslError(Exception):
    """Base of every error resdsl reports to a person.

    ``code`` is the error's stable code (``RDS101``), registered in :mod:`resdsl.diagnostics`;
    ``related`` lists other places worth showing beside the span.
    """

    kind = "error"

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        hint: str | None = None,
        *,
        code: str | None = None,
        related: tuple[Related, ...] | list[Related] = (),
    ):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.code = code
        self.related = tuple(related)

    @property
    def severity(self) -> str:
        """``error``, with the code when there is one: ``error[RDS101]``."""
        return f"{self.kind}[{self.code}]" if self.code else self.kind

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}{self.severity}: {self.message}"

    def render(self) -> str:
        """``path:line:col: error: message``, the source line, a caret, a hint, and where to read
        more: ``resdsl explain CODE``."""
        return self._diagnostic() + _explain([self.code], self.kind)

    def _diagnostic(self) -> str:
        out = [str(self)]
        if self.span is not None:
            text = self.span.source.line(self.span.line)
            if text:
                start = self.span.column - 1
                if self.span.end_line == self.span.line:
                    width = max(1, self.span.end_column - self.span.column)
                else:
                    width = max(1, len(text.rstrip()) - start)
                out.append("    " + text.rstrip().expandtabs(1))
                out.append("    " + " " * start + "^" + "~" * (width - 1))
        for related in self.related:
            out.append(f"{related.span}: note: {related.message}")
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)


class ParseError(ResdslError):
    """The text does not follow the grammar."""


class SpecError(ResdslError):
    """Names, types, arguments and structure found while elaborating a spec."""


class SpecWarning(ResdslError):
    """Legal, but almost never what was meant (resdsl.lints): shown, and an error only under
    ``check --deny-warnings``."""

    kind = "warning"


class ShapeError(ResdslError):
    """Tensor shapes that do not fit together."""


class TrainError(ResdslError):
    """A `train` section whose values cannot work."""


class ErrorGroup(ResdslError):
    """Several errors, collected and reported together."""

    def __init__(self, errors: list[ResdslError]):
        self.errors = sorted(errors, key=_position)
        first = self.errors[0]
        super().__init__(first.message, first.span, first.hint, code=first.code)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    def render(self) -> str:
        diagnostics = "\n".join(e._diagnostic() for e in self.errors)
        return diagnostics + _explain([e.code for e in self.errors])


class ParseErrorGroup(ErrorGroup, ParseError):
    """Several syntax errors of one file, reported together: a ParseError, as one error is."""


def _explain(codes: list[str | None], kind: str = "error") -> str:
    """The closing line that points at the codes' pages, as rustc's `--explain` line does."""
    codes = sorted({c for c in codes if c})
    if not codes:
        return ""
    if len(codes) == 1:
        return f"\nrun `resdsl explain {codes[0]}` for more about this {kind}"
    return f"\nrun `resdsl explain CODE` for more about these errors: {', '.join(codes)}"


def _position(error: ResdslError):
    span = error.span
    if span is None:
        return ("", 0, 0)
    return (span.source.name, span.line, span.column)


def raise_all(errors: list[ResdslError], group: type[ErrorGroup] | None = None) -> None:
    """Raise the collected errors: one as itself, several as an :class:`ErrorGroup` (or the
    ``group`` class given, e.g. :class:`ParseErrorGroup`)."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise (group or ErrorGroup)(errors)


def unique(errors: list[ResdslError]) -> list[ResdslError]:
    """Each error once, in order: a definition's mistake repeats in every use of it."""
    seen, out = set(), []
    for error in errors:
        key = (str(error.span), error.message)
        if key not in seen:
            seen.add(key)
            out.append(error)
    return out


def did_you_mean(name: str, choices) -> str | None:
    """The closest of ``choices``: one that differs only in case first (`b` for `B`)."""
    choices = sorted(choices)
    close = [c for c in choices if c.lower() == name.lower() and c != name]
    close = close or difflib.get_close_matches(name, choices, n=1)
    return f"did you mean `{close[0]}`?" if close else None


def unknown(
    message: str, span: Span | None, name: str, choices, listing: str, *, code: str | None = None
) -> SpecError:
    """An error for a name that is not one of ``choices``: suggest the closest, else list them."""
    choices = list(choices)
    hint = did_you_mean(name, choices)
    if hint is None and choices:
        hint = f"{listing}: " + ", ".join(choices)
    return SpecError(message, span, hint, code=code)
