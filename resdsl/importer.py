"""`resdsl import`: an existing ResNet as a short spec, and the proof that nothing was lost.

The source is traced with torch.fx, its leaves kept whole (convs, norms, pools, activations), so
the graph is the network's data flow with each call's module path. The structure is read off it:

- a **block** is the innermost module that holds a residual addition; its two operands are the
  **branch** and the **shortcut** (the block's input itself, or a path of its own `downsample`
  module, read from the input or from a point of the branch, the unit's `tap`);
- **stages** are runs of blocks in one container (``layer1``, ``stages.0.blocks``);
- the **stem** and **head** are what comes before the first block and after the last; a module
  path with a container in it (timm's deep stem, ``conv1.0``) becomes a `group`.

Blocks of one form share a definition whose arguments are read across them (the first conv's
channels are ``width``, a channel count that is a multiple of it is written so, a varying stride
is ``stride``), and where the definition is one of the prelude's it is used as it stands; so are
the prelude's shortcuts. Module names are kept, with labels where resdsl's own names differ, so
the state_dict keys stay the source's. Then :func:`verify` compiles the spec for PyTorch, loads the
source's state_dict with ``strict=True`` and compares logits.

What has no spelling is refused by its module path and op, never guessed.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import operator
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ResdslError, did_you_mean

INPUT_SIZE = (3, 224, 224)  # torchvision's and timm's default, where a model does not say


class ImportError_(ResdslError):  # noqa: N801 - not the builtin ImportError
    """A source that cannot be imported: unknown, failing, or with no resdsl form."""


def refuse(message: str, hint: str | None = None, code: str = "RDS432") -> ImportError_:
    return ImportError_(message, hint=hint, code=code)


# ---------------------------------------------------------------- sources


@dataclass
class Source:
    """A model to import: a PyTorch module, or (:mod:`resdsl.onnx_import`) an ONNX graph."""

    model: object  # the nn.Module, in eval mode; None for an ONNX graph
    name: str  # the network's name in the spec
    origin: str  # what the user asked for, for the spec's header
    input_shape: tuple[int, int, int] = INPUT_SIZE

    def ops(self) -> list[Op]:
        return trace(self.model, self.input_shape)

    def kind(self, path: str) -> str:
        """The class of the module at ``path``, which names a block's definition."""
        return type(self.model.get_submodule(path)).__name__

    def members(self, path: str) -> list[str] | None:
        """The names of the container at ``path``'s members, in order; None if it has none."""
        try:
            return [n for n, _ in self.model.get_submodule(path).named_children()]
        except AttributeError:
            return None

    def state(self) -> dict:
        return self.model.state_dict()

    def forward(self, x):
        return self.model(x)

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def load(source: str) -> Source:
    """The model a SOURCE names: ``torchvision:NAME``, ``timm:NAME``,
    ``module:package.module:factory`` or a path to an .onnx file (see :mod:`resdsl.onnx_import`)."""
    _torch()
    kind, _, rest = source.partition(":")
    if kind == "torchvision":
        return _torchvision(rest, source)
    if kind == "timm":
        return _timm(rest, source)
    if kind == "module":
        module_name, _, factory = rest.partition(":")
        if not module_name or not factory:
            raise refuse(
                f"`{source}` names no factory",
                "write module:PACKAGE.MODULE:FACTORY, e.g. module:mynets:build",
                code="RDS430",
            )
        return _factory(module_name, factory, source)
    raise refuse(
        f"`{source}` is not a source resdsl imports",
        "give torchvision:NAME, timm:NAME, module:PACKAGE.MODULE:FACTORY or FILE.onnx",
        code="RDS430",
    )


def _torch():
    try:
        import torch
        import torch.fx  # noqa: F401
    except ImportError as exc:  # pragma: no cover - torch is the import's one requirement
        raise refuse(
            f"resdsl import needs PyTorch: {exc}", "pip install 'resdsl[torch]'", code="RDS434"
        ) from None
    return torch


def _torchvision(name: str, source: str) -> Source:
    try:
        import torchvision
    except ImportError:
        raise refuse(
            "torchvision is not installed", "pip install torchvision", code="RDS434"
        ) from None
    names = sorted(torchvision.models.list_models(module=torchvision.models))
    if name not in names:
        raise refuse(
            f"torchvision has no classification model `{name}`",
            did_you_mean(name, names) or "see torchvision.models.list_models()",
            code="RDS430",
        )
    model = _build(lambda: torchvision.models.get_model(name, weights=None), source)
    return Source(model, _spec_name(name), source)


def _timm(name: str, source: str) -> Source:
    try:
        import timm
    except ImportError:
        raise refuse("timm is not installed", "pip install timm", code="RDS434") from None
    names = timm.list_models()
    if name not in names:
        raise refuse(
            f"timm has no model `{name}`",
            did_you_mean(name, names) or "see timm.list_models()",
            code="RDS430",
        )
    model = _build(lambda: timm.create_model(name, pretrained=False), source)
    size = tuple(getattr(model, "pretrained_cfg", {}).get("input_size", INPUT_SIZE))
    return Source(model, _spec_name(name), source, size if len(size) == 3 else INPUT_SIZE)


