"""Python code layout: calls laid out as ruff format lays them out, and values as literals.

What the Python targets print passes `ruff format --check` as it is, so the layout lives here,
beside the targets, not in the target-neutral :mod:`resdsl.emit`.
"""

from __future__ import annotations

LINE = 88  # ruff's default line length: generated files pass `ruff format --check` as they are


class Call:
    """A call expression that lays itself out the way ruff format does."""

    def __init__(self, func: str, *args, brackets: str = "()", **kwargs):
        self.func, (self.open, self.close) = func, brackets  # func "" is a tuple or a list
        self.args: list[tuple[str, object]] = [("", a) for a in args]
        self.args += [(f"{k}=", v) for k, v in kwargs.items()]

    def __str__(self) -> str:
        return f"{self.func}{self.open}{', '.join(k + str(v) for k, v in self.args)}{self.close}"


def lay_out(value, indent: int, prefix: str = "", suffix: str = "") -> list[str]:
    """``prefix + value + suffix`` at ``indent``, split like ruff where it is too long.

    First the whole line; then the arguments together on one indented line; then one argument per
    line with a trailing comma, each laid out the same way.
    """
    pad = " " * indent
    line = f"{pad}{prefix}{value}{suffix}"
    if len(line) <= LINE or not isinstance(value, Call) or not value.args:
        return [line]
    inner = " " * (indent + 4)
    opening, closing = f"{pad}{prefix}{value.func}{value.open}", f"{pad}{value.close}{suffix}"
    hug = inner + ", ".join(k + str(v) for k, v in value.args)
    if value.func and len(hug) <= LINE:  # ruff splits a tuple or list one item per line
        return [opening, hug, closing]
    sole = value.args[0][1] if len(value.args) == 1 and not value.args[0][0] else None
    if value.func and isinstance(sole, Call):  # a call's sole argument: no trailing comma
        return [opening, *lay_out(sole, indent + 4), closing]
    out = [opening]
    for key, arg in value.args:
        out += lay_out(arg, indent + 4, key, ",")
    return out + [closing]


def literal(value) -> str:
    """A value as Python source: repr(), with strings double-quoted as ruff format writes them."""
    if isinstance(value, str):
        text = repr(value)
        if text.startswith("'") and '"' not in value:
            text = '"' + text[1:-1] + '"'
        return text
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    return repr(value)
