"""Structure recovery, the middle of `resdsl import`: a source's graph of ops as residual blocks.

- a **block** is the innermost module that holds a residual addition; its two operands are the
  **branch** and the **shortcut** (the block's input itself, or a path of its own `downsample`
  module, read from the input or from a point of the branch, the unit's `tap`);
- a **gate** is a side path joined back by ``mul`` (squeeze-and-excitation, ECA), the ops of one
  module of the block.

What has another structure is refused by its module path, never guessed. :mod:`resdsl.importer`
groups the blocks into stages and definitions and writes the spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ResdslError
from .ops import OPS, complete
from .reading import Op, refuse
from .sources import Source


@dataclass(eq=False)
class Block:
    """One residual block of the source: its branch and post ops in order, and its shortcut."""

    path: str  # "layer1.0"
    cls: str  # its module's class name, for its definition's name
    body: list  # Ops, with the strings "tap" and "add" where those statements go
    shortcut: list  # (local name, Op or None where the source has an identity)
    from_tap: bool
    first: int  # its ops' span in the trace
    last: int
    stride: int = 1
    in_channels: int = 0
    out_channels: int = 0

    @property
    def container(self) -> str:
        return self.path.rpartition(".")[0]


def _inside(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def blocks(source: Source, ops: list[Op]) -> list[Block]:
    """Each residual addition's block, in order."""
    index = {id(op): i for i, op in enumerate(ops)}
    for op in ops:
        if op.kind in _JOIN_WORDS and len(op.inputs) != 2:
            raise refuse(
                f"{op.scope or TOP}: {_JOIN_WORDS[op.kind]} of "
                f"{len(op.inputs)} tensors has no resdsl form (it joins two)"
            )
    found: list[Block] = []
    for add in (op for op in ops if op.kind == "add"):
        path = add.scope
        if not path:
            raise refuse(f"{TOP}: an addition outside a block has no resdsl form")
        if found and found[-1].path == path:
            raise refuse(f"{path}: a block with two additions has no resdsl form")
        members = [i for i, op in enumerate(ops) if _inside(op.path, path)]
        if members != list(range(members[0], members[-1] + 1)):
            raise refuse(f"{path}: its ops are not together in the network's order")
        inside = {id(ops[i]) for i in members}
        outside = {id(x): x for i in members for x in ops[i].inputs if id(x) not in inside}
        if len(outside) != 1:
            raise refuse(f"{path}: a block reads {len(outside)} tensors from outside it, not 1")
        (start,) = outside.values()
        try:
            found.append(_block(source, path, ops, members, inside, start, add, index))
        except ResdslError:
            raise
        except Exception as exc:  # noqa: BLE001 - a block unlike any tried: named, not a traceback
            raise refuse(
                f"{path}: resdsl import cannot read this block's structure "
                f"({type(exc).__name__}: {exc})",
                "its ops are not a branch and a shortcut joined by one addition as resdsl "
                "reads them; please report the model",
            ) from None
    return found or _plain(source, ops)


# how messages name a join, and the network's own code
TOP = "the network's forward()"
_JOIN_WORDS = {"add": "an addition", "mul": "a multiplication", "concat": "a concatenation"}


def outside_blocks(ops: list[Op], blocks: list[Block]) -> None:
    """Refuses a stem or head that is not one line of layers: a join outside every block, or a
    layer that reads another than the one before it."""
    taken = {i for b in blocks for i in range(b.first, b.last + 1)}
    for i, op in enumerate(ops):
        if i == 0 or i in taken:
            continue
        where = op.scope or TOP
        if op.kind in _JOIN_WORDS and not op.scope:
            raise refuse(f"{TOP}: {_JOIN_WORDS[op.kind]} outside a block has no resdsl form")
        if op.kind in _JOIN_WORDS:  # in a module that holds no residual addition
            raise refuse(
                f"{where}: {_JOIN_WORDS[op.kind]} in a module without a residual addition has "
                "no resdsl form yet"
            )
        if op.inputs != [ops[i - 1]]:
            raise refuse(
                f"{op.path or where}: a {op.kind} that reads another layer than the one before "
                "it, outside a block, has no resdsl form (a stem and a head are one line of layers)"
            )


