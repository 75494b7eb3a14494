"""Elaboration: names, shortcuts, families, blocks and the IR's structure."""

import pytest

import resdsl

from helpers import SPECS, compile_text, errors_of


def weighted_modules(net):
    """Module names that own weights (conv, bn, fc), as state_dict keys would name them."""
    return {n.name for n in net.nodes() if n.op in ("conv", "bn", "fc")}


def torchvision_modules(block: str, layers: list[int]) -> set[str]:
    """The conv/bn/fc module names of torchvision's resnet.py, written out from its structure."""
    convs = 2 if block == "basic" else 3
    names = {"conv1", "bn1", "fc"}
    for stage, count in enumerate(layers, start=1):
        for index in range(count):
            prefix = f"layer{stage}.{index}."
            for k in range(1, convs + 1):
                names |= {f"{prefix}conv{k}", f"{prefix}bn{k}"}
            # a projection where the block changes width or stride: every stage's first block,
            # except resnet18/34's first stage (64 -> 64, stride 1)
            if index == 0 and (stage > 1 or block == "bottleneck"):
                names |= {f"{prefix}downsample.0", f"{prefix}downsample.1"}
    return names


@pytest.mark.parametrize(
    ("spec", "block", "layers"),
    [
        ("resnet18", "basic", [2, 2, 2, 2]),
        ("resnet34", "basic", [3, 4, 6, 3]),
        ("resnet50", "bottleneck", [3, 4, 6, 3]),
        ("resnet50_v1_5", "bottleneck", [3, 4, 6, 3]),
        ("resnet152", "bottleneck", [3, 8, 36, 3]),
    ],
)
def test_names_follow_torchvision(spec, block, layers):
    net = resdsl.load(SPECS / f"{spec}.rds")
    assert weighted_modules(net) == torchvision_modules(block, layers)


@pytest.mark.parametrize(
    "first, second",
    [
        ("conv1: conv w 3x3; bn", "conv w 3x3; bn"),  # the issue's: was conv1_1
        ("conv w 3x3; bn1: bn", "conv w 3x3; bn"),
        ("conv1: conv w 3x3; bn1: bn; relu: relu", "conv w 3x3; bn"),
        ("conv w 3x3; bn", "conv2: conv w 3x3; bn2: bn"),
    ],
)
def test_a_label_of_an_automatic_name_counts_as_that_name(first, second):
    """Labels that say what resdsl would have said leave torchvision's names as they are."""
    net = compile_text(
        f"block b(w) {{ {first}; relu; {second}; add; relu }}\n"
        "network n { input 3x8x8; classes 2; stem { conv 4 3x3; bn; relu }\n"
        "stage { b 4 x 2 }\nhead { avgpool; fc } }\n"
    )
    assert weighted_modules(net) == torchvision_modules("basic", [2]) - {"layer1.0.downsample.0"}


def test_option_a_is_subsample_then_zero_pad():
    net = resdsl.load(SPECS / "resnet20.rds")
    sub, pad = net.node("layer2.0.downsample.0"), net.node("layer2.0.downsample.1")
    assert (sub.op, sub.arg, sub.shape) == ("subsample", {"stride": 2}, (16, 16, 16))
    assert (pad.op, pad.arg, pad.shape) == ("zeropad", {"channels": 32}, (32, 16, 16))
    assert sub.inputs == ("layer1.2.relu2",)
    add = net.node("layer2.0.add")
    assert add.inputs == ("layer2.0.bn2", "layer2.0.downsample.1")
    assert "layer1.0.downsample.0" not in net.graph  # identity where nothing changes
    kinds = [b.shortcut.kind for b in net.blocks]
    assert kinds == ["identity"] * 3 + ["path", "identity", "identity"] * 2
    # what option A made: layer2.0 subsamples by 2 and pads 16 to 32 channels, as its nodes do
    shortcut = net.block("layer2.0").shortcut
    assert (shortcut.policy, shortcut.case, shortcut.arg) == (
        "A",
        "change",
        {"out": 32, "stride": 2},
    )


