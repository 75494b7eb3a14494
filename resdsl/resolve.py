"""Names resolved in every definition a file makes, whether or not a network uses it.

The elaborator checks a definition as it builds it, so a block that nothing calls, or a family
that nothing instantiates (a library such as specs/cifar.rds), would go unchecked. This pass walks
each block, shortcut and network family of a module without building anything, and reports what
no instance of it could get past: a layer or block that does not exist, an argument that the
layer or block does not take, too many values, a name that is no parameter. Its messages and
codes are the elaborator's own (:mod:`resdsl.values` writes each once), so a definition that
a network also uses is reported once.
"""

from __future__ import annotations

from . import ops
from . import syntax as ast
from .errors import SpecError
from .linker import Program
from .values import (
    block_in_shortcut,
    keyword_without_equals,
    no_such_argument,
    too_many_block_values,
    too_many_values,
    unknown_kind,
    unknown_parameter,
)

SHORTCUT_NAMES = ("in", "out", "stride")  # what a shortcut case's ops read


def resolve(program: Program, module: ast.Module) -> list[SpecError]:
    """The errors in the definitions of ``module`` that no use of them could avoid."""
    walker = _Walker(program)
    for item in module.items:
        if isinstance(item, ast.BlockDef | ast.NetworkDef):
            scope = walker.params(item.params)
            if isinstance(item, ast.BlockDef):
                scope["in"] = None  # its input's channels
            walker.body(item.statements() if isinstance(item, ast.NetworkDef) else item.body, scope)
        elif isinstance(item, ast.ShortcutDef):
            for case in item.cases:
                walker.body(case.body or (), dict.fromkeys(SHORTCUT_NAMES), shortcut=item.name)
    return walker.errors


class _Walker:
    def __init__(self, program: Program):
        self.program, self.errors = program, []
        self.kinds = [*program.blocks, *(k for k, o in ops.OPS.items() if o.user)]

    def params(self, params) -> dict:
        """The names a body may read, in order; defaults may read the parameters before them."""
        scope = {}
        for param in params:
            if param.default is not None:
                self.expr(param.default, scope)
            scope[param.name] = None
        return scope

    def body(self, body, scope: dict, shortcut: str | None = None) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Call):
                self.call(stmt, scope, shortcut)
            elif isinstance(stmt, ast.Join | ast.Group):
                self.body(stmt.body, scope)
            elif isinstance(stmt, ast.Setting) and isinstance(stmt.value, ast.Name | ast.BinOp):
                self.expr(stmt.value, scope)

    def call(self, stmt: ast.Call, scope: dict, shortcut: str | None = None) -> None:
        block = self.program.blocks.get(stmt.name)
        opdef = ops.OPS.get(stmt.name) if block is None else None
        opdef = opdef if opdef is not None and opdef.user else None
        if block is not None:
            names = [p.name for p in block.params]
            positional = len(names)
        elif opdef is not None:
            names = [a.name for a in opdef.args]
            positional = len([a for a in opdef.args if a.positional])
        else:
            names, positional = [], 0
        unnamed = keyword_without_equals(stmt.name, names, positional, stmt.args, scope)
        if unnamed is not None:
            self.errors.append(unnamed)
            return
        by_name = {a.name: a for a in opdef.args} if opdef is not None else {}
        for expr in (*stmt.args, stmt.repeat):
            if expr is not None:
                self.expr(expr, scope)
        for kw in stmt.kwargs:  # a layer's argument that is one name: what it takes, if unknown
            self.expr(kw.value, scope, by_name.get(kw.name))
        if stmt.name in scope:  # a parameter that holds a layer or block: its use decides
            return
        if shortcut and block is not None:
            self.errors.append(block_in_shortcut(shortcut, stmt.name, stmt.name_span))
        elif block is not None or opdef is not None:
            if len(stmt.args) > positional:
                extra = (
                    too_many_block_values(stmt.name, block.params, stmt.args)
                    if block is not None
                    else too_many_values(opdef, stmt.args[positional])
                )
                self.errors.append(extra)
            for kw in stmt.kwargs:
                if kw.name not in names:
                    self.errors.append(
                        no_such_argument(stmt.name, kw, names, block=block is not None)
                    )
        else:
            self.errors.append(unknown_kind(stmt.name, stmt.name_span, self.kinds))

    def expr(self, expr, scope: dict, arg=None) -> None:
        if isinstance(expr, ast.BinOp):
            self.expr(expr.left, scope)
            self.expr(expr.right, scope)
        elif isinstance(expr, ast.Name) and expr.id not in scope and expr.id not in self.kinds:
            self.errors.append(unknown_parameter(expr.id, expr.span, scope, arg))
