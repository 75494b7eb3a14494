"""Each primitive op's semantics, as data in one place.

An :class:`OpDef` holds an op's arguments (their order, types and defaults), its shape rule
(PyTorch's floor rounding), its trainable parameter count, its MACs, and its symbolic form: how
its stride, its output channels and its padding default follow from its arguments. The symbolic
rules are written once with ``+ - * //`` and serve both concrete values (ints) and the IR's
expressions over a block's parameters (:mod:`resdsl.ir` gives them arithmetic). Shapes are
``(C, H, W)`` without the batch dimension. Targets spell the ops; no stage before emit branches
on an op's name: they read the row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Shape = tuple[int, int, int]
REQUIRED = object()
CLASSES = object()  # an argument's default that is the network's class count (fc's out)


class OpProblem(Exception):
    """An op that cannot work on its input; the checker adds the span and the block path."""

    def __init__(self, message: str, hint: str | None = None, *, code: str, arg: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code  # registered in resdsl.diagnostics; the checker passes it on
        self.arg = arg  # the argument whose value is at fault, where one is: the caret goes there


@dataclass(frozen=True)
class Arg:
    name: str
    type: str  # int | pair (an int or HxW) | float | flag (0 or 1)
    default: object = REQUIRED
    positional: bool = True
    # what it counts, where a block's parameter may stand for it: "channels" (a conv's out, its
    # groups, zeropad's channels) or "stride" (a window's step); "" for anything else
    unit: str = ""


def _keep(args, channels):
    return channels


@dataclass(frozen=True)
class Tensor:
    """One tensor an op owns, as the state_dict, the npz and the ONNX initialisers name it
    (``layer1.0.conv1.weight``): its shape as a rule over the op's arguments and its input's
    shape ``(C, H, W)``, whether training updates it (a BN's running statistics are buffers), and
    how it starts: ``("he", std)`` (PyTorch's kaiming_normal_ over fan_out), ``("uniform",
    bound)`` (nn.Conv2d's and nn.Linear's default) or ``("fill", value)``."""

    name: str
    shape: Callable[[dict, Shape], tuple[int, ...]]
    init: Callable[[dict, Shape], tuple[str, float]]
    trainable: bool = True
    when: Callable[[dict], bool] = lambda a: True  # a bias only where ``bias=1``


def _fill(value: float) -> Callable[[dict, Shape], tuple[str, float]]:
    return lambda a, s: ("fill", value)


@dataclass(frozen=True)
class OpDef:
    name: str
    args: tuple[Arg, ...]
    infer: Callable[[dict, list[Shape]], Shape]
    macs: Callable[[dict, list[Shape], Shape], int] = lambda a, s, o: 0
    tensors: tuple[Tensor, ...] = ()  # what it owns, in the order its targets' layers hold them
    # one of the paper's weighted layers, which a network's depth counts (ResNet-110's 110 are
    # its convs and its fc; its BNs own weights too, but are not counted)
    layer: bool = False
    # the symbolic form: each rule takes ints or IR expressions alike
    stride: Callable[[dict], object] = lambda a: 1
    channels: Callable[[dict, object], object] = _keep  # (args, input channels) -> output's
    pad: Callable[[object, dict], object] | None = None  # a window's padding default: (k, args)
    # where it does nothing to an input of ``channels``: a shortcut leaves it out (option A's
    # subsample at stride 1, an average pool of 1x1)
    identity: Callable[[dict, object], bool] = lambda a, c: False
    flattens: bool = False  # reads its input flattened to C*H*W features, as an fc does
    pointwise: bool = False  # works on a flattened (N, C) tensor as on a map
    fresh: bool = False  # its output is a new tensor that nothing else aliases
    stochastic: bool = False  # random in training, the identity in eval (dropout, droppath)
    numbered: bool = False  # its names count from 1 (conv1, bn1); others from the second (relu2)
    inputs: int = 1  # how many tensors it reads
    user: bool = True  # written in specs; internal ops come from shortcuts and inputs
    doc: str = ""
    usage: str = ""  # an example, for the hint where a required argument is missing
    # what PyTorch, Keras or papers call it, for the hint where a spec writes one of those
    aliases: tuple[str, ...] = ()

    def owned(self, args: dict, shape: Shape) -> list[tuple[str, tuple[int, ...], Tensor]]:
        """The tensors it owns on an input of ``shape``: ``(name, shape, row)``, in order."""
        if not self.tensors:
            return []
        return [(t.name, t.shape(args, shape), t) for t in self.tensors if t.when(args)]

    def params(self, args: dict, shapes: list[Shape]) -> int:
        """Its trainable parameters on inputs of ``shapes``."""
        return self._count(args, shapes, trainable=True)

    def buffers(self, args: dict, shapes: list[Shape]) -> int:
        """The state it keeps that training does not descend on (BN's running statistics, what
        Keras counts as non-trainable)."""
        return self._count(args, shapes, trainable=False)

    def _count(self, args: dict, shapes: list[Shape], trainable: bool) -> int:
        owned = self.owned(args, shapes[0]) if shapes else []
        return sum(math.prod(s) for _, s, t in owned if t.trainable == trainable)


def weighted(op: str) -> bool:
    """Whether ``op`` owns tensors, so that its name is a state_dict key."""
    return bool(OPS[op].tensors)


def counting(unit: str) -> set[tuple[str, str]]:
    """The ``(op, argument)`` pairs that count ``unit`` ("channels" or "stride")."""
    return {(op.name, a.name) for op in OPS.values() for a in op.args if a.unit == unit}


def buffer_names() -> set[str]:
    """The names of the tensors that are buffers (``running_mean``), across the table."""
    return {t.name for op in OPS.values() for t in op.tensors if not t.trainable}


def fmt(shape) -> str:
    return "x".join(str(d) for d in shape)


# ---------------------------------------------------------------- shape rules


def _window(args: dict, shape: Shape, what: str) -> tuple[int, int]:
    """Output H, W of a sliding window with PyTorch's rounding: floor, or ceil where ``ceil``.

    In ceil mode the last window must start inside the input or its left padding, as PyTorch's
    pooling requires. A dilated kernel spans ``dilation * (k - 1) + 1``.
    """
    (kh, kw), (ph, pw), s = args["kernel"], args["pad"], args["stride"]
    d = args.get("dilation", 1)
    if d < 1:
        raise OpProblem(f"{what} dilation {d} must be at least 1", code="RDS205", arg="dilation")
    kh, kw = d * (kh - 1) + 1, d * (kw - 1) + 1
    if min(kh, kw) < 1:
        raise OpProblem(
            f"{what} kernel {kh}x{kw} must be at least 1x1", code="RDS205", arg="kernel"
        )
    if s < 1:
        raise OpProblem(f"{what} stride {s} must be at least 1", code="RDS205", arg="stride")
    if min(ph, pw) < 0:
        raise OpProblem(f"{what} padding {ph}x{pw} cannot be negative", code="RDS205", arg="pad")
    _, h, w = shape

    def size(n: int, k: int, p: int) -> int:
        if not args.get("ceil"):
            return (n + 2 * p - k) // s + 1
        out = -(-(n + 2 * p - k) // s) + 1  # a last window that overhangs the padding counts
        return out - 1 if (out - 1) * s >= n + p else out

    out = size(h, kh, ph), size(w, kw, pw)
    if min(out) < 1:  # in ceil mode a kernel may be wider than the map, as in PyTorch
        raise OpProblem(
            f"{what} kernel {kh}x{kw} is larger than its padded input "
            f"{h + 2 * ph}x{w + 2 * pw} ({fmt(shape)} with padding {ph}x{pw})",
            code="RDS203",
        )
    return out


def average_counts(args: dict, shape: Shape) -> tuple[tuple[int, list[int]], ...]:
    """What PyTorch divides each average pool window by, along H and along W.

    For each axis: how far the last window hangs past the padding (ceil mode), and each
    window's count: the padded positions it covers where ``include_pad``, else the input's.
    A target without these options pools the zero-padded input and rescales by them.
    """
    out = []
    s, include = args["stride"], args.get("include_pad", 1)
    for n, k, p in zip(shape[1:], args["kernel"], args["pad"], strict=True):
        size = _window({**args, "kernel": (k, k), "pad": (p, p)}, (1, n, n), "avgpool")[0]
        lo, hi = (-p, n + p) if include else (0, n)
        counts = [min(i * s - p + k, hi) - max(i * s - p, lo) for i in range(size)]
        out.append((max((size - 1) * s + k - n - 2 * p, 0), counts))
    return tuple(out)


def _conv(args, shapes):
    (c, _, _), out, groups = shapes[0], args["out"], args["groups"]
    if out < 1:
        raise OpProblem(
            f"conv needs at least 1 output channel, got {out}", code="RDS204", arg="out"
        )
    if not 0 <= args.get("ws", 0.0) < 1:
        raise OpProblem(f"conv ws {args['ws']} must be in [0, 1)", code="RDS207", arg="ws")
    if groups < 1 or c % groups or out % groups:
        raise OpProblem(
            f"conv groups={groups} must divide both its input channels ({c}) and its output "
            f"channels ({out})",
            code="RDS206",
            arg="groups",
        )
    return (out, *_window(args, shapes[0], "conv"))


def _pool(what):
    def infer(args, shapes):
        if args.get("kernel") is None:  # global pooling
            return (shapes[0][0], 1, 1)
        (kh, kw), (ph, pw) = args["kernel"], args["pad"]
        if 2 * ph > kh or 2 * pw > kw:
            raise OpProblem(
                f"{what} padding {ph}x{pw} must be at most half its kernel {kh}x{kw}",
                "PyTorch refuses larger pooling padding",
                code="RDS205",
                arg="pad",
            )
        return (shapes[0][0], *_window(args, shapes[0], what))

    return infer


def adaptive_bins(n: int, size: int) -> list[tuple[int, int]]:
    """An adaptive pool's windows along one axis of ``n`` to ``size``: PyTorch's ``[start, end)``,
    start floor(i * n / size), end ceil((i + 1) * n / size)."""
    return [(i * n // size, -(-(i + 1) * n // size)) for i in range(size)]


def _adaptive(args, shapes):
    size = args["size"]
    if min(size) < 1:
        raise OpProblem(
            f"adaptive_avgpool size {fmt(size)} must be at least 1x1", code="RDS205", arg="size"
        )
    if size == (1, 1):
        raise OpProblem(
            "an adaptive average pool to 1x1 is global average pooling",
            "write `avgpool`",
            code="RDS205",
            arg="size",
        )
    return (shapes[0][0], *size)


def _same(args, shapes):
    return shapes[0]


def _bn(args, shapes):
    if not 0 < args["eps"] < 1:
        raise OpProblem(f"bn eps {args['eps']} must be in (0, 1)", code="RDS207", arg="eps")
    return shapes[0]


def _gn(args, shapes):
    c, g = shapes[0][0], args["groups"]
    if g < 1 or c % g:
        raise OpProblem(
            f"gn groups={g} must divide the channels ({c})",
            "group normalisation splits the channels into equal groups",
            code="RDS211",
            arg="groups",
        )
    return shapes[0]


def _channel_conv(args, shapes):
    k = args["kernel"]
    if k < 1 or k % 2 == 0:
        raise OpProblem(
            f"channel_conv kernel {k} must be odd and at least 1",
            "it pads (kernel - 1) // 2 channels on each side, so an odd kernel keeps the channels",
            code="RDS212",
            arg="kernel",
        )
    return shapes[0]


def binomial(size: int) -> list[float]:
    """A blur pool's filter along one axis: the binomial coefficients over 2^(size - 1)."""
    return [math.comb(size - 1, k) / 2 ** (size - 1) for k in range(size)]


def blur_padding(args: dict) -> int:
    """A blur pool's reflect padding on each side, timm's: ((stride - 1) + (size - 1)) // 2."""
    return (args["stride"] - 1 + args["size"] - 1) // 2


def _blurpool(args, shapes):
    c, h, w = shapes[0]
    k, s = args["size"], args["stride"]
    if k < 2 or s < 1:
        raise OpProblem(
            f"blurpool size {k} and stride {s} must be at least 2 and 1",
            code="RDS205",
            arg="size" if k < 2 else "stride",
        )
    p = blur_padding(args)
    if p >= min(h, w):
        raise OpProblem(
            f"blurpool pads {p} by reflection, which needs an input larger than {p}x{p}, "
            f"got {fmt(shapes[0])}",
            "reflection mirrors the rows and columns next to the edge, so it needs that many",
            code="RDS203",
        )
    return (c, *_window({"kernel": (k, k), "pad": (p, p), "stride": s}, shapes[0], "blurpool"))


def _dropout(args, shapes):
    if not 0 <= args["p"] < 1:
        raise OpProblem(
            f"dropout probability {args['p']} must be in [0, 1)", code="RDS207", arg="p"
        )
    return shapes[0]


def _droppath(args, shapes):
    if not 0 <= args["p"] < 1:
        raise OpProblem(
            f"droppath probability {args['p']} must be in [0, 1)", code="RDS207", arg="p"
        )
    return shapes[0]


def _pad(args, shapes):
    (ph, pw), (c, h, w) = args["size"], shapes[0]
    if min(ph, pw) < 0:
        raise OpProblem(f"pad {ph}x{pw} cannot be negative", code="RDS205", arg="size")
    return (c, h + 2 * ph, w + 2 * pw)


def _fc(args, shapes):
    if args["out"] < 1:
        raise OpProblem(f"fc needs at least 1 output, got {args['out']}", code="RDS204", arg="out")
    return (args["out"], 1, 1)


def _add(args, shapes):
    a, b = shapes
    if a != b:
        raise OpProblem(
            f"cannot add {fmt(b)} to {fmt(a)}",
            "the shortcut and the residual branch must end in the same shape",
            code="RDS201",
        )
    return a


def _mul(args, shapes):
    a, b = shapes
    if b != a and b != (a[0], 1, 1):
        raise OpProblem(
            f"cannot multiply {fmt(a)} by {fmt(b)}",
            f"a `mul` path ends in {fmt(a)}, or in {a[0]}x1x1 to scale each channel (a gate)",
            code="RDS209",
        )
    return a


def _concat(args, shapes):
    (c, h, w), b = shapes
    if b[1:] != (h, w):
        raise OpProblem(
            f"cannot concatenate {fmt(b)} to {fmt((c, h, w))}",
            f"a `concat` path ends in the tensor's size, {h}x{w}, with any channels",
            code="RDS213",
        )
    return (c + b[0], h, w)


def _subsample(args, shapes):
    c, h, w = shapes[0]
    s = args["stride"]
    if s < 1:
        raise OpProblem(f"subsample stride {s} must be at least 1", code="RDS205", arg="stride")
    return (c, -(-h // s), -(-w // s))


def _zeropad(args, shapes):
    c, h, w = shapes[0]
    if args["channels"] < c:
        raise OpProblem(
            f"zeropad cannot shrink channels from {c} to {args['channels']}",
            "zeropad only adds channels (as option A does); a projection such as `shortcut B` "
            "can narrow them",
            code="RDS202",
        )
    return (args["channels"], h, w)


def _input(args, shapes):
    return tuple(args["shape"])


def _check_positive(shape: Shape) -> Shape:
    if min(shape) < 1:
        raise OpProblem(f"output shape {fmt(shape)} has a dimension below 1", code="RDS204")
    return shape


# ---------------------------------------------------------------- costs


def _numel(shape: Shape) -> int:
    return shape[0] * shape[1] * shape[2]


def _conv_fan_in(args, shape) -> int:
    kh, kw = args["kernel"]
    return shape[0] // args["groups"] * kh * kw


_CONV = (
    Tensor(
        "weight",
        lambda a, s: (a["out"], s[0] // a["groups"], *a["kernel"]),
        lambda a, s: ("he", math.sqrt(2 / (a["out"] * a["kernel"][0] * a["kernel"][1]))),
    ),
    Tensor(
        "bias",
        lambda a, s: (a["out"],),
        lambda a, s: ("uniform", 1 / math.sqrt(_conv_fan_in(a, s))),
        when=lambda a: bool(a["bias"]),
    ),
)
_AFFINE = (  # a norm's learnt scale and shift, per channel
    Tensor("weight", lambda a, s: (s[0],), _fill(1.0)),
    Tensor("bias", lambda a, s: (s[0],), _fill(0.0)),
)
_BN = (
    *_AFFINE,
    Tensor("running_mean", lambda a, s: (s[0],), _fill(0.0), trainable=False),
    Tensor("running_var", lambda a, s: (s[0],), _fill(1.0), trainable=False),
)
_FC = (  # nn.Linear's default init, within 1 / sqrt(fan_in)
    Tensor(
        "weight",
        lambda a, s: (a["out"], _numel(s)),
        lambda a, s: ("uniform", 1 / math.sqrt(_numel(s))),
    ),
    Tensor(
        "bias",
        lambda a, s: (a["out"],),
        lambda a, s: ("uniform", 1 / math.sqrt(_numel(s))),
        when=lambda a: bool(a["bias"]),
    ),
)
_CHANNEL_CONV = (  # nn.Conv1d's layout and default init
    Tensor(
        "weight",
        lambda a, s: (1, 1, a["kernel"]),
        lambda a, s: ("uniform", 1 / math.sqrt(a["kernel"])),
    ),
)


def _conv_macs(args, shapes, out):
    kh, kw = args["kernel"]
    return _numel(out) * (shapes[0][0] // args["groups"]) * kh * kw  # dilation adds no MACs


def _fc_macs(args, shapes, out):
    return _numel(shapes[0]) * args["out"]


# ---------------------------------------------------------------- the table


def _stride(args):
    return args["stride"]


def _out(args, channels):
    return args["out"]


_WINDOW = (
    Arg("stride", "int", 1, positional=False, unit="stride"),
    Arg("pad", "pair", None, positional=False),
)

OPS: dict[str, OpDef] = {
    op.name: op
    for op in (
        OpDef(
            "conv",
            (
                Arg("out", "int", unit="channels"),
                Arg("kernel", "pair"),
                *_WINDOW,
                Arg("groups", "int", 1, positional=False, unit="channels"),
                Arg("bias", "flag", 0, positional=False),
                Arg("dilation", "int", 1, positional=False),
                Arg("ws", "float", 0.0, positional=False),
            ),
            _conv,
            _conv_macs,
            _CONV,
            stride=_stride,
            channels=_out,
            pad=lambda k, a: k // 2 * a.get("dilation", 1),
            fresh=True,
            numbered=True,
            layer=True,
            doc="convolution; padding defaults to kernel // 2 times the dilation. `ws=EPS` "
            "standardises each filter's weights before it is applied (their mean subtracted, "
            "divided by the square root of their variance plus EPS), as BiT's StdConv2d",
            usage="e.g. `conv 64 3x3 stride=2`",
            aliases=("conv2d", "convolution", "conv3x3", "conv1x1"),
        ),
        OpDef(
            "bn",
            (Arg("eps", "float", 1e-5, positional=False),),
            _bn,
            tensors=_BN,
            fresh=True,
            numbered=True,
            doc="batch normalisation; `eps` is added to the variance (PyTorch's 1e-5 by default, "
            "Keras' ResNets use 1.001e-5)",
            aliases=("batchnorm", "batchnorm2d", "batch_norm", "batchnormalization", "norm"),
        ),
        OpDef(
            "gn",
            (Arg("groups", "int", 32, unit="channels"),),
            _gn,
            tensors=_AFFINE,
            fresh=True,
            numbered=True,
            doc="group normalisation (Wu and He 2018) over groups of channels, epsilon 1e-5; "
            "32 groups by default",
            aliases=("groupnorm", "group_norm", "groupnormalization"),
        ),
        OpDef(
            "channel_conv",
            (Arg("kernel", "int"),),
            _channel_conv,
            lambda a, s, o: _numel(o) * a["kernel"],
            _CHANNEL_CONV,
            fresh=True,
            doc="a 1-D convolution across the channels at each position, one weight of `kernel` "
            "taps, zero-padded, no bias (ECA's, Wang et al. 2020)",
            usage="e.g. `channel_conv 5`",
        ),
        OpDef(
            "blurpool",
            (
                Arg("stride", "int", 2, positional=False, unit="stride"),
                Arg("size", "int", 3, positional=False),
            ),
            _blurpool,
            stride=_stride,
            doc="blur then subsample (Zhang 2019): a fixed binomial filter of size x size per "
            "channel over reflect padding, with a stride (timm's BlurPool2d); no weights",
        ),
        OpDef(
            "pad",
            (Arg("size", "pair"), Arg("value", "float", 0.0, positional=False)),
            _pad,
            doc="pad each side of the map with `size` rows and columns of `value` (Keras' "
            "ZeroPadding2D before a max pool of its own padding 0)",
            usage="e.g. `pad 1`",
            aliases=("zeropad2d", "zeropadding2d", "padding"),
        ),
        OpDef(
            "relu",
            (),
            _same,
            pointwise=True,
            doc="rectified linear unit",
            aliases=("activation",),
        ),
        OpDef(
            "relu6",
            (),
            _same,
            pointwise=True,
            doc="min(max(x, 0), 6): a ReLU with a ceiling of 6, as MobileNetV2's",
            aliases=("clip", "clamp"),
        ),
        OpDef("sigmoid", (), _same, pointwise=True, doc="the logistic function, 1 / (1 + e^-x)"),
        OpDef(
            "hardsigmoid",
            (),
            _same,
            pointwise=True,
            doc="the piecewise-linear sigmoid, clip(x / 6 + 1 / 2, 0, 1), as PyTorch's",
        ),
        OpDef(
            "hardswish",
            (),
            _same,
            pointwise=True,
            doc="x * relu6(x + 3) / 6, MobileNetV3's, as PyTorch's Hardswish",
            aliases=("hard_swish", "hswish", "hard_silu"),
        ),
        OpDef(
            "silu",
            (),
            _same,
            pointwise=True,
            doc="x * sigmoid(x), also called swish",
            aliases=("swish",),
        ),
        OpDef(
            "leakyrelu",
            (Arg("slope", "float", 0.01),),
            _same,
            pointwise=True,
            doc="max(x, slope * x); the slope defaults to 0.01",
            aliases=("leaky_relu", "lrelu"),
        ),
        OpDef(
            "maxpool",
            (Arg("kernel", "pair"), *_WINDOW, Arg("ceil", "flag", 0, positional=False)),
            _pool("maxpool"),
            stride=_stride,
            pad=lambda k, a: (k - 1) // 2,
            doc="max pooling; padding defaults to (kernel - 1) // 2, and `ceil=1` rounds its "
            "output up, as PyTorch's ceil_mode",
            usage="e.g. `maxpool 3x3 stride=2`",
            aliases=("maxpool2d", "max_pool", "max_pool2d", "maxpooling2d", "pool"),
        ),
        OpDef(
            "avgpool",
            (
                Arg("kernel", "pair", None),
                *_WINDOW,
                Arg("ceil", "flag", 0, positional=False),
                Arg("include_pad", "flag", 1, positional=False),
            ),
            _pool("avgpool"),
            stride=_stride,
            pad=lambda k, a: (k - 1) // 2,
            identity=lambda a, c: a.get("kernel") == (1, 1) and a["stride"] == 1,
            doc="global average pooling, or a sliding window when given a kernel; `ceil=1` rounds "
            "its output up and `include_pad=0` leaves the padding out of each average, as "
            "PyTorch's ceil_mode and count_include_pad",
            aliases=(
                "avgpool2d",
                "avg_pool",
                "globalaveragepooling2d",
                "global_avgpool",
                "gap",
                "averagepooling2d",
            ),
        ),
        OpDef(
            "adaptive_avgpool",
            (Arg("size", "pair"),),
            _adaptive,
            doc="average pooling to a size: output row i averages input rows floor(i * H / h) "
            "to ceil((i + 1) * H / h), and columns alike, as PyTorch's AdaptiveAvgPool2d (VGG's "
            "pool to 7x7); to 1x1 it is `avgpool`",
            usage="e.g. `adaptive_avgpool 7x7`",
            aliases=("adaptiveavgpool2d", "adaptive_avg_pool2d", "adaptive_pool"),
        ),
        OpDef(
            "fc",
            (Arg("out", "int", CLASSES, unit="channels"), Arg("bias", "flag", 1, positional=False)),
            _fc,
            _fc_macs,
            _FC,
            channels=_out,
            flattens=True,
            pointwise=True,
            fresh=True,
            layer=True,
            doc="fully connected layer on the flattened input; out defaults to the classes",
            aliases=("linear", "dense", "fully_connected", "classifier"),
        ),
        OpDef(
            "dropout",
            (Arg("p", "float", 0.5),),
            _dropout,
            pointwise=True,
            stochastic=True,
            doc="dropout",
            aliases=("drop",),
        ),
        OpDef(
            "droppath",
            (Arg("p", "float"),),
            _droppath,
            pointwise=True,
            stochastic=True,
            doc="stochastic depth (Huang et al. 2016) on a residual branch: in training each "
            "sample's branch is dropped with probability p and the rest scaled by 1 / (1 - p); "
            "the identity in eval. A network's `drop_path RATE` puts one before each stage "
            "block's add, its p rising linearly from 0 to RATE, as timm's drop_path_rate does",
            usage="e.g. `droppath 0.1`",
            aliases=("drop_path", "stochastic_depth"),
        ),
        OpDef("input", (Arg("shape", "dims"),), _input, inputs=0, user=False),
        OpDef("add", (), _add, fresh=True, inputs=2, user=False),
        OpDef("mul", (), _mul, fresh=True, inputs=2, user=False),
        OpDef(
            "concat",
            (Arg("side", "int", unit="channels"),),  # the side path's channels, after the tensor's
            _concat,
            channels=lambda a, c: c + a["side"],
            fresh=True,
            inputs=2,
            user=False,
        ),
        OpDef(
            "subsample",
            (Arg("stride", "int", unit="stride"),),
            _subsample,
            stride=_stride,
            identity=lambda a, c: a["stride"] == 1,
            doc="keep every stride-th row and column (option A's shortcut)",
            usage="e.g. `subsample 2`",
        ),
        OpDef(
            "zeropad",
            (Arg("channels", "int", unit="channels"),),
            _zeropad,
            channels=lambda a, c: a["channels"],
            identity=lambda a, c: a["channels"] == c,
            doc="zero-pad the channels up to a count (option A's shortcut)",
            usage="e.g. `zeropad 64`",
        ),
    )
}


def complete(op: str, args: dict) -> dict:
    """Fill the defaults that depend on other arguments: a window's padding from its kernel.

    A window op without a kernel (global average pooling) has stride 1 and no padding.
    """
    rule = OPS[op].pad
    if rule is None:
        return dict(args)
    args = dict(args)
    if args.get("kernel") is None:
        args["stride"], args["pad"] = 1, (0, 0)
    elif args.get("pad") is None:
        args["pad"] = tuple(rule(k, args) for k in args["kernel"])
    return args


def infer(op: str, args: dict, shapes: list[Shape]) -> Shape:
    """The output shape of ``op``; raises :class:`OpProblem` where it cannot work."""
    return _check_positive(OPS[op].infer(args, shapes))
