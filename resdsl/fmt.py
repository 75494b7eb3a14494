"""`resdsl fmt`: one canonical layout for .rds text, keeping every comment and the meaning.

The layout:

- four spaces per level of braces; one space between words; ``key=value`` in a layer or block
  call and ``key = value`` inside parentheses; expressions without spaces (``width*4``), with
  the parentheses that were written;
- one statement per line, except that statements written on one line (``conv w 3x3; bn; relu``)
  stay there while the line fits in :data:`WIDTH` columns; a section written on one line
  (``stem { conv 16 3x3; bn; relu }``) stays on one line on the same terms, with its keyword
  padded so that the braces of a network's one-line sections align;
- at most one blank line where blank lines were, none at the start or end of a body;
- trailing comments on consecutive lines of one body aligned, two spaces past the longest line;
  comments on their own lines indented with the statement after them.

The formatter works on a lark parse that keeps every token (``keep_all_tokens``); comments,
which the grammar ignores, are found in the text between the tokens and attached by position.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from lark import Lark, Token, Tree

from .errors import ParseError, ResdslError
from .parser import BOM, WholeWords, parse, read
from .resources import resource

WIDTH = 100
INDENT = "    "
_COMMENT = re.compile(r"#[^\n]*")
_SECTIONS = ("stem", "stage", "head")


@functools.cache
def _parser() -> Lark:
    return Lark.open(
        str(resource("grammars") / "resdsl.lark"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        keep_all_tokens=True,
        postlex=WholeWords(),
    )


def format_text(text: str, name: str = "<string>") -> str:
    """``text`` in the canonical layout; a :class:`resdsl.ParseError` where it does not parse.

    The file's own conventions are kept: a leading byte-order mark, and CRLF line endings where
    the file uses them.
    """
    parse(text, name)  # the parser's own errors, with their codes and spans
    bom = BOM if text.startswith(BOM) else ""
    newline = "\r\n" if "\r\n" in text else "\n"
    text = text.removeprefix(BOM).replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    tree = _parser().parse(text)
    return bom + _Formatter(text, tree).run().replace("\n", newline)


def format_paths(paths) -> list[tuple[str, str | ResdslError]]:
    """Each file to format with its text: folders give their .rds files (recursively), ``-``
    stands for stdin (its text is read by the caller); an unreadable file gives its error."""
    out: list[tuple[str, str | ResdslError]] = []
    for name in paths:
        if name == "-":
            out.append(("-", ""))
            continue
        path = Path(name)
        files = sorted(path.rglob("*.rds")) if path.is_dir() else [path]
        for file in files:
            try:
                out.append((str(file), read(file)))
            except ParseError as exc:  # not a regular file, too large, not UTF-8, ...
                out.append((str(file), exc))
    return out


def diff(old: str, new: str, name: str) -> str:
    """A unified diff from ``old`` to ``new``, as `resdsl fmt --check` prints it."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            f"{name} (original)",
            f"{name} (formatted)",
        )
    )


# ---------------------------------------------------------------- comments


@dataclass
class _Comment:
    pos: int  # offset in the text
    line: int
    text: str
    own_line: bool  # nothing but whitespace before it on its line


def _comments(text: str, tree: Tree) -> list[_Comment]:
    """Every comment: the `#...` runs in the text that no token (a string, say) covers."""
    covered = sorted(
        (t.start_pos, t.end_pos) for t in tree.scan_values(_is_token) if t.type != "_SEP"
    )
    gaps, at = [], 0
    for start, end in covered:
        gaps.append((at, start))
        at = max(at, end)
    gaps.append((at, len(text)))
    out = []
    for start, end in gaps:
        for match in _COMMENT.finditer(text, start, end):
            line_start = text.rfind("\n", 0, match.start()) + 1
            out.append(
                _Comment(
                    match.start(),
                    text.count("\n", 0, match.start()) + 1,
                    match.group().rstrip(),
                    not text[line_start : match.start()].strip(),
                )
            )
    return out


def _is_token(value) -> bool:
    return isinstance(value, Token)


# ---------------------------------------------------------------- lines


@dataclass
class _Line:
    depth: int
    code: str  # "" for a comment on its own line or a blank line
    comment: str | None = None
    body: int = 0  # which body the line belongs to, for aligning trailing comments
    blank: bool = False


@dataclass
class _Stmt:
    tree: Tree
    start: int
    end: int
    line: int
    end_line: int
    trailing: list[str] = field(default_factory=list)
    leading: list[_Comment] = field(default_factory=list)


