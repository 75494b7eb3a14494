"""What the Python-emitting targets share for model.py: the IR's expressions as Python source.

A block template's arguments are :mod:`resdsl.ir` expressions over its parameters; here they become
Python, with each parameter under the name the namespace gave it.
"""

from __future__ import annotations

from ..emit import literal
from ..ir import IN_CHANNELS, BinOp, BlockTemplate, Const, Expr, Param, TemplateOp

PRECEDENCE = {"+": 1, "-": 1, "*": 2, "//": 2}
# ops whose output is a new tensor: a ReLU after one may work in place
FRESH = ("conv", "bn", "fc", "add")


def py(expr: Expr, names: dict[str, str]) -> str:
    """``expr`` as a Python expression; ``names`` maps each parameter to its Python name."""
    if isinstance(expr, Const):
        return size(expr.value) if isinstance(expr.value, tuple) else literal(expr.value)
    if isinstance(expr, Param):
        return "in_channels" if expr.name == IN_CHANNELS else names[expr.name]
    left = _side(expr.left, expr.op, names, right=False)
    return f"{left} {expr.op} {_side(expr.right, expr.op, names, right=True)}"


def _side(expr: Expr, op: str, names: dict[str, str], right: bool) -> str:
    text = py(expr, names)
    if isinstance(expr, BinOp):
        inner, outer = PRECEDENCE[expr.op], PRECEDENCE[op]
        if inner < outer or right and inner == outer and not (op == expr.op and op in "+*"):
            return f"({text})"
    return text


def size(value) -> str:
    """A kernel, stride or padding: ``3`` for 3x3, ``(3, 1)`` otherwise."""
    if isinstance(value, tuple):
        h, w = value
        return str(h) if h == w else f"({h}, {w})"
    return str(value)


def flag(expr: Expr, names: dict[str, str]) -> str:
    if isinstance(expr, Const):
        return repr(bool(expr.value))
    return f"bool({py(expr, names)})"


def is_default(expr: Expr | None, default) -> bool:
    """Whether an argument can be left out: a constant equal to the framework's default."""
    if not isinstance(expr, Const):
        return False
    value = expr.value
    if isinstance(value, tuple) and len(set(value)) == 1:
        value = value[0]
    return value == default


def param_names(template: BlockTemplate) -> dict[str, str]:
    return dict(template.param_names)


def relu_in_place(ops: list[TemplateOp], index: int) -> bool:
    """A ReLU may work in place where it reads a fresh tensor that nothing else reads."""
    return index > 0 and ops[index - 1].op in FRESH
