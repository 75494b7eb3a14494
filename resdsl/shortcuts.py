"""The shortcut plan: what a block's shortcut is under a policy, made in one place.

Section 3.3 of the paper: option A pads (subsample with the branch's stride, zero-pad the new
channels), B projects where the shape changes, C projects everywhere, and ``none`` drops the
addition. :func:`plan` decides from concrete values; its arguments are those values, or IR
expressions over a block's parameters for the same decision written symbolically.
"""

from __future__ import annotations

from . import ops
from . import syntax as ast
from .ir import Shortcut
from .names import ATTRIBUTE_RESERVED, Namespace

POLICIES = ("A", "B", "C", "none")


def plan(policy: str, stride: int, in_channels: int, out_channels: int, symbolic=None) -> Shortcut:
    """The shortcut of a branch that strides by ``stride`` and maps ``in_channels`` to
    ``out_channels`` (where the shortcut joins it), under ``policy`` (A, B or C).

    ``symbolic``, where given, is ``(stride, out_channels)`` as expressions: the plan is the one
    the values decide, with its arguments written over the block's parameters.
    """
    step, channels = symbolic or (stride, out_channels)
    resolution, width = stride > 1, in_channels != out_channels
    if policy == "C" or policy == "B" and (resolution or width):
        return Shortcut("projection", policy, step, channels)
    if policy == "A" and (resolution or width):
        return Shortcut("pad", policy, step if resolution else None, channels if width else None)
    return Shortcut("identity", policy)


class Joins:
    """The elaborator's shortcuts (a mixin): the plan made into nodes where a block adds."""

    def _shortcut(
        self, block_input: str, first_node: int, policy: str, scope, stmt: ast.Add
    ) -> tuple[Shortcut, tuple[int, int, int] | None]:
        """Join the shortcut to the residual branch that ends at ``self.current``.

        Returns the shortcut and what decided it: the branch's stride, the block's input
        channels and the channels where the shortcut joins (None where a shape is unknown).
        """
        branch = self.current
        nodes = self.graph.nodes
        in_shape = nodes[block_input]["node"].shape
        out_shape = nodes[branch]["node"].shape
        # the branch's total stride, leaving out the shortcuts of blocks nested in it
        stride = 1
        for name in self.order[first_node:]:
            node = nodes[name]["node"]
            if node.role != "shortcut":
                stride *= ops.OPS[node.op].stride(node.arg)
        shortcut, source, decided = Shortcut("identity", policy), block_input, None
        if in_shape is not None and out_shape is not None:
            decided = (stride, in_shape[0], out_shape[0])
            shortcut = plan(policy, *decided)
            sub = scope.child(
                "downsample",
                "shortcut",
                names=Namespace(ATTRIBUTE_RESERVED, numbered=True),
                block=scope.block,
                role="shortcut",
            )
            self.current = block_input
            for op, args in shortcut.ops():
                self._emit(op, ops.complete(op, args), stmt.span, sub)
            source = self.current
        scope.role = "add"
        self.current = branch
        self._emit("add", {}, stmt.span, scope, inputs=(branch, source), symbolic={})
        return shortcut, decided