class _Formatter:
    def __init__(self, text: str, tree: Tree):
        self.text = text
        self.tree = tree
        lines = text.split("\n")
        self.blank = {i for i, line in enumerate(lines, start=1) if not line.strip()}
        self.comments = _comments(text, tree)
        self.bodies = 0

    def run(self) -> str:
        items = [c for c in self.tree.children if isinstance(c, Tree)]
        lines, header = self._body(items, None, None, depth=0, joinable=False)
        lines = [_Line(0, "", c) for c in header] + lines
        lines = _align(lines)
        out = []
        for line in lines:
            if line.blank:
                out.append("")
                continue
            text = INDENT * line.depth + line.code
            if line.comment is not None:
                text = f"{text}{' ' if line.code else ''}{line.comment}"
            out.append(text.rstrip())
        while out and not out[-1]:
            out.pop()
        return "\n".join(out) + "\n" if out else ""

    # ------------------------------------------------------------ bodies
    def _take_comments(self, start: int, end: int) -> list[_Comment]:
        """Remove and return the comments between offsets ``start`` and ``end``."""
        inside = [c for c in self.comments if start < c.pos < end]
        self.comments = [c for c in self.comments if not start < c.pos < end]
        return inside

    def _body(
        self, stmts, open_tok, close_tok, depth: int, joinable: bool
    ) -> tuple[list[_Line], list[str]]:
        """The lines of a body's statements, and the comments after its `{`.

        The caller prints the braces.

        Comments inside nested bodies are taken by those bodies first, so that each body sees
        only its own.
        """
        self.bodies += 1
        body = self.bodies
        nodes = [_stmt(s) for s in stmts]
        rendered = [self._statement(n.tree, depth) for n in nodes]  # nested bodies first
        start = open_tok.end_pos if open_tok is not None else -1
        end = close_tok.start_pos if close_tok is not None else len(self.text) + 1
        header: list[str] = []
        tail: list[_Comment] = []
        for comment in self._take_comments(start, end):
            if not comment.own_line:
                owner = next(
                    (n for n in reversed(nodes) if n.end <= comment.pos), None
                )  # the statement the comment follows on its line
                if owner is not None and owner.end_line == comment.line:
                    owner.trailing.append(comment.text)
                    continue
                if open_tok is not None and open_tok.line == comment.line:
                    header.append(comment.text)
                    continue
                # after a `;` or a line continuation: as if on a line of its own
            after = next((n for n in nodes if n.start > comment.pos), None)
            (after.leading if after is not None else tail).append(comment)
        lines: list[_Line] = []
        previous_end = None
        for run in self._runs(nodes):
            first = run[0]
            entries: list[tuple[int, int]] = [(c.line, c.line) for c in first.leading]
            entries.append((first.line, run[-1].end_line))
            for (line, end_line), comment in zip(entries, [*first.leading, None], strict=True):
                if previous_end is not None and any(
                    n in self.blank for n in range(previous_end + 1, line)
                ):
                    lines.append(_Line(depth, "", blank=True))
                previous_end = end_line
                if comment is not None:
                    lines.append(_Line(depth, "", comment.text, body))
            lines += self._run_lines(run, rendered, nodes, depth, body, joinable)
        for comment in tail:
            if previous_end is not None and any(
                n in self.blank for n in range(previous_end + 1, comment.line)
            ):
                lines.append(_Line(depth, "", blank=True))
            previous_end = comment.line
            lines.append(_Line(depth, "", comment.text, body))
        return lines, header

    def _runs(self, nodes: list[_Stmt]) -> list[list[_Stmt]]:
        """Statements grouped by the line they were written on (``a; b; c``)."""
        runs: list[list[_Stmt]] = []
        for node in nodes:
            if runs and runs[-1][-1].end_line == node.line and not node.leading:
                runs[-1].append(node)
            else:
                runs.append([node])
        return runs

    def _run_lines(self, run, rendered, nodes, depth, body, joinable) -> list[_Line]:
        parts = [rendered[nodes.index(n)] for n in run]
        comments = [c for n in run for c in n.trailing]
        comment = "  ".join(comments) if comments else None
        single = all(len(p) == 1 and p[0].comment is None for p in parts)
        if joinable and single:
            code = "; ".join(p[0].code for p in parts)
            if len(INDENT * depth + code) <= WIDTH:
                return [_Line(depth, code, comment, body)]
        out: list[_Line] = []
        for part in parts:
            for line in part:
                out.append(line)
        last = out[-1]
        if comment is not None:
            last.comment = f"{last.comment}  {comment}" if last.comment else comment
        for line in out:
            if line.depth == depth and not line.blank and line.body == 0:
                line.body = body
        return out

    # ------------------------------------------------------------ statements
    def _statement(self, tree: Tree, depth: int) -> list[_Line]:
        """A statement's lines at ``depth``; a one-line statement has ``body`` 0 until placed."""
        kind = tree.data
        if kind == "block_def":
            return self._definition(tree, depth, f"block {_word(tree, 1)}{_params(tree)}", False)
        if kind == "shortcut_def":
            return self._definition(tree, depth, f"shortcut {_word(tree, 1)}", False)
        if kind == "shortcut_case" and _word(tree, -1) == "off":
            return [_Line(depth, f"{_keyword(tree)} off")]
        if kind in ("shortcut_case", "group", "join"):
            return self._section(tree, depth)
        if kind == "network_def":
            return self._definition(tree, depth, f"network {_word(tree, 1)}{_params(tree)}", True)
        if kind == "train_def":
            return self._definition(tree, depth, f"train {_word(tree, 1)}", False)
        if kind in _SECTIONS:
            return self._section(tree, depth)
        return [_Line(depth, _simple(tree))]

    def _definition(self, tree: Tree, depth: int, head: str, network: bool) -> list[_Line]:
        open_tok, close_tok = _braces(tree)
        stmts = _between(tree, open_tok, close_tok)
        if network:
            self.pad = max(
                (
                    len(s.data)
                    for s in stmts
                    if s.data in _SECTIONS and self._inline(s, depth + 1) is not None
                ),
                default=0,
            )
        inner, header = self._body(stmts, open_tok, close_tok, depth + 1, joinable=True)
        if not inner and not header:
            return [_Line(depth, head + " {}")]
        comment = "  ".join(header) if header else None
        return [_Line(depth, head + " {", comment), *inner, _Line(depth, "}")]

    def _inline(self, tree: Tree, depth: int) -> str | None:
        """A section on one line, where it was written on one line, has no comment and fits."""
        open_tok, close_tok = _braces(tree)
        if open_tok.line != close_tok.line:
            return None
        if any(open_tok.end_pos < c.pos < close_tok.start_pos for c in self.comments):
            return None
        code = _simple(tree)
        return code if len(INDENT * depth + code) + 1 <= WIDTH else None

    def _section(self, tree: Tree, depth: int) -> list[_Line]:
        """A section, a shortcut's case or a group: on one line where it fits, as written."""
        keyword = _keyword(tree)
        inline = self._inline(tree, depth)
        if inline is not None:
            padded = keyword.ljust(getattr(self, "pad", 0)) if tree.data in _SECTIONS else keyword
            return [_Line(depth, padded + inline[len(keyword) :])]
        open_tok, close_tok = _braces(tree)
        stmts = _between(tree, open_tok, close_tok)
        inner, header = self._body(stmts, open_tok, close_tok, depth + 1, joinable=True)
        comment = "  ".join(header) if header else None
        return [_Line(depth, keyword + " {", comment), *inner, _Line(depth, "}")]


