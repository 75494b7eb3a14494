"""Groups: containers of layers and blocks, numbered as PyTorch's nn.Sequential numbers them.

A group is a statement of a section, a stage, a block or another group. Its members are named
inside it, from 0; a member may be labelled instead. A group without a name is a member of the
numbered container it is in (a stage or a group), under its number: torchvision's
Conv2dNormActivation inside MobileNetV2's blocks is ``conv.0``, its conv and BN ``conv.0.0`` and
``conv.0.1``. Inside a block, a group's ops stay the block's: its template names them by their
path within the block (``conv.0.0``), and a target writes the group as one container called once.
"""

from __future__ import annotations

from . import syntax as ast
from .errors import SpecError
from .ir import Entry
from .names import ATTRIBUTE_RESERVED, MEMBER, Namespace, private


class Containers:
    """The elaborator's groups (a mixin over its scopes, statements and entries)."""

    def _group(self, group: ast.Group, env: dict, scope, policy: str) -> None:
        """One group in ``scope``: its members made in a numbered scope of their own."""
        if group.name is None:
            if not scope.names.numbered:
                self.errors.append(
                    SpecError(
                        "a group without a name is a member of a numbered container, and this "
                        "is not one",
                        group.span,
                        "name it, `group conv { ... }`, or put it in a stage or a group",
                        code="RDS117",
                    )
                )
                return
            local = scope.member()
        else:
            problem, hint, code = private(group.name, "a group"), None, "RDS117"
            if problem is None and scope.names.taken(group.name):
                problem = f"the name `{group.name}` is taken here"
                hint, code = "a group needs a name of its own", "RDS116"
            if problem is not None:
                self.errors.append(SpecError(problem, group.name_span, hint, code=code))
                return
            scope.names.reserve(group.name)
            local = group.name
        members: list[Entry] = []
        sub = scope.child(
            local,
            local,
            names=Namespace(ATTRIBUTE_RESERVED, numbered=True),
            block=scope.block,
            role=scope.role,
            trace=scope.trace,
            drop=scope.drop,
            kind=scope.kind,
            symbols=scope.symbols,
            entries=None if scope.block else members,
            within=scope.within + local + "." if scope.block else "",
        )
        for stmt in group.body:
            if isinstance(stmt, ast.Group):
                self._group(stmt, env, sub, policy)
            else:
                self._statement(stmt, env, sub, policy)
        if scope.block is None:
            entry = Entry(scope.prefix + local, "group", members=tuple(self._runs(members)))
            scope.entries.append(entry)

    def _numbering(self, stmt: ast.Setting) -> tuple[str, int]:
        """A stage's `names "PREFIX" from N`: its blocks are PREFIX + N, PREFIX + (N + 1), ..."""
        prefix, start = stmt.value
        if prefix and not MEMBER.fullmatch(prefix) or prefix[:1].isdigit():
            self.errors.append(
                SpecError(
                    f"`names {prefix!r}`: a block's name starts with a letter, then letters, "
                    "digits, `_` and `-`",
                    stmt.value_span or stmt.span,
                    'e.g. `names "block1-"` (block1-0, block1-1, ...) or `names "b" from 1`',
                    code="RDS117",
                )
            )
            return ("", 0)
        return prefix, start

    def _runs(self, entries: list[Entry]) -> list[Entry]:
        """Merge neighbouring blocks that print alike (same template, arguments and input)."""
        out: list[Entry] = []
        key_of_last = None
        for entry in entries:
            key = self._run_key(entry)
            if key is not None and key == key_of_last:
                last = out[-1]
                out[-1] = Entry(last.name, last.kind, last.count + 1)
                continue
            out.append(entry)
            key_of_last = key
        return out

    def _run_key(self, entry: Entry):
        if entry.kind != "block":
            return None
        inst = self.by_name[entry.name]
        if not inst.local.isdigit():
            return None  # a name of its own (`block1-0`): each block is written under it
        if inst.shortcut.kind == "path":
            return None  # its own shortcut ops make it unlike its neighbours
        template = self.templates_by_name[inst.template]
        args = dict(inst.args)
        channels = self.graph.nodes[inst.input]["node"].shape
        return (inst.template, tuple(args[p] for p in template.params), channels)