def _factory(module_name: str, factory: str, source: str) -> Source:
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as `python -m` finds the user's own modules
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the user's code: any failure is reported
        raise refuse(
            f"cannot import {module_name}: {type(exc).__name__}: {exc}",
            "the module must be importable from here (check the name and PYTHONPATH)",
            code="RDS431",
        ) from None
    function = getattr(module, factory, None)
    if not callable(function):
        public = [n for n in dir(module) if not n.startswith("_")]
        raise refuse(
            f"{module_name} has no function `{factory}`",
            did_you_mean(factory, public) or "give a function that returns an nn.Module",
            code="RDS431",
        )
    model = _build(function, source)
    return Source(
        model,
        _spec_name(
            factory if factory not in ("build", "model") else module_name.rpartition(".")[2]
        ),
        source,
    )


def _build(function, source: str):
    torch = _torch()
    try:
        model = function()
    except Exception as exc:  # noqa: BLE001 - the user's code: any failure is reported
        raise refuse(
            f"{source}: building the model raised {type(exc).__name__}: {exc}",
            code="RDS431",
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise refuse(f"{source} returned {type(model).__name__}, not an nn.Module", code="RDS431")
    return model.eval()


def _spec_name(name: str) -> str:
    name = re.sub(r"\W", "_", name.split(".")[0])
    return name if name and not name[0].isdigit() else f"m_{name}"


# ---------------------------------------------------------------- the trace


@dataclass(eq=False)
class Op:
    """One call of the traced network, as a resdsl op (``kind``) with resdsl's arguments."""

    kind: str  # a layer of the op table, or add | mul | cat | identity | input
    args: dict
    path: str  # the module's path ("layer1.0.conv1"); a function's is its scope's
    scope: str  # the innermost module the call happens in
    inputs: list[Op] = field(default_factory=list)
    shape: tuple = ()  # its output, without the batch dimension
    weights: bool = False  # it owns parameters or buffers, so its name is a state_dict key

    def __repr__(self) -> str:  # for messages
        return f"{self.path or '<top>'} ({self.kind})"


def trace(model, input_shape) -> list[Op]:
    """The network's ops in order, with shapes from a forward pass on one random input."""
    torch = _torch()
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return _is_leaf(m) or super().is_leaf_module(m, qualname)

    tracer = Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # noqa: BLE001 - torch.fx refuses data-dependent control flow
        raise refuse(
            f"torch.fx cannot trace the model: {type(exc).__name__}: {str(exc).splitlines()[0]}",
            "resdsl import reads models that torch.fx.symbolic_trace can trace",
        ) from None
    inputs = [n for n in graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise refuse(f"the model's forward() takes {len(inputs)} inputs: a network takes one")
    module = fx.GraphModule(tracer.root, graph)
    try:
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(module).propagate(torch.randn(1, *input_shape))
    except Exception as exc:  # noqa: BLE001
        raise refuse(
            f"the model does not run on a {'x'.join(map(str, input_shape))} input: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from None
    modules = dict(model.named_modules())
    made: dict = {}  # fx node -> the Op holding its value (None: not a tensor)
    ops: list[Op] = []
    for node in graph.nodes:
        scope = _scope(node)
        shape = _shape(node)
        if node.op == "placeholder":
            op = Op("input", {}, "", "", shape=shape)
            ops.append(op)
            made[node] = op
            continue
        if node.op == "output":
            made["output"] = made.get(node.args[0])
            continue
        if node.op == "get_attr" or shape is None:  # sizes, shapes and other non-tensors
            made[node] = None
            continue
        tensors = [made[a] for a in node.all_input_nodes if made.get(a) is not None]
        if node.op == "call_module":
            found = _module_ops(modules[node.target], node.target)
        else:
            found = _function_ops(node, scope)
        if not found:  # an identity: the value is its input's
            made[node] = tensors[0] if tensors else None
            continue
        for i, (kind, args) in enumerate(found):
            path = node.target if node.op == "call_module" else scope
            inputs = tensors if i == 0 else [ops[-1]]
            kind, at, child = kind.partition("@")  # a module's own member, or its join
            if at and not child:  # the join of a gate a module is (ECA): its input times it
                inputs, path = [tensors[0], ops[-1]], path
            elif child:
                path = f"{path}.{child}"
            op = Op(kind, args, path, node.target if at else scope, inputs, shape)
            op.weights = node.op == "call_module" and kind in _WEIGHTED
            ops.append(op)
            made[node] = op
    if made.get("output") is None:
        raise refuse("the model's output is not a tensor the trace follows")
    if made["output"] is not ops[-1]:
        raise refuse(f"the model's output is not its last op ({made['output']!r})")
    return ops


_WEIGHTED = {"conv", "bn", "gn", "fc", "channel_conv"}


def _scope(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return re.sub(r"@\d+$", "", next(reversed(stack))) if stack else ""


def _shape(node):
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return None
    return tuple(meta.shape[1:])


def _is_leaf(m) -> bool:
    from torch import nn

    return type(m).__name__ in ("BlurPool2d", "DropPath", "EcaModule") or isinstance(
        m,
        (nn.Conv2d, nn.BatchNorm2d, nn.GroupNorm, nn.Linear, nn.MaxPool2d, nn.AvgPool2d,
         nn.AdaptiveAvgPool2d, nn.ReLU, nn.Sigmoid, nn.Hardsigmoid, nn.SiLU, nn.LeakyReLU,
         nn.Dropout, nn.Identity, nn.Flatten, nn.ConstantPad2d, nn.ZeroPad2d),
    )  # fmt: skip


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _one(value, what: str, path: str) -> int:
    """A stride or dilation, which resdsl takes equal in both directions."""
    h, w = _pair(value)
    if h != w:
        raise refuse(f"{path}: a {what} of {h}x{w} has no resdsl form (it takes one {what})")
    return h


def _module_ops(m, path: str) -> list[tuple[str, dict]]:
    """The resdsl ops a leaf module is, in order; [] for an identity. Refuses what has none."""
    from torch import nn

    kind = type(m).__name__
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise refuse(f"{path}: a {kind} with padding {m.padding!r} has no resdsl form")
        if type(m) is not nn.Conv2d and not (kind == "StdConv2d" and hasattr(m, "eps")):
            raise refuse(f"{path}: {kind}, a kind of conv, has no resdsl form")
        args = {
            "out": m.out_channels,
            "kernel": _pair(m.kernel_size),
            "stride": _one(m.stride, "stride", path),
            "pad": _pair(m.padding),
            "groups": m.groups,
            "bias": int(m.bias is not None),
            "dilation": _one(m.dilation, "dilation", path),
            "ws": float(m.eps) if kind == "StdConv2d" else 0.0,
        }
        return [("conv", args)]
    if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
        norm = isinstance(m, nn.BatchNorm2d)
        if norm and not (m.affine and m.track_running_stats) or not norm and not m.affine:
            raise refuse(f"{path}: a {kind} without its affine weights or statistics")
        if norm:
            out = [("bn", {"eps": float(m.eps)})]
        elif m.eps != 1e-5:
            raise refuse(f"{path}: a group norm's eps is 1e-5 in resdsl, not {m.eps}")
        else:
            out = [("gn", {"groups": m.num_groups})]
        if kind not in ("BatchNorm2d", "GroupNorm"):  # timm's BatchNormAct2d, GroupNormAct
            drop, act = getattr(m, "drop", None), getattr(m, "act", None)
            if not isinstance(drop, nn.Identity) or act is None:
                raise refuse(f"{path}: {kind}, a kind of norm, has no resdsl form")
            out += _module_ops(act, f"{path}.act")
        return out
    if isinstance(m, nn.Linear):
        return [("fc", {"out": m.out_features, "bias": int(m.bias is not None)})]
    if isinstance(m, nn.MaxPool2d):
        if _one(m.dilation, "dilation", path) != 1 or m.ceil_mode:
            raise refuse(f"{path}: a max pool with a dilation or ceil_mode has no resdsl form")
        kernel = _pair(m.kernel_size)
        stride = _one(m.stride or kernel, "stride", path)
        return [("maxpool", {"kernel": kernel, "stride": stride, "pad": _pair(m.padding)})]
    if isinstance(m, nn.AvgPool2d):
        if m.divisor_override is not None:
            raise refuse(f"{path}: an average pool with divisor_override has no resdsl form")
        kernel = _pair(m.kernel_size)
        args = {
            "kernel": kernel,
            "stride": _one(m.stride or kernel, "stride", path),
            "pad": _pair(m.padding),
            "ceil": int(m.ceil_mode),
            "include_pad": int(m.count_include_pad),
        }
        return [("avgpool", args)]
    if isinstance(m, nn.AdaptiveAvgPool2d):
        if _pair(m.output_size) != (1, 1):
            raise refuse(f"{path}: an adaptive pool to {m.output_size} has no resdsl form")
        return [("avgpool", {"kernel": None})]
    if isinstance(m, nn.LeakyReLU):
        return [("leakyrelu", {"slope": float(m.negative_slope)})]
    simple = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Hardsigmoid: "hardsigmoid",
              nn.SiLU: "silu"}  # fmt: skip
    for cls, name in simple.items():
        if isinstance(m, cls):
            return [(name, {})]
    if isinstance(m, nn.Dropout):
        return [("dropout", {"p": float(m.p)})] if m.p else []
    if isinstance(m, (nn.Identity, nn.Flatten)):
        return []
    if isinstance(m, (nn.ConstantPad2d, nn.ZeroPad2d)):
        left, right, top, bottom = m.padding
        if left != right or top != bottom:
            raise refuse(f"{path}: an asymmetric padding has no resdsl form")
        return [("pad", {"size": (top, left), "value": float(getattr(m, "value", 0.0))})]
    if kind == "EcaModule" and isinstance(getattr(m, "conv", None), nn.Conv1d):  # timm's ECA
        conv = m.conv
        if conv.bias is not None or conv.in_channels != 1 or conv.out_channels != 1:
            raise refuse(f"{path}: an ECA module whose conv is not one 1-D filter")
        if (
            _pair(conv.padding)[0] != (conv.kernel_size[0] - 1) // 2
            or type(getattr(m, "gate", None)).__name__ != "Sigmoid"
            or getattr(m, "conv2", None) is not None
        ):
            raise refuse(f"{path}: an ECA module with other padding or gate has no resdsl form")
        kernel = conv.kernel_size[0]
        return [
            ("avgpool", {"kernel": None}),
            ("channel_conv@conv", {"kernel": kernel}),
            ("sigmoid", {}),
            ("mul@", {}),
        ]
    if kind == "BlurPool2d" and getattr(m, "pad_mode", "") == "reflect":  # timm's
        return [("blurpool", {"stride": int(m.stride), "size": int(m.filt_size)})]
    if kind == "DropPath":  # timm's stochastic depth
        return [("droppath", {"p": float(m.drop_prob)})] if m.drop_prob else []
    raise refuse(f"{path}: {kind} has no resdsl form")


def _function_ops(node, scope: str) -> list[tuple[str, dict]]:
    """The resdsl op a function or method call is; [] for a flatten or a reshape."""
    import torch
    from torch.nn import functional

    target = node.target
    where = scope or "the network's forward()"
    if target in (operator.add, operator.iadd, torch.add, "add", "add_"):
        return [("add", {})]
    if target in (operator.mul, operator.imul, torch.mul, "mul", "mul_"):
        return [("mul", {})]
    if target in (torch.flatten, "flatten", "view", "reshape", "squeeze"):
        return []
    if target in (functional.relu, torch.relu, "relu", "relu_"):
        return [("relu", {})]
    if target in (torch.sigmoid, functional.sigmoid, "sigmoid"):
        return [("sigmoid", {})]
    if target == "mean" and node.kwargs.get("keepdim") and tuple(node.args[1]) == (2, 3):
        return [("avgpool", {"kernel": None})]
    if target is functional.adaptive_avg_pool2d and _pair(node.args[1]) == (1, 1):
        return [("avgpool", {"kernel": None})]
    name = getattr(target, "__name__", str(target))
    raise refuse(f"{where}: a call of `{name}` has no resdsl form")


# ---------------------------------------------------------------- structure


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
    found: list[Block] = []
    for add in (op for op in ops if op.kind == "add"):
        path = add.scope
        if not path:
            raise refuse("an addition in the network's own forward() is not a block's")
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
        found.append(_block(source, path, ops, members, inside, start, add, index))
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
        if item.kind in ("mul", "cat") or len(item.inputs) != 1 or item.inputs[0] is not previous:
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
    stride = 1
    for op in body[: body.index("add")]:
        if isinstance(op, Op):  # a gate's strides are not the block's
            stride *= op.args.get("stride", 1) if op.args.get("kernel", 0) is not None else 1
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
    main: Op  # what it reads, and what the join multiplies
    join: Op


def _gates(source: Source, path: str, body: list, inside: set, start: Op) -> list:
    """The body with each gate's ops and its join made one :class:`Gate`."""
    out, taken = [], set()
    for item in body:
        if isinstance(item, str) or item.kind != "mul":
            out.append(item)
            continue
        a, b = item.inputs
        main, end = (a, b) if a in _ancestors(b, inside, start) else (b, a)
        if main not in _ancestors(end, inside, start) and main is not start:
            raise refuse(f"{item.scope}: a mul of two paths that do not start together")
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


# ---------------------------------------------------------------- spelling


def _value(value) -> str:
    if isinstance(value, tuple):
        h, w = value
        return str(h) if h == w else f"{h}x{w}"
    if isinstance(value, float):  # 1e-08 as 1e-8
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(value)).replace("e+", "e")
    return str(value)


def spell(kind: str, args: dict, exprs: dict | None = None, classes: int | None = None) -> str:
    """A layer statement: ``conv width 3x3 stride=stride``. ``exprs`` replaces an argument's
    value by an expression over the block's parameters; a value at its default is left out."""
    from . import ops

    exprs = exprs or {}
    words, keyword = [kind], False
    for arg in ops.OPS[kind].args:
        if arg.name not in args:
            continue
        value = args[arg.name]
        if arg.name not in exprs and _at_default(kind, args, arg.name, classes):
            keyword = True  # a positional left out: the ones after it are written by name
            continue
        text = exprs.get(arg.name)
        if text is None:
            text = f"{value[0]}x{value[1]}" if arg.name == "kernel" else _value(value)
        if arg.positional and not keyword and arg.type != "flag":
            words.append(text)
        else:
            words.append(f"{arg.name}={text}")
            keyword = True
    return " ".join(words)


def _at_default(kind: str, args: dict, name: str, classes) -> bool:
    from . import ops

    arg = next(a for a in ops.OPS[kind].args if a.name == name)
    default = classes if arg.default is ops.CLASSES else arg.default
    if arg.default is ops.REQUIRED:
        return False
    if name == "pad" or (name == "stride" and args.get("kernel", 0) is None):
        rest = {k: v for k, v in args.items() if k != name}
        rest.setdefault("pad", None)
        return ops.complete(kind, {**rest, name: default})[name] == args[name]
    value = args[name]
    if isinstance(value, tuple) and not isinstance(default, tuple) and default is not None:
        default = (default, default)
    return value == default


SHORTCUT_SYMBOLS = ("stride", "out", "in")


class Namer:
    """resdsl's own names in one scope, followed as a spec's layers are made, so that a label is
    written only where the source's name differs (see :meth:`resdsl.elaborate._Scope.name`)."""

    def __init__(self):
        self.counts: dict[str, int] = {}

    def label(self, op: Op, local: str) -> str | None:
        from . import ops
        from .names import module_suffix

        n = self.counts.get(op.kind, 0) + 1
        auto = op.kind + module_suffix(n, op.kind in ops.OPS and ops.OPS[op.kind].numbered)
        if not op.weights or auto == local:
            self.counts[op.kind] = n
            return None
        if not local.isidentifier():
            raise refuse(
                f"{op.path}: resdsl cannot give a layer the name `{local}`",
                "a label is an identifier, and the network's own layers are not numbered "
                "(an nn.Sequential of layers is not a network resdsl writes)",
            )
        return local


# ---------------------------------------------------------------- definitions


CHANNELS = {("conv", "out"), ("fc", "out"), ("conv", "groups"), ("gn", "groups")}
STRIDES = {("conv", "stride"), ("maxpool", "stride"), ("avgpool", "stride")}


@dataclass
class Definition:
    name: str
    params: list[str]  # width first, stride last (with its default 1) where it has them
    lines: list[str]  # the body, one statement a line
    values: dict = field(default_factory=dict)  # block path -> {param: value}


def _keywords() -> set[str]:
    """The language's words, which no definition may be called: the grammar's own."""
    from .parser import grammar

    return {
        t.pattern.value
        for t in grammar().terminals
        if t.pattern.type == "str" and t.pattern.value.isidentifier()
    }


GATE_SLOTS = {"conv": "out", "fc": "out", "channel_conv": "kernel"}  # a gate's parameters


def _gate_key(gate: Gate) -> tuple:
    namer = Namer()
    ops = tuple(
        (x.kind, namer.label(x, x.path[len(gate.path) + 1 :]), tuple(sorted(x.args)))
        for x in gate.ops
    )
    return ("gate", gate.kind, ops)


def _gate_values(gate: Gate) -> list:
    return [x.args[GATE_SLOTS[x.kind]] for x in gate.ops if x.weights and x.kind in GATE_SLOTS]


def _body_key(block: Block) -> tuple:
    """What blocks of one definition share: their statements' kinds, labels and arguments given."""
    namer, key = Namer(), []
    for item in block.body:
        if item == "tap":  # where a shortcut may start: every block of the form has it there
            continue
        if isinstance(item, Gate):
            key.append((item.child, _gate_key(item)))
            continue
        if isinstance(item, str):
            key.append(item)
        else:
            local = item.path[len(block.path) + 1 :]
            key.append((item.kind, namer.label(item, local), tuple(sorted(item.args))))
    return tuple(key)


def define_gate(gates: list[Gate], name: str) -> Definition:
    """A gate's block: its layers over one parameter per conv's channels (c1, c2, ...)."""
    first, namer, lines, params = gates[0], Namer(), [], []
    for i, op in enumerate(first.ops):
        label = namer.label(op, op.path[len(first.path) + 1 :])
        exprs = {}
        if op.weights and op.kind in GATE_SLOTS:
            params.append(f"c{len(params) + 1}" if op.kind != "channel_conv" else "k")
            exprs[GATE_SLOTS[op.kind]] = params[-1]
        for arg in op.args:
            if arg not in exprs and len({repr(g.ops[i].args[arg]) for g in gates}) > 1:
                raise refuse(f"{op.path}: its {arg} differs between gates of one form")
        text = spell(op.kind, op.args, exprs)
        lines.append(f"{label}: {text}" if label else text)
    return Definition(name, params, lines)


def define(group: list[Block], name: str, gate_names: dict | None = None) -> Definition:
    """One definition for blocks of one form, its arguments read across them."""
    taps = {_tap_position(b) for b in group} - {None}
    if len(taps) > 1:
        raise refuse(f"{group[-1].path}: its shortcut starts elsewhere than its like blocks'")
    if taps:  # the blocks whose shortcut is the identity keep the tap of the others
        (at,) = taps
        for b in group:
            if "tap" not in b.body:
                b.body.insert(at, "tap")
    first_conv = next(
        (i for i, x in enumerate(group[0].body) if not isinstance(x, str) and x.kind == "conv"),
        None,
    )
    width = (
        {b.path: b.body[first_conv].args["out"] for b in group} if first_conv is not None else {}
    )
    params: list[str] = ["width"] if width else []
    values = {b.path: ({"width": width[b.path]} if width else {}) for b in group}
    uses_stride = False
    lines = []
    namer = Namer()
    for i, item in enumerate(group[0].body):
        if isinstance(item, str):
            lines.append(item)
            continue
        if isinstance(item, Gate):
            exprs = []
            for j in range(len(_gate_values(item))):
                seen = [(b, _gate_values(b.body[i])[j]) for b in group]
                expr = _relative(seen, width) if width else None
                if expr is None and len({v for _, v in seen}) == 1:
                    expr = str(seen[0][1])
                if expr is None:
                    slots = [x for x in item.ops if x.weights and x.kind in GATE_SLOTS]
                    expr = _fresh("k" if slots[j].kind == "channel_conv" else "c", params)
                    params.append(expr)
                    for b, v in seen:
                        values[b.path][expr] = v
                exprs.append(expr)
            call = " ".join([gate_names[_gate_key(item)], *exprs])
            lines.append(f"mul {{ {item.child}: {call} }}")
            continue
        label = namer.label(item, item.path[len(group[0].path) + 1 :])
        exprs = {}
        for arg in item.args:
            seen = [(b, b.body[i].args[arg]) for b in group]
            expr = None
            if (item.kind, arg) in STRIDES and all(v == b.stride for b, v in seen):
                if any(v != 1 for _, v in seen):
                    expr, uses_stride = "stride", True
            elif (item.kind, arg) in CHANNELS and width:
                expr = _relative(seen, width)
            if expr is None and len({repr(v) for _, v in seen}) > 1:
                if (item.kind, arg) not in CHANNELS:
                    raise refuse(
                        f"{item.path}: its {arg} differs between blocks of one form "
                        f"({', '.join(sorted({_value(v) for _, v in seen}))})"
                    )
                expr = _fresh(arg, params)
                params.append(expr)
                for b, v in seen:
                    values[b.path][expr] = v
            if expr is not None:
                exprs[arg] = expr
        text = spell(item.kind, item.args, exprs)
        lines.append(f"{label}: {text}" if label else text)
    if uses_stride:
        params.append("stride")
        for b in group:
            values[b.path]["stride"] = b.stride
    return Definition(name, params, lines, values)


def _tap_position(block: Block) -> int | None:
    return block.body.index("tap") if "tap" in block.body else None


def _relative(seen, width) -> str | None:
    """A channel count as ``width``, ``width*k`` or ``width//k`` where it is one for every block."""
    ratios = {v / width[b.path] for b, v in seen}
    if len(ratios) != 1:
        return None
    (ratio,) = ratios
    if ratio == 1:
        return "width"
    if ratio > 1 and ratio == int(ratio):
        return f"width*{int(ratio)}"
    if (
        ratio < 1
        and (1 / ratio) == int(1 / ratio)
        and all(width[b.path] // int(1 / ratio) == v for b, v in seen)
    ):
        return f"width//{int(1 / ratio)}"
    return None


def _fresh(arg: str, taken: list[str]) -> str:
    name, n = arg, 1
    while name in taken or name in ("width", "stride"):
        n += 1
        name = f"{arg}{n}"
    return name


def _prelude_bodies() -> dict[str, tuple[list[str], list[str]]]:
    """The prelude's blocks: name -> (parameters, body lines), one statement a line."""
    from .linker import PRELUDE

    out = {}
    text = PRELUDE.read_text(encoding="utf-8")
    for match in re.finditer(r"^block (\w+)\(([^)]*)\) \{\n(.*?)^\}", text, re.M | re.S):
        params = [p.split("=")[0].strip() for p in match.group(2).split(",")]
        lines = [s.strip() for line in match.group(3).splitlines() for s in line.split(";")]
        out[match.group(1)] = (params, [s for s in lines if s and not s.startswith("#")])
    return out


def _snake(name: str) -> str:
    """``PreActBottleneck`` -> ``pre_act_bottleneck``, ``SEModule`` -> ``se_module``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


# ---------------------------------------------------------------- the spec


def write_spec(source: Source) -> str:
    """The spec of ``source``'s model, fmt-clean."""
    from .fmt import format_text

    ops = source.ops()
    found = blocks(source, ops)
    first = found[0].first if found else len(ops)
    last = found[-1].last if found else len(ops) - 1
    between = [
        i for b, nxt in zip(found, found[1:], strict=False) for i in range(b.last + 1, nxt.first)
    ]
    if between:
        raise refuse(f"{ops[between[0]].path}: a layer between two blocks has no resdsl form yet")
    stages = _stages(found)
    defs, calls = _definitions(found, source.name)
    policy, shortcut_text = _shortcut(found, source.name)
    containers = [s[0] for s in stages]
    default = [f"layer{n}" for n in range(1, len(stages) + 1)]
    reserved = {c.partition(".")[0] for c in containers} | {"input"}
    namer = Namer()
    stem = _section(ops[1:first], namer, reserved)
    head = _section(ops[last + 1 :], namer, reserved, classes=ops[-1].shape[0])
    out = [f"# {source.name}, imported from {source.origin} by `resdsl import`.", ""]
    if shortcut_text:
        out += [shortcut_text, ""]
    for d in defs:
        out += _definition_text(d) + [""]
    c, h, w = source.input_shape
    net = [f"network {source.name} {{", f"    input {c}x{h}x{w}", f"    classes {ops[-1].shape[0]}"]
    if policy != "B":
        net.append(f"    shortcut {policy}")
    if stem:
        net.append(f"    stem {{ {'; '.join(stem)} }}")
    for container, members in stages:
        items, index, stride = [], 0, None
        head_call = calls[members[0].path]
        if members[0].stride > 1 and head_call.endswith(f" stride={members[0].stride}"):
            # the stage's stride goes to its first block, as a stage's `stride` does
            stride = f"stride {members[0].stride}"
            calls = {**calls, members[0].path: head_call[: -len(f" stride={members[0].stride}")]}
        while index < len(members):
            call, run = calls[members[index].path], 1
            while index + run < len(members) and calls[members[index + run].path] == call:
                run += 1
            items.append(call + (f" x {run}" if run > 1 else ""))
            index += run
        if stride:
            items.append(stride)
        path = "" if containers == default else f" {container}"
        net.append(f"    stage{path} {{ {'; '.join(items)} }}")
    if head:
        net.append(f"    head {{ {'; '.join(head)} }}")
    net.append("}")
    return format_text("\n".join(out + net) + "\n")


def _stages(found: list[Block]) -> list[tuple[str, list[Block]]]:
    stages: list[tuple[str, list[Block]]] = []
    for block in found:
        if stages and stages[-1][0] == block.container:
            stages[-1][1].append(block)
        else:
            if any(s[0] == block.container for s in stages):
                raise refuse(f"{block.path}: its container's blocks are not together")
            stages.append((block.container, [block]))
    for container, members in stages:
        numbers = [b.path.rpartition(".")[2] for b in members]
        if numbers != [str(i) for i in range(len(members))]:
            raise refuse(
                f"{container}: a stage's blocks are numbered 0, 1, ... (as nn.Sequential's), "
                f"not {', '.join(numbers[:4])}"
            )
        if not container or any(
            not p.isidentifier() and not p.isdigit() for p in container.split(".")
        ):
            raise refuse(f"{members[0].path}: a block must be a member of a stage's container")
    return stages


def _definitions(found: list[Block], network: str):
    """The block definitions the spec writes (none where the prelude's serve), and each block's
    call: ``bottleneck_v1_5 64 stride=2``."""
    groups: dict[tuple, list[Block]] = {}
    for block in found:
        groups.setdefault(_body_key(block), []).append(block)
    prelude = _prelude_bodies()
    taken = set(prelude) | {network}
    defs, calls, gate_names = [], {}, {}
    gates: dict[tuple, list[Gate]] = {}
    for block in found:
        for item in block.body:
            if isinstance(item, Gate):
                gates.setdefault(_gate_key(item), []).append(item)
    for key, members in gates.items():
        d = define_gate(members, _free(_snake(members[0].kind), taken))
        gate_names[key] = d.name
        defs.append(d)
    for group in groups.values():
        name = _snake(group[0].cls)
        d = define(group, name, gate_names)
        match = next(
            (n for n, (params, lines) in prelude.items() if (params, lines) == (d.params, d.lines)),
            None,
        )
        if match is not None:
            d.name = match
        else:
            d.name = _free(name, taken)
            defs.append(d)
        for block in group:
            values = d.values[block.path]
            words = [d.name] + [str(values["width"])] * ("width" in d.params)
            words += [f"{p}={values[p]}" for p in d.params if p not in ("width", "stride")]
            if "stride" in d.params and values["stride"] != 1:
                words.append(f"stride={values['stride']}")
            calls[block.path] = " ".join(words)
    return defs, calls


def _free(name: str, taken: set) -> str:
    """``name``, or a name like it that no other definition has; taken from now on."""
    from . import ops

    clash = name in taken or name in ops.OPS or name in _keywords() or not name.isidentifier()
    base = f"{name}_block" if clash else name
    free, n = base, 1
    while free in taken:
        n += 1
        free = f"{base}{n}"
    taken.add(free)
    return free


def _definition_text(d: Definition) -> list[str]:
    """The definition as the prelude's are written: a line from each conv, add and tap."""
    params = ", ".join(p if p != "stride" else "stride = 1" for p in d.params)
    lines: list[list[str]] = []
    for statement in d.lines:
        kind = re.sub(r"^\w+: ", "", statement).split(" ")[0]
        starts = ("conv", "fc", "add", "tap", "mul")
        if not lines or kind in starts or lines[-1][-1] in ("add", "tap") or "{" in lines[-1][-1]:
            lines.append([])
        lines[-1].append(statement)
    body = [f"    {'; '.join(line)}" for line in lines]
    return [f"block {d.name}({params}) {{", *body, "}"]


def _section(ops: list[Op], namer: Namer, reserved: set[str], classes=None) -> list[str]:
    """The stem's or head's statements; a module path with a container in it makes a group."""
    out: list[str] = []
    index = 0
    while index < len(ops):
        op = ops[index]
        root, _, rest = op.path.partition(".")
        if op.weights and rest or root in reserved and rest:
            members = []
            while index < len(ops) and ops[index].path.partition(".")[0] == root:
                members.append(ops[index])
                index += 1
            out.append(_group(root, members, classes))
            continue
        label = namer.label(op, op.path)
        text = spell(op.kind, op.args, classes=classes if op.kind == "fc" else None)
        out.append(f"{label}: {text}" if label else text)
        index += 1
    return out


def _group(root: str, members: list[Op], classes) -> str:
    """``group conv1 { ... }``: members named by their position, or labelled."""
    words = []
    for position, op in enumerate(members):
        local = op.path[len(root) + 1 :]
        text = spell(op.kind, op.args, classes=classes if op.kind == "fc" else None)
        if not op.weights or local == str(position):
            words.append(text)
        elif local.isidentifier():
            words.append(f"{local}: {text}")
        else:
            raise refuse(
                f"{op.path}: a member numbered {local} at position {position} of {root}",
                "resdsl numbers a group's members by their position",
            )
    return f"group {root} {{ {'; '.join(words)} }}"


def _shortcut(found: list[Block], network: str) -> tuple[str, str]:
    """The shortcut policy the blocks follow (B where it is the prelude's), and its definition."""
    by_case: dict[str, list[Block]] = {}
    for block in found:
        case = "keep" if block.stride == 1 and block.in_channels == block.out_channels else "change"
        by_case.setdefault(case, []).append(block)
    cases = {}
    for case, members in by_case.items():
        if not any(b.shortcut for b in members):
            continue  # the identity
        odd = next((b for b in members if not b.shortcut), None) or next(
            (b for b in members if b.from_tap != members[0].from_tap), None
        )
        names = {tuple(n for n, _ in b.shortcut) for b in members}
        if odd is not None or len(names) > 1:
            what = "is kept" if case == "keep" else "changes"
            raise refuse(
                f"{(odd or members[-1]).path}: its shortcut differs from other blocks' where "
                f"the shape {what}"
            )
        statements = [_slot(members, i) for i in range(len(members[0].shortcut))]
        cases[case] = (members[0].from_tap, statements)

    def text(case):
        tap, statements = cases[case]
        return f"{case}{' from tap' if tap else ''} {{ {'; '.join(statements)} }}"

    if not cases:
        return "B", ""
    if set(cases) == {"change"} and text("change") == "change { conv out 1x1 stride=stride; bn }":
        return "B", ""
    if set(cases) == {"keep", "change"} and cases["keep"] == cases["change"]:
        body = text("change").replace("change", "always", 1)
        if body == "always { conv out 1x1 stride=stride; bn }":
            return "C", ""
    else:
        body = "\n    ".join(text(c) for c in ("keep", "change") if c in cases)
    name = f"{network}_shortcut"
    return name, f"shortcut {name} {{\n    {body}\n}}"


def _symbols(block: Block) -> dict[str, int]:
    return {"stride": block.stride, "out": block.out_channels, "in": block.in_channels}


def _slot(members: list[Block], slot: int) -> str:
    """One statement of a shortcut case, over ``in``, ``out`` and ``stride`` where the blocks'
    values differ, or where some hold an identity there that the op must be at their values."""
    from . import ops

    local = members[0].shortcut[slot][0]
    present = [b for b in members if b.shortcut[slot][1] is not None]
    gaps = [b for b in members if b.shortcut[slot][1] is None]
    where = f"{members[0].path}.downsample.{local}"
    if not present:
        raise refuse(f"{where}: an identity in every block's shortcut has no resdsl form")
    first = present[0].shortcut[slot][1]
    if any(b.shortcut[slot][1].kind != first.kind for b in present):
        raise refuse(f"{where}: the blocks' shortcuts hold different layers here")
    exprs = {}
    for arg in first.args:
        seen = [(b, b.shortcut[slot][1].args[arg]) for b in present]
        same = len({repr(v) for _, v in seen}) == 1
        symbol = next(
            (
                s
                for s in SHORTCUT_SYMBOLS
                if all(v == _as(v, _symbols(b)[s]) for b, v in seen)
                and (first.kind, arg) in CHANNELS | STRIDES | {("avgpool", "kernel")}
            ),
            None,
        )
        if symbol is not None:
            exprs[arg] = symbol
        elif not same:
            raise refuse(f"{where}: its {arg} differs between blocks in a way resdsl cannot write")
    for b in gaps:  # the op must do nothing where the source has an identity
        args = {
            k: _as(v, _symbols(b)[exprs[k]]) if k in exprs else v for k, v in first.args.items()
        }
        args = ops.complete(first.kind, args)
        if not ops.OPS[first.kind].identity(args, b.in_channels):
            raise refuse(f"{b.path}.downsample.{local}: an identity here, a {first.kind} elsewhere")
    text = spell(first.kind, first.args, exprs)
    return text if local.isdigit() else f"{local}: {text}"


def _as(like, value):
    return (value, value) if isinstance(like, tuple) else value


# ---------------------------------------------------------------- the proof


@dataclass
class Imported:
    text: str  # the spec
    report: str  # "imported resnet50: 25,557,032 parameters, strict load ok, logits equal ..."


def import_source(source: str, verify: bool = True) -> Imported:
    """``resdsl import SOURCE``: the spec, and with ``verify`` the round trip's result."""
    if source.endswith(".onnx"):
        from .onnx_import import load_onnx

        loaded = load_onnx(source)
    else:
        loaded = load(source)
    try:
        text = write_spec(loaded)
    except ResdslError:
        raise
    except Exception as exc:  # noqa: BLE001 - a model unlike any tried: refused, not a traceback
        raise refuse(
            f"resdsl import cannot read {source}: {type(exc).__name__}: {exc}",
            "its structure is one resdsl import does not know; please report it",
        ) from None
    if not verify:
        return Imported(text, f"imported {loaded.name} (not verified: --no-verify)")
    return Imported(text, check_round_trip(text, loaded))


def check_round_trip(text: str, source: Source) -> str:
    """Compile ``text`` for PyTorch, load the source's state_dict strictly, compare logits."""
    import importlib.util
    import tempfile

    torch = _torch()
    from . import build, check, link, parse
    from .emit import emit

    try:
        net = check(build(link(parse(text, f"{source.name}.rds"))))
    except ResdslError as exc:
        raise refuse(
            f"the spec written for {source.origin} does not check: {exc.message}",
            "this is a bug in resdsl import; please report it with the source",
            code="RDS433",
        ) from None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.py"
        path.write_text(emit(net, "torch")["model.py"], encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"resdsl_import_{source.name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.build_model().eval()
    state = source.state()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise refuse(
            f"{source.origin}'s state_dict does not load into the imported spec's model: "
            f"{str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else exc}",
            code="RDS433",
        ) from None
    params = source.parameters
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, *source.input_shape, generator=generator)
    with torch.no_grad():
        expected = source.forward(x)
        got = model(x)
    if expected is None:  # an ONNX file without onnxruntime to run it
        return (
            f"imported {source.name}: {params:,} parameters, strict load ok, logits not "
            "compared (onnxruntime is not installed)"
        )
    expected = torch.as_tensor(expected).reshape(got.shape)
    diff = (got - expected).abs().max().item()
    scale = max(1.0, expected.abs().max().item())
    if not diff <= 1e-4 * scale:
        raise refuse(
            f"the imported spec's logits differ from {source.origin}'s by {diff:.3g}",
            code="RDS433",
        )
    return (
        f"imported {source.name}: {params:,} parameters, strict load ok, "
        f"logits equal (max {diff:.1g})"
    )
