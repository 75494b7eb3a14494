"""The block trace: each block instance elaborated symbolically, into a shared template.

While a block instance's nodes are made, its ops are recorded with their arguments as
expressions over the block's parameters (through the op table's symbolic rules). Instances with
equal traces share one :class:`resdsl.ir.BlockTemplate`, which is all a target needs to write
the block once as a class or function.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from . import ops
from . import syntax as ast
from .ir import (
    IN_CHANNELS,
    BlockTemplate,
    Const,
    Expr,
    Param,
    Shortcut,
    TemplateOp,
    binop,
    params_of,
    substitute,
)
from .values import coerce


@dataclass
class Trace:
    """The symbolic record of one block instance: its ops over its parameters, in order."""

    ops: list[TemplateOp] = field(default_factory=list)
    channels: Expr = Param(IN_CHANNELS)  # the channels of the tensor the next op reads
    branch_stride: Expr = Const(1)  # the product of strides before the add
    total_stride: Expr = Const(1)  # ... of every op (what an enclosing block's shortcut sees)

    def record(self, op: TemplateOp, out_channels: Expr, stride: Expr) -> None:
        self.ops.append(op)
        self.channels = out_channels
        if op.role == "side":
            return  # a side path's strides end in its join: the tensor it joins keeps its own
        if op.role == "branch":
            self.branch_stride = binop("*", self.branch_stride, stride)
        self.total_stride = binop("*", self.total_stride, stride)


class Tracing:
    """The elaborator's symbolic half (a mixin over its templates and block instances)."""

    def _symbolic_args(self, kind: str, given: dict, args: dict, symbols: dict) -> dict:
        """The op's arguments as expressions over the block's parameters.

        An argument stays symbolic where its value is a number; a tuple (``3x1``), a default or
        a constant expression is written as its value.
        """
        out: dict[str, Expr | None] = {}
        for name, value in args.items():
            expr, raw, _ = given.get(name, (None, None, None))
            sym = self._sym(expr, symbols) if expr is not None else None
            out[name] = coerce(sym, raw, value)
        rule = ops.OPS[kind].pad
        if rule is not None and given["pad"][0] is None and not isinstance(out["kernel"], Const):
            out["pad"] = rule(out["kernel"], out)  # a square kernel given by a parameter
        return out

    def _sym(self, expr: ast.Expr, symbols: dict) -> Expr | None:
        """``expr`` over the parameters in ``symbols``; None where it names a kind."""
        if isinstance(expr, ast.Num):
            return Const(expr.value)
        if isinstance(expr, ast.Dims):
            return Const(expr.values)
        if isinstance(expr, ast.Name):
            return symbols.get(expr.id)
        left, right = self._sym(expr.left, symbols), self._sym(expr.right, symbols)
        if left is None or right is None:
            return None
        return binop(expr.op, left, right)

    def _record_nested(self, definition, call, values, extra, template, parent) -> None:
        """Add a nested block instance to the enclosing block's trace, as one op."""
        given = dict(zip((p.name for p in definition.params), call.args, strict=False))
        given.update({kw.name: kw.value for kw in call.kwargs})
        bound: dict[str, Expr | None] = {}
        for p in definition.params:
            if p.name in extra:
                sym = Const(extra[p.name])
            elif p.name in given:
                sym = self._sym(given[p.name], parent.symbols)
            else:
                sym = self._sym(p.default, bound) if p.default is not None else None
            value = values[p.name]
            bound[p.name] = coerce(sym, value, value)
        channels = parent.trace.channels
        env = {**{k: v for k, v in bound.items() if v is not None}, IN_CHANNELS: channels}
        out = substitute(template.out_channels, env)
        inner, shortcut = self.blocks[-1].shortcut, ()
        if inner.kind == "path":  # its ops and arguments over the enclosing block's parameters
            path = self.paths_by_name[inner.path]
            reads = {
                IN_CHANNELS: channels,
                "out": substitute(template.join_channels, env),
                "stride": substitute(template.stride, env),
            }
            inner = replace(inner, args=tuple((p, reads[p]) for p in path.params))
            shortcut = tuple(_substituted(op, reads, call.span) for op in path.ops)
        op = TemplateOp(
            name=parent.within + self.blocks[-1].local,
            op="block",
            args=tuple((p, bound[p]) for p in template.params),
            in_channels=channels,
            role=parent.role,
            span=call.span,
            template=template.name,
            shortcut=shortcut,
            out_channels=out,
            plan=inner,
        )
        parent.trace.record(op, out, substitute(template.total_stride, env))

    def _path_template(self, definition: ast.ShortcutDef, case: ast.Case, trace: Trace):
        """The template of a shortcut path: an existing one where its ops are equal."""
        used: set[str] = set()
        for op in trace.ops:
            used |= _op_params(op)
        key = (definition.name, case.name, tuple(trace.ops))
        return _shared(
            self.paths,
            self.paths_by_name,
            key,
            definition.name,
            lambda name: BlockTemplate(
                name=name,
                kind=definition.name,
                params=tuple(p for p in ("out", "stride") if p in used),
                defaults=(),
                ops=tuple(trace.ops),
                residual=False,
                has_add=False,
                out_channels=trace.channels,
                join_channels=trace.channels,
                stride=trace.total_stride,
                total_stride=trace.total_stride,
                span=case.span,
            ),
        )

    def _template(
        self, definition: ast.BlockDef, trace: Trace, shortcut: Shortcut
    ) -> BlockTemplate:
        """The template of a traced block instance: an existing one where the trace is equal."""
        used: set[str] = params_of(trace.channels)
        for op in trace.ops:
            used |= _op_params(op)
        params = tuple(p.name for p in definition.params if p.name in used)
        added = tuple(sorted(used - {p.name for p in definition.params} - {IN_CHANNELS}))
        params += added  # stochastic depth's rate
        defaults = tuple(
            (p.name, p.default.value)
            for p in definition.params
            if p.name in params and isinstance(p.default, ast.Num)
        ) + tuple((name, 0.0) for name in added)
        has_add = any(isinstance(s, ast.Add) for s in definition.body)
        residual = shortcut.residual
        from_tap = shortcut.from_tap
        key = (definition.name, has_add, residual, params, tuple(trace.ops), trace.channels)
        key += (from_tap,)
        return _shared(
            self.templates,
            self.templates_by_name,
            key,
            definition.name,
            lambda name: BlockTemplate(
                name=name,
                kind=definition.name,
                params=params,
                defaults=defaults,
                ops=tuple(trace.ops),
                residual=residual,
                has_add=has_add,
                out_channels=trace.channels,
                join_channels=next(
                    (op.in_channels for op in trace.ops if op.role == "add"), trace.channels
                ),
                stride=trace.branch_stride,
                total_stride=trace.total_stride,
                span=definition.span,
                from_tap=from_tap,
                shortcut_name=shortcut_name(definition),
            ),
        )