def _keyword(tree: Tree) -> str:
    """What a braced body follows: ``stem``, a shortcut's ``change``, ``group conv1``."""
    if tree.data == "shortcut_case":  # `change`, or `channels from tap`
        tokens = [c for c in tree.children if isinstance(c, Token)]
        tap = any(t.type == "FROM_TAP" for t in tokens)
        return _word(tree, 0) + (" from tap" if tap else "")
    if tree.data == "group":  # `group conv1`, or `group` for a member under its number
        names = [c for c in tree.children if isinstance(c, Token) and c.type == "IDENT"]
        return f"group {names[0]}" if names else "group"
    if tree.data == "join":
        return _word(tree, 0)
    path = next((c for c in tree.children if isinstance(c, Tree) and c.data == "module_path"), None)
    if path is not None:  # `stage stages.0.blocks`
        return f"{tree.data} " + "".join(str(t) for t in path.scan_values(lambda _: True))
    return tree.data


def _stmt(tree: Tree) -> _Stmt:
    meta = tree.meta
    return _Stmt(tree, meta.start_pos, meta.end_pos, meta.line, meta.end_line)


def _braces(tree: Tree) -> tuple[Token, Token]:
    tokens = [c for c in tree.children if isinstance(c, Token)]
    return next(t for t in tokens if t == "{"), next(t for t in reversed(tokens) if t == "}")


def _between(tree: Tree, open_tok: Token, close_tok: Token) -> list[Tree]:
    return [
        c
        for c in tree.children
        if isinstance(c, Tree) and open_tok.end_pos <= c.meta.start_pos < close_tok.start_pos
    ]


