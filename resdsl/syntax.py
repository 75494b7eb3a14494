"""The abstract syntax tree: small frozen dataclasses, each carrying its source span."""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass

from .errors import Source, Span

# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Dims:
    """A literal such as ``3x3`` or ``3x32x32``."""

    values: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * //
    left: Expr
    right: Expr
    span: Span
    depth: int = 1  # operators on the longest path down: the parser limits it


Expr = Num | Dims | Name | BinOp

# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class Kwarg:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    """``name args... key=value... [x count]``: a layer or a block."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    repeat: Expr | None
    span: Span
    name_span: Span
    label: str | None = None  # `fc1: conv ...`: its name in the generated code
    label_span: Span | None = None


@dataclass(frozen=True)
class Join:
    """``mul { ... }`` or ``concat { ... }``: a side path from the tensor so far, joined back
    to it by ``kind``."""

    kind: str  # mul | concat
    body: tuple[Call, ...]
    span: Span


@dataclass(frozen=True)
class Tap:
    """The point of a block's branch that a shortcut's ``from tap`` case starts from."""

    span: Span


@dataclass(frozen=True)
class Add:
    """The point where a block's shortcut joins its residual branch; ``label`` names the
    shortcut's container (``proj: add``), ``downsample`` where it is None."""

    span: Span
    label: str | None = None
    label_span: Span | None = None


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span
    name_span: Span | None = None  # the name alone, where errors about it point


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Call | Add | Tap | Join, ...]
    span: Span
    name_span: Span | None = None  # the name alone, where errors about it point


@dataclass(frozen=True)
class Case:
    """One case of a shortcut definition: ``keep``, ``change`` or ``always``, and its ops.

    ``body`` is None for ``off``: the block adds nothing in this case.
    """

    name: str
    body: tuple[Call, ...] | None
    span: Span
    name_span: Span
    from_tap: bool = False  # its ops start at the block's `tap`, not at its input


@dataclass(frozen=True)
class ShortcutDef:
    """``shortcut B { change { conv out 1x1 stride=stride; bn } }``: a shortcut policy."""

    name: str
    cases: tuple[Case, ...]
    span: Span
    name_span: Span | None = None


@dataclass(frozen=True)
class Group:
    """``group conv1 { ... }``: layers and blocks in one container, numbered from 0; without a
    name, a member of the container it is in, under its number."""

    name: str | None
    body: tuple[Call | Group, ...]
    span: Span
    name_span: Span | None


@dataclass(frozen=True)
class Setting:
    """One statement of a network body: ``input``, ``classes``, ``shortcut`` or ``stride``."""

    key: str
    value: object  # tuple of ints for input, Expr for classes and stride, str for shortcut
    span: Span
    value_span: Span | None = None  # input's dims and shortcut's name, where errors point


@dataclass(frozen=True)
class Section:
    """``stem { ... }``, ``stage { ... }`` or ``head { ... }``."""

    kind: str
    body: tuple[Call | Group | Setting, ...]
    span: Span
    name: str | None = None  # a stage's container, where its module path is given
    name_span: Span | None = None


@dataclass(frozen=True)
class NetworkDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Setting | Section, ...]
    span: Span
    name_span: Span | None = None  # the name alone, where errors about it point

    def statements(self) -> list:
        """Its settings and its sections' statements, in order: the sections opened."""
        return [
            s for part in self.body for s in (part.body if isinstance(part, Section) else [part])
        ]


@dataclass(frozen=True)
class NetworkInst:
    """``network resnet110 = cifar_resnet(n = 18) [shortcut P]``."""

    name: str
    family: str
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    shortcut: str | None
    span: Span
    family_span: Span
    name_span: Span | None = None
    shortcut_span: Span | None = None  # the shortcut's name, where one is given


# ---------------------------------------------------------------- training


@dataclass(frozen=True)
class Option:
    """A name and its values, e.g. ``lr 0.1`` or ``at 32000, 48000``."""

    name: str
    values: tuple[Value, ...]
    span: Span


@dataclass(frozen=True)
class Value:
    kind: str  # int, float, percent, ratio
    value: object
    span: Span


@dataclass(frozen=True)
class TrainDef:
    name: str
    settings: tuple[tuple[Option, ...], ...]
    span: Span
    name_span: Span | None = None  # the name alone, where errors about it point


# ---------------------------------------------------------------- files


@dataclass(frozen=True)
class Import:
    path: str
    span: Span


@dataclass(frozen=True)
class Module:
    source: Source
    items: tuple[Import | BlockDef | ShortcutDef | NetworkDef | NetworkInst | TrainDef, ...]


def bare(node) -> object:
    """What a tree says, without where it was written: its fields as nested tuples, spans and
    sources left out, so that two trees written apart compare equal where they mean the same."""
    if isinstance(node, tuple):
        return tuple(bare(item) for item in node)
    if not is_dataclass(node) or isinstance(node, Span | Source):
        return node
    kept = (f.name for f in fields(node) if not f.name.endswith("span") and f.name != "source")
    return (type(node).__name__, *(bare(getattr(node, name)) for name in kept))