def _stride(line: list[Op]) -> int:
    """The stride of a line of ops (a gate's strides are not its block's: it is no Op)."""
    return math.prod(OPS[op.kind].stride(complete(op.kind, op.args)) for op in line)


def _plain(source: Source, ops: list[Op]) -> list[Block]:
    """A network without additions (the paper's plain networks): its blocks are the numbered
    members of containers (``layer1.0``) whose ops are one line, each a block without `add`."""
    runs: list[tuple[str, list[int]]] = []
    for i, op in enumerate(ops):
        parts = op.path.split(".")
        at = next((k for k in range(1, len(parts) - 1) if parts[k].isdigit()), None)
        path = ".".join(parts[: at + 1]) if at is not None else None
        if path is None or runs and runs[-1][0] != path and any(r[0] == path for r in runs):
            if path is not None:
                raise refuse(f"{path}: its ops are not together in the network's order")
            continue
        if runs and runs[-1][0] == path:
            runs[-1][1].append(i)
        else:
            runs.append((path, [i]))
    found = []
    for path, members in runs:
        if members != list(range(members[0], members[-1] + 1)):
            return []  # layers between a block's: not a line of blocks, but a stem or head
        body = [ops[i] for i in members]
        if any(op.inputs != [ops[i - 1]] for i, op in zip(members, body, strict=True)):
            raise refuse(f"{path}: a block without an addition that is not one line of layers")
        stride = _stride(body)
        start = ops[members[0] - 1]
        found.append(
            Block(
                path,
                source.kind(path),
                body,
                [],
                False,
                members[0],
                members[-1],
                stride,
                start.shape[0],
                body[-1].shape[0],
            )  # fmt: skip
        )
    return found


def _ancestors(op: Op, inside: set, stop: Op) -> list[Op]:
    """The block's ops that ``op`` depends on, ``op`` first."""
    out, todo, seen = [], [op], set()
    while todo:
        x = todo.pop()
        if id(x) in seen or id(x) not in inside:
            continue
        seen.add(id(x))
        out.append(x)
        todo += x.inputs
    return out


def _block(source, path, ops, members, inside, start, add, index) -> Block:
    a, b = add.inputs
    left, right = _ancestors(a, inside, start), _ancestors(b, inside, start)
    overlap = {id(x) for x in left} & {id(x) for x in right}
    prefix = path + ".downsample"

    def own(chain):  # a side's ops that the other side does not read
        return [x for x in chain if id(x) not in overlap]

    def is_path(chain):
        return bool(own(chain)) and all(_inside(x.path, prefix) for x in own(chain))

    if not left or not right:  # the input itself is one side: the identity
        branch_end, side = (a, []) if left else (b, [])
    elif is_path(right):
        branch_end, side = a, own(right)
    elif is_path(left):
        branch_end, side = b, own(left)
    else:
        names = sorted({x.path for x in left + right if not _inside(x.path, prefix)})
        raise refuse(
            f"{path}: neither side of its addition is a shortcut (an identity, or ops of {prefix})",
            f"the ops {', '.join(names[:4])} feed both sides" if names else None,
        )
    side.sort(key=lambda x: index[id(x)])
    reads = side[0].inputs[0] if side else start
    from_tap = reads is not start
    branch = [ops[i] for i in members if ops[i] is not add and all(ops[i] is not s for s in side)]
    body: list = []
    for op in branch:
        if index[id(op)] > index[id(add)] and "add" not in body:
            body.append("add")
        body.append(op)
        if from_tap and op is reads:
            body.append("tap")
    if "add" not in body:
        body.append("add")
    body = _gates(source, path, body, inside, start)
    previous = start
    for item in body:
        if isinstance(item, str):
            if item == "add":
                previous = add
            continue
        if isinstance(item, Gate):
            if item.main is not previous:
                raise refuse(f"{item.path}: a gate off the block's line of ops")
            previous = item.join
            continue
        if item.kind in JOINS or len(item.inputs) != 1 or item.inputs[0] is not previous:
            raise refuse(
                f"{item.path}: a {item.kind} off the block's one line of ops has no resdsl "
                "form in an imported block yet"
            )
        previous = item
    before = [x for x in body[: body.index("add")] if not isinstance(x, str)]
    if not before or branch_end is not (
        before[-1].join if isinstance(before[-1], Gate) else before[-1]
    ):
        raise refuse(f"{path}: its addition does not end its branch")
    shortcut = _shortcut_slots(source, prefix, side)
    stride = _stride([op for op in body[: body.index("add")] if isinstance(op, Op)])
    return Block(
        path,
        source.kind(path),
        body,
        shortcut,
        from_tap,
        members[0],
        members[-1],
        stride,
        start.shape[0],
        add.shape[0],
    )


