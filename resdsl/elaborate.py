"""Linked program to IR: expand families, blocks, repetition and shortcuts into a Network.

``build()`` reports errors of names, types and structure (collected, then raised together).
Shapes are inferred once, as nodes are made, because the shortcut policy depends on them; where an
op cannot work its shape is ``None``, its ``problem`` says why, and :func:`resdsl.check.check`
reports it with its span.

The elaborator is split by job: this module walks networks, stages, statements and blocks and
makes the nodes; :mod:`resdsl.values` binds and types values; :mod:`resdsl.trace` records each
block instance symbolically into a shared :class:`resdsl.ir.BlockTemplate`; and
:mod:`resdsl.shortcuts` plans each shortcut and makes its nodes. Module paths follow
:mod:`resdsl.names`. What an op does comes from its row in :mod:`resdsl.ops`: nothing here
branches on an op's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import networkx as nx

from . import ops, recipe
from . import syntax as ast
from .check import train as train_errors
from .containers import Containers
from .errors import ResdslError, Span, SpecError, did_you_mean, raise_all, unique
from .ir import (
    IN_CHANNELS,
    BlockInstance,
    BlockTemplate,
    Const,
    Entry,
    Expr,
    Network,
    Node,
    Param,
    Section,
    Shortcut,
    TemplateOp,
    add_node,
    add_nodes,
    as_expr,
    without_gc,
)
from .linker import Program, choose
from .names import ATTRIBUTE_RESERVED, Namespace, counted, module_suffix, private, stage_paths
from .replay import Copies
from .shortcuts import Joins
from .trace import Trace, Tracing
from .values import Env, Symbol, Values, show, unknown_kind

MAX_OPS = 100_000  # ResNet-1202 has 4,210, a 12,002-layer net 42,010; 100,000 take ~4 s, 200 MB
MAX_NESTING = 64  # blocks inside blocks


# ---------------------------------------------------------------- build


def build(program: Program, network: str | None = None, shortcut: str | None = None) -> Network:
    """Elaborate one network of a linked ``program`` (:func:`resdsl.link`).

    ``network`` picks a network by name where the file defines several; ``shortcut`` overrides
    every shortcut policy in it with a shortcut definition's name (A, B, C, none or a user's).
    """
    if not isinstance(program, Program):
        raise TypeError(
            f"build() takes a linked Program, not {type(program).__name__}: "
            "resdsl.build(resdsl.link(resdsl.parse_file(path)))"
        )
    if shortcut is not None and shortcut not in program.shortcuts:
        raise SpecError(
            f"unknown shortcut {shortcut!r}",
            hint=did_you_mean(shortcut, program.shortcuts)
            or "shortcuts here: " + ", ".join(program.shortcuts),
            code="RDS113",
        )
    inst = choose(program, network)
    with without_gc():
        first = _Elaborator(program, shortcut)
        net = first.network(inst)
        if not first.drop_rate:
            return net
        # stochastic depth rises linearly over the stages' blocks: count them, then build again
        return _Elaborator(program, shortcut, (first.drop_rate, first.stage_blocks)).network(inst)


# ---------------------------------------------------------------- scopes and traces


@dataclass
class _Scope:
    """Where nodes are being made: their name prefix, human path, block and names in use."""

    prefix: str  # "layer2.0."
    path: tuple[str, ...]  # ("stage 2", "block 1")
    names: Namespace
    section: str
    stage: int | None = None
    block: str | None = None
    role: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    trace: Trace | None = None  # the innermost block's trace
    drop: tuple[str, float] | None = None  # stochastic depth: its parameter's name and rate
    kind: str | None = None  # the block definition being expanded
    tap: str | None = None  # the node at its `tap`, where a shortcut may start
    symbols: dict[str, Expr] = field(default_factory=dict)  # its parameters, symbolically
    entries: list[Entry] | None = None  # a section's entries, where this scope is one
    within: str = ""  # a group's path inside its block (`conv.0.`), which its template ops take
    numbering: tuple[str, int] = ("", 0)  # a numbered container's members: prefix, first number

    def child(self, local: str, path: str, **kw) -> _Scope:
        return _Scope(
            self.prefix + local + ".",
            (*self.path, path),
            kw.pop("names", None) or Namespace(ATTRIBUTE_RESERVED),
            self.section,
            self.stage,
            **kw,
        )

    def member(self) -> str:
        """The next member's name in a numbered container: 0, 1, ... or as its `names` says."""
        prefix, start = self.numbering
        return self.names.create_name(f"{prefix}{start + len(self.names.used)}")

    def name(self, kind: str, label: str | None = None) -> tuple[str, str, str]:
        """The next node name, human path and local name for a node of ``kind``: ``label``
        where the spec gives one (the caller has checked that it is free)."""
        if label is not None:
            self.names.reserve(label)
            numbered = kind in ops.OPS and ops.OPS[kind].numbered
            count = counted(kind, label, numbered)  # `conv1:` is the first conv: next is conv2
            self.counts[kind] = max(self.counts.get(kind, 0), count)
            return self.prefix + label, " › ".join((*self.path, label)), label
        if self.names.numbered:
            local = self.member()
            return self.prefix + local, " › ".join((*self.path, kind)), local
        n = self.counts[kind] = self.counts.get(kind, 0) + 1
        numbered = kind in ops.OPS and ops.OPS[kind].numbered
        suffix = module_suffix(n, numbered)
        local = self.names.create_name(f"{kind}{suffix}")
        return self.prefix + local, " › ".join((*self.path, f"{kind} {suffix}".strip())), local


