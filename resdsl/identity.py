"""A network's identity: what a checkpoint or a weights file must match to be this network's.

Names and shapes are not enough: the same weights fit a network with another shortcut (A and
`none` have no weights) or with a stride moved to another block. The identity is a digest of the
IR in eval mode (every node's op, its arguments other than defaults, inputs and shape; the input
and the classes), and beside it the few facts that tell a person what differs: the shortcut plan,
the blocks, where the maps shrink and the parameter count. The network's name is shown but is not
part of the digest, so a renamed spec still reads its old checkpoints; the arguments of
stochastic ops (dropout and droppath rates, the identity in eval) are left out, so a run can be
fine-tuned at another rate.

Each target's generated model.py holds the identity as a literal, IDENTITY, and the function
`identity_problem` below, copied from here verbatim: the comparison is written once.
"""

from __future__ import annotations

import hashlib
import inspect
import json

from . import ops
from .costs import costs
from .ir import Network

KEY = "resdsl:identity"  # its name in a .npz of weights; never an IR name (they have no `:`)


def identity(net: Network) -> dict:
    """The network's identity, a dict of JSON values (see the module's docstring)."""
    nodes = net.nodes()
    structure = [
        [
            node.name,
            node.op,
            [] if ops.OPS[node.op].stochastic else _given(node.op, node.args),
            list(node.inputs),
            list(node.shape),
        ]
        for node in nodes
    ]
    text = json.dumps([list(net.input_shape), net.classes, structure], separators=(",", ":"))
    tops = [b for b in net.blocks if b.parent is None]
    kinds = {}
    for block in tops:
        kinds[block.kind] = kinds.get(block.kind, 0) + 1
    policies = dict.fromkeys(b.shortcut.policy or b.shortcut.kind for b in tops)
    return {
        "network": net.name,
        "input": "x".join(map(str, net.input_shape)),
        "classes": net.classes,
        "shortcut": ", ".join(policies) or "none",
        "blocks": ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "none",
        "downsampling": ", ".join(_shrinking(net)) or "none",
        "parameters": sum(c.params for c in costs(net).values()),
        "digest": hashlib.sha256(text.encode()).hexdigest()[:32],
    }


def _given(op: str, args) -> list[list[str]]:
    """An op's arguments that are not at their defaults: an argument a later resdsl adds, at its
    default, leaves the identity of a network as it was (its checkpoints still load)."""
    defaults = {a.name: a.default for a in ops.OPS[op].args}
    return [[k, repr(v)] for k, v in args if k not in defaults or v != defaults[k]]


def _shrinking(net: Network) -> list[str]:
    """Where the maps shrink, by name: blocks (as a whole) and the ops outside blocks; global
    pools and what flattens are left out (every network ends so)."""
    out = []  # (where it ends, its name)
    for block in net.blocks:
        if block.parent is None and _shrinks(net, block.input, block.output):
            out.append((block.output, block.name))
    for node in net.nodes():
        if node.block is None and node.inputs and _shrinks(net, node.inputs[0], node.name):
            out.append((node.name, node.name))
    order = {node.name: i for i, node in enumerate(net.nodes())}
    return [name for end, name in sorted(out, key=lambda item: order[item[0]])]


def _shrinks(net: Network, before: str, after: str) -> bool:
    (_, h0, w0), (_, h1, w1) = net.node(before).shape, net.node(after).shape
    return (h1, w1) != (h0, w0) and (h1, w1) != (1, 1)


def identity_problem(held, ours, what="checkpoint"):
    """Why the `what` whose identity is `held` is not of the network `ours`; None if it
    is. `held` comes from a file: IDENTITY's dict or its JSON text, a network's name (the
    files of older versions), or None (it has none: the names and shapes decide)."""
    if isinstance(held, str):
        try:
            parsed = json.loads(held)
        except ValueError:
            parsed = None
        held = parsed if isinstance(parsed, dict) else held
    if held is None:
        return None
    if not isinstance(held, dict):
        if str(held) == ours["network"]:
            return None
        return f"{what} of {str(held)[:80]!r}; this is {ours['network']!r}"
    if held.get("digest") == ours["digest"]:
        return None
    facts = {
        "input": "input {}",
        "classes": "{} classes",
        "shortcut": "shortcut {}",
        "blocks": "blocks {}",
        "downsampling": "downsampling at {}",
        "parameters": "{} parameters",
    }
    differ = [fact for fact in facts if str(held.get(fact)) != str(ours[fact])]

    def say(identity):
        name = str(identity.get("network", "another network"))[:80]
        told = []
        for fact in differ:
            value = identity.get(fact, "?")
            value = f"{value:,}" if type(value) is int else str(value)[:120]
            told.append(facts[fact].format(value))
        return f"{name} with {' and '.join(told)}" if told else name

    if not differ:
        return f"{what} of {say(held)}, whose layers differ from those of {say(ours)}"
    return f"{what} of {say(held)}; this is {say(ours)}"


SOURCE = inspect.getsource(identity_problem)  # what each model.py holds
