"""Exact trainable parameters and MACs (multiply-accumulates of conv and fc), per node."""

from __future__ import annotations

from dataclasses import dataclass

from . import ops
from .ir import Network


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int


def costs(net: Network) -> dict[str, Cost]:
    """Each node's cost, in topological order. ``net`` must have passed the checker."""
    out = {}
    for node in net.nodes():
        opdef = ops.OPS[node.op]
        ins = [net.node(i).shape for i in node.inputs]
        args = node.arg
        out[node.name] = Cost(opdef.params(args, ins), opdef.macs(args, ins, node.shape))
    return out


def summary(net: Network) -> dict:
    """The stable JSON object of ``resdsl summary --json``."""
    table = costs(net)
    layers = [
        {
            "name": node.name,
            "op": node.op,
            "shape": list(node.shape),
            "params": table[node.name].params,
            "macs": table[node.name].macs,
        }
        for node in net.nodes()
        if ops.OPS[node.op].inputs  # every op but the input
    ]
    return {
        "network": net.name,
        "input": list(net.input_shape),
        "params": sum(c.params for c in table.values()),
        "macs": sum(c.macs for c in table.values()),
        "layers": layers,
    }
