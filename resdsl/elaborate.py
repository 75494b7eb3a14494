"""AST to IR: resolve imports and names, expand families, blocks, repetition and shortcuts.

``build()`` returns a :class:`resdsl.ir.Network`. It reports errors of names, types and structure
(collected, then raised together). Shapes are inferred as nodes are made, because the shortcut
policy depends on them; where an op cannot work its shape is ``None`` and :func:`resdsl.check.check`
says why.
"""

from __future__ import annotations

import contextlib
import gc
import keyword
import math
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from . import ops, recipe
from . import syntax as ast
from .errors import ResdslError, Span, SpecError, did_you_mean, raise_all, unknown
from .ir import BlockInstance, Network, Node, add_node
from .parser import parse_file
from .resources import PACKAGE

POLICIES = ("A", "B", "C", "none")
MAX_OPS = 1_000_000  # ResNet-1202 has 4,210; a 12,002-layer net 42,010
PRELUDE = PACKAGE / "prelude.rds"


@dataclass(frozen=True)
class Symbol:
    """A bare name used as a value: a block or layer kind passed to a family or block."""

    name: str


# ---------------------------------------------------------------- programs: files and definitions


@dataclass
class Program:
    """Every definition visible from a root module: the prelude, imports, and the root itself."""

    root: ast.Module
    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    networks: dict[str, ast.NetworkDef | ast.NetworkInst] = field(default_factory=dict)
    trains: dict[str, ast.TrainDef] = field(default_factory=dict)


def load(module: ast.Module) -> Program:
    """Resolve imports (relative to the importing file) and collect definitions."""
    program = Program(module)
    errors: list[ResdslError] = []
    seen: set[str] = set()
    modules: list[ast.Module] = []

    def visit(mod: ast.Module) -> None:
        modules.append(mod)
        base = Path(mod.source.name).parent
        for item in mod.items:
            if not isinstance(item, ast.Import):
                continue
            path = (base / item.path).resolve()
            if str(path) in seen:
                continue
            seen.add(str(path))
            if not path.is_file():
                errors.append(
                    SpecError(f'cannot import "{item.path}": no such file {path}', item.span)
                )
                continue
            try:
                visit(parse_file(_display(path)))
            except ResdslError as exc:
                errors.append(exc if exc.span else SpecError(exc.message, item.span))

    visit(parse_file(PRELUDE, builtin=True))
    root = Path(module.source.name)
    seen.add(str(root.resolve()))
    visit(module)

    defined: dict[str, Span] = {}
    for mod in modules:
        for item in mod.items:
            if isinstance(item, ast.TrainDef):
                if item.name in program.trains:
                    errors.append(_duplicate("train section for", item, program.trains[item.name]))
                else:
                    program.trains[item.name] = item
                continue
            if not isinstance(item, (ast.BlockDef, ast.NetworkDef, ast.NetworkInst)):
                continue
            problem = _bad_identifier(item.name)
            if item.name in ops.OPS:
                problem = f"`{item.name}` is a built-in layer and cannot be redefined"
            if problem:
                errors.append(SpecError(problem, item.span))
            elif item.name in defined:
                errors.append(_duplicate("definition of", item, defined[item.name]))
            else:
                defined[item.name] = item.span
                table = program.blocks if isinstance(item, ast.BlockDef) else program.networks
                table[item.name] = item
            for param in getattr(item, "params", ()):
                if problem := _bad_identifier(param.name):
                    errors.append(SpecError(problem, param.span))
    for name, train in program.trains.items():
        if name not in program.networks:
            errors.append(
                SpecError(
                    f"train section for unknown network `{name}`",
                    train.span,
                    did_you_mean(name, program.networks),
                )
            )
    raise_all(errors)
    return program


