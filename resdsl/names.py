"""Namespaces for the names generated code defines, in the manner of torch.fx's ``_Namespace``.

The IR's own names are module paths (``layer2.0.conv1``): their parts must be attribute names,
so :data:`ATTRIBUTE_RESERVED` guards them. The names a target prints (classes, functions,
parameters) come from that target's namespaces, one per generated file, over the target's own
reserved names: one target's helpers never rename another's.

A name that comes from a spec (a network, a block kind, a parameter, a nested block) is never
printed as it stands: :meth:`Namespace.create_name` turns it into an identifier that is not a
Python keyword, not a builtin, not a name the generated code itself uses, and not taken already.
A clash is renamed deterministically (``layer2`` -> ``layer2_1``), so equal specs give equal code.
"""

from __future__ import annotations

import builtins
import keyword
import re

PYTHON = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | {"None", "True", "False"}

# Attributes of torch.nn.Module (checked against the installed torch in the tests), and those
# the generated block classes define: a submodule under one of these names would replace them.
MODULE_ATTRIBUTES = frozenset(
    {
        "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init",
        "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr",
        "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule",
        "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children",
        "named_modules", "named_parameters", "parameters", "register_backward_hook",
        "register_buffer", "register_forward_hook", "register_forward_pre_hook",
        "register_full_backward_hook", "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
        "register_module", "register_parameter", "register_state_dict_post_hook",
        "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "set_submodule",
        "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu",
        "zero_grad",
        # the generated classes' own members
        "downsample", "branch_bns", "last_bn",
        # nn.Sequential's and nn.ModuleDict's methods: a label in a group or a shortcut, and a
        # part of a stage's module path, are keys of one
        "append", "extend", "insert", "pop", "clear", "items", "keys", "update", "values",
    }
)  # fmt: skip

ATTRIBUTE_RESERVED = PYTHON | MODULE_ATTRIBUTES
RESERVED = PYTHON | frozenset(dir(builtins))  # what no generated global or parameter may be


def module_suffix(count: int, numbered: bool) -> str:
    """The number a module path's part carries, as torchvision names them: the ``count``-th op
    of a kind is ``conv1``, ``bn2`` for numbered kinds, ``relu``, ``relu2`` for the others."""
    return str(count) if numbered or count > 1 else ""


def counted(kind: str, label: str, numbered: bool) -> int:
    """The count a label stands for where it is the name the ``count``-th op of ``kind`` would
    take (`conv1:` on a conv is the first conv, `relu2:` the second relu), so that the next op
    left unlabelled is numbered after it; 0 where it is another name."""
    digits = label[len(kind) :] if label.startswith(kind) else None
    if digits is None or digits and not digits.isdigit() or digits.startswith("0"):
        return 0
    count = int(digits or 1)
    return count if module_suffix(count, numbered) == digits else 0


# a numbered container's member (nn.Sequential's keys): 0, 1, ... or block1-0, b1 (a stage's
# `names`), which a module path holds though they are no Python names
MEMBER = re.compile(r"[0-9]+|[A-Za-z][A-Za-z0-9_-]*")


class Namespace:
    """Allocates unique names: ``create_name`` never returns a reserved or a used name."""

    def __init__(self, reserved=frozenset(), numbered: bool = False):
        self.reserved = frozenset(reserved)
        self.used: set[str] = set()
        self.numbered = numbered  # allow "0", "1", ...: torch.nn.Sequential's member names

    def create_name(self, candidate: str) -> str:
        name = self._sanitize(candidate)
        base, n = name, 0
        while self.taken(name):
            n += 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name

    def taken(self, name: str) -> bool:
        """Whether ``name`` is used or reserved here."""
        return name in self.used or name in self.reserved

    def reserve(self, name: str) -> None:
        self.used.add(name)

    def _sanitize(self, candidate: str) -> str:
        if candidate.isidentifier() and candidate.isascii() and candidate[0] != "_":
            return candidate  # the usual case, kept fast: a network has thousands of names
        if self.numbered and MEMBER.fullmatch(candidate):
            return candidate  # a container's member: 0, 1, ..., or as a stage's `names` gives
        name = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in candidate)
        if not name or name[0].isdigit():
            name = "m" + name
        if name.startswith("_"):  # private attributes belong to the framework
            name = "m" + name
        return name


# words whose usual spelling in a class name is not just capitalised
WORDS = {"resnet": "ResNet", "resnext": "ResNeXt", "preact": "PreAct"}


def class_name(name: str) -> str:
    """A class name as torchvision spells one: ``resnext50_32x4d`` -> ``ResNeXt50_32x4d``,
    ``wide_resnet50_2`` -> ``WideResNet50_2``, ``bottleneck_v1_5`` -> ``BottleneckV1_5``.

    Each part is capitalised (known words spelled as usual); an underscore stays only between
    two digits, where dropping it would run two numbers together.
    """
    out = ""
    for part in filter(None, name.split("_")):
        word = re.match(r"[A-Za-z]*", part).group()
        spelled = WORDS.get(word.lower(), word[:1].upper() + word[1:]) + part[len(word) :]
        if out and out[-1].isdigit() and spelled[:1].isdigit():
            out += "_"
        out += spelled
    return out or "Net"


def private(name: str, what: str) -> str | None:
    """Why a name the user gives (a label, a group, a stage path's part) cannot name ``what``:
    one that starts with `_` is private in Python, which keeps ``self.__g`` as ``_Net__g``, so
    the targets' keys would not be the IR's. None where it can."""
    if name.startswith("_"):
        return f"`{name}` cannot name {what}: a name starting with `_` is private in Python"
    return None


def stage_paths(stages: list) -> tuple[list[str], list]:
    """Each stage's container (its module path, or layer1, layer2, ... as torchvision's), and the
    errors of paths that cannot be one (a stage section's ``name`` and ``name_span``).

    A path's parts are attribute names (numbers below its first part, as nn.Sequential's);
    no path is another's or inside another's, so each names a module of its own.
    """
    from .errors import SpecError

    paths, errors = [s.name or f"layer{n}" for n, s in enumerate(stages, 1)], []
    for section in stages:
        parts = section.name.split(".") if section.name else []
        bad = next((p for p in parts if p in ATTRIBUTE_RESERVED or p.startswith("_")), None)
        if bad is not None:
            problem = private(bad, "a stage's module") or (
                f"`{bad}` cannot name a stage's module: the generated code needs it"
            )
            errors.append(
                SpecError(
                    problem,
                    section.name_span,
                    "a module path is attribute names and numbers, e.g. `stages.0.blocks`",
                    code="RDS117",
                )
            )
    for later in range(len(stages)):
        for first in range(later):
            a, b = paths[first] + ".", paths[later] + "."
            if not (a.startswith(b) or b.startswith(a)):
                continue
            at = later if stages[later].name else first  # the one the spec named
            errors.append(
                SpecError(
                    f"the stage's module `{paths[at]}` clashes with the stage module "
                    f"`{paths[first + later - at]}`",
                    stages[at].name_span,
                    "each stage needs a module of its own, e.g. stages.0.blocks, "
                    "stages.1.blocks, ...",
                    code="RDS116",
                )
            )
    return paths, errors