def test_plain_nets_have_no_addition():
    net = resdsl.load(SPECS / "plain20.rds")
    assert not [n for n in net.nodes() if n.op in ("add", "subsample", "zeropad")]
    assert {b.shortcut.kind for b in net.blocks} == {"none"}
    # the post-addition relu follows the branch directly
    assert net.node("layer1.0.relu2").inputs == ("layer1.0.bn2",)


def test_command_line_policy_overrides_the_spec():
    net = resdsl.load(SPECS / "plain20.rds", shortcut="C")
    assert {b.shortcut.kind for b in net.blocks} == {"path"}
    assert {b.shortcut.policy for b in net.blocks} == {"C"}
    assert net.node("layer1.0.downsample.0").arg["kernel"] == (1, 1)


def test_stage_policy_overrides_the_network():
    net = compile_text(
        """
        network mixed {
            input 3x32x32
            classes 10
            shortcut A
            stem  { conv 16 3x3; bn; relu }
            stage { basic 16 }
            stage { basic 32; stride 2; shortcut B }
            stage { basic 64; stride 2 }
            head  { avgpool; fc }
        }
        """
    )
    plans = [(b.shortcut.kind, b.shortcut.policy) for b in net.blocks]
    assert plans == [("identity", "A"), ("path", "B"), ("path", "A")]


def test_preactivation_block_is_expressible():
    """He et al. 2016's full pre-activation unit: BN and ReLU before each conv, nothing after."""
    net = compile_text(
        """
        block preact(width, stride = 1) {
            bn; relu; conv width 3x3 stride=stride
            bn; relu; conv width 3x3
            add
        }
        network preresnet(n) {
            input 3x32x32
            classes 10
            shortcut B
            stem  { conv 16 3x3 }
            stage { preact 16 x n }
            stage { preact 32 x n; stride 2 }
            head  { bn; relu; avgpool; fc }
        }
        network pre = preresnet(n = 2)
        """
    )
    assert net.node("layer1.0.bn1").inputs == ("conv1",)
    assert net.node("layer1.0.add").inputs == ("layer1.0.conv2", "conv1")
    assert net.node("layer2.0.downsample.0").inputs == ("layer1.1.add",)
    assert net.node("bn1").inputs == ("layer2.1.add",)  # the head's BN, after the last addition
    # parameters by hand: stem conv, 4 units of two BNs and two convs, one projection, head BN, fc
    w16 = 2 * (2 * 16 + 9 * 16 * 16) * 2
    w32 = (2 * 16 + 9 * 16 * 32 + 2 * 32 + 9 * 32 * 32) + (2 * 32 + 9 * 32 * 32) * 2
    expected = 27 * 16 + w16 + w32 + (16 * 32 + 2 * 32) + 2 * 32 + 32 * 10 + 10
    assert resdsl.summary(net)["params"] == expected


def test_block_kinds_pass_through_family_parameters():
    net = resdsl.load(SPECS / "resnet50.rds")
    assert {b.kind for b in net.blocks} == {"bottleneck"}
    assert [b.stage for b in net.blocks].count(3) == 6


def test_nested_blocks_and_defaults():
    net = compile_text(
        """
        block double(width, stride = 1) {
            basic width stride=stride
            basic width
        }
        network nested {
            input 3x16x16
            classes 5
            shortcut B
            stem  { conv 8 7x7 stride=2; maxpool 3x3 stride=2 }
            stage { double 8 }
            stage { double 16; stride 2 }
            head  { avgpool; dropout 0.2; fc }
        }
        """
    )
    assert net.node("conv1").arg["pad"] == (3, 3)  # kernel // 2
    assert net.node("maxpool").arg["pad"] == (1, 1)  # (kernel - 1) // 2
    assert net.node("maxpool").shape == (8, 4, 4)
    assert net.node("layer2.0.basic.downsample.0").arg["stride"] == 2
    assert net.node("layer2.0.basic2.conv1").shape == (16, 2, 2)
    assert net.node("fc").shape == (5, 1, 1)  # out defaults to the classes
    # the outer block has no `add`: no shortcut of its own
    assert net.block("layer2.0").shortcut.kind == "plain"


def test_every_node_has_a_span_a_path_and_a_shape():
    net = resdsl.load(SPECS / "resnet110.rds")
    for node in net.nodes():
        assert node.span.source.name.endswith(".rds")
        assert not node.span.source.builtin  # prelude internals point at the user's call
        assert node.path and node.shape
    assert net.node("layer3.17.conv2").path == "stage 3 › block 18 › conv 2"