class _Elaborator(Values, Tracing, Joins, Containers):
    def __init__(self, program: Program, shortcut: str | None, depth=None):
        self.program = program
        self.override = shortcut
        self.depth = depth  # (drop_path rate, how many blocks the stages hold), where it is set
        self.drop_rate = 0.0  # the network's drop_path setting
        self.stage_blocks = 0  # the stages' block instances made so far
        self.graph = nx.DiGraph()
        self.errors: list[ResdslError] = []
        self.blocks: list[BlockInstance] = []
        self.templates: dict[tuple, BlockTemplate] = {}
        self.sites: list[Span] = []  # call sites, outermost first
        self.stack: list[str] = []  # block definitions being expanded, for recursion
        self.by_name: dict[str, BlockInstance] = {}
        self.templates_by_name: dict[str, BlockTemplate] = {}
        self.paths: dict[tuple, BlockTemplate] = {}  # shortcut paths, as templates are kept
        self.paths_by_name: dict[str, BlockTemplate] = {}
        self.current: str = "input"
        self.order: list[str] = []  # node names in the order they were made
        self.aside: set[str] = set()  # the nodes of side paths (`mul { ... }`)
        self.count = 0  # nodes made
        self.copies = Copies()  # block instances that equal ones are copied from
        self.classes = 0

    # ------------------------------------------------------------ network
    def network(self, item: ast.NetworkDef | ast.NetworkInst) -> Network:
        family, env, policy = item, {}, None
        if isinstance(item, ast.NetworkInst):
            family = self.program.networks.get(item.family)
            if not isinstance(family, ast.NetworkDef) or not family.params:
                what = "is not a network family" if family else "is not defined"
                raise SpecError(
                    f"`{item.family}` {what}",
                    item.family_span,
                    did_you_mean(
                        item.family,
                        [
                            n
                            for n, d in self.program.networks.items()
                            if isinstance(d, ast.NetworkDef) and d.params
                        ],
                    ),
                    code="RDS112",
                )
            env = self._bind(
                family.name, family.params, item.args, item.kwargs, {}, item.family_span
            )
            policy = self._policy(item.shortcut, item.shortcut_span or item.span)
            self.sites.append(item.span)
        elif item.params:
            env = self._bind(item.name, item.params, (), (), {}, item.span)
        raise_all(self.errors)

        settings, sections = {}, []
        for stmt in family.body:
            if isinstance(stmt, ast.Setting):
                if stmt.key in settings:
                    self.errors.append(
                        SpecError(f"`{stmt.key}` is given twice", stmt.span, code="RDS122")
                    )
                settings[stmt.key] = stmt
            else:
                sections.append(stmt)
        for key in ("input", "classes"):
            if key not in settings:
                example = "input 3x32x32" if key == "input" else "classes 10"
                self.errors.append(
                    SpecError(
                        f"network `{family.name}` has no `{key}`",
                        family.span,
                        f"add a line such as `{example}`",
                        code="RDS128",
                    )
                )
        raise_all(self.errors)

        shape = settings["input"].value
        if len(shape) != 3 or min(shape) < 1:
            raise SpecError(
                "input must be CxHxW with every dimension at least 1, e.g. 3x32x32",
                settings["input"].value_span or settings["input"].span,
                code="RDS144",
            )
        self.classes = self._int(settings["classes"].value, env, "classes", minimum=1)
        # the train section before the build: a recipe's mistake never waits for a large network
        try:  # the network's own train section, over its family's
            train = recipe.inherit(self.program.trains, item, family)
        except ResdslError as exc:
            train = None
            self.errors.extend(getattr(exc, "errors", [exc]))
        outline = SimpleNamespace(train=train, name=item.name, classes=self.classes)
        self.errors += train_errors(outline, input_shape=shape)
        raise_all(self.errors)
        if "drop_path" in settings:
            self.drop_rate = self._rate(settings["drop_path"], env)
        net_policy = policy or (
            self._policy(
                settings["shortcut"].value,
                settings["shortcut"].value_span or settings["shortcut"].span,
            )
            if "shortcut" in settings
            else "B"
        )
        add_node(
            self.graph,
            Node(
                "input",
                "input",
                (("shape", shape),),
                (),
                shape,
                settings["input"].span,
                "input",
                section="input",
                local="input",
            ),
        )
        self.order.append("input")
        self.count = 1

        # stem and head share the top-level names; the stages' containers are layer1, layer2, ...
        # or the module paths their sections give
        top = Namespace(ATTRIBUTE_RESERVED)
        containers, problems = stage_paths([s for s in sections if s.kind == "stage"])
        self.errors += problems
        raise_all(self.errors)  # the nodes' names are made from them
        for name in [*containers, "input"]:
            top.reserve(name.partition(".")[0])
        top_counts: dict[str, int] = {}
        out_sections: list[Section] = []
        for section in sections:
            entries: list[Entry] = []
            if section.kind == "stage":
                number = len([s for s in out_sections if s.kind == "stage"]) + 1
                self._stage(section, number, containers[number - 1], env, net_policy, entries)
                out_sections.append(
                    Section(
                        "stage",
                        number,
                        containers[number - 1],
                        tuple(self._runs(entries)),
                        self._site(section.span),
                    )
                )
                continue
            scope = _Scope(
                "", (section.kind,), top, section.kind, counts=top_counts, entries=entries
            )
            for stmt in section.body:
                if isinstance(stmt, ast.Group):
                    self._group(stmt, env, scope, net_policy)
                else:
                    self._statement(stmt, env, scope, net_policy)
            out_sections.append(
                Section(section.kind, None, None, tuple(entries), self._site(section.span))
            )
        raise_all(unique(self.errors))
        return Network(
            name=item.name,
            graph=self.graph,
            input_shape=shape,
            classes=self.classes,
            policy=self.override or net_policy or "B",
            blocks=tuple(self.blocks),
            train=train,
            span=item.span,
            sections=tuple(out_sections),
            templates=dict(self.templates_by_name),
            shortcuts=dict(self.paths_by_name),
            aside=frozenset(self.aside),
        )

    def _rate(self, setting: ast.Setting, env: dict) -> float:
        value = self._eval(setting.value, env)
        if not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise SpecError(
                f"drop_path must be a rate in [0, 1), got {show(value)}",
                setting.span,
                "the stages' last block drops its branch with this probability; e.g. "
                "`drop_path 0.05`",
                code="RDS207",
            )
        return float(value)

    def _stage(
        self,
        section: ast.Section,
        number: int,
        container: str,
        env: dict,
        policy: str,
        entries: list[Entry],
    ) -> None:
        stride, calls, numbering = None, [], ("", 0)
        for stmt in section.body:
            if isinstance(stmt, ast.Setting) and stmt.key == "stride":
                try:
                    stride = (self._int(stmt.value, env, "stride", minimum=1), stmt.span)
                except SpecError as exc:
                    self.errors.append(exc)
            elif isinstance(stmt, ast.Setting) and stmt.key == "names":
                numbering = self._numbering(stmt)
            elif isinstance(stmt, ast.Setting):
                policy = self._policy(stmt.value, stmt.span)
            else:
                calls.append(stmt)  # a layer, a block or a group
        scope = _Scope(
            f"{container}.",
            (f"stage {number}",),
            Namespace(ATTRIBUTE_RESERVED, numbered=True),
            "stage",
            number,
            entries=entries,
            numbering=numbering,
        )
        for call in calls:
            if isinstance(call, ast.Group):
                self._group(call, env, scope, policy)
                continue
            resolved = self._resolve(call, env)
            if resolved is None:
                stride = None  # the call's own error says enough
                continue
            kind, count = resolved
            for index in range(count):
                before = self.count
                extra = {}
                if stride is not None and kind in self.program.blocks:
                    if "stride" not in {p.name for p in self.program.blocks[kind].params}:
                        self.errors.append(
                            SpecError(
                                f"the stage's stride cannot be applied: block `{kind}` has no "
                                "`stride` parameter",
                                stride[1],
                                code="RDS125",
                            )
                        )
                    else:
                        extra["stride"] = stride[0]
                    stride = None
                self._call(kind, call, env, scope, policy, extra)
                if index == 0:
                    self._runaway(call, env, count, self.count - before)
        if stride is not None:
            self.errors.append(
                SpecError("the stage's stride has no block to apply to", stride[1], code="RDS125")
            )

    # ------------------------------------------------------------ statements
    def _statement(self, stmt: ast.Call, env: dict, scope: _Scope, policy: str) -> None:
        resolved = self._resolve(stmt, env)
        if resolved is None:
            return
        kind, count = resolved
        for index in range(count):
            before = self.count
            self._call(kind, stmt, env, scope, policy, {})
            if index == 0:
                self._runaway(stmt, env, count, self.count - before)

    def _runaway(self, stmt: ast.Call, env: dict, count: int, each: int) -> None:
        """Refuse a repeat count that would pass the op limit, before expanding the rest."""
        if count > 1 and each * (count - 1) > MAX_OPS - self.count:
            raise self._at_argument(
                stmt.repeat,
                env,
                f"`x {count:,}` of {each:,} ops each would make the network larger than "
                f"{MAX_OPS:,} ops",
                "resdsl builds networks up to this size; check the repeat counts",
                "RDS129",
            )

    def _call(
        self, kind: str, stmt: ast.Call, env: dict, scope: _Scope, policy: str, extra: dict
    ) -> None:
        """One layer or one block instance, named in ``scope``."""
        if stmt.label is not None and not self._free(stmt, scope):
            return
        if kind not in self.program.blocks:
            self._layer(kind, stmt, env, scope)
            return
        name, path, local = scope.name(kind, stmt.label)
        numbered = scope.names.numbered and local.isdigit()  # a group's member may be labelled
        label = f"block {int(local) + 1}" if numbered else path.split(" › ")[-1]
        sub = scope.child(local, label, block=name, role="branch")
        self._block(kind, stmt, env, sub, scope, policy, extra, local)

    def _free(self, stmt: ast.Call, scope: _Scope) -> bool:
        """Whether a call's label can name it here; records why not."""
        problem = hint = None
        code = "RDS117"
        if scope.names.numbered and scope.section == "stage" and scope.block is None:
            problem = f"`{stmt.label}:` cannot name one of a stage's blocks"
            hint = "a stage's blocks are numbered 0, 1, ...; name the stage: `stage stages.0 {`"
        elif private(stmt.label, "a layer or block"):
            problem = private(stmt.label, "a layer or block")
        elif scope.names.taken(stmt.label):
            problem, code = f"the name `{stmt.label}` is taken here", "RDS116"
            hint = "labels name one layer or block each, among the names of its block or section"
        elif stmt.repeat is not None:
            problem = f"`{stmt.label}:` names one layer or block, but `x` repeats it"
            hint = "label each copy, or leave the name to resdsl"
        if problem is None:
            return True
        self.errors.append(SpecError(problem, stmt.label_span, hint, code=code))
        return False

    def _resolve(self, stmt: ast.Call, env: dict) -> tuple[str, int] | None:
        """The kind a call names and its repeat count, or None after recording why not."""
        kind = self._kind(stmt, env)
        if kind is None:
            return None
        try:
            return kind, self._repeat(stmt, env)
        except SpecError as exc:
            self.errors.append(exc)
            return None

    def _kind(self, stmt: ast.Call, env: dict) -> str | None:
        """The layer or block a call names, looking through parameters bound to kinds."""
        kind = stmt.name
        if isinstance(env.get(kind), Symbol):
            kind = env[kind].name
        elif kind in env:  # a parameter that holds a number or a size, not a kind
            self.errors.append(
                self._at_argument(
                    ast.Name(kind, stmt.name_span),
                    env,
                    f"`{kind}` is {show(env[kind])}, not a layer or block",
                    "pass a layer or block name here, e.g. `basic`",
                    "RDS101",
                    note="used as a layer or block here",
                )
            )
            return None
        if kind in self.program.blocks or (kind in ops.OPS and ops.OPS[kind].user):
            return kind
        known = list(self.program.blocks) + [k for k, o in ops.OPS.items() if o.user]
        self.errors.append(unknown_kind(stmt.name, stmt.name_span, known))
        return None

    def _repeat(self, stmt: ast.Call, env: dict) -> int:
        if stmt.repeat is None:
            return 1
        count = self._int(stmt.repeat, env, "a repeat count", minimum=1)
        if count > MAX_OPS - self.count:
            raise self._at_argument(
                stmt.repeat,
                env,
                f"a repeat count of {count:,} would make the network larger than {MAX_OPS:,} ops",
                "resdsl builds networks up to this size; check the repeat counts",
                "RDS129",
            )
        return count

    def _layer(
        self, kind: str, stmt: ast.Call, env: dict, scope: _Scope, drop_identity: bool = False
    ) -> None:
        """One op; where ``drop_identity`` (a shortcut's), left out if it would do nothing."""
        opdef = ops.OPS[kind]
        try:
            given = self._op_args(opdef, stmt, env)
        except SpecError as exc:
            self.errors.append(exc)
            return
        args = {
            name: self.classes if value is ops.CLASSES else value
            for name, (_, _, value) in given.items()
        }
        args = ops.complete(kind, args)
        if drop_identity:
            shape = self.graph.nodes[self.current]["node"].shape
            if shape is not None and opdef.identity(args, shape[0]):
                scope.name(kind, stmt.label)  # its position and its name still count
                return
        symbolic = None
        if scope.trace is not None:
            symbolic = self._symbolic_args(kind, given, args, scope.symbols)
        at = {
            a: self._at_argument(e, env, "", None, "").span for a, (e, _, _) in given.items() if e
        }
        self._emit(kind, args, stmt.span, scope, symbolic=symbolic, label=stmt.label, at=at)

    def _block(
        self,
        kind: str,
        call: ast.Call,
        env: dict,
        scope: _Scope,
        parent: _Scope,
        policy: str,
        extra: dict,
        local: str,
    ) -> None:
        definition = self.program.blocks[kind]
        if len(self.stack) >= MAX_NESTING:
            self.errors.append(
                SpecError(
                    f"blocks nest more than {MAX_NESTING} deep here",
                    self._site(call.span),
                    code="RDS126",
                )
            )
            return
        if kind in self.stack:
            chain = " → ".join((*self.stack[self.stack.index(kind) :], kind))
            self.errors.append(
                SpecError(f"recursive block `{kind}`: {chain}", call.span, code="RDS126")
            )
            return
        try:
            values = self._bind(
                kind, definition.params, call.args, call.kwargs, env, call.span, extra
            )
        except SpecError as exc:
            self.errors.append(exc)
            return
        adds = [s for s in definition.body if isinstance(s, ast.Add)]
        for dup in adds[1:]:
            self.errors.append(
                SpecError(f"block `{kind}` has more than one `add`", dup.span, code="RDS127")
            )
        policy = self.override or policy
        replay_key = self._replay_key(kind, values, scope, parent, policy, call)
        if replay_key is not None and self._replay(replay_key, scope, parent, local):
            return
        errors_before, blocks_before = len(self.errors), len(self.blocks)
        scope.kind = kind
        scope.trace = Trace()
        scope.symbols = {p.name: Param(p.name) for p in definition.params}
        if scope.section == "stage" and parent.block is None:  # a stage's own block
            if self.depth is not None:
                rate, count = self.depth
                drop = round(rate * self.stage_blocks / max(count - 1, 1), 8)
                name = Namespace({p.name for p in definition.params}).create_name("drop_path")
                scope.drop = (name, drop)
                values = Env({**values, name: drop})
                values.spans = {}
            self.stage_blocks += 1
        self.stack.append(kind)
        self.sites.append(call.span)
        block_input, first_node = self.current, len(self.order)
        shortcut = Shortcut("identity", policy) if adds else Shortcut("plain")
        # its statements also read `in`, the channels of its input (a shortcut's `in`)
        shape = self.graph.nodes[block_input]["node"].shape
        body = Env({**values, "in": shape[0] if shape else 1})
        body.spans, scope.symbols["in"] = getattr(values, "spans", {}), Param(IN_CHANNELS)
        for stmt in definition.body:
            if isinstance(stmt, ast.Add):
                if stmt is adds[0]:
                    shortcut = self._shortcut(block_input, first_node, policy, scope, stmt)
                scope.role = "post"
            elif isinstance(stmt, ast.Join):
                self._join(stmt, body, scope, policy)
            elif isinstance(stmt, ast.Tap):
                self._tap(stmt, scope)
            elif isinstance(stmt, ast.Group):
                self._group(stmt, body, scope, policy)
            else:
                self._statement(stmt, body, scope, policy)
        self.sites.pop()
        self.stack.pop()
        template = self._template(definition, scope.trace, shortcut)
        instance = BlockInstance(
            name=scope.block,
            kind=kind,
            stage=scope.stage,
            args=tuple((k, v.name if isinstance(v, Symbol) else v) for k, v in values.items()),
            shortcut=shortcut,
            input=block_input,
            output=self.current,
            span=self._site(call.span),
            template=template.name,
            parent=parent.block,
            section=scope.section,
            local=local,
        )
        self.blocks.append(instance)
        self.by_name[instance.name] = instance
        if parent.entries is not None and parent.block is None:
            parent.entries.append(Entry(instance.name, "block"))
        if parent.trace is not None:
            self._record_nested(definition, call, values, extra, template, parent)
        elif replay_key is not None and len(self.errors) == errors_before:
            self._remember(replay_key, scope, block_input, first_node, blocks_before)

    # ------------------------------------------------------------ equal blocks, made once
    # (resdsl.replay): the elaborator asks for a key, adds a copy's nodes and blocks, and
    # remembers what a first instance made.

    def _replay_key(self, kind, values, scope, parent, policy, call):
        if parent.trace is not None or self.depth is not None:
            return None
        shape = self.graph.nodes[self.current]["node"].shape
        section, stage, sites = scope.section, scope.stage, self.sites
        return Copies.key(kind, values, shape, policy, section, stage, sites, call, parent.block)

    def _remember(self, key, scope, block_input: str, first_node: int, blocks_before: int):
        nodes = [self.graph.nodes[n]["node"] for n in self.order[first_node:]]
        path = " › ".join(scope.path) + " › "
        blocks = self.blocks[blocks_before:]
        self.copies.remember(key, scope.prefix, path, scope.block, block_input, nodes, blocks)

    def _replay(self, key, scope: _Scope, parent: _Scope, local: str) -> bool:
        size = self.copies.size(key)
        if size is None or self.count + size >= MAX_OPS:
            return False  # the limit's error comes from the elaboration itself
        path = " › ".join(scope.path) + " › "
        copy = self.copies.copy(key, scope.prefix, path, scope.block, self.current, local)
        for original, node in zip(self.copies.originals(key), copy.nodes, strict=True):
            if original.name in self.aside:
                self.aside.add(node.name)
        add_nodes(self.graph, copy.nodes)
        self.order.extend(node.name for node in copy.nodes)
        self.count += size
        self.current = copy.output
        for instance in copy.blocks:
            self.blocks.append(instance)
            self.by_name[instance.name] = instance
        if scope.section == "stage" and parent.block is None:
            self.stage_blocks += 1
        if parent.entries is not None and parent.block is None:
            parent.entries.append(Entry(scope.block, "block"))
        return True

    def _tap(self, stmt: ast.Tap, scope: _Scope) -> None:
        """Mark where a shortcut's `from tap` case starts: the tensor so far."""
        if scope.tap is not None:
            self.errors.append(
                SpecError(f"block `{scope.kind}` has more than one `tap`", stmt.span, code="RDS119")
            )
            return
        scope.tap = self.current
        trace = scope.trace
        op = TemplateOp("tap", "tap", (), trace.channels, scope.role, stmt.span)
        trace.record(op, trace.channels, Const(1))

    def _join(self, stmt: ast.Join, env: dict, scope: _Scope, policy: str) -> None:
        """A side path from the tensor so far, then the node that joins the two."""
        main, role, start = self.current, scope.role, len(self.order)
        channels = scope.trace.channels
        scope.role = "side"
        for call in stmt.body:
            self._statement(call, env, scope, policy)
        self.aside.update(self.order[start:])
        side, symbolic = self.current, {}
        args = {}
        if stmt.kind == "concat":  # the path's channels come after the tensor's
            shape = self.graph.nodes[side]["node"].shape
            args, symbolic = {"side": shape[0] if shape else 0}, {"side": scope.trace.channels}
        scope.role, scope.trace.channels = role, channels  # the join starts from the tensor's
        self._emit(stmt.kind, args, stmt.span, scope, inputs=(main, side), symbolic=symbolic)

    # ------------------------------------------------------------ nodes
    def _emit(
        self,
        op: str,
        args: dict,
        span: Span,
        scope: _Scope,
        inputs=None,
        symbolic: dict | None = None,
        label: str | None = None,
        at: dict | None = None,  # the spans of the arguments the statement gives
    ) -> str:
        """Make one node; record it in its section and in its block's trace. Returns its local."""
        if self.count >= MAX_OPS:
            raise SpecError(
                f"the network has more than {MAX_OPS:,} ops",
                self._site(span),
                "resdsl builds networks up to this size; check the repeat counts",
                code="RDS129",
            )
        name, path, local = scope.name(op, label)
        inputs = inputs or (self.current,)
        shapes = [self.graph.nodes[i]["node"].shape for i in inputs]
        shape, problem = None, None
        if all(s is not None for s in shapes):
            try:
                shape = ops.infer(op, args, shapes)
            except ops.OpProblem as exc:
                problem = (exc.message, exc.hint, exc.code, (at or {}).get(exc.arg))
        node = Node(
            name,
            op,
            tuple(args.items()),
            tuple(inputs),
            shape,
            self._site(span),
            path,
            scope.block,
            scope.role if scope.block else None,
            scope.section,
            scope.stage,
            local,
            problem,
        )
        add_node(self.graph, node)
        self.order.append(name)
        self.count += 1
        self.current = name
        if scope.entries is not None and scope.block is None:
            scope.entries.append(Entry(name, "op"))
        if symbolic is not None and scope.trace is not None:
            trace, opdef = scope.trace, ops.OPS[op]
            out = as_expr(opdef.channels(symbolic, trace.channels))
            if opdef.flattens:
                c, h, w = shapes[0] or (0, 0, 0)
                features = trace.channels if h * w == 1 else Const(c * h * w)
                symbolic = {**symbolic, "in_features": features}
            template_op = TemplateOp(
                scope.within + local,
                op,
                tuple(symbolic.items()),
                trace.channels,
                scope.role,
                span,
                None,
                (),
                out,
            )
            trace.record(template_op, out, as_expr(opdef.stride(symbolic)))
        return local

    def _site(self, span: Span) -> Span:
        """The innermost span a person wrote: prelude internals point at their call site."""
        if not span.source.builtin:
            return span
        for site in reversed(self.sites):
            if not site.source.builtin:
                return site
        return span

    # ------------------------------------------------------------ values
    # ------------------------------------------------------------ training
