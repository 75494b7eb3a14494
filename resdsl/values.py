"""Values and expressions: what a spec's arguments are, bound, typed and checked.

A family's or block's parameters are bound to the values a call gives (defaults may read earlier
parameters); an expression is evaluated with integer arithmetic, bounded before it grows; an op's
arguments are matched to its row in the op table and typed. Each value remembers where a person
wrote it, so an error caused by a family's argument points at that argument.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import ops
from . import syntax as ast
from .errors import Related, Span, SpecError, did_you_mean, unknown
from .ir import Const, Expr

MAX_VALUE = 10**15  # what arithmetic may reach: sizes and counts, far below


@dataclass(frozen=True)
class Symbol:
    """A bare name used as a value: a block or layer kind passed to a family or block."""

    name: str


class Env(dict):
    """Parameter values, and for each the span of the argument a person wrote for it."""

    spans: dict[str, Span]


class Values:
    """The elaborator's value rules (a mixin over its ``program``)."""

    def _bind(
        self, owner: str, params, args, kwargs, env: dict, span: Span, extra: dict | None = None
    ) -> dict:
        """Bind call arguments to parameters; defaults may use earlier parameters."""
        names = [p.name for p in params]
        seen = set()
        for p in params:
            if p.name in seen:
                raise SpecError(f"parameter `{p.name}` is listed twice", p.span, code="RDS122")
            seen.add(p.name)
        unnamed = keyword_without_equals(owner, names, len(params), args, env)
        if unnamed is not None:
            raise unnamed
        if len(args) > len(params):
            raise too_many_block_values(owner, params, args)
        given = {p.name: self._eval(a, env) for p, a in zip(params, args, strict=False)}
        origins = {p.name: origin(a, env) for p, a in zip(params, args, strict=False)}
        for kw in kwargs:
            if kw.name not in names:
                raise no_such_argument(owner, kw, names, block=True)
            if kw.name in given:
                raise SpecError(f"`{kw.name}` is given twice", kw.span, code="RDS122")
            given[kw.name] = self._eval(kw.value, env)
            origins[kw.name] = origin(kw.value, env)
        for key, value in (extra or {}).items():
            if key in given:
                raise SpecError(
                    f"`{key}` is given both here and by the stage's `stride`", span, code="RDS125"
                )
            given[key] = value
        local = Env()
        local.spans = origins
        for p in params:
            if p.name in given:
                local[p.name] = given[p.name]
            elif p.default is not None:
                local[p.name] = self._eval(p.default, local)
            else:
                raise SpecError(
                    f"`{owner}` needs a value for `{p.name}`",
                    span,
                    f"e.g. `network NAME = {owner}({p.name} = VALUE)`"
                    if owner in self.program.networks
                    else f"e.g. `{owner} {p.name}=VALUE`",
                    code="RDS123",
                )
        return local

    def _eval(self, expr: ast.Expr, env: dict):
        if isinstance(expr, ast.Num):
            return expr.value
        if isinstance(expr, ast.Dims):
            return expr.values
        if isinstance(expr, ast.Name):
            if expr.id in env:
                return env[expr.id]
            if expr.id in self.program.blocks or expr.id in ops.OPS and ops.OPS[expr.id].user:
                return Symbol(expr.id)
            raise unknown_parameter(expr.id, expr.span, env)
        left, right = self._eval(expr.left, env), self._eval(expr.right, env)
        for side, value in ((expr.left, left), (expr.right, right)):
            if not isinstance(value, int):
                raise SpecError(
                    f"`{expr.op}` works on integers, got {show(value)}", side.span, code="RDS141"
                )
        if expr.op == "//" and right == 0:
            raise SpecError("division by zero", expr.right.span, code="RDS142")
        value = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__, "//": int.__floordiv__}[
            expr.op
        ](left, right)
        if abs(value) > MAX_VALUE:
            raise SpecError(
                f"this comes to more than {MAX_VALUE:,}",
                expr.span,
                "resdsl's values are sizes and counts; check the arithmetic",
                code="RDS143",
            )
        return value

    def _int(self, expr, env: dict, what: str, minimum: int) -> int:
        value = self._eval(expr, env)
        if not isinstance(value, int):
            raise bad(f"{what} must be an integer, got {show(value)}", expr, env, "RDS140")
        if value < minimum:
            raise bad(f"{what} must be at least {minimum}, got {value}", expr, env, "RDS143")
        return value

    def _at_argument(
        self, expr: ast.Expr, env: dict, message: str, hint: str, code: str, note="repeated here"
    ):
        """An error at the argument that gave ``expr`` its value, with a note at ``expr``."""
        origin = getattr(env, "spans", {}).get(expr.id) if isinstance(expr, ast.Name) else None
        if origin is None:
            return SpecError(message, self._site(expr.span), hint, code=code)
        return SpecError(message, origin, hint, code=code, related=[Related(expr.span, note)])

    def _op_args(self, opdef: ops.OpDef, stmt: ast.Call, env: dict) -> dict:
        """Each argument as (its expression or None, its raw value, its typed value)."""
        positional = [a for a in opdef.args if a.positional]
        every = [a.name for a in opdef.args]
        unnamed = keyword_without_equals(opdef.name, every, len(positional), stmt.args, env)
        if unnamed is not None:
            raise unnamed
        if len(stmt.args) > len(positional):
            raise too_many_values(opdef, stmt.args[len(positional)])
        values = {}
        for arg, expr in zip(positional, stmt.args, strict=False):
            values[arg.name] = expr
        by_name = {a.name: a for a in opdef.args}
        for kw in stmt.kwargs:
            if kw.name not in by_name:
                raise no_such_argument(opdef.name, kw, by_name, block=False)
            if kw.name in values:
                raise SpecError(f"`{kw.name}` is given twice", kw.span, code="RDS122")
            values[kw.name] = kw.value
        out = {}
        for arg in opdef.args:
            if arg.name not in values:
                if arg.default is ops.REQUIRED:
                    raise SpecError(
                        f"`{opdef.name}` needs `{arg.name}`",
                        stmt.span,
                        opdef.usage or None,
                        code="RDS123",
                    )
                out[arg.name] = (None, arg.default, arg.default)
                continue
            expr = values[arg.name]
            try:
                raw = self._eval(expr, env)
            except SpecError as exc:
                if exc.code == "RDS102" and isinstance(expr, ast.Name):
                    raise unknown_parameter(expr.id, expr.span, env, arg) from None
                raise
            out[arg.name] = (expr, raw, self._typed(raw, arg, opdef.name, expr, env))
        return out

    # ------------------------------------------------------------ blocks

    def _typed(self, value, arg: ops.Arg, op: str, expr: ast.Expr, env: dict):
        what = f"`{op}` argument `{arg.name}`"
        usage = ops.OPS[op].usage or None  # `conv 3x3 16`: the order the layer takes
        if arg.type == "pair":
            if isinstance(value, int):
                return (value, value)
            if isinstance(value, tuple) and len(value) == 2:
                return value
            raise bad(
                f"{what} must be an integer or HxW, got {show(value)}", expr, env, "RDS140", usage
            )
        if arg.type == "float":
            if isinstance(value, (int, float)):
                return float(value)
            raise bad(f"{what} must be a number, got {show(value)}", expr, env, "RDS140", usage)
        if not isinstance(value, int):
            if isinstance(value, tuple) and len(value) == 2 and origin(expr, env) != expr.span:
                usage = (
                    f"`{show(value)}` is a size; to repeat a call, write `{value[0]} x {value[1]}`"
                )
            raise bad(f"{what} must be an integer, got {show(value)}", expr, env, "RDS140", usage)
        if arg.type == "flag" and value not in (0, 1):
            raise bad(f"{what} must be 0 or 1, got {value}", expr, env, "RDS140", usage)
        return value