def test_build_is_deterministic():
    first = [
        (n.name, n.op, n.args, n.inputs, n.shape)
        for n in resdsl.load(SPECS / "resnet56.rds").nodes()
    ]
    again = [
        (n.name, n.op, n.args, n.inputs, n.shape)
        for n in resdsl.load(SPECS / "resnet56.rds").nodes()
    ]
    assert first == again


def test_graph_order_is_topological():
    import networkx as nx

    net = resdsl.load(SPECS / "resnet50.rds")
    assert nx.is_directed_acyclic_graph(net.graph)
    position = {name: i for i, name in enumerate(net.graph.nodes)}
    assert all(position[u] < position[v] for u, v in net.graph.edges)


def test_choosing_among_several_networks(tmp_path):
    spec = tmp_path / "two.rds"
    spec.write_text(
        'import "%s"\nnetwork a = cifar_resnet(1)\nnetwork b = cifar_resnet(2)\n'
        % (SPECS / "cifar.rds")
    )
    with pytest.raises(resdsl.SpecError, match=r"several networks \(a, b\)"):
        resdsl.load(spec)
    assert len(resdsl.load(spec, network="b").blocks) == 6


def test_missing_import(tmp_path):
    spec = tmp_path / "x.rds"
    spec.write_text('import "nowhere.rds"\n')
    (error,) = errors_of(spec.read_text(), str(spec))
    assert 'cannot import "nowhere.rds"' in error.message
    assert (error.span.line, error.span.column) == (1, 8)  # the path, not the keyword


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("stage { basic 16 widht=3 }", "`basic` has no parameter `widht`"),
        ("stage { basic 16 width=3 }", "`width` is given twice"),
        ("stage { basic }", "`basic` needs a value for `width`"),
        ("stem { conv 16 3x3 strid=2 }", "`conv` has no argument `strid`"),
        ("stem { conv 16 3x3 1 }", "too many values for `conv`"),
        ("stem { dropout 3x3 }", "must be a number, got 3x3"),
        ("stage { basic 16 x 0 }", "a repeat count must be at least 1, got 0"),
        ("stage { basic 16 // 0 }", "division by zero"),
        ("stage { basic 1.5 * 2 }", "`*` works on integers, got 1.5"),
        ("stem { conv 16 3x3 ws=1 }", "conv ws 1.0 must be in [0, 1)"),
    ],
)
def test_argument_errors(body, message):
    errors = errors_of(f"network n {{\n  input 3x32x32\n  classes 10\n  {body}\n}}\n")
    assert any(message in e.message for e in errors), errors
    assert all(e.span.line == 4 for e in errors)


def test_missing_input_and_classes_are_both_reported():
    errors = errors_of("network n {\n  stem { conv 16 3x3 }\n}\n")
    assert sorted(e.message for e in errors) == [
        "network `n` has no `classes`",
        "network `n` has no `input`",
    ]


# ---------------------------------------------------------------- side paths and labels


GATED = """
    block gated(w, stride = 1) {
        conv w 3x3 stride=stride; bn
        mul { conv w 3x3 stride=2; avgpool; fc1: conv w 1x1 bias=1; sigmoid }
        add
        relu
    }
    network n {
        input 3x8x8
        classes 10
        stem  { conv 8 3x3 }
        stage { gated 8 }
        stage { gated 16; stride 2 }
        head  { avgpool; fc }
    }
"""


def test_a_side_path_joins_the_tensor_it_started_from():
    net = compile_text(GATED)
    mul = net.node("layer1.0.mul")
    assert mul.op == "mul" and mul.inputs == ("layer1.0.bn1", "layer1.0.sigmoid")
    assert net.node("layer1.0.conv2").inputs == ("layer1.0.bn1",)  # the path reads the branch
    assert net.node("layer1.0.fc1").shape == (8, 1, 1)  # its labelled conv, a gate of 8x1x1
    assert mul.shape == net.node("layer1.0.bn1").shape == (8, 8, 8)
    # the path's stride-2 conv is not the block's: layer1.0 keeps its shape, so no projection
    assert net.block("layer1.0").shortcut.kind == "identity"
    assert net.block("layer2.0").shortcut.arg == {"out": 16, "stride": 2}


