"""Error codes, read from their pages, and the JSON diagnostics format.

Every error resdsl reports carries a stable code, grouped by the stage that finds it:

- ``RDS0xx`` syntax: the text does not follow the grammar, or a file cannot be read;
- ``RDS1xx`` names, arguments and structure, found while linking and elaborating a spec;
- ``RDS2xx`` shapes, found by shape inference and the checker;
- ``RDS3xx`` training recipes: the `train` section's settings and values;
- ``RDS4xx`` targets and tools: code generation, `graph`, `plot`;
- ``RDS5xx`` warnings (resdsl.lints): legal, but rarely meant.

Each code is one Markdown page, ``resdsl/error_codes/RDSnnn.md``, as rustc keeps
``compiler/rustc_error_codes/src/error_codes/E0308.md``: what the code means, the module that
raises it, an example, the command that runs it and exactly what that prints, and the fix.
`resdsl explain`, the docs and the tests (tests/test_diagnostics.py runs every example) read the
same pages, through :func:`codes` and :func:`page`. Adding a code is adding a page; the page
format is in ``resdsl/error_codes/README.md``, and :func:`parse_page` refuses a page that strays
from it with a :class:`PageError` naming the line. A code is never reused for another meaning.
"""

from __future__ import annotations

import codecs
import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NoReturn

from .errors import ResdslError, Span

FORMAT_VERSION = 1
SCHEMAS = Path(__file__).resolve().parent / "schemas"
PAGES = "error_codes"  # the folder of pages, inside the package
README = "README.md"  # the folder's description of the format, not a page

# ---------------------------------------------------------------- pages


@dataclass(frozen=True)
class ExampleFile:
    """One file of a page's example, as the page shows it, and the encoding it is written in."""

    name: str
    text: str
    encoding: str = "utf-8"

    @property
    def data(self) -> bytes:
        return self.text.encode(self.encoding)


@dataclass(frozen=True)
class Code:
    """One error code's page, parsed."""

    code: str
    title: str
    modules: tuple[str, ...]  # relative to the package: "linker.py", or a folder "targets/"
    explanation: str
    files: tuple[ExampleFile, ...]  # written into one folder before the command runs there
    command: str  # a shell command `resdsl ...`, or a Python call `resdsl.build(...)`
    output: str  # what the command prints (a call: the error it raises, rendered)
    fix: str
    page: str  # the page's Markdown text

    @property
    def is_call(self) -> bool:
        return self.command.startswith("resdsl.")

    @property
    def argv(self) -> list[str]:
        """The CLI arguments after `resdsl`, split on spaces (the pages quote nothing)."""
        assert not self.is_call, self.command
        return self.command.split()[1:]


class PageError(ValueError):
    """A page that does not follow the format: its file, line and what was expected."""


_CODE = re.compile(r"RDS\d{3}")
_TITLE = re.compile(r"# (RDS\d{3}): (\S(?:.*\S)?)")
_RAISED_BY = re.compile(r"Raised by: (`resdsl/[\w/]+(?:\.py|/)`(?:, `resdsl/[\w/]+(?:\.py|/)`)*)")
_FILE = re.compile(r"`([\w][\w.-]*)`(?:, encoded in ([\w-]+))?:")
_SHELL = re.compile(r"`(resdsl [^`'\"\\\\]+)` reports:")  # nothing quoted: split on spaces
_CALL = re.compile(r"`(resdsl\.\w+\([^`]*\))` raises:")
_FENCE = re.compile(r"```(\w*)")