@dataclass(eq=False)
class Gate:
    """A side path joined back by ``mul`` (squeeze-and-excitation, ECA): the ops of one module
    of the block (``se``), written as a call of a block of their own:
    ``mul { se: se_module 16 256 }``."""

    path: str  # "layer1.0.se"
    child: str  # "se"
    kind: str  # its module's class, which names its definition
    ops: list  # the path's ops, in order
    main: Op  # what it reads, and what the join multiplies or extends
    join: Op  # the mul or concat

    @property
    def inline(self) -> bool:
        """Whether it is one layer, written in its join as it stands: ``concat { side: conv 4
        1x1 }``; else a block of its own is called there."""
        return len(self.ops) == 1 and self.ops[0].path == self.path


# the joins of a side path back to the tensor it left: whether their order is fixed (concat
# appends the side path's channels; a mul's operands may come either way)
JOINS = {"mul": False, "concat": True}


def _gates(source: Source, path: str, body: list, inside: set, start: Op) -> list:
    """The body with each gate's ops and its join made one :class:`Gate`."""
    out, taken = [], set()
    for item in body:
        if isinstance(item, str) or item.kind not in JOINS:
            out.append(item)
            continue
        a, b = item.inputs
        main, end = (a, b) if a in _ancestors(b, inside, start) or JOINS[item.kind] else (b, a)
        if main not in _ancestors(end, inside, start) and main is not start:
            raise refuse(f"{item.scope}: a {item.kind} of two paths that do not start together")
        before = {id(x) for x in _ancestors(main, inside, start)}
        order = {id(x): n for n, x in enumerate(body)}
        ops = sorted(
            (x for x in _ancestors(end, inside, start) if id(x) not in before),
            key=lambda x: order.get(id(x), -1),
        )
        children = {x.path[len(path) + 1 :].split(".")[0] for x in ops}
        if len(children) != 1 or not ops or "" in children:
            raise refuse(f"{item.scope}: a gate whose layers are not one module of {path}")
        (child,) = children
        taken |= {id(x) for x in ops}
        out.append(Gate(f"{path}.{child}", child, source.kind(f"{path}.{child}"), ops, main, item))
    return [x for x in out if isinstance(x, (str, Gate)) or id(x) not in taken]


def _shortcut_slots(source: Source, prefix: str, side: list[Op]) -> list:
    """A shortcut's ops by their names in its container, with None where it holds an identity."""
    if not side:
        return []
    names = source.members(prefix) or []
    by_name = {}
    for op in side:
        local = op.path[len(prefix) + 1 :]
        if not local or "." in local:
            raise refuse(f"{op.path}: a shortcut's op must be a direct member of {prefix}")
        by_name.setdefault(local, op)
    slots = [(n, by_name.get(n)) for n in names]
    while slots and slots[-1][1] is None:  # a trailing identity (timm's DownsampleConv.norm)
        slots.pop()
    if {n for n, op in slots if op} != set(by_name) or any(len(x.inputs) != 1 for x in side):
        raise refuse(f"{prefix}: a shortcut that is not one line of layers has no resdsl form")
    return slots