@pytest.mark.parametrize(
    "body, code, fragment",
    [
        ("conv w 3x3; mul { conv w//2 1x1 }; add", "RDS209", "cannot multiply 8x8x8 by 4x8x8"),
        ("conv1: conv w 3x3; conv1: bn; add", "RDS116", "the name `conv1` is taken here"),
        ("one: conv w 3x3 x 2; add", "RDS117", "but `x` repeats it"),
    ],
)
def test_side_path_and_label_errors(body, code, fragment):
    text = GATED.replace(
        "conv w 3x3 stride=stride; bn\n        mul { conv w 3x3 stride=2; avgpool; fc1: conv w 1x1 "
        "bias=1; sigmoid }\n        add",
        body,
    )
    (error,) = {e.code: e for e in errors_of(text)}.values()
    assert (error.code, fragment in error.message) == (code, True), error.message


NAMED = """
    shortcut P { change { avgpool stride stride=stride; proj: conv out 1x1; bn } }
    network n {
        input 3x8x8
        classes 10
        shortcut P
        stem  { group stem { conv: conv 8 3x3; bn; act: relu } }
        stage stages.0.blocks { basic 8 }
        stage stages.1.blocks { basic 16 stride=2 }
        head  { group head { pool: avgpool; fc: fc } }
    }
"""


def test_labels_name_the_members_of_groups_and_shortcuts():
    """A label in a group or a shortcut names its module there; the others keep their number,
    as nn.Sequential numbers them, and a left-out op's name still counts."""
    net = compile_text(NAMED.replace("basic 8 }", "basic 8; basic 8 }"))
    names = {n.name for n in net.nodes()}
    assert {"stem.conv", "stem.1", "stem.act", "head.pool", "head.fc"} <= names
    assert {"stages.1.blocks.0.downsample.0", "stages.1.blocks.0.downsample.proj"} <= names
    assert "stages.1.blocks.0.downsample.2" in names  # its BN, after the label
    assert {"stages.0.blocks.0.conv1", "stages.0.blocks.1.bn2"} <= names
    assert not any(n.startswith("layer") for n in names)


def test_a_left_out_shortcut_op_keeps_its_label():
    text = NAMED.replace("avgpool stride stride=stride;", "down: avgpool stride stride=stride;")
    net = compile_text(text.replace("basic 8 }", "basic 16 }"))  # stage 1 projects at stride 1
    names = {n.name for n in net.nodes()}
    assert "stages.0.blocks.0.downsample.down" not in names  # a 1x1 pool does nothing
    assert {"stages.0.blocks.0.downsample.proj", "stages.0.blocks.0.downsample.2"} <= names


@pytest.mark.parametrize(
    "old, new, code, line, fragment",
    [
        ("{ basic 8 }", "{ b: basic 8 }", "RDS117", 8, "cannot name one of a stage's blocks"),
        ("stages.1.blocks", "stages.0.blocks", "RDS116", 9, "clashes with the stage module"),
        ("stages.1.blocks", "stages.0.blocks.x", "RDS116", 9, "`stages.0.blocks`"),
        ("stages.1.blocks", "layer1", "RDS116", 9, "clashes"),  # stage 1's own default is free
        ("stages.1.blocks", "stages.1.forward", "RDS117", 9, "`forward` cannot name"),
        ("stages.1.blocks", "stages._x", "RDS117", 9, "private"),
        ("stages.1.blocks", "stages.1.values", "RDS117", 9, "`values` cannot name"),
        ("group head", "group stages", "RDS116", 10, "`stages` is taken"),
        ("act: relu", "pop: relu", "RDS116", 7, "`pop` is taken"),
    ],
)
def test_module_path_and_label_errors(old, new, code, line, fragment):
    assert old in NAMED
    text = NAMED.replace(old, new, 1)
    if new == "layer1":
        text = text.replace("stage stages.0.blocks", "stage")
    (error,) = errors_of(text)
    assert (error.code, error.span.line) == (code, line), error
    assert fragment in error.message, error.message