def bad(message: str, expr: ast.Expr, env: dict, code: str, hint: str | None = None) -> SpecError:
    """An error about a value, at the argument a person wrote for it (a family's or a block's
    parameter passed on), with a note where it was used; else at the value itself."""
    source = origin(expr, env)
    if source == expr.span:
        return SpecError(message, expr.span, hint, code=code)
    if hint and hint.startswith("e.g."):  # the layer's usage is not what the writer wrote
        hint = None
    return SpecError(message, source, hint, code=code, related=[Related(expr.span, "used here")])


# ---------------------------------------------------------------- mistakes of names and counts
# Written once: the elaborator raises them as it builds, and resdsl.resolve finds them in
# definitions nothing builds; a mistake both see is reported once, since the two are equal.


def unknown_kind(name: str, span: Span, known) -> SpecError:
    """RDS101: a call of a layer or block that does not exist; where it is another framework's
    name for one of resdsl's layers (`linear`, `batchnorm`), that layer is suggested."""
    message = f"unknown layer or block `{name}`"
    for op in ops.OPS.values():
        if op.user and name.lower() in op.aliases:
            hint = f"resdsl calls this layer `{op.name}`: did you mean `{op.name}`?"
            return SpecError(message, span, hint, code="RDS101")
    return unknown(message, span, name, known, "layers and blocks", code="RDS101")


