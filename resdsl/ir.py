"""The IR: a networkx DiGraph with one node per primitive op, plus the structure emitters need.

Node keys are stable dotted names in torchvision's convention (``conv1``, ``layer1.0.conv1``,
``layer2.0.downsample.0``, ``fc``); each key's ``node`` attribute is a frozen :class:`Node`.
Edges carry ``port``, the position of the source among the destination's inputs. The graph's
node order is a topological order: every node comes after its inputs.

Beside the graph, a :class:`Network` carries everything a target prints, so that no emitter reads
the syntax tree or splits a name:

- its :class:`Section` list: stem, stages and head in order, each with its entries (ops and block
  instances) and the runs of identical blocks that stay loops in generated code;
- one :class:`BlockTemplate` per distinct block body: the parameters, and each op with its
  arguments as :data:`Expr` over those parameters (elaborated once, symbolically);
- each block instance's :class:`Shortcut`, what its definition made, and one template per
  distinct shortcut path.

The names a target prints (classes, functions, parameters) are the target's: it allocates them
from its own namespaces (:mod:`resdsl.targets.python`).
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .errors import Span
from .ops import Shape

# ---------------------------------------------------------------- expressions over parameters


class _Arithmetic:
    """``+ - * //`` on expressions and ints, folded: the op table's rules run on them as written."""

    def __add__(self, other):
        return binop("+", self, as_expr(other))

    def __radd__(self, other):
        return binop("+", as_expr(other), self)

    def __sub__(self, other):
        return binop("-", self, as_expr(other))

    def __rsub__(self, other):
        return binop("-", as_expr(other), self)

    def __mul__(self, other):
        return binop("*", self, as_expr(other))

    def __rmul__(self, other):
        return binop("*", as_expr(other), self)

    def __floordiv__(self, other):
        return binop("//", self, as_expr(other))

    def __rfloordiv__(self, other):
        return binop("//", as_expr(other), self)


@dataclass(frozen=True)
class Const(_Arithmetic):
    value: Any  # int, float or a tuple of ints


@dataclass(frozen=True)
class Param(_Arithmetic):
    name: str  # a block parameter, or IN_CHANNELS: the channels of the block's input


@dataclass(frozen=True)
class BinOp(_Arithmetic):
    op: str  # + - * //
    left: Expr
    right: Expr


Expr = Const | Param | BinOp
IN_CHANNELS = "in_channels"  # the Param every template's first op reads its channels from


def as_expr(value) -> Expr:
    """An expression as it is; a plain value as a constant."""
    return value if isinstance(value, Const | Param | BinOp) else Const(value)


def evaluate(expr: Expr, env: dict[str, Any]):
    """The value of ``expr`` with each Param's value taken from ``env``."""
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, Param):
        return env[expr.name]
    left, right = evaluate(expr.left, env), evaluate(expr.right, env)
    if expr.op == "+":
        return left + right
    if expr.op == "-":
        return left - right
    if expr.op == "*":
        return left * right
    return left // right


def substitute(expr: Expr, env: dict[str, Expr]) -> Expr:
    """``expr`` with each Param replaced by its expression in ``env``, constants folded."""
    if isinstance(expr, Const):
        return expr
    if isinstance(expr, Param):
        return env.get(expr.name, expr)
    return binop(expr.op, substitute(expr.left, env), substitute(expr.right, env))


def binop(op: str, left: Expr, right: Expr) -> Expr:
    """``left op right``, folded where both sides are constants or one is a neutral element."""
    if isinstance(left, Const):
        if isinstance(right, Const):
            return Const(evaluate(BinOp(op, left, right), {}))
        if op == "*" and left.value == 1:
            return right
    elif isinstance(right, Const) and right.value == (1 if op in ("*", "//") else 0):
        return left
    return BinOp(op, left, right)


def params_of(expr: Expr) -> set[str]:
    if isinstance(expr, Param):
        return {expr.name}
    if isinstance(expr, BinOp):
        return params_of(expr.left) | params_of(expr.right)
    return set()


