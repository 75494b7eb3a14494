"""Shortcuts: a block's shortcut made from its definition, in one place.

A shortcut is a definition, as a block is (``resdsl/prelude.rds`` writes the paper's A, B, C and
``none`` in the syntax users have). Its cases say what happens where the block keeps its shape
(stride 1 and equal channels) and where it changes it; a case left out is the identity and
``off`` drops the addition. A case's ops read ``in``, ``out`` and ``stride``: the block's input
channels, its channels where the shortcut joins, and its residual branch's stride.

The ops are made into nodes with the block's concrete values, and recorded symbolically over
``in_channels``, ``out`` and ``stride`` into a :class:`resdsl.ir.BlockTemplate` of their own (the
network's ``shortcuts``), which the TensorFlow target writes as a function. An op that would do
nothing (a subsample at stride 1, a zero-pad to the channels it has, a 1x1 average pool) is left
out, though its position still counts: ResNet-D's ``downsample.1`` is its conv whether or not its
``downsample.0`` pool is there, as timm names them.
"""

from __future__ import annotations

from . import ops
from . import syntax as ast
from .errors import Related, SpecError, unknown
from .ir import IN_CHANNELS, Param, Shortcut
from .names import ATTRIBUTE_RESERVED, Namespace, private
from .trace import Trace
from .values import Env, block_in_shortcut


def case_of(definition: ast.ShortcutDef, stride: int, in_channels: int, out_channels: int):
    """The case of ``definition`` for a branch of ``stride`` from ``in_channels`` to
    ``out_channels``; None where the definition leaves that case out (the identity).

    Where the shape changes, ``channels`` (the channels change) or ``stride`` (only the stride
    does) is taken before ``change``, and ``always`` last.
    """
    if stride == 1 and in_channels == out_channels:
        order = ("keep", "always")
    else:
        order = ("channels" if in_channels != out_channels else "stride", "change", "always")
    cases = {c.name: c for c in definition.cases}
    return next((cases[name] for name in order if name in cases), None)


class Joins:
    """The elaborator's shortcuts (a mixin): a definition made into nodes where a block adds."""

    def _policy(self, name: str | None, span) -> str | None:
        """``name`` where it is a shortcut definition; None after recording why not."""
        if name is None or name in self.program.shortcuts:
            return name
        self.errors.append(
            unknown(
                f"unknown shortcut `{name}`",
                span,
                name,
                list(self.program.shortcuts),
                "shortcuts",
                code="RDS113",
            )
        )
        return None

    def _no_tap(self, policy: str, case, scope, stmt) -> SpecError:
        """A `from tap` case in a block without a `tap` before its `add`."""
        related = [Related(case.span, "the case")] if not case.span.source.builtin else []
        body = self.program.blocks[scope.kind].body
        late = next((s for s in body if isinstance(s, ast.Tap)), None)
        if late is not None:  # there is one, but it comes too late
            return SpecError(
                f"block `{scope.kind}`'s `tap` comes after its `add`, but shortcut `{policy}`'s "
                f"`{case.name}` case starts from it",
                late.span,
                "move `tap` before `add`, where the shortcut should start",
                related=related,
                code="RDS118",
            )
        return SpecError(
            f"shortcut `{policy}`'s `{case.name}` case starts `from tap`, but block "
            f"`{scope.kind}` has no `tap`",
            self._site(stmt.span),
            "add `tap` to the block where the shortcut should start, e.g. after its first bn; relu",
            related=related,
            code="RDS118",
        )

    def _shortcut(
        self, block_input: str, first_node: int, policy: str | None, scope, stmt: ast.Add
    ) -> Shortcut:
        """Join the shortcut to the residual branch that ends at ``self.current``."""
        branch = self.current
        nodes = self.graph.nodes
        in_shape = nodes[block_input]["node"].shape
        out_shape = nodes[branch]["node"].shape
        # the branch's total stride, leaving out side paths and the shortcuts of nested blocks
        stride = 1
        for name in self.order[first_node:]:
            node = nodes[name]["node"]
            if node.role != "shortcut" and name not in self.aside:
                stride *= ops.OPS[node.op].stride(node.arg)
        shortcut, source = Shortcut("identity", policy), block_input
        tap = scope.tap
        container = stmt.label or "downsample"
        if stmt.label is not None:  # the shortcut's container takes a name of the block's
            problem, code = private(stmt.label, "a shortcut's container"), "RDS117"
            if problem is None and (scope.names.taken(stmt.label) or stmt.label in scope.symbols):
                problem, code = f"the name `{stmt.label}` is taken here", "RDS116"
            if problem is not None:
                self.errors.append(SpecError(problem, stmt.label_span, code=code))
            else:
                scope.names.reserve(stmt.label)
        if in_shape is not None and out_shape is not None and policy is not None:
            definition = self.program.shortcuts[policy]
            case = case_of(definition, stride, in_shape[0], out_shape[0])
            if case is not None and case.body is None:
                scope.role = "post"
                return Shortcut("none", policy, case.name)
            if case is not None and case.from_tap and tap is None:
                self.errors.append(self._no_tap(policy, case, scope, stmt))
            elif case is not None:
                start = tap if case.from_tap else block_input
                channels = (nodes[start]["node"].shape or in_shape)[0]
                values = {"in": channels, "out": out_shape[0], "stride": stride}
                self.current = start
                shortcut = self._path(definition, case, values, scope, container)
                source = self.current
        self.current = branch
        if scope.drop is not None:  # stochastic depth on the branch, where the network sets it
            name, rate = scope.drop
            self._emit("droppath", {"p": rate}, stmt.span, scope, symbolic={"p": Param(name)})
        scope.role = "add"
        self._emit("add", {}, stmt.span, scope, inputs=(self.current, source), symbolic={})
        return shortcut

    def _path(
        self, definition: ast.ShortcutDef, case: ast.Case, values: dict, scope, container: str
    ) -> Shortcut:
        """Make a case's ops from ``self.current``, and their template over in, out and stride."""
        sub = scope.child(
            container,
            "shortcut",
            names=Namespace(ATTRIBUTE_RESERVED, numbered=True),
            block=scope.block,
            role="shortcut",
        )
        sub.trace = Trace()
        sub.symbols = {"in": Param(IN_CHANNELS), "out": Param("out"), "stride": Param("stride")}
        env = Env(values)
        env.spans = {}
        self.sites.append(case.span)
        for call in case.body:
            if call.name in self.program.blocks:
                self.errors.append(block_in_shortcut(definition.name, call.name, call.name_span))
                continue
            if call.label is not None and not self._free(call, sub):
                continue
            resolved = self._resolve(call, env)
            if resolved is None:
                continue
            kind, count = resolved
            if ops.OPS[kind].flattens:
                self.errors.append(
                    SpecError(
                        f"shortcut `{definition.name}` calls `{kind}`, which flattens: a shortcut "
                        "keeps the map it joins",
                        call.name_span,
                        "project with a 1x1 conv instead (`conv out 1x1 stride=stride`)",
                        code="RDS115",
                    )
                )
                continue
            for _ in range(count):
                self._layer(kind, call, env, sub, drop_identity=True)
        self.sites.pop()
        template = self._path_template(definition, case, sub.trace)
        args = tuple((p, values[p]) for p in template.params)
        return Shortcut("path", definition.name, case.name, template.name, args, case.from_tap)