def _display(path: Path) -> Path:
    """A path as people see it: relative to the working directory where it lies below it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _duplicate(what: str, item, first) -> SpecError:
    first_span = first if isinstance(first, Span) else first.span
    return SpecError(f"duplicate {what} `{item.name}`", item.span, f"first defined at {first_span}")


def _bad_identifier(name: str) -> str | None:
    if not name.isidentifier() or keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"`{name}` cannot be a name: it is a Python keyword"
    return None


# ---------------------------------------------------------------- build


def build(
    spec: ast.Module | str | Path, network: str | None = None, shortcut: str | None = None
) -> Network:
    """Elaborate one network of ``spec`` (a parsed module or a path) into the IR.

    ``network`` picks a network by name where the file defines several; ``shortcut`` overrides
    every shortcut policy in it (A, B, C or none).
    """
    module = spec if isinstance(spec, ast.Module) else parse_file(spec)
    if shortcut is not None and shortcut not in POLICIES:
        raise SpecError(f"unknown shortcut policy {shortcut!r}; choose A, B, C or none")
    program = load(module)
    inst = _choose(program, network)
    with without_gc():
        return _Elaborator(program, shortcut).network(inst)


@contextlib.contextmanager
def without_gc():
    """Pause the cyclic garbage collector while a large graph is made or walked.

    Building allocates many objects and frees few, so the collector's full passes would otherwise
    run over the whole growing graph again and again: time per layer grew 1.6x from 1,202 to
    12,002 layers with them. The IR holds no reference cycles, so nothing is left for it to free.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def concrete(module: ast.Module) -> list[str]:
    """The networks a file defines that need no arguments: instances and parameterless ones."""
    return [
        item.name
        for item in module.items
        if isinstance(item, ast.NetworkInst) or isinstance(item, ast.NetworkDef) and not item.params
    ]


def _choose(program: Program, name: str | None):
    if name is not None:
        if name not in program.networks:
            raise SpecError(
                f"no network `{name}` in {program.root.source.name}",
                hint=did_you_mean(name, program.networks),
            )
        return program.networks[name]
    concrete_ = concrete(program.root)
    if len(concrete_) == 1:
        return program.networks[concrete_[0]]
    start = Span(program.root.source, 1, 1, 1, 1)
    if not concrete_:
        families = [i.name for i in program.root.items if isinstance(i, ast.NetworkDef)]
        hint = (
            f"instantiate a family, e.g. `network mynet = {families[0]}(...)`" if families else None
        )
        raise SpecError(f"{program.root.source.name} defines no concrete network", start, hint)
    names = ", ".join(concrete_)
    raise SpecError(
        f"{program.root.source.name} defines several networks ({names})",
        program.networks[concrete_[1]].span,
        "choose one with --network",
    )


@dataclass
class _Scope:
    """Where nodes are being made: their name prefix, human path and block."""

    prefix: str  # "layer2.0."
    path: tuple[str, ...]  # ("stage 2", "block 1")
    block: str | None = None
    role: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    numbered: bool = False  # name nodes 0, 1, 2 ... as torch.nn.Sequential does

    def child(self, prefix: str, path: str, **kw) -> _Scope:
        return _Scope(self.prefix + prefix + ".", (*self.path, path), **kw)

    def name(self, kind: str) -> tuple[str, str]:
        """The next node name and human path for a node of ``kind`` in this scope."""
        if self.numbered:
            index = sum(self.counts.values())
            self.counts[kind] = self.counts.get(kind, 0) + 1
            return f"{self.prefix}{index}", " › ".join((*self.path, kind))
        n = self.counts[kind] = self.counts.get(kind, 0) + 1
        # conv and bn are always numbered (conv1, bn1), others only from the second on (relu, relu2)
        suffix = str(n) if kind in ("conv", "bn") or n > 1 else ""
        return f"{self.prefix}{kind}{suffix}", " › ".join((*self.path, f"{kind} {suffix}".strip()))


