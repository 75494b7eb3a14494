"""What every Python-emitting target shares: spec expressions as Python, and train.py's config.

Block definitions are written with their parameters kept as parameters, so their expressions
become Python source here. The config block of train.py is the same for every target.
"""

from __future__ import annotations

import keyword

from .. import ops, recipe
from .. import syntax as ast
from ..emit import TargetError, literal, where
from ..ir import Network, Node

# The recipe when a spec has no train section: a short run that suits the embedded digits data.
DEFAULT_RECIPE = recipe.TrainConfig(
    name="default",
    data=recipe.Data("digits"),
    augment=recipe.Augment(),
    normalize=recipe.Normalize("pixel_mean"),
    batch=64,
    optimizer=recipe.Optimizer("sgd", lr=0.1, momentum=0.9, weight_decay=1e-4),
    schedule=recipe.Schedule(),
    iterations=1000,
    warmup=None,
    span=None,
)
WARMUP_WINDOW = 10  # K: the paper's warmup watches the training error of the last K minibatches


def train_view(net: Network) -> dict:
    """The config block of train.py: plain literals, each written with repr()."""
    cfg = net.train or DEFAULT_RECIPE
    warm = cfg.warmup
    iters = cfg.iterations
    rows = [
        ("network", net.name, None),
        ("dataset", cfg.data.name, None),
        ("split", cfg.data.split, "(train, val) images; None: val is a tenth of train"),
        ("pad", cfg.augment.pad, "augmentation: zero padding before a random crop"),
        ("crop", cfg.augment.crop, None),
        ("flip", cfg.augment.flip, "random horizontal flips (never on digits)"),
        ("scale", cfg.augment.scale, "imagenet: the shorter side, drawn from [lo, hi]"),
        ("color", cfg.augment.color, None),
        ("normalize", cfg.normalize.kind, "pixel_mean: the training split's per-pixel mean"),
        ("mean", cfg.normalize.mean, None),
        ("std", cfg.normalize.std, None),
        ("batch_size", cfg.batch, None),
        ("lr", cfg.optimizer.lr, None),
        ("momentum", cfg.optimizer.momentum, None),
        ("weight_decay", cfg.optimizer.weight_decay, None),
        ("nesterov", cfg.optimizer.nesterov, None),
        ("schedule", cfg.schedule.kind, "constant | step | cosine | plateau"),
        ("milestones", cfg.schedule.milestones, "step: iterations where lr is multiplied"),
        ("factor", cfg.schedule.factor, None),
        ("min_lr", cfg.schedule.min_lr, "cosine"),
        ("patience", cfg.schedule.patience, "plateau: evaluations without improvement"),
        ("iterations", iters, None),
        ("warmup", warm.kind if warm else None, "None | error (the paper's) | linear"),
        ("warmup_lr", warm.lr if warm and warm.lr is not None else 0.0, None),
        ("warmup_threshold", warm.threshold if warm and warm.threshold else 0.0, "percent"),
        ("warmup_iters", warm.iterations if warm and warm.iterations else 0, None),
        ("warmup_from", warm.start_lr if warm else 0.0, None),
        ("warmup_window", WARMUP_WINDOW, "K: running training error over the last K batches"),
        ("eval_every", max(1, min(1000, iters // 10)), None),
        ("ckpt_every", max(1, min(5000, iters // 4)), None),
        ("log_every", max(1, min(100, iters // 100)), None),
        ("out_dir", f"runs/{net.name}", "the default run folder"),
    ]
    config = [(name, literal(value), comment) for name, value, comment in rows]
    source = net.span.source.name if net.train is None else where(net.train.span, net.span)
    return {
        "network": net.name,
        "source": where(net.span, net.span).rsplit(":", 1)[0] if net.train is None else source,
        "config": config,
    }


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Net"


def literal_repeat(stmt: ast.Call) -> int:
    if stmt.repeat is None:
        return 1
    if isinstance(stmt.repeat, ast.Num):
        return stmt.repeat.value
    raise TargetError("a repeat count inside a block must be a number", stmt.span)


def next_name(counts: dict[str, int], kind: str) -> str:
    # the IR's naming rule: conv and bn always numbered, others from their second occurrence on
    n = counts[kind] = counts.get(kind, 0) + 1
    return f"{kind}{n}" if kind in ("conv", "bn") or n > 1 else kind


def py_expr(expr: ast.Expr, params: list[str]) -> str:
    """A spec expression as Python source; names must be the block's parameters."""
    if isinstance(expr, ast.Num):
        return repr(expr.value)
    if isinstance(expr, ast.Dims):
        return repr(expr.values)
    if isinstance(expr, ast.Name):
        if expr.id not in params or keyword.iskeyword(expr.id):
            raise TargetError(f"`{expr.id}` is not a parameter of this block", expr.span)
        return expr.id

    def side(e):
        text = py_expr(e, params)
        return f"({text})" if isinstance(e, ast.BinOp) else text

    return f"{side(expr.left)} {expr.op} {side(expr.right)}"


def symbolic_args(stmt: ast.Call) -> dict[str, ast.Expr | object]:
    opdef = ops.OPS[stmt.name]
    positional = [a for a in opdef.args if a.positional]
    given = {arg.name: expr for arg, expr in zip(positional, stmt.args, strict=False)}
    given.update({kw.name: kw.value for kw in stmt.kwargs})
    return {a.name: given.get(a.name, a.default) for a in opdef.args}


def size(value, params) -> str:
    """A kernel, stride or padding: an int, an HxW literal, or an expression."""
    if isinstance(value, ast.Dims):
        h, w = value.values
        return str(h) if h == w else f"({h}, {w})"
    return py_expr(value, params) if isinstance(value, ast.Expr) else repr(value)


def default_pad(kernel, op: str, params) -> str:
    if isinstance(kernel, ast.Dims):
        h, w = kernel.values
        ph, pw = (h // 2, w // 2) if op == "conv" else ((h - 1) // 2, (w - 1) // 2)
        return str(ph) if ph == pw else f"({ph}, {pw})"
    k = size(kernel, params)
    return f"{k} // 2" if op == "conv" else f"({k} - 1) // 2"


def keyword_arg(name, value, default, params) -> dict[str, str]:
    if value == default or isinstance(value, ast.Num) and value.value == default:
        return {}
    return {name: size(value, params)}


def flag(value, params) -> str:
    if isinstance(value, ast.Num) or not isinstance(value, ast.Expr):
        return repr(bool(getattr(value, "value", value)))
    return f"bool({py_expr(value, params)})"


def pair(value) -> str:
    h, w = value
    return str(h) if h == w else repr(tuple(value))


def members(net: Network) -> dict[str, list[Node]]:
    """Each block instance's nodes, in order."""
    out: dict[str, list[Node]] = {}
    for node in net.nodes():
        if node.block is not None:
            out.setdefault(node.block, []).append(node)
    return out