ARG_WORDS = {
    "int": "an integer",
    "pair": "an integer or a size HxW",
    "float": "a number",
    "flag": "0 or 1",
}


def unknown_parameter(name: str, span: Span, scope, arg: ops.Arg | None = None) -> SpecError:
    """RDS102: a name that is no parameter of the definition it is used in; where it is the
    whole value of a layer's argument (``arg``: `pad=same`), what that argument takes."""
    hint = did_you_mean(name, scope)
    if hint is None and arg is not None and arg.type in ARG_WORDS:
        hint = f"`{arg.name}` takes {ARG_WORDS[arg.type]}"
        if arg.name == "pad" and name.lower() in ("same", "valid"):
            hint += "; left out it is the kernel's half (`same`), and `pad=0` is `valid`"
    if hint is None and scope:
        hint = "parameters here: " + ", ".join(scope)
    return SpecError(f"unknown parameter `{name}`", span, hint, code="RDS102")


def block_in_shortcut(shortcut: str, block: str, span: Span) -> SpecError:
    """RDS115: a shortcut's case that calls a block."""
    return SpecError(
        f"shortcut `{shortcut}` calls block `{block}`: a shortcut is made of layers",
        span,
        "write the block's layers in the shortcut, or make the block a branch",
        code="RDS115",
    )


def too_many_values(opdef: ops.OpDef, extra: ast.Expr) -> SpecError:
    """RDS120: more positional values than a layer takes, at the first one too many."""
    takes = ", ".join(a.name for a in opdef.args if a.positional) or "no positional values"
    return SpecError(
        f"too many values for `{opdef.name}` (it takes: {takes})", extra.span, code="RDS120"
    )


def no_such_argument(owner: str, kw: ast.Kwarg, names, block: bool) -> SpecError:
    """RDS121: a keyword that the block (its parameters) or layer (its arguments) lacks."""
    what = "parameter" if block else "argument"
    return unknown(
        f"`{owner}` has no {what} `{kw.name}`", kw.span, kw.name, names, f"{what}s", code="RDS121"
    )


def keyword_without_equals(owner: str, names, positional: int, args, scope) -> SpecError | None:
    """RDS120: a value given by name without its `=` (`conv 16 3x3 stride 2`), which reads as
    two more positional values; None where the call has no such pair. A name that ``scope``
    holds is a value (`conv out 1x1` in a shortcut) unless the call has too many values."""
    over = len(args) > positional
    for name, value in zip(args, args[1:], strict=False):
        if isinstance(name, ast.Name) and name.id in names and (over or name.id not in scope):
            span = Span(
                name.span.source,
                name.span.line,
                name.span.column,
                value.span.end_line,
                value.span.end_column,
            )
            written = _text(value)
            return SpecError(
                f"`{name.id} {written}` reads as two more values for `{owner}`",
                span,
                f"to set `{owner}`'s `{name.id}`, write `{name.id}={written}`",
                code="RDS120",
            )
    return None


def _text(expr: ast.Expr) -> str:
    span = expr.span
    line = span.source.line(span.line)
    return line[span.column - 1 : span.end_column - 1] if span.end_line == span.line else "VALUE"


def too_many_block_values(owner: str, params, args) -> SpecError:
    """RDS124: more values than a block or family has parameters, at the first one too many."""
    return SpecError(
        f"`{owner}` takes {len(params)} value(s), got {len(args)}",
        args[len(params)].span,
        code="RDS124",
    )


def show(value) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if isinstance(value, Symbol):
        return f"the name `{value.name}`"
    return repr(value)


def origin(expr: ast.Expr, env: dict) -> Span:
    """Where a value came from: a parameter passed on points back to its own argument."""
    if isinstance(expr, ast.Name) and expr.id in getattr(env, "spans", {}):
        return env.spans[expr.id]
    return expr.span


def coerce(sym: Expr | None, raw, value) -> Expr | None:
    """A symbolic argument where its value is a plain number; otherwise the value itself."""
    if isinstance(raw, Symbol) or isinstance(value, Symbol):
        return None
    if sym is not None and not isinstance(sym, Const) and type(raw) in (int, float):
        return sym
    return Const(value)