# ---------------------------------------------------------------- nodes


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    args: tuple[tuple[str, Any], ...]
    inputs: tuple[str, ...]
    shape: Shape | None  # None where the op cannot work: see ``problem``
    span: Span
    path: str  # for people: "stage 2 › block 1 › conv 2"
    block: str | None = None  # the innermost block instance it belongs to, e.g. "layer2.0"
    role: str | None = None  # within its block: branch | shortcut | add | post
    section: str = "stem"  # input | stem | stage | head
    stage: int | None = None  # 1-based stage number for nodes in stages
    local: str = ""  # its name inside its parent (block instance, stage or network): "conv1"
    # (message, hint, code, span): the op cannot work; the span is the argument at fault, if any
    problem: tuple[str, str | None, str, object] | None = None

    @property
    def arg(self) -> dict[str, Any]:
        return dict(self.args)


# ---------------------------------------------------------------- shortcuts


@dataclass(frozen=True)
class Shortcut:
    """A block's shortcut as its definition made it (:mod:`resdsl.shortcuts`).

    A ``path`` runs ops: its template, in the network's ``shortcuts``, holds them over
    ``in_channels`` and its parameters (``out`` and ``stride``, those it reads), and ``args``
    gives those parameters: ints in a block instance, expressions over the enclosing block's
    parameters in a block template (a nested block's shortcut).
    """

    kind: str  # identity | path | none (its case is `off`) | plain (the block has no add)
    policy: str | None = None  # the shortcut definition it follows: A, B, C, none or a user's
    case: str | None = None  # the definition's case that applied: keep | change | always
    path: str | None = None  # for a path: its template's name
    args: tuple[tuple[str, Any], ...] = ()  # for a path: its template's parameters
    from_tap: bool = False  # it starts at the block's `tap`, not at the block's input

    @property
    def residual(self) -> bool:
        """Whether the block adds a shortcut to its branch."""
        return self.kind not in ("none", "plain")

    @property
    def arg(self) -> dict[str, Any]:
        return dict(self.args)


# ---------------------------------------------------------------- blocks


@dataclass(frozen=True)
class TemplateOp:
    """One op of a block template, with its arguments as expressions over the parameters.

    ``op`` is a primitive op, ``"add"`` (the shortcut joins the branch), or ``"block"`` (a nested
    block instance of ``template``, whose arguments are ``args`` and whose own shortcut ops are
    ``shortcut``).
    """

    name: str  # its attribute inside the block: conv1, bn1, relu, downsample.0, inner
    op: str
    args: tuple[tuple[str, Expr | None], ...]
    in_channels: Expr  # the channels it reads
    role: str  # branch | add | post | shortcut
    span: Span
    template: str | None = None  # for op == "block": the nested block's template name
    shortcut: tuple[TemplateOp, ...] = ()  # for op == "block": its shortcut's ops, if any
    out_channels: Expr | None = None
    plan: Shortcut | None = None  # for op == "block": its shortcut, over these parameters

    @property
    def arg(self) -> dict[str, Expr | None]:
        return dict(self.args)


@dataclass(frozen=True)
class BlockTemplate:
    """A block body elaborated once: every instance with an equal body shares this template."""

    name: str  # unique among the network's templates: basic, basic_2, ...
    kind: str  # the block definition's name
    params: tuple[str, ...]  # the parameters its ops read, in definition order
    defaults: tuple[tuple[str, Any], ...]  # constant defaults of those parameters
    ops: tuple[TemplateOp, ...]
    residual: bool  # its shortcut joins at an add (false for plain blocks and policy none)
    has_add: bool  # its definition has an add (a plain variant drops it under policy none)
    out_channels: Expr  # the channels it returns
    join_channels: Expr  # the channels where the shortcut joins (what a projection makes)
    stride: Expr  # the product of its branch's strides (what its own projection strides by)
    total_stride: Expr  # the product of every op's stride (what an enclosing block's sees)
    span: Span  # the definition
    from_tap: bool = False  # its shortcut starts at its `tap` op (instances differ: templates too)
    shortcut_name: str = "downsample"  # its shortcut's container: its `add`'s label, if any