def _word(tree: Tree, index: int) -> str:
    return str([c for c in tree.children if isinstance(c, Token)][index])


def _params(tree: Tree) -> str:
    params = next((c for c in tree.children if isinstance(c, Tree) and c.data == "params"), None)
    if params is None:
        return ""
    items = [_param(p) for p in params.children if isinstance(p, Tree)]
    return "(" + ", ".join(items) + ")"


def _param(tree: Tree) -> str:
    parts = [c for c in tree.children if not (isinstance(c, Token) and c == "=")]
    if len(parts) == 1:
        return str(parts[0])
    return f"{parts[0]} = {_expr(parts[1])}"


def _expr(node) -> str:
    """An expression as written, without spaces: its parentheses keep its meaning."""
    if isinstance(node, Token):
        return str(node)
    return "".join(_expr(c) for c in node.children)


def _simple(tree: Tree) -> str:
    """A statement that fits on one line: everything but definitions and multi-line sections."""
    kind = tree.data
    if kind == "import_":
        return f"import {tree.children[1]}"
    if kind == "call":
        return _call(tree)
    if kind == "add":  # `add`, or `proj: add`
        label = next((c for c in tree.children if isinstance(c, Tree) and c.data == "label"), None)
        return f"{label.children[0]}: add" if label is not None else "add"
    if kind == "tap":
        return kind
    if kind == "names":  # `names "block1-"`, `names "b" from 1`
        words = [
            str(t) for t in tree.children if isinstance(t, Token) and t.type in ("STRING", "INT")
        ]
        return f"names {words[0]}" + (f" from {words[1]}" if len(words) > 1 else "")
    if kind in ("input", "classes", "drop_path", "shortcut", "stride"):
        return f"{kind} {_expr(tree.children[1])}"
    if kind in (*_SECTIONS, "shortcut_case", "group", "join"):
        stmts = _between(tree, *_braces(tree))
        if not stmts:
            return f"{_keyword(tree)} {{}}"
        return f"{_keyword(tree)} {{ " + "; ".join(_simple(s) for s in stmts) + " }"
    if kind == "network_inst":
        return _instance(tree)
    if kind == "setting":
        return " ".join(_option(o) for o in tree.children if isinstance(o, Tree))
    raise AssertionError(f"fmt: no layout for {kind}")


def _call(tree: Tree) -> str:
    name, *rest = tree.children
    words = []
    if isinstance(name, Tree) and name.data == "label":  # `fc1: conv ...`
        words.append(f"{name.children[0]}:")
        name, *rest = rest
    words.append(str(name))
    for child in rest:
        if isinstance(child, Tree) and child.data == "kwarg":
            key, _, value = child.children
            words.append(f"{key}={_expr(value)}")
        elif isinstance(child, Tree) and child.data == "repeat":
            words.append(f"x {_expr(child.children[1])}")
        else:
            words.append(_expr(child))
    return " ".join(words)


def _instance(tree: Tree) -> str:
    tokens = tree.children
    name, family = tokens[1], tokens[3]
    close = max(i for i, c in enumerate(tokens) if isinstance(c, Token) and c == ")")
    args = []
    for child in tokens[5:close]:
        if isinstance(child, Token) and child == ",":
            continue
        if isinstance(child, Tree) and child.data == "kwarg":
            key, _, value = child.children
            args.append(f"{key} = {_expr(value)}")
        else:
            args.append(_expr(child))
    text = f"network {name} = {family}({', '.join(args)})"
    if close + 1 < len(tokens):
        text += f" shortcut {tokens[close + 2]}"
    return text


def _option(tree: Tree) -> str:
    if tree.data == "until":
        _, metric, _, value = tree.children
        return f"until {metric} < {_expr(value)}"
    name, *values = tree.children
    text = str(name)
    for value in values:
        if isinstance(value, Token) and value == ",":
            text += ","
        else:
            text += " " + _expr(value)
    return text


def _align(lines: list[_Line]) -> list[_Line]:
    """Align the trailing comments of consecutive code lines of one body."""
    group: list[_Line] = []

    def flush():
        if len(group) > 1:
            column = max(len(INDENT * g.depth + g.code) for g in group) + 2
            for g in group:
                pad = column - len(INDENT * g.depth + g.code)
                g.comment = " " * (pad - 1) + g.comment
        elif group:
            group[0].comment = " " + group[0].comment
        group.clear()

    for line in lines:
        if line.code and line.comment is not None and not line.blank:
            if group and group[-1].body != line.body:
                flush()
            group.append(line)
        else:
            flush()
    flush()
    return lines