def shortcut_name(definition: ast.BlockDef) -> str:
    """The container a block's shortcut is in: its `add`'s label, or downsample."""
    add = next((s for s in definition.body if isinstance(s, ast.Add)), None)
    return add.label if add is not None and add.label else "downsample"


def _shared(table: dict, by_name: dict, key, kind: str, make) -> BlockTemplate:
    """The template kept under ``key``, or a new one from ``make(name)``, its name unique among
    the templates of ``kind`` (basic, basic_2, ...)."""
    template = table.get(key)
    if template is None:
        taken = sum(1 for t in table.values() if t.kind == kind)
        template = make(kind if not taken else f"{kind}_{taken + 1}")
        table[key] = by_name[template.name] = template
    return template


def _substituted(op: TemplateOp, env: dict[str, Expr], span) -> TemplateOp:
    """A shortcut path's op with its expressions over ``env``, at a nested block's call."""
    args = tuple((k, None if v is None else substitute(v, env)) for k, v in op.args)
    out = None if op.out_channels is None else substitute(op.out_channels, env)
    return replace(
        op, args=args, in_channels=substitute(op.in_channels, env), out_channels=out, span=span
    )


def _op_params(op: TemplateOp) -> set[str]:
    """The block parameters a template op reads (not the input channels)."""
    used = params_of(op.in_channels)
    for _, expr in op.args:
        if expr is not None:
            used |= params_of(expr)
    if op.out_channels is not None:
        used |= params_of(op.out_channels)
    for sub in op.shortcut:
        used |= _op_params(sub)
    return used - {IN_CHANNELS}
