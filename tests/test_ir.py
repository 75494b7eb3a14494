"""The IR's own pieces, one by one: expressions, the op table's symbolic rules, the shortcut plan,
the namespaces and lint. Expected values are the paper's (REFERENCE.md section 3.3), Python's own
arithmetic and torchvision's names."""

from __future__ import annotations

import dataclasses
import keyword

import pytest

import resdsl
from resdsl import ops
from resdsl.check import lint
from resdsl.ir import BinOp, Const, Param, Shortcut, as_expr, evaluate, substitute
from resdsl.names import ATTRIBUTE_RESERVED, Namespace, class_name, module_suffix

from helpers import SPECS, compile_text

W, S = Param("w"), Param("stride")

# ---------------------------------------------------------------- expressions


@pytest.mark.parametrize(
    "make, env",
    [
        (lambda w, s: w * 4, {"w": 7, "stride": 2}),
        (lambda w, s: (w - 1) // 2 + s, {"w": 9, "stride": 3}),
        (lambda w, s: 2 * w + 1 - s, {"w": 5, "stride": 1}),
        (lambda w, s: 64 // w * s, {"w": 8, "stride": 2}),
    ],
)
def test_expressions_compute_as_python_does(make, env):
    """The same rule on ints and on expressions: the expression evaluates to Python's value."""
    expr = make(W, S)
    assert evaluate(expr, env) == make(env["w"], env["stride"])


def test_constants_fold_and_neutral_elements_vanish():
    assert Const(3) * 4 == Const(12)
    assert W * 1 is W and 1 * W is W and W // 1 is W and W + 0 is W
    assert BinOp("*", W, Const(2)) == W * 2
    assert as_expr(5) == Const(5) and as_expr(W) is W
    assert substitute(W * 2 + S, {"w": Const(3)}) == BinOp("+", Const(6), S)


def test_the_op_table_rules_work_on_values_and_expressions():
    """Each row's symbolic form, written once, serves concrete and symbolic arguments."""
    conv, pool, fc = ops.OPS["conv"], ops.OPS["maxpool"], ops.OPS["fc"]
    assert conv.pad(7, {}) == 3 and pool.pad(3, {}) == 1
    assert conv.pad(3, {"dilation": 2}) == 2  # timm's ((stride - 1) + dilation * (k - 1)) // 2
    assert evaluate(conv.pad(Param("k"), {}), {"k": 5}) == 2
    assert evaluate(pool.pad(Param("k"), {}), {"k": 5}) == 2
    assert conv.channels({"out": W * 4}, Param("c")) == W * 4
    assert conv.stride({"stride": S}) is S
    assert ops.OPS["bn"].channels({}, Param("c")) == Param("c")
    assert fc.flattens and not conv.flattens
    assert ops.OPS["add"].inputs == 2 and ops.OPS["input"].inputs == 0


def test_complete_fills_padding_from_the_kernel():
    assert ops.complete("conv", {"kernel": (7, 3), "pad": None})["pad"] == (3, 1)
    assert ops.complete("maxpool", {"kernel": (3, 3), "pad": None})["pad"] == (1, 1)
    assert ops.complete("conv", {"kernel": (3, 3), "pad": (0, 0)})["pad"] == (0, 0)
    assert ops.complete("avgpool", {"kernel": None}) == {"kernel": None, "stride": 1, "pad": (0, 0)}
    assert ops.complete("relu", {}) == {}


# ---------------------------------------------------------------- shortcuts (section 3.3)


def one_block(policy: str, stride: int, cin: int, cout: int, defs: str = ""):
    """A network of one block from ``cin`` to ``cout`` channels at ``stride``, under ``policy``."""
    return compile_text(
        f"""
        {defs}
        block unit(width, stride = 1) {{
            conv width 3x3 stride=stride; bn
            add
        }}
        network one {{
            input 3x16x16
            classes 10
            shortcut {policy}
            stem  {{ conv {cin} 3x3 }}
            stage {{ unit {cout} stride={stride} }}
            head  {{ avgpool; fc }}
        }}
        """
    )


@pytest.mark.parametrize(
    "policy, stride, cin, cout, case, made",
    [
        ("A", 1, 16, 16, None, []),
        ("A", 2, 16, 32, "change", ["subsample", "zeropad"]),
        ("A", 2, 16, 16, "change", ["subsample"]),
        ("A", 1, 16, 32, "change", ["zeropad"]),
        ("B", 1, 16, 16, None, []),
        ("B", 2, 16, 32, "change", ["conv", "bn"]),
        ("B", 1, 64, 256, "change", ["conv", "bn"]),
        ("C", 1, 16, 16, "always", ["conv", "bn"]),
    ],
)
def test_the_prelude_shortcuts_follow_the_paper(policy, stride, cin, cout, case, made):
    """Option A pads where dimensions change, B projects there, C projects everywhere."""
    net = one_block(policy, stride, cin, cout)
    shortcut = net.block("layer1.0").shortcut
    assert (shortcut.policy, shortcut.case, shortcut.residual) == (policy, case, True)
    nodes = [n for n in net.nodes() if n.role == "shortcut"]
    assert [n.op for n in nodes] == made
    assert net.node("layer1.0.add").shape == (cout, -(-16 // stride), -(-16 // stride))


def test_a_projection_is_a_strided_1x1_conv_then_bn():
    net = one_block("B", 2, 64, 128)
    conv, bn = net.node("layer1.0.downsample.0"), net.node("layer1.0.downsample.1")
    assert (conv.op, bn.op) == ("conv", "bn")
    assert conv.arg == {
        "out": 128,
        "kernel": (1, 1),
        "stride": 2,
        "pad": (0, 0),
        "groups": 1,
        "bias": 0,
        "dilation": 1,
        "ws": 0.0,
    }


def test_an_op_that_does_nothing_is_left_out_but_keeps_its_position():
    """ResNet-D's pool is timm's downsample.0 even at stride 1, where it is nn.Identity."""
    defs = """shortcut D {
        change { avgpool stride stride=stride ceil=1 include_pad=0; conv out 1x1; bn }
    }"""
    net = one_block("D", 1, 16, 32, defs)
    made = [(n.local, n.op) for n in net.nodes() if n.role == "shortcut"]
    assert made == [("1", "conv"), ("2", "bn")]
    net = one_block("D", 2, 16, 32, defs)
    made = [(n.local, n.op) for n in net.nodes() if n.role == "shortcut"]
    assert made == [("0", "avgpool"), ("1", "conv"), ("2", "bn")]
    assert net.node("layer1.0.downsample.0").shape == (16, 8, 8)


def test_a_path_template_holds_the_ops_over_in_out_and_stride():
    net = one_block("B", 2, 16, 32)
    shortcut = net.block("layer1.0").shortcut
    assert (shortcut.kind, shortcut.path, shortcut.arg) == ("path", "B", {"out": 32, "stride": 2})
    conv = net.shortcuts["B"].ops[0]
    assert (conv.arg["out"], conv.arg["stride"]) == (Param("out"), S)


def test_no_addition_is_no_shortcut():
    assert not Shortcut("none").residual and not Shortcut("plain").residual
    net = one_block("none", 2, 16, 32)
    assert net.block("layer1.0").shortcut == Shortcut("none", "none", "always")
    assert not [n for n in net.nodes() if n.op == "add"]


def test_block_instances_record_their_shortcut():
    net = resdsl.load(SPECS / "resnet18.rds")
    plans = {b.name: b.shortcut for b in net.blocks}
    assert plans["layer1.0"] == Shortcut("identity", "B")
    assert plans["layer2.0"] == Shortcut("path", "B", "change", "B", (("out", 128), ("stride", 2)))
    nodes = [n.op for n in net.nodes() if n.block == "layer2.0" and n.role == "shortcut"]
    assert nodes == [op.op for op in net.shortcuts["B"].ops]


# ---------------------------------------------------------------- names


def test_namespaces_never_hand_out_a_reserved_or_used_name():
    names = Namespace({"self", "x"})
    assert names.create_name("conv") == "conv"
    assert names.create_name("conv") == "conv_1"
    assert names.create_name("self") == "self_1"
    assert names.create_name("_private") == "m_private"
    assert names.create_name("2x") == "m2x"
    assert names.create_name("naïve") == "na_ve"
    numbered = Namespace(numbered=True)
    assert numbered.create_name("0") == "0" and numbered.create_name("0") == "0_1"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("resnet20", "ResNet20"),
        ("resnext50_32x4d", "ResNeXt50_32x4d"),
        ("wide_resnet50_2", "WideResNet50_2"),
        ("bottleneck_v1_5", "BottleneckV1_5"),
        ("preact_resnet164", "PreActResNet164"),
        ("basic", "Basic"),
        ("_", "Net"),
    ],
)
def test_class_names_read_like_torchvisions(name, expected):
    assert class_name(name) == expected


def test_module_names_are_torchvisions():
    assert [module_suffix(n, True) for n in (1, 2)] == ["1", "2"]  # conv1, conv2
    assert [module_suffix(n, False) for n in (1, 2)] == ["", "2"]  # relu, relu2


def test_each_target_names_from_its_own_namespace():
    """A block parameter called `out` is a TF local, not a torch one: only TF renames it."""
    net = compile_text(
        """
        block wide(out, stride = 1) { conv out 3x3 stride=stride; bn; add; relu }
        network n {
            input 3x8x8
            classes 4
            stem { conv 8 3x3 }
            stage { wide 8 }
            head { avgpool; fc }
        }
        """
    )
    torch_model = resdsl.emit(net, "torch")["model.py"]
    tf_model = resdsl.emit(net, "tf")["model.py"]
    assert "def __init__(self, in_channels, out, stride=1, downsample=None):" in torch_model
    assert "def wide_block(x, out_1, stride=1, *, name" in tf_model
    assert "class N(nn.Module):" in torch_model


# ---------------------------------------------------------------- lint


def test_lint_accepts_every_shipped_network():
    for path in sorted(SPECS.glob("*.rds")):
        for net in resdsl.check_spec(path):
            assert lint(net) == []


def broken(net, name: str, **changes):
    """``net`` with one node changed behind the elaborator's back."""
    graph = net.graph.copy()
    node = graph.nodes[name]["node"]
    graph.nodes[name]["node"] = dataclasses.replace(node, **changes)
    return dataclasses.replace(net, graph=graph)


def test_lint_catches_what_the_elaborator_must_never_make():
    net = resdsl.load(SPECS / "resnet20.rds")
    with pytest.raises(AssertionError, match="inputs disagree"):
        lint(broken(net, "conv1", inputs=("bn1",)))
    with pytest.raises(AssertionError, match="unknown op"):
        lint(broken(net, "conv1", op="gelu"))
    with pytest.raises(AssertionError, match="has 2 inputs"):  # a relu reads one tensor
        lint(broken(net, "layer1.0.add", op="relu"))
    with pytest.raises(AssertionError, match="cannot be an attribute"):
        lint(broken(net, "layer1.0.relu", local="forward"))
    assert "forward" in ATTRIBUTE_RESERVED and not keyword.iskeyword("forward")


def test_an_argument_added_at_its_default_leaves_the_identity_as_it_was(monkeypatch):
    """A network's identity (what its checkpoints must match) does not change where a later
    resdsl gives an op another argument with a default (as `ceil` came to `maxpool`):
    yesterday's checkpoints still load. A value other than the default changes it."""
    from resdsl.identity import identity

    text = (
        "network n {{\n input 3x16x16\n classes 4\n stem {{ conv 8 3x3; maxpool 3x3 "
        "stride=2{pool} }}\n stage {{ basic 8 }}\n head {{ avgpool; fc }}\n}}\n"
    )
    before = identity(compile_text(text.format(pool="")))["digest"]
    later = ops.Arg("future", "int", 0, positional=False)
    row = ops.OPS["maxpool"]
    monkeypatch.setitem(ops.OPS, "maxpool", dataclasses.replace(row, args=(*row.args, later)))
    assert identity(compile_text(text.format(pool="")))["digest"] == before
    assert identity(compile_text(text.format(pool=" future=1")))["digest"] != before
