"""Exact parameters (trainable and not), MACs (multiply-accumulates of conv and fc) and memory,
per node, and grouped as a person reads a network: stem, stages, blocks, ops."""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import ops
from .ir import Network

BYTES = 4  # float32, as both targets train by default


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int
    buffers: int = 0  # non-trainable state: BN's running statistics


def costs(net: Network) -> dict[str, Cost]:
    """Each node's cost, in topological order. ``net`` must have passed the checker."""
    out: dict[str, Cost] = {}
    shapes: dict[str, tuple] = {}
    alike: dict[tuple, Cost] = {}  # equal ops on equal shapes cost the same: count each once
    for node in net.nodes():
        shapes[node.name] = node.shape
        ins = [shapes[i] for i in node.inputs]
        key = (node.op, node.args, tuple(ins), node.shape)
        try:
            cost = alike.get(key)
        except TypeError:  # an argument no dict can key: cost it alone
            cost, key = None, None
        if cost is None:
            opdef, args = ops.OPS[node.op], node.arg
            cost = Cost(
                opdef.params(args, ins), opdef.macs(args, ins, node.shape), opdef.buffers(args, ins)
            )
            if key is not None:
                alike[key] = cost
        out[node.name] = cost
    return out


def summary(net: Network) -> dict:
    """The stable JSON object of ``resdsl summary --json``: totals, every op, and the same ops
    grouped into a tree (stem, stages, blocks, nested blocks, ops) for ``--depth``."""
    table = costs(net)
    nodes = [node for node in net.nodes() if ops.OPS[node.op].inputs]  # every op but the input
    layers = [
        {
            "name": node.name,
            "op": node.op,
            "input": list(net.node(node.inputs[0]).shape),
            "shape": list(node.shape),
            "params": table[node.name].params,
            "non_trainable": table[node.name].buffers,
            "macs": table[node.name].macs,
        }
        for node in nodes
    ]
    params = sum(c.params for c in table.values())
    buffers = sum(c.buffers for c in table.values())
    return {
        "network": net.name,
        "input": list(net.input_shape),
        "params": params,
        "non_trainable": buffers,
        "macs": sum(c.macs for c in table.values()),
        "param_bytes": BYTES * (params + buffers),
        "activation_bytes": BYTES * sum(math.prod(node.shape) for node in nodes),
        "layers": layers,
        "groups": _tree(net, nodes, {layer["name"]: layer for layer in layers}),
    }


def _tree(net: Network, nodes, rows: dict) -> list[dict]:
    """The ops grouped: a section (stem, each stage by its container, head), then each block
    instance inside it, nested blocks inside those, and the ops at the leaves."""
    containers = {s.stage: s.container for s in net.sections if s.kind == "stage"}
    top: list[dict] = []
    groups: dict[tuple, dict] = {}

    def group(key: tuple, name: str, kind: str, parent: list) -> dict:
        if key not in groups:
            groups[key] = {"name": name, "kind": kind, "children": []}
            parent.append(groups[key])
        return groups[key]

    for node in nodes:
        if node.section == "stage":
            name = containers.get(node.stage) or f"stage {node.stage}"
            level = group(("stage", node.stage), name, "stage", top)
        else:
            level = group((node.section,), node.section, node.section, top)
        chain, block = [], node.block
        while block is not None:
            chain.append(net.block(block))
            block = chain[-1].parent
        for instance in reversed(chain):
            level = group(("block", instance.name), instance.name, instance.kind, level["children"])
        level["children"].append({**rows[node.name], "kind": node.op, "children": []})
    for item in top:
        _total(item)
    return top


def _total(item: dict) -> None:
    """A group's figures from its members: the sums, the first input and the last output."""
    if not item["children"]:
        return
    for child in item["children"]:
        _total(child)
    first, last = item["children"][0], item["children"][-1]
    item["input"], item["shape"] = first["input"], last["shape"]
    for key in ("params", "non_trainable", "macs"):
        item[key] = sum(child[key] for child in item["children"])


def units(value: float) -> str:
    """``25557032`` as ``25.56M``, as torchinfo writes totals: K, M, G and T are powers of 1000."""
    for suffix in ("", "K", "M", "G"):
        if abs(value) < 1000:
            return f"{value:.0f}" if not suffix else f"{value:.2f}{suffix}"
        value /= 1000
    return f"{value:.2f}T"
