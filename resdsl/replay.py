"""Equal block instances, made once: a run of equal blocks (`basic 16 x 200`) makes the same nodes
again and again under other names, so the first instance is elaborated and its copies are made
from its nodes, renamed.

A :class:`Copies` holds what the first instances made, by a key that holds everything their
elaboration read: the definition, its bound values, the input's shape, the policy, the section
and stage, and the call sites (the spans of ops that the prelude's blocks make). It knows nothing
of the elaborator: it is given the nodes and block instances an instance made, and gives back a
copy's, which the elaborator adds. Only an outermost block with no errors is remembered, and none
where stochastic depth gives each block its own rate (the elaborator does not ask then).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .ir import BlockInstance, Node


@dataclass
class Made:
    """What one block instance made: its nodes and block instances, with the names they had."""

    prefix: str  # its nodes' name prefix, "layer1.0."
    path: str  # their human paths' prefix, "stage 1 › block 1 › "
    block: str  # its instance's name, "layer1.0"
    input: str  # the node it read
    nodes: list[Node]
    blocks: list[BlockInstance]  # nested instances first, then its own


@dataclass
class Copy:
    """A copy's nodes and block instances, and the node it ends at."""

    nodes: list[Node]
    blocks: list[BlockInstance]
    output: str


class Copies:
    def __init__(self):
        self.made: dict[tuple, Made] = {}

    @staticmethod
    def key(kind, values, shape, policy, section, stage, sites, call, parent) -> tuple | None:
        """The key of an instance of ``kind``, or None where one cannot be made (a value that
        no dict can key)."""
        key = (kind, tuple(values.items()), shape, policy, section, stage)
        key += (tuple(sites), call.span, parent)
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def remember(
        self, key, prefix: str, path: str, block: str, block_input: str, nodes, blocks
    ) -> None:
        """What the instance named ``block`` made, where renaming its prefix can copy it."""
        inside = {n.name for n in nodes} | {b.name for b in blocks}
        if not all(n.startswith(prefix) or n == block for n in inside):
            return  # a name outside the block's own: not a copy that renaming can make
        if not all(node.path.startswith(path) for node in nodes):
            return
        self.made[key] = Made(prefix, path, block, block_input, list(nodes), list(blocks))

    def size(self, key) -> int | None:
        """How many nodes a copy under ``key`` makes; None where there is nothing to copy."""
        made = self.made.get(key)
        return None if made is None else len(made.nodes)

    def copy(self, key, prefix: str, path: str, block: str, start: str, local: str) -> Copy:
        """The remembered instance as block ``block`` reading ``start``, its nodes under
        ``prefix`` and ``path``; ``local`` its name in its container."""
        made = self.made[key]
        cut, cut_path = len(made.prefix), len(made.path)

        def rename(name):
            if name is None:
                return None
            if name == made.input:
                return start
            if name == made.block:
                return block
            return prefix + name[cut:] if name.startswith(made.prefix) else name

        nodes = [
            replace(
                node,
                name=prefix + node.name[cut:],
                inputs=tuple(rename(i) for i in node.inputs),
                path=path + node.path[cut_path:],
                block=rename(node.block),
            )
            for node in made.nodes
        ]
        blocks = []
        for instance in made.blocks:
            outer = instance.name == made.block
            blocks.append(
                replace(
                    instance,
                    name=rename(instance.name),
                    input=rename(instance.input),
                    output=rename(instance.output),
                    parent=instance.parent if outer else rename(instance.parent),
                    local=local if outer else instance.local,
                )
            )
        return Copy(nodes, blocks, rename(made.blocks[-1].output))

    def originals(self, key) -> list[Node]:
        """The remembered instance's nodes, in the order they were made."""
        return self.made[key].nodes