def test_refined_cases_and_a_shortcut_from_the_tap():
    """Keras' V2 unit: where the channels change the projection reads the activated input (the
    tap); where only the stride does, the raw input is subsampled; elsewhere the identity."""
    net = compile_text(
        """
        shortcut V {
            channels from tap { conv out 1x1 stride=stride bias=1 }
            stride { subsample stride }
        }
        block unit(w, stride = 1) {
            bn; relu
            tap
            conv w 3x3 stride=stride; bn
            add
        }
        network n {
            input 3x8x8
            classes 10
            shortcut V
            stem  { conv 8 3x3 }
            stage { unit 8; unit 8 stride=2; unit 16 }
            head  { avgpool; fc }
        }
        """
    )
    cases = [(b.shortcut.case, b.shortcut.from_tap) for b in net.blocks]
    assert cases == [(None, False), ("stride", False), ("channels", True)]
    assert net.node("layer1.1.downsample.0").inputs == ("layer1.0.add",)  # the block's input
    assert net.node("layer1.2.downsample.0").inputs == ("layer1.2.relu",)  # its tap
    assert net.node("layer1.2.add").inputs == ("layer1.2.bn2", "layer1.2.downsample.0")
    # the blocks that read their tap have a template of their own
    assert [t.from_tap for t in net.templates.values()] == [False, True]


def test_a_case_from_a_tap_needs_the_tap():
    (error,) = errors_of(
        """
        shortcut P { change from tap { conv out 1x1 stride=stride } }
        network n {
            input 3x8x8
            classes 10
            shortcut P
            stem  { conv 8 3x3 }
            stage { basic 16 }
            head  { avgpool; fc }
        }
        """
    )
    assert error.code == "RDS118" and "block `basic` has no `tap`" in error.message


def test_a_shortcut_keeps_the_map():
    (error,) = errors_of(
        """
        shortcut F { always { avgpool; fc out } }
        network n {
            input 3x8x8
            classes 10
            shortcut F
            stem  { conv 8 3x3; avgpool }
            stage { basic 8 }
            head  { fc }
        }
        """
    )
    assert error.code == "RDS115" and "`fc`, which flattens" in error.message


def test_a_shortcut_of_the_wrong_shape_is_refused_at_the_block():
    errors = errors_of(
        """
        shortcut half { change { conv out//2 1x1 stride=stride; bn } }
        network n {
            input 3x8x8
            classes 10
            shortcut half
            stem  { conv 8 3x3 }
            stage { basic 8 }
            stage { basic 16; stride 2 }
            head  { avgpool; fc }
        }
        """
    )
    (error,) = errors
    assert error.code == "RDS201" and "cannot add 8x4x4 to 16x4x4" in error.message
    assert error.span.line == 9  # the stage's block, where the user called it


def _everything(net):
    """The whole IR of a network, as plain values to compare."""
    edges = sorted((a, b, d["port"]) for a, b, d in net.graph.edges(data=True))
    return (
        net.nodes(),
        edges,
        net.blocks,
        net.sections,
        net.templates,
        net.shortcuts,
        net.aside,
        net.policy,
    )


ALL_SPECS = sorted(SPECS.glob("*.rds")) + sorted((SPECS / "zoo").glob("*.rds"))


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: str(p.relative_to(SPECS)))
def test_copied_blocks_equal_elaborated_ones(spec, monkeypatch):
    """Equal block instances are made by copying the first one's nodes; what comes out must be
    exactly what elaborating each instance makes (every node, edge, block, section, template),
    under every policy."""
    from resdsl import elaborate

    module = resdsl.parse_file(spec)
    program = resdsl.link(module)
    names = resdsl.linker.concrete(module)
    for name in names:
        for policy in (None, "A", "C", "none"):
            try:
                fast = resdsl.build(program, network=name, shortcut=policy)
            except resdsl.ResdslError:
                continue  # a policy this network cannot take (A where channels shrink)
            with monkeypatch.context() as m:
                m.setattr(elaborate._Elaborator, "_replay_key", lambda *a, **k: None)
                slow = resdsl.build(program, network=name, shortcut=policy)
            assert _everything(fast) == _everything(slow), (name, policy)
