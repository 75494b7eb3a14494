"""Warnings: what is legal but is almost never what the writer meant.

Each has a stable code (``RDS5xx``) and an explain page, as errors do. ``check`` prints them and
exits 0 unless ``--deny-warnings`` makes them errors; the language server shows them as
warnings. They read the syntax tree and the linked program, and build nothing:

- RDS501: a definition nothing uses, in a file that defines networks (a library's definitions
  are for its importers, so a file of definitions only is never warned about);
- RDS502: ``stride=`` on a call repeated with ``x n``, which strides every repeat;
- RDS503: a stage's ``stride 1``, which changes nothing;
- RDS504: a parameter named like a layer or block, which it hides in its definition's body;
- RDS505: an input written channels last (`input 32x32x3`), where resdsl reads CxHxW.
"""

from __future__ import annotations

from . import ops
from . import syntax as ast
from .errors import SpecWarning
from .linker import Program, concrete


def lints(program: Program, module: ast.Module, shortcut: str | None = None) -> list[SpecWarning]:
    """The warnings for the definitions of ``module``, in source order."""
    out = _unused(program, module, shortcut)
    for item in module.items:
        if isinstance(item, ast.BlockDef | ast.NetworkDef):
            out += _hidden(program, item)
            out += _strides(item.body)
        if isinstance(item, ast.NetworkDef):
            out += _channels_last(item)
        elif isinstance(item, ast.ShortcutDef):
            for case in item.cases:
                out += _strides(case.body or ())
    return sorted(out, key=lambda w: (w.span.line, w.span.column))


def _unused(program: Program, module: ast.Module, shortcut: str | None) -> list[SpecWarning]:
    """RDS501: the blocks, shortcuts and families of ``module`` that no network of it reaches."""
    roots = concrete(module)
    if not roots:
        return []
    used, todo = set(roots), list(roots)
    if shortcut:
        used.add(shortcut)
    while todo:
        name = todo.pop()
        item = program.networks.get(name) or program.blocks.get(name)
        for reached in _names(item) if item is not None else ():
            if reached not in used:
                used.add(reached)
                todo.append(reached)
    shortcuts = {s for name in used for s in _shortcuts(program, name)}
    out = []
    for item in module.items:
        kind = {ast.BlockDef: "block", ast.ShortcutDef: "shortcut", ast.NetworkDef: "network"}
        what = kind.get(type(item))
        if what is None or item.name in used or item.name in shortcuts:
            continue
        out.append(
            SpecWarning(
                f"{what} `{item.name}` is never used",
                item.name_span or item.span,
                "remove it, or use it in a network; a file of definitions only (a library) is "
                "not warned about",
                code="RDS501",
            )
        )
    return out


def _names(item) -> set[str]:
    """The definitions an item names: called blocks, families, kinds passed as arguments."""
    if isinstance(item, ast.NetworkInst):
        found = {item.family}
        exprs = [*item.args, *(kw.value for kw in item.kwargs)]
    else:
        found, exprs = set(), []
        for stmt in _calls(item.body):
            found.add(stmt.name)
            exprs += [*stmt.args, *(kw.value for kw in stmt.kwargs)]
        exprs += [p.default for p in item.params if p.default is not None]
    while exprs:
        expr = exprs.pop()
        if isinstance(expr, ast.Name):
            found.add(expr.id)
        elif isinstance(expr, ast.BinOp):
            exprs += [expr.left, expr.right]
    return found


def _calls(body):
    for stmt in body:
        if isinstance(stmt, ast.Section | ast.Join | ast.Group):
            yield from _calls(stmt.body)
        elif isinstance(stmt, ast.Call):
            yield stmt


def _shortcuts(program: Program, name: str) -> set[str]:
    """The shortcut definitions a network, a family or an instance names."""
    item = program.networks.get(name)
    if isinstance(item, ast.NetworkInst):
        return {item.shortcut} if item.shortcut else set()
    if isinstance(item, ast.NetworkDef):
        return {
            s.value for s in item.statements() if isinstance(s, ast.Setting) and s.key == "shortcut"
        }
    return set()


def _hidden(program: Program, item) -> list[SpecWarning]:
    """RDS504: parameters that hide a layer or block of the same name."""
    out = []
    for param in item.params:
        if param.name in program.blocks:
            what = "block"
        elif param.name in ops.OPS and ops.OPS[param.name].user:
            what = "layer"
        else:
            continue
        out.append(
            SpecWarning(
                f"parameter `{param.name}` of `{item.name}` hides the {what} `{param.name}`",
                param.name_span or param.span,
                f"inside `{item.name}`, `{param.name}` means the parameter; rename it",
                code="RDS504",
            )
        )
    return out


def _strides(body) -> list[SpecWarning]:
    """RDS502 and RDS503: strides that do more, or less, than they seem to."""
    out = []
    for part in body:
        stmts = part.body if isinstance(part, ast.Section | ast.Join | ast.Group) else [part]
        for stmt in stmts:
            if isinstance(stmt, ast.Setting) and stmt.key == "stride" and _one(stmt.value):
                out.append(
                    SpecWarning(
                        "a stage's `stride 1` changes nothing",
                        stmt.span,
                        "remove it: a stage's blocks keep the maps' size unless told to stride",
                        code="RDS503",
                    )
                )
            if not isinstance(stmt, ast.Call) or stmt.repeat is None or _one(stmt.repeat):
                continue
            for kw in stmt.kwargs:
                if kw.name == "stride" and not _one(kw.value):
                    out.append(
                        SpecWarning(
                            f"`stride=` on `{stmt.name} ... x N` strides each of the repeats",
                            kw.span,
                            "to stride only the first, give the stage `stride S` instead, or "
                            "call it once with the stride and once more `x N-1` without",
                            code="RDS502",
                        )
                    )
    return out


def _channels_last(item: ast.NetworkDef) -> list[SpecWarning]:
    """RDS505: `input 32x32x3`, read as 32 channels of 32x3 maps, where 3x32x32 was meant."""
    out = []
    for stmt in item.body:
        if not (isinstance(stmt, ast.Setting) and stmt.key == "input"):
            continue
        dims = stmt.value
        if isinstance(dims, tuple) and len(dims) == 3 and dims[2] <= 4 < min(dims[0], dims[1]):
            c, h, w = dims
            out.append(
                SpecWarning(
                    f"`input {c}x{h}x{w}` reads as {c} channels of {h}x{w} maps",
                    stmt.value_span or stmt.span,
                    f"resdsl's input is channels first, CxHxW: did you mean `input {w}x{c}x{h}`?",
                    code="RDS505",
                )
            )
    return out


def _one(expr) -> bool:
    return isinstance(expr, ast.Num) and expr.value == 1