class _Reader:
    """A cursor over a page's lines that names the line of whatever it refuses."""

    def __init__(self, name: str, text: str):
        self.name = name
        if "\r" in text:
            self.fail(1, "line endings must be \\n")
        if not text.endswith("\n") or text.endswith("\n\n"):
            self.fail(max(1, text.count("\n")), "the page must end with exactly one newline")
        self.lines = text[:-1].split("\n")
        self.at = 0

    def fail(self, line: int, message: str) -> NoReturn:
        raise PageError(f"{self.name}:{line}: {message}")

    def peek(self) -> str | None:
        return self.lines[self.at] if self.at < len(self.lines) else None

    def take(self, pattern: re.Pattern | str, what: str) -> re.Match | None:
        """The next line, which must be ``pattern`` (a line, or a regex it matches in full)."""
        line = self.peek()
        if isinstance(pattern, str):
            found, match = line == pattern, None
        else:
            match = pattern.fullmatch(line) if line is not None else None
            found = match is not None
        if not found:
            got = "the end of the page" if line is None else repr(line)
            self.fail(self.at + 1, f"expected {what}, got {got}")
        self.at += 1
        return match

    def blank(self) -> None:
        self.take("", "a blank line")

    def prose(self, what: str, until: str | None) -> str:
        """Paragraphs up to the line ``until`` (or the end): no headings, no code blocks."""
        start = self.at
        if not self.peek():
            self.fail(start + 1, f"expected {what}, got {self.peek()!r}")
        while self.peek() is not None and self.peek() != until:
            line = self.peek()
            if line.startswith(("#", "```")) or line != line.rstrip():
                why = "no headings, code blocks or trailing spaces"
                self.fail(self.at + 1, f"{what} is prose ({why}), got {line!r}")
            self.at += 1
        text = "\n".join(self.lines[start : self.at])
        if "\n\n\n" in text:
            self.fail(start + 1, f"{what}: at most one blank line between paragraphs")
        if until is not None:
            if self.peek() is None:
                self.fail(self.at, f"expected {until!r} after {what}")
            if self.lines[self.at - 1] != "":
                self.fail(self.at + 1, f"expected a blank line before {until!r}")
            self.take(until, repr(until))
            self.blank()
        return text.strip("\n") + "\n"

    def block(self, what: str, language: str | None = None) -> str:
        """A fenced code block's text, each line ending in a newline."""
        opened = self.take(_FENCE, f"the ``` that opens {what}")
        if language is not None and opened[1] != language:
            self.fail(self.at, f"{what} is a ```{language} block, got {opened[0]!r}")
        start = self.at
        while self.peek() != "```":
            if self.peek() is None:
                self.fail(start, f"{what}: the ``` block is not closed")
            self.at += 1
        text = "".join(line + "\n" for line in self.lines[start : self.at])
        self.at += 1
        return text


def parse_page(name: str, text: str) -> Code:
    """Read one page (``name`` is its file name, ``RDSnnn.md``); a PageError if it strays from
    the format in resdsl/error_codes/README.md."""
    read = _Reader(name, text)
    title = read.take(_TITLE, "the title `# RDSnnn: title`")
    code = title[1]
    if name != f"{code}.md":
        read.fail(1, f"the page of {code} must be named {code}.md")
    read.blank()
    raised = read.take(_RAISED_BY, "`Raised by: `resdsl/module.py``")
    modules = tuple(m.strip("`").removeprefix("resdsl/") for m in raised[1].split(", "))
    read.blank()
    explanation = read.prose("the explanation", "## Example")
    files = []
    while (caption := _FILE.fullmatch(read.peek() or "")) is not None:
        name, encoding, line = caption[1], caption[2] or "utf-8", read.at + 1
        read.at += 1
        read.blank()
        try:
            codecs.lookup(encoding)
        except LookupError:
            read.fail(line, f"unknown encoding {encoding!r}")
        if any(f.name == name for f in files):
            read.fail(line, f"`{name}` is shown twice")
        body = read.block(f"`{name}`")
        try:
            body.encode(encoding)
        except UnicodeEncodeError as exc:
            read.fail(line, f"`{name}` cannot be written in {encoding}: {exc.reason}")
        files.append(ExampleFile(name, body, encoding))
        read.blank()
    if not files:
        read.take(_FILE, "a file of the example: `example.rds`:")
    line = read.peek() or ""
    command = _SHELL.fullmatch(line) or _CALL.fullmatch(line)
    if command is None:
        forms = "`resdsl CMD ARGS` reports: or `resdsl.function(...)` raises:"
        read.fail(read.at + 1, f"expected the command, {forms}, got {line!r}")
    read.at += 1
    read.blank()
    output = read.block("the output", "text")
    read.blank()
    read.take("## How to fix it", "'## How to fix it'")
    read.blank()
    fix = read.prose("the fix", None)
    return Code(code, title[2], modules, explanation, tuple(files), command[1], output, fix, text)