@dataclass(frozen=True)
class BlockInstance:
    """One expanded block: which nodes it owns and what its shortcut became."""

    name: str  # "layer2.0"
    kind: str  # the block definition's name, e.g. "basic"
    stage: int | None  # 1-based stage number, None outside stages
    args: tuple[tuple[str, Any], ...]  # every parameter's bound value
    shortcut: Shortcut
    input: str  # the node the block reads
    output: str  # the node the block ends with
    span: Span
    template: str = ""  # its BlockTemplate's name
    parent: str | None = None  # the enclosing block instance, for nested blocks
    section: str = "stage"  # stem | stage | head
    local: str = ""  # its name inside its parent: "0", "inner"


# ---------------------------------------------------------------- structure


@dataclass(frozen=True)
class Entry:
    """One item of a section, in order: an op node, a block instance, or a named group of them.

    ``count`` > 1 starts a run: this block and the ``count - 1`` instances after it share a
    template, arguments, input channels and no shortcut ops, so they print as one loop.
    """

    name: str  # the node or block instance name, or a group's container
    kind: str  # op | block | group
    count: int = 1
    members: tuple[Entry, ...] = ()  # a group's entries, in order


@dataclass(frozen=True)
class Section:
    kind: str  # stem | stage | head
    stage: int | None
    container: str | None  # the stage's module name ("layer1"); None for stem and head
    entries: tuple[Entry, ...]
    span: Span


@dataclass(frozen=True)
class Network:
    name: str
    graph: nx.DiGraph = field(repr=False, compare=False)
    input_shape: Shape
    classes: int
    policy: str
    blocks: tuple[BlockInstance, ...] = field(repr=False)
    train: Any  # resdsl.recipe.TrainConfig or None
    span: Span
    sections: tuple[Section, ...] = field(default=(), repr=False)
    templates: dict[str, BlockTemplate] = field(default_factory=dict, repr=False, compare=False)
    # each distinct shortcut path, its ops over in_channels, out and stride
    shortcuts: dict[str, BlockTemplate] = field(default_factory=dict, repr=False, compare=False)
    aside: frozenset[str] = field(default=frozenset(), repr=False)  # side paths' nodes (`mul`)

    def nodes(self) -> list[Node]:
        """Every node, in topological order."""
        return [data["node"] for _, data in self.graph.nodes(data=True)]

    def node(self, name: str) -> Node:
        return self.graph.nodes[name]["node"]

    def block(self, name: str) -> BlockInstance:
        return self._blocks[name]

    @property
    def _blocks(self) -> dict[str, BlockInstance]:
        cache = self.__dict__.get("_block_index")
        if cache is None:
            cache = {b.name: b for b in self.blocks}
            object.__setattr__(self, "_block_index", cache)
        return cache

    @property
    def output(self) -> Node:
        return self.nodes()[-1]


def add_nodes(graph: nx.DiGraph, nodes: list[Node]) -> None:
    """Several nodes at once, in order (networkx's bulk methods, as :func:`add_node` each)."""
    names = {node.name for node in nodes}
    if len(names) < len(nodes) or any(name in graph for name in names):
        raise ValueError("duplicate IR node names")
    graph.add_nodes_from((node.name, {"node": node}) for node in nodes)
    graph.add_edges_from(
        (src, node.name, {"port": port}) for node in nodes for port, src in enumerate(node.inputs)
    )


def add_node(graph: nx.DiGraph, node: Node) -> None:
    if node.name in graph:
        raise ValueError(f"duplicate IR node name {node.name!r}")
    graph.add_node(node.name, node=node)
    for port, src in enumerate(node.inputs):
        graph.add_edge(src, node.name, port=port)


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
