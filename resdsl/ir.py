"""The IR: a networkx DiGraph with one node per primitive op.

Node keys are stable dotted names in torchvision's convention (``conv1``, ``layer1.0.conv1``,
``layer2.0.downsample.0``, ``fc``); each key's ``node`` attribute is a frozen :class:`Node`.
Edges carry ``port``, the position of the source among the destination's inputs. The graph's
node order is a topological order: every node comes after its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .errors import Span
from .ops import Shape


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    args: tuple[tuple[str, Any], ...]
    inputs: tuple[str, ...]
    shape: Shape | None  # None where the op cannot work; the checker reports why
    span: Span
    path: str  # for people: "stage 2 › block 1 › conv 2"
    block: str | None = None  # the block instance it belongs to, e.g. "layer2.0"
    role: str | None = None  # within a block: branch | shortcut | add | post

    @property
    def arg(self) -> dict[str, Any]:
        return dict(self.args)


@dataclass(frozen=True)
class BlockInstance:
    """One expanded block: which nodes it owns and what its shortcut became."""

    name: str  # "layer2.0"
    kind: str  # the block definition's name, e.g. "basic"
    stage: int | None  # 1-based stage number, None outside stages
    args: tuple[tuple[str, Any], ...]
    shortcut: str  # identity | A | projection | none (no addition) | plain (the block has no add)
    input: str  # the node the block reads
    output: str  # the node the block ends with
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
    definitions: dict = field(default_factory=dict, repr=False, compare=False)  # kind -> BlockDef

    def nodes(self) -> list[Node]:
        """Every node, in topological order."""
        return [data["node"] for _, data in self.graph.nodes(data=True)]

    def node(self, name: str) -> Node:
        return self.graph.nodes[name]["node"]

    @property
    def output(self) -> Node:
        return self.nodes()[-1]


def add_node(graph: nx.DiGraph, node: Node) -> None:
    if node.name in graph:
        raise ValueError(f"duplicate IR node name {node.name!r}")
    graph.add_node(node.name, node=node)
    for port, src in enumerate(node.inputs):
        graph.add_edge(src, node.name, port=port)