def _folder():
    return resources.files(__package__) / PAGES


def _read(name: str) -> Code:
    entry = _folder() / name
    if not entry.is_file():
        raise KeyError(name)
    try:
        text = entry.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PageError(f"{name}: not UTF-8 ({exc.reason})") from None
    return parse_page(name, text)


@functools.cache
def codes() -> dict[str, Code]:
    """Every code's page, by code, in order; a PageError for a malformed page or a stray file."""
    names = sorted(entry.name for entry in _folder().iterdir())
    for name in names:
        if name != README and not re.fullmatch(r"RDS\d{3}\.md", name):
            raise PageError(f"{name}: the folder {PAGES}/ holds RDSnnn.md pages and {README}")
    return {name[:-3]: _read(name) for name in names if name != README}


def normalize(code: str) -> str:
    """``rds201``, ``201`` or ``RDS201`` -> ``RDS201``."""
    code = code.strip().upper()
    return code if code.startswith("RDS") else f"RDS{code.zfill(3)}"


def page(code: str) -> Code:
    """One code's page (``rds201``, ``201`` or ``RDS201``); KeyError for an unknown code."""
    code = normalize(code)
    if not _CODE.fullmatch(code):
        raise KeyError(code)
    return _read(f"{code}.md")


def explain(code: str) -> str:
    """The page `resdsl explain CODE` prints: its Markdown; KeyError for an unknown code."""
    return page(code).page


def listing() -> str:
    """One line per code, for `resdsl explain --list`."""
    return "".join(f"{c.code}  {c.title}\n" for c in codes().values())


# ---------------------------------------------------------------- JSON diagnostics


def flatten(error: ResdslError) -> list[ResdslError]:
    """The errors an error stands for: itself, or the members of an ErrorGroup."""
    return list(getattr(error, "errors", None) or [error])


def _range(span: Span) -> dict:
    return {
        "start": {"line": span.line, "column": span.column},
        "end": {"line": span.end_line, "column": span.end_column},
    }


def diagnostic(error: ResdslError, file: str | None = None) -> dict:
    """One error as a JSON object of the `check --format json` format.

    Lines and columns count from 1; the end column is just past the span.
    """
    span = error.span
    return {
        "file": span.source.name if span else file,
        "range": _range(span) if span else None,
        "severity": error.kind,
        "code": error.code,
        "message": error.message,
        "hints": [error.hint] if error.hint else [],
        "related": [
            {"file": r.span.source.name, "range": _range(r.span), "message": r.message}
            for r in error.related
        ],
    }


def report(files: list[dict], errors: list[tuple[str, ResdslError]]) -> dict:
    """The one JSON object of `resdsl check --format json`.

    ``files`` holds each checked file's result (``{"file", "ok", "networks"}``); ``errors``
    pairs a file's path with each of its errors and warnings. Warnings alone leave it ok.
    """
    diagnostics = [diagnostic(e, path) for path, error in errors for e in flatten(error)]
    return {
        "version": FORMAT_VERSION,
        "ok": all(d["severity"] == "warning" for d in diagnostics),
        "files": files,
        "diagnostics": diagnostics,
    }


def schema(name: str) -> dict:
    """A JSON Schema shipped in the package: ``diagnostics`` or ``summary``."""
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