class _Elaborator:
    def __init__(self, program: Program, shortcut: str | None):
        self.program = program
        self.override = shortcut
        self.graph = nx.DiGraph()
        self.errors: list[ResdslError] = []
        self.blocks: list[BlockInstance] = []
        self.sites: list[Span] = []  # call sites, outermost first
        self.stack: list[str] = []  # block definitions being expanded, for recursion
        self.current: str = "input"
        self.order: list[str] = []  # node names in the order they were made
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
                )
            env = self._bind(family.name, family.params, item.args, item.kwargs, {}, item.span)
            policy = item.shortcut
        elif item.params:
            env = self._bind(item.name, item.params, (), (), {}, item.span)
        raise_all(self.errors)

        settings, sections = {}, []
        for stmt in family.body:
            if isinstance(stmt, ast.Setting):
                if stmt.key in settings:
                    self.errors.append(SpecError(f"`{stmt.key}` is given twice", stmt.span))
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
                    )
                )
        raise_all(self.errors)

        shape = settings["input"].value
        if len(shape) != 3 or min(shape) < 1:
            raise SpecError(
                "input must be CxHxW with every dimension at least 1, e.g. 3x32x32",
                settings["input"].span,
            )
        self.classes = self._int(settings["classes"].value, env, "classes", minimum=1)
        net_policy = policy or (settings["shortcut"].value if "shortcut" in settings else "B")
        self.input_span = settings["input"].span
        add_node(
            self.graph,
            Node("input", "input", (("shape", shape),), (), shape, settings["input"].span, "input"),
        )
        self.order.append("input")

        top_counts: dict[str, int] = {}  # stem and head share the top-level names
        stage_number = 0
        for section in sections:
            if section.kind == "stage":
                stage_number += 1
                self._stage(section, stage_number, env, net_policy)
                continue
            scope = _Scope("", (section.kind,), counts=top_counts)
            for stmt in section.body:
                self._statement(stmt, env, scope, net_policy)
        train = self._train(item, family)
        raise_all(self.errors)
        return Network(
            name=item.name,
            graph=self.graph,
            input_shape=shape,
            classes=self.classes,
            policy=self.override or net_policy,
            blocks=tuple(self.blocks),
            train=train,
            span=item.span,
            definitions={b.kind: self.program.blocks[b.kind] for b in self.blocks},
        )

    def _stage(self, section: ast.Section, number: int, env: dict, policy: str) -> None:
        stride, calls = None, []
        for stmt in section.body:
            if isinstance(stmt, ast.Setting) and stmt.key == "stride":
                try:
                    stride = (self._int(stmt.value, env, "stride", minimum=1), stmt.span)
                except SpecError as exc:
                    self.errors.append(exc)
            elif isinstance(stmt, ast.Setting):
                policy = stmt.value
            else:
                calls.append(stmt)
        scope = _Scope(f"layer{number}.", (f"stage {number}",))
        index = 0
        for call in calls:
            resolved = self._resolve(call, env)
            if resolved is None:
                continue
            kind, count = resolved
            for _ in range(count):
                if kind not in self.program.blocks:
                    self._layer(kind, call, env, scope)
                    continue
                extra = {}
                if stride is not None:
                    if "stride" not in {p.name for p in self.program.blocks[kind].params}:
                        self.errors.append(
                            SpecError(
                                f"the stage's stride cannot be applied: block `{kind}` has no "
                                "`stride` parameter",
                                stride[1],
                            )
                        )
                    else:
                        extra["stride"] = stride[0]
                    stride = None
                block_scope = scope.child(
                    str(index), f"block {index + 1}", block=f"layer{number}.{index}", role="branch"
                )
                self._block(kind, call, env, block_scope, policy, extra, stage=number)
                index += 1
        if stride is not None:
            self.errors.append(SpecError("the stage's stride has no block to apply to", stride[1]))

    # ------------------------------------------------------------ statements
    def _statement(self, stmt: ast.Call, env: dict, scope: _Scope, policy: str) -> None:
        resolved = self._resolve(stmt, env)
        if resolved is None:
            return
        kind, count = resolved
        for _ in range(count):
            if kind in self.program.blocks:
                name, path = scope.name(kind)
                sub = _Scope(
                    name + ".", (*scope.path, path.split(" › ")[-1]), block=name, role="branch"
                )
                self._block(kind, stmt, env, sub, policy, {}, stage=None)
            else:
                self._layer(kind, stmt, env, scope)

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
        if kind in self.program.blocks or (kind in ops.OPS and ops.OPS[kind].user):
            return kind
        known = list(self.program.blocks) + [k for k, o in ops.OPS.items() if o.user]
        self.errors.append(
            unknown(
                f"unknown layer or block `{stmt.name}`",
                stmt.name_span,
                stmt.name,
                known,
                "layers and blocks",
            )
        )
        return None

    def _repeat(self, stmt: ast.Call, env: dict) -> int:
        if stmt.repeat is None:
            return 1
        return self._int(stmt.repeat, env, "a repeat count", minimum=1)

    def _layer(self, kind: str, stmt: ast.Call, env: dict, scope: _Scope) -> None:
        opdef = ops.OPS[kind]
        try:
            args = self._op_args(opdef, stmt, env)
        except SpecError as exc:
            self.errors.append(exc)
            return
        if kind == "fc" and args["out"] is None:
            args["out"] = self.classes
        self._emit(kind, ops.complete(kind, args), stmt.span, scope)

    def _op_args(self, opdef: ops.OpDef, stmt: ast.Call, env: dict) -> dict:
        positional = [a for a in opdef.args if a.positional]
        if len(stmt.args) > len(positional):
            extra = stmt.args[len(positional)]
            takes = ", ".join(a.name for a in positional) or "no positional values"
            raise SpecError(f"too many values for `{opdef.name}` (it takes: {takes})", extra.span)
        values = {}
        for arg, expr in zip(positional, stmt.args, strict=False):
            values[arg.name] = (expr, expr.span)
        by_name = {a.name: a for a in opdef.args}
        for kw in stmt.kwargs:
            if kw.name not in by_name:
                raise unknown(
                    f"`{opdef.name}` has no argument `{kw.name}`",
                    kw.span,
                    kw.name,
                    by_name,
                    "arguments",
                )
            if kw.name in values:
                raise SpecError(f"`{kw.name}` is given twice", kw.span)
            values[kw.name] = (kw.value, kw.span)
        out = {}
        for arg in opdef.args:
            if arg.name not in values:
                if arg.default is ops.REQUIRED:
                    raise SpecError(
                        f"`{opdef.name}` needs `{arg.name}`", stmt.span, _USAGE.get(opdef.name)
                    )
                out[arg.name] = arg.default
                continue
            expr, span = values[arg.name]
            out[arg.name] = self._typed(self._eval(expr, env), arg, opdef.name, expr.span)
        return out

    def _typed(self, value, arg: ops.Arg, op: str, span: Span):
        what = f"`{op}` argument `{arg.name}`"
        if arg.type == "pair":
            if isinstance(value, int):
                return (value, value)
            if isinstance(value, tuple) and len(value) == 2:
                return value
            raise SpecError(f"{what} must be an integer or HxW, got {_show(value)}", span)
        if arg.type == "float":
            if isinstance(value, (int, float)):
                return float(value)
            raise SpecError(f"{what} must be a number, got {_show(value)}", span)
        if not isinstance(value, int):
            raise SpecError(f"{what} must be an integer, got {_show(value)}", span)
        if arg.type == "flag" and value not in (0, 1):
            raise SpecError(f"{what} must be 0 or 1, got {value}", span)
        return value

    # ------------------------------------------------------------ blocks
    def _block(
        self,
        kind: str,
        call: ast.Call,
        env: dict,
        scope: _Scope,
        policy: str,
        extra: dict,
        stage: int | None,
    ) -> None:
        definition = self.program.blocks[kind]
        if kind in self.stack:
            chain = " → ".join((*self.stack[self.stack.index(kind) :], kind))
            self.errors.append(SpecError(f"recursive block `{kind}`: {chain}", call.span))
            return
        try:
            local = self._bind(
                kind, definition.params, call.args, call.kwargs, env, call.span, extra
            )
        except SpecError as exc:
            self.errors.append(exc)
            return
        adds = [s for s in definition.body if isinstance(s, ast.Add)]
        for dup in adds[1:]:
            self.errors.append(SpecError(f"block `{kind}` has more than one `add`", dup.span))
        policy = self.override or policy
        self.stack.append(kind)
        self.sites.append(call.span)
        block_input, first_node = self.current, len(self.order)
        shortcut = "plain" if not adds else "none" if policy == "none" else "identity"
        for stmt in definition.body:
            if isinstance(stmt, ast.Add):
                if stmt is adds[0] and policy != "none":
                    shortcut = self._shortcut(block_input, first_node, policy, scope, stmt.span)
                scope.role = "post"
            else:
                self._statement(stmt, local, scope, policy)
        self.sites.pop()
        self.stack.pop()
        self.blocks.append(
            BlockInstance(
                name=scope.block,
                kind=kind,
                stage=stage,
                args=tuple((k, v.name if isinstance(v, Symbol) else v) for k, v in local.items()),
                shortcut=shortcut,
                input=block_input,
                output=self.current,
                span=self._site(call.span),
            )
        )

    def _shortcut(
        self, block_input: str, first_node: int, policy: str, scope: _Scope, span: Span
    ) -> str:
        """Join the shortcut to the residual branch that ends at ``self.current``."""
        branch = self.current
        in_shape = self.graph.nodes[block_input]["node"].shape
        out_shape = self.graph.nodes[branch]["node"].shape
        # the branch's total stride, leaving out the shortcuts of blocks nested in it
        nodes = self.graph.nodes
        stride = math.prod(
            ops.OPS[n.op].stride(n.arg)
            for n in (nodes[name]["node"] for name in self.order[first_node:])
            if n.role != "shortcut"
        )
        kind, source = "identity", block_input
        if in_shape is not None and out_shape is not None:
            changes = stride > 1 or in_shape[0] != out_shape[0]
            sub = _Scope(
                scope.prefix + "downsample.",
                (*scope.path, "shortcut"),
                block=scope.block,
                role="shortcut",
                numbered=True,
            )
            if policy == "C" or policy == "B" and changes:
                kind = "projection"
                self.current = block_input
                self._emit(
                    "conv",
                    ops.complete(
                        "conv",
                        {
                            "out": out_shape[0],
                            "kernel": (1, 1),
                            "stride": stride,
                            "pad": (0, 0),
                            "groups": 1,
                            "bias": 0,
                        },
                    ),
                    span,
                    sub,
                )
                self._emit("bn", {}, span, sub)
                source = self.current
            elif policy == "A" and changes:
                kind = "A"
                self.current = block_input
                if stride > 1:
                    self._emit("subsample", {"stride": stride}, span, sub)
                if in_shape[0] != out_shape[0]:
                    self._emit("zeropad", {"channels": out_shape[0]}, span, sub)
                source = self.current
        scope.role = "add"
        self.current = branch
        self._emit("add", {}, span, scope, inputs=(branch, source))
        return kind

    # ------------------------------------------------------------ nodes
    def _emit(self, op: str, args: dict, span: Span, scope: _Scope, inputs=None) -> None:
        if len(self.order) >= MAX_OPS:
            raise SpecError(
                f"the network has more than {MAX_OPS:,} ops",
                self._site(span),
                "resdsl builds networks up to this size; check the repeat counts",
            )
        name, path = scope.name(op)
        inputs = inputs or (self.current,)
        shapes = [self.graph.nodes[i]["node"].shape for i in inputs]
        shape = None
        if all(s is not None for s in shapes):
            try:
                shape = ops.infer(op, args, shapes)
            except ops.OpProblem:
                shape = None  # the checker reports it, with its span and path
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
        )
        add_node(self.graph, node)
        self.order.append(name)
        self.current = name

    def _site(self, span: Span) -> Span:
        """The innermost span a person wrote: prelude internals point at their call site."""
        if not span.source.builtin:
            return span
        for site in reversed(self.sites):
            if not site.source.builtin:
                return site
        return span

    # ------------------------------------------------------------ values
    def _bind(
        self, owner: str, params, args, kwargs, env: dict, span: Span, extra: dict | None = None
    ) -> dict:
        """Bind call arguments to parameters; defaults may use earlier parameters."""
        names = [p.name for p in params]
        seen = set()
        for p in params:
            if p.name in seen:
                raise SpecError(f"parameter `{p.name}` is listed twice", p.span)
            seen.add(p.name)
        if len(args) > len(params):
            raise SpecError(
                f"`{owner}` takes {len(params)} value(s), got {len(args)}", args[len(params)].span
            )
        given = {p.name: self._eval(a, env) for p, a in zip(params, args, strict=False)}
        for kw in kwargs:
            if kw.name not in names:
                raise unknown(
                    f"`{owner}` has no parameter `{kw.name}`", kw.span, kw.name, names, "parameters"
                )
            if kw.name in given:
                raise SpecError(f"`{kw.name}` is given twice", kw.span)
            given[kw.name] = self._eval(kw.value, env)
        for key, value in (extra or {}).items():
            if key in given:
                raise SpecError(f"`{key}` is given both here and by the stage's `stride`", span)
            given[key] = value
        local: dict = {}
        for p in params:
            if p.name in given:
                local[p.name] = given[p.name]
            elif p.default is not None:
                local[p.name] = self._eval(p.default, local)
            else:
                raise SpecError(
                    f"`{owner}` needs a value for `{p.name}`",
                    span,
                    f"e.g. `{owner} ... {p.name}=...`",
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
            raise SpecError(
                f"unknown parameter `{expr.id}`",
                expr.span,
                did_you_mean(expr.id, env)
                or ("parameters here: " + ", ".join(env) if env else None),
            )
        left, right = self._eval(expr.left, env), self._eval(expr.right, env)
        for side, value in ((expr.left, left), (expr.right, right)):
            if not isinstance(value, int):
                raise SpecError(f"`{expr.op}` works on integers, got {_show(value)}", side.span)
        if expr.op == "+":
            return left + right
        if expr.op == "-":
            return left - right
        if expr.op == "*":
            return left * right
        if right == 0:
            raise SpecError("division by zero", expr.right.span)
        return left // right

    def _int(self, expr, env: dict, what: str, minimum: int) -> int:
        value = self._eval(expr, env)
        if not isinstance(value, int):
            raise SpecError(f"{what} must be an integer, got {_show(value)}", expr.span)
        if value < minimum:
            raise SpecError(f"{what} must be at least {minimum}, got {value}", expr.span)
        return value

    # ------------------------------------------------------------ training
    def _train(self, item, family) -> recipe.TrainConfig | None:
        """The network's own train section, over its family's, statement by statement."""
        own = self.program.trains.get(item.name)
        inherited = self.program.trains.get(family.name) if family is not item else None
        if own is None and inherited is None:
            return None
        try:
            stmts = recipe.statements(inherited) if inherited else {}
            if own is not None:
                stmts.update(recipe.statements(own))
            return recipe.interpret(item.name, stmts, (own or inherited).span)
        except ResdslError as exc:
            self.errors.extend(getattr(exc, "errors", [exc]))
            return None


_USAGE = {
    "conv": "e.g. `conv 64 3x3 stride=2`",
    "maxpool": "e.g. `maxpool 3x3 stride=2`",
}


def _show(value) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if isinstance(value, Symbol):
        return f"the name `{value.name}`"
    return repr(value)
