"""The shortcut plan: what a block's shortcut is under a policy, made in one place.

Section 3.3 of the paper: option A pads (subsample with the branch's stride, zero-pad the new
channels), B projects where the shape changes, C projects everywhere, and ``none`` drops the
addition. :func:`plan` decides from concrete values; its arguments are those values, or IR
expressions over a block's parameters for the same decision written symbolically.
"""

from __future__ import annotations

from .ir import Shortcut

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
