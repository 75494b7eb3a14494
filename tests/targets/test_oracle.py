"""The checker's verdict binds every target: the frameworks themselves are the oracle.

A hypothesis strategy writes networks across the language: user blocks (nested, with and without
`add`, ops after the add), layers directly inside stages, kinds passed as parameters, repeats by
parameter, pools, depthwise groups, 3x1 kernels, odd and non-square inputs, every policy and
per-stage policies, heads of several layers. For each spec that `check` accepts, both targets
compile, build and run, and:

- every module's output shape and the total parameter count equal the IR's, in each of torch,
  TF and ONNX (onnx's own shape inference, on the model stripped of its declared shapes);
- weights moved through npz give torch, TF and onnxruntime logits within 1e-4 of
  max(1, |logit|).

RESDSL_ORACLE_EXAMPLES sets the example count (CI runs a few; the closing notes record 300+).
"""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import resdsl
from resdsl.emit import emit

from helpers import module_from, ruff

torch = pytest.importorskip("torch")
pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

EXAMPLES = int(os.environ.get("RESDSL_ORACLE_EXAMPLES", "12"))
ORACLE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)
STATS = {"generated": 0, "accepted": 0}


@pytest.fixture(scope="module", autouse=True)
def report():
    """How many generated specs `check` accepted (run with -s to see it)."""
    yield
    print(f"\noracle: {STATS['accepted']} of {STATS['generated']} generated specs accepted")


# ---------------------------------------------------------------- the strategy


@st.composite
def block_defs(draw, index: int, earlier: list[tuple[str, tuple[str, ...]]]):
    """One block definition over (w, stride), maybe (k) a kernel and (r) a repeat count."""
    params = ["w", "stride = 1"]
    extra = draw(st.sets(st.sampled_from(["k", "r", "kind"]), max_size=2))
    kinds = [name for name, p in earlier if p == ("w",)]
    if "kind" in extra and not kinds:
        extra.discard("kind")
    params += sorted(extra)
    outs = ["w", "w", "w * 2", "4", "w + 1", "w // 2 + 1"]
    kernels = ["3x3", "1x1", "3x1", "1x3", "5x5"] + (["k"] * 2 if "k" in extra else [])

    def layer():
        choice = draw(
            st.sampled_from(
                [
                    *("conv", "conv", "conv", "bn", "relu", "pool", "drop", "dw"),
                    *("act", "act", "gate", "dil", "gn", "pad", "grp"),
                ]
            )
        )
        if choice == "grp":  # containers in a block, named and numbered, and its input's `in`
            return draw(
                st.sampled_from(
                    [
                        "group g { conv w 1x1; bn; relu }",
                        "group f { group { conv in 3x3 groups=in; bn }; conv w 1x1; relu6 }",
                        "conv in*2 1x1; relu",
                        "group h { group a { conv w 3x3 stride=stride; bn } }",
                    ]
                )
            )
        if choice == "pad":
            return draw(st.sampled_from(["pad 1", "pad 1x0 value=0.5"]))
        if choice == "gn":
            return draw(st.sampled_from(["gn 1", "gn 2"]))
        if choice == "act":
            return draw(
                st.sampled_from(
                    ["sigmoid", "hardsigmoid", "silu", "leakyrelu 0.2", "relu6", "hardswish"]
                )
            )
        if choice == "dil":  # dilated, and weight-standardised (BiT's StdConv2d)
            stride = draw(st.sampled_from(["", " stride=stride", " stride=2"]))
            extra = draw(st.sampled_from([" dilation=2", " ws=1e-5", " dilation=2 ws=1e-8"]))
            return f"conv {draw(st.sampled_from(outs))} 3x3{extra}{stride}"
        if choice == "gate":  # a side path: a channel gate, or one of the tensor's own shape
            return "conv w 1x1; " + draw(
                st.sampled_from(
                    [
                        "mul { avgpool; conv w 1x1 bias=1; sigmoid }",
                        "mul { se: conv w 1x1; hardsigmoid }",
                        "mul { avgpool; fc 3; relu; fc w; sigmoid }",
                        "mul { relu; avgpool; sigmoid }",
                        "mul { avgpool; channel_conv 3; sigmoid }",
                        "concat { conv 2 3x3; relu }",
                    ]
                )
            )
        if choice == "conv":
            stride = draw(st.sampled_from(["", " stride=stride", " stride=2"]))
            return f"conv {draw(st.sampled_from(outs))} {draw(st.sampled_from(kernels))}{stride}"
        if choice == "dw":
            return "conv w 1x1; conv w 3x3 groups=w"
        if choice == "pool":
            return draw(
                st.sampled_from(
                    [
                        "maxpool 3x3 stride=1",
                        "maxpool 2x2 stride=2",
                        "maxpool 3x3 stride=2 pad=0 ceil=1",  # legacy SE-ResNet's stem
                        "avgpool 3x3 stride=1",
                        "avgpool 2x2 stride=2 ceil=1 include_pad=0",
                        "avgpool 3x3 stride=2 pad=1 ceil=1",
                        "blurpool",
                        "blurpool stride=1",
                        "blurpool",
                    ]
                )
            )
        if choice == "drop":
            return draw(st.sampled_from(["dropout 0.25", "droppath 0.2"]))
        return choice

    body = []
    for _ in range(draw(st.integers(1, 4))):
        statement = layer()
        if kinds and draw(st.integers(0, 3)) == 0:
            statement = f"{draw(st.sampled_from(kinds))} w"
        if "kind" in extra and draw(st.booleans()):
            statement = "kind w"
        if ";" not in statement and "{" not in statement and draw(st.integers(0, 5)) == 0:
            statement += draw(st.sampled_from([" x 2", " x r"] if "r" in extra else [" x 2"]))
        body.append(statement)
    if draw(st.booleans()):
        at = draw(st.integers(0, len(body)))
        body.insert(at, draw(st.sampled_from(["add", "add", "add", "proj: add"])))
        if draw(st.booleans()):  # where a shortcut's `from tap` case starts, before the add
            body.insert(draw(st.integers(0, at)), "tap")
    name = f"b{index}"
    text = f"block {name}({', '.join(params)}) {{\n    " + "\n    ".join(body) + "\n}\n"
    required = tuple(p for p in params if "=" not in p)
    return name, required, text


USER_SHORTCUTS = {
    "D": "shortcut D {\n    change { avgpool stride stride=stride ceil=1 include_pad=0; "
    "conv out 1x1; bn }\n}\n",
    "W": "shortcut W {\n    keep off\n"
    "    change { conv in 1x1; relu; conv out 1x1 stride=stride }\n}\n",
    "P": "shortcut P { always { conv out 1x1 stride=stride bias=1 } }\n",
    # Keras' V2: the projection from the block's tap, a subsample where only the stride changes
    "V": "shortcut V {\n    channels from tap { conv out 1x1 stride=stride bias=1 }\n"
    "    stride { subsample stride }\n}\n",
    # labels: timm's ResNetV2 projection (downsample.conv), and a left-out pool that has one
    "T": "shortcut T {\n    change from tap { conv: conv out 1x1 stride=stride ws=1e-8 }\n}\n",
    "L": "shortcut L {\n    change { down: avgpool stride stride=stride; proj: conv out 1x1; bn }\n"
    "}\n",
}


@st.composite
def specs(draw) -> str:
    blocks: list[tuple[str, tuple[str, ...]]] = []
    texts = []
    for index in range(draw(st.integers(1, 3))):
        name, required, text = draw(block_defs(index, blocks))
        blocks.append((name, required))
        texts.append(text)

    def call(width: str) -> str:
        name, required = draw(st.sampled_from(blocks))
        args = [width]
        if "k" in required:
            args.append(f"k={draw(st.sampled_from(['3', '1', '3x1']))}")
        if "r" in required:
            args.append(f"r={draw(st.integers(1, 2))}")
        if "kind" in required:
            kinds = [b for b, p in blocks if p == ("w",) and b != name]
            if not kinds:
                return f"conv {width} 3x3"
            args.append(f"kind={draw(st.sampled_from(kinds))}")
        repeat = draw(st.sampled_from(["", "", " x 2", " x 3"]))
        return f"{name} {' '.join(args)}{repeat}"

    # user shortcuts: ResNet-D's pool then projection, one off where the shape is kept and
    # reading `in`, and a biased projection everywhere
    defined = draw(st.sets(st.sampled_from(sorted(USER_SHORTCUTS)), max_size=3))
    texts = [USER_SHORTCUTS[name] for name in sorted(defined)] + texts
    policies = ["A", "B", "C", "none", *sorted(defined)]
    policy = draw(st.sampled_from(sorted(defined) if defined and draw(st.booleans()) else policies))
    c, h, w = draw(st.integers(1, 4)), draw(st.integers(3, 13)), draw(st.integers(3, 13))
    classes = draw(st.integers(1, 7))
    stem = draw(
        st.sampled_from(
            [
                *("conv 8 3x3; bn; relu", "conv 6 3x1 stride=2; relu", "", "bn"),
                "group stem { conv: conv 8 3x3; bn; act: relu }",  # labels in a group
            ]
        )
    )
    lines = ["network n {", f"    input {c}x{h}x{w}", f"    classes {classes}"]
    lines.append(f"    shortcut {policy}")
    if draw(st.integers(0, 4)) == 0:
        lines.append("    drop_path 0.1")  # stochastic depth over the stages' blocks
    if stem:
        lines.append(f"    stem {{ {stem} }}")
    paths = draw(st.booleans())  # timm's stages.0.blocks, ... as module paths
    for number in range(draw(st.integers(1, 3))):
        width = str(draw(st.integers(1, 8)))
        items = [call(width)]
        if draw(st.integers(0, 3)) == 0:
            items.insert(0, draw(st.sampled_from(["relu", "conv 5 1x1", "bn", "fc 6"])))
        if draw(st.integers(0, 2)) == 0:
            items.append(f"stride {draw(st.sampled_from([1, 2]))}")
        if draw(st.integers(0, 3)) == 0:
            items.append(f"shortcut {draw(st.sampled_from(policies))}")
        if draw(st.integers(0, 4)) == 0:  # its blocks named otherwise, a group as a member
            items.append(
                draw(
                    st.sampled_from(
                        ['names "b" from 1', 'names "blk-"', "group { conv 5 1x1; bn; relu }"]
                    )
                )
            )
        path = f" stages.{number}.blocks" if paths and draw(st.booleans()) else ""
        lines.append(f"    stage{path} {{ {'; '.join(items)} }}")
    head = draw(
        st.sampled_from(
            [
                "avgpool; fc",
                "fc",
                "avgpool; fc 6; relu; fc",
                "avgpool; fc 6; bn; relu; fc",
                f"conv {classes} 1x1; avgpool",
                "maxpool 2x2 stride=2; avgpool; dropout 0.5; fc",
                "group head { pool: avgpool; fc: fc }",
                f"norm: bn; relu; group head {{ global_pool: avgpool; fc: conv {classes} 1x1 }}",
                "adaptive_avgpool 3x2; group classifier { fc 6; relu; dropout; fc }",
            ]
        )
    )
    lines += [f"    head {{ {head} }}", "}"]
    return "\n".join(texts) + "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the oracle


def accepted(text: str):
    STATS["generated"] += 1
    try:
        net = resdsl.check(resdsl.build(resdsl.link(resdsl.parse(text, "generated.rds"))))
    except resdsl.ResdslError:
        return None
    STATS["accepted"] += 1
    return net


def randomise_bn(model) -> None:
    """Non-trivial BN statistics, so eval-mode parity tests more than the identity."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.uniform_(-0.2, 0.2, generator=generator)


def torch_shapes(model, net, x) -> dict[str, tuple]:
    """Each IR-named module's output shape, per sample, as C, H, W."""
    modules = dict(model.named_modules())
    seen: dict[str, tuple] = {}
    hooks = []
    for node in net.nodes():
        if node.name in modules:

            def hook(module, args, out, name=node.name):
                shape = tuple(out.shape[1:])
                seen[name] = shape + (1, 1) if len(shape) == 1 else shape

            hooks.append(modules[node.name].register_forward_hook(hook))
    model(x)
    for handle in hooks:
        handle.remove()
    return seen


def check_network(net, tmp_path) -> None:
    files_t, files_k = emit(net, "torch"), emit(net, "tf")
    t = module_from(files_t["model.py"], "oracle_torch")
    k = module_from(files_k["model.py"], "oracle_tf")
    ir_shapes = {n.name: n.shape for n in net.nodes() if n.op not in ("input",)}
    params = resdsl.summary(net)["params"]

    model = t.build_model().eval()
    assert sum(p.numel() for p in model.parameters()) == params
    randomise_bn(model)
    x = np.random.default_rng(0).standard_normal((2, *net.input_shape)).astype(np.float32)
    with torch.no_grad():
        seen = torch_shapes(model, net, torch.from_numpy(x))
        reference = model(torch.from_numpy(x)).numpy()
    for name, shape in seen.items():
        assert shape == ir_shapes[name], (name, shape, ir_shapes[name])
    modules = {n for n in ir_shapes if resdsl.ops.OPS[net.node(n).op].inputs == 1}  # not joins
    assert modules <= set(seen), sorted(modules - set(seen))[:5]
    assert reference.shape == (2, net.classes)

    keras_model = k.build_model()
    trainable = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    assert trainable == params
    for name, shape in ir_shapes.items():
        out = tuple(keras_model.get_layer(name).output.shape[1:])
        out = (out[2], out[0], out[1]) if len(out) == 3 else (out[0], 1, 1)
        assert out == shape, (name, out, shape)
    t.save_npz(model, tmp_path / "w.npz")
    k.load_npz(keras_model, tmp_path / "w.npz")
    logits = keras_model(x.transpose(0, 2, 3, 1), training=False).numpy()
    scale = np.maximum(1.0, np.abs(reference))
    assert (np.abs(logits - reference) / scale).max() <= 1e-4
    keras.backend.clear_session()  # free the graph: hundreds of models are built in one run
    check_onnx(net, emit(net, "onnx", weights=tmp_path / "w.npz")["model.onnx"], x, reference)


def check_onnx(net, data: bytes, x, reference) -> None:
    """The ONNX target: the checker accepts it, onnx infers the IR's shapes, and onnxruntime's
    logits equal the torch target's."""
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    stats = sum(i.dims[0] for i in model.graph.initializer if i.name.endswith("running_mean"))
    sizes = sum(int(np.prod(i.dims)) for i in model.graph.initializer)
    assert sizes - 2 * stats == resdsl.summary(net)["params"]
    del model.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {
        v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)[1:]
        for v in inferred.graph.value_info
    }
    for node in net.nodes()[1:]:
        if node.name in shapes:  # the last node's tensor is the output, `logits`
            got = shapes[node.name]
            assert got + (1, 1) * (len(got) == 1) == node.shape, (node.name, got, node.shape)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": x})
    scale = np.maximum(1.0, np.abs(reference))
    assert (np.abs(logits - reference) / scale).max() <= 1e-4


@ORACLE
@given(text=specs())
def test_accepted_specs_build_run_and_agree_in_every_target(text, tmp_path_factory):
    net = accepted(text)
    if net is None:
        return
    check_network(net, tmp_path_factory.mktemp("oracle"))


def sample(count: int) -> list[str]:
    """``count`` specs the strategy writes, the same ones on every run."""
    texts: list[str] = []

    @settings(ORACLE, max_examples=count, database=None)
    @given(text=specs())
    def collect(text):
        texts.append(text)

    collect()
    return texts


def test_the_strategy_reaches_the_targets():
    """The strategy is not vacuous: most of what it writes passes `check` (measured here)."""
    texts = sample(300)
    nets = [accepted(text) for text in texts]
    assert sum(n is not None for n in nets) >= 30
    kinds = {op for n in nets if n for op in (x.op for x in n.nodes())}
    assert {"conv", "bn", "relu", "maxpool", "avgpool", "fc", "add", "dropout", "mul"} <= kinds
    assert {"sigmoid", "hardsigmoid", "silu", "leakyrelu", "gn", "blurpool", "droppath"} <= kinds
    assert {"relu6", "hardswish"} <= kinds
    assert "pad" in kinds and "adaptive_avgpool" in kinds
    templates = [t for n in nets if n for t in n.templates.values()]
    assert any("." in op.name for t in templates for op in t.ops)  # a group in a block
    assert any(t.shortcut_name == "proj" and t.residual for t in templates)  # `proj: add`
    locals_ = {b.local for n in nets if n for b in n.blocks if b.parent is None}
    assert {"b1", "blk-0"} <= locals_  # a stage's `names`
    assert any(t.from_tap for n in nets if n for t in n.templates.values())  # V from its tap
    policies = {b.shortcut.policy for n in nets if n for b in n.blocks}
    assert {"A", "B", "C", "none"} <= policies and len(
        {"D", "W", "P", "V", "T", "L"} & policies
    ) >= 3
    names = {x.name for n in nets if n for x in n.nodes()}
    assert any(name.startswith("stages.") for name in names)  # stages under module paths
    assert {"stem.conv", "stem.act"} <= names or {"head.pool", "head.fc"} <= names


# ---------------------------------------------------------------- chosen cases


CASES = {
    # a block named `layer`, twice in the stem: it must not replace stage 2's container
    "layer_in_stem": """
        block layer(w) { conv w 3x3; bn; relu }
        network n {
            input 3x8x8
            classes 4
            stem { layer 8; layer 8 }
            stage { basic 8 }
            stage { basic 16; stride 2 }
            head { avgpool; fc }
        }
    """,
    "layer1_in_stem": """
        block layer1(w) { conv w 3x3; bn }
        network n {
            input 3x8x8
            classes 4
            stem { layer1 8 }
            stage { basic 8 }
            head { avgpool; fc }
        }
    """,
    # names a framework or the generated code uses itself
    "framework_names": """
        block training(eval, self) { conv eval 3x3; bn; add; relu }
        block basic_block(identity, out) { training identity out; conv out 1x1; bn }
        network forward {
            input 3x7x9
            classes 3
            stem { conv 4 3x3 }
            stage { training 4 1 x 2; basic_block 4 4 }
            head { avgpool; fc }
        }
    """,
    # eval-mode dropout returns its input; an in-place ReLU after it must not overwrite it
    "dropout_then_relu": """
        block b(w) { dropout 0.5; relu; conv w 3x3; bn; add; relu }
        network n {
            input 2x6x6
            classes 3
            stem { conv 4 3x3; bn }
            stage { b 4 x 2 }
            head { avgpool; fc }
        }
    """,
    # a kernel parameter holding 3x1, nested blocks, repeats by parameter, layers in a stage
    "kernel_pair_nested_repeat": """
        block inner(w, k = 3, s = 1) { conv w k stride=s; bn; add; relu }
        block outer(w, r, stride = 1) { inner w k=3x1 s=stride; relu; conv w 1x1 x r; bn; add }
        network n {
            input 3x9x5
            classes 5
            shortcut B
            stage { relu; outer 6 2 x 2; stride 2; conv 7 1x1 }
            stage { outer 8 3; fc 9; relu }
            head { fc 12; bn; relu; fc }
        }
    """,
    # a stage of identical blocks with no stem, under every per-stage policy
    "no_stem_policies": """
        network n {
            input 3x8x8
            classes 2
            shortcut A
            stage { basic 3 x 2 }
            stage { basic 6 x 2; stride 2; shortcut C }
            stage { bottleneck 2 x 2; shortcut none }
            head { avgpool; fc }
        }
    """,
    # channels that come from a nested block's input (TF's functions have no in_channels)
    "nested_projection_of_input_channels": """
        block b0(w, stride = 1) { add; bn x 2 }
        block b1(w, stride = 1) { add; b0 w x 2 }
        network n {
            input 1x3x3
            classes 1
            shortcut C
            stem { conv 8 3x3; bn; relu }
            stage { relu; b1 1 }
            head { maxpool 2x2 stride=2; avgpool; dropout 0.5; fc }
        }
    """,
    # a nested block whose shortcut joins before its last ops change the channels: the
    # projection matches the join, not the block's output
    "nested_join_before_width_change": """
        block b0(w, stride = 1) { add; bn x 2; maxpool 3x3 stride=1 x 2; conv w 3x3 x 2 }
        block b1(w, stride = 1) { b0 w x 2 }
        network n {
            input 1x3x3
            classes 1
            shortcut A
            stem { conv 8 3x3; bn; relu }
            stage { relu; b0 4 }
            stage { relu; b1 1; stride 1; shortcut C }
            head { avgpool; fc }
        }
    """,
    # a flag argument given by a block parameter: printed as bool() of the parameter
    "flag_from_a_parameter": """
        block b(w, withbias = 0) { conv w 3x3 bias=withbias; bn; relu }
        network n {
            input 3x8x8
            classes 4
            stem { b 8 1 }
            stage { b 8 0 x 2 }
            head { avgpool; fc }
        }
    """,
    # a block whose add joins its own input (the branch is empty)
    "empty_branch": """
        block twice(w) { add }
        network n {
            input 3x4x4
            classes 3
            shortcut B
            stem { conv 4 3x3 }
            stage { twice 4 x 2 }
            head { avgpool; fc }
        }
    """,
    # ResNet-D's shortcut: a ceil-mode pool that leaves padding out of its averages, then a
    # projection; at stride 1 the pool does nothing and is left out (its index stays taken)
    "user_shortcut_avg_down": """
        shortcut D {
            change { avgpool stride stride=stride ceil=1 include_pad=0; conv out 1x1; bn }
        }
        network n {
            input 3x9x7
            classes 4
            shortcut D
            stem { conv 8 3x3; bn; relu }
            stage { bottleneck 4 }
            stage { basic 16 x 2; stride 2 }
            stage { basic 24; stride 2; shortcut A }
            head { avgpool; fc }
        }
    """,
    # a shortcut that reads `in`, is off where the shape is kept, and a biased projection
    # nested in a block: its ops written over the enclosing block's parameters
    "user_shortcut_nested_off_and_in": """
        shortcut wide { keep off; change { conv in 1x1; relu; conv out 1x1 stride=stride bias=1 } }
        block pair(w, stride = 1) { basic w stride=stride; basic w; add; relu }
        network n {
            input 2x8x8
            classes 3
            shortcut wide
            stem { conv 4 3x3 }
            stage { pair 6; stride 2 }
            stage { pair 6 }
            head { avgpool; fc }
        }
    """,
    # the activations, a dilated conv (strided too: Keras takes it as a stride-1 conv), and
    # average pools in ceil mode with and without their padding in each average
    "activations_dilation_pools": """
        block act(w, stride = 1) {
            conv w 3x3 stride=stride dilation=2; bn; silu
            conv w 3x3 dilation=3; bn; hardsigmoid
            add
            leakyrelu 0.2
        }
        network n {
            input 3x11x10
            classes 5
            stem { conv 6 3x3; sigmoid; avgpool 3x3 stride=2 ceil=1 }
            stage { act 6 }
            stage { act 8; stride 2 }
            head { avgpool 2x2 stride=2 pad=1 ceil=1 include_pad=0; leakyrelu; avgpool; fc }
        }
    """,
    # group norm in a block, the stem and a shortcut (timm's resnet50_gn has it everywhere)
    "group_norm": """
        shortcut G { change { conv out 1x1 stride=stride; gn 4 } }
        block b(w, stride = 1) { conv w 3x3 stride=stride; gn 4; relu; conv w 3x3; gn 2; add; relu }
        network n {
            input 3x8x7
            classes 3
            shortcut G
            stem { conv 32 3x3; gn; relu }
            stage { b 8 }
            stage { b 16; stride 2 }
            head { avgpool; fc 8; gn 8; fc }
        }
    """,
    # ECA's gate: a 1-D conv across the pooled channels; and one across a whole map's
    "channel_conv": """
        block eca(k = 3) { avgpool; conv: channel_conv k; sigmoid }
        block b(w) { conv w 3x3; bn; mul { se: eca 5 }; channel_conv 3; add; relu }
        network n {
            input 3x6x5
            classes 3
            stem { conv 6 3x3 }
            stage { b 6 x 2 }
            head { avgpool; fc }
        }
    """,
    # blur pools (timm's anti-aliasing): in the stem after a stride-1 max pool, and in a block
    # after its 3x3, where they carry the block's stride (its shortcut strides with them)
    "blur_pool": """
        block blurred(w, stride = 1) {
            conv w 1x1; bn; relu; conv w 3x3; bn; relu; blurpool stride=stride; conv w 1x1; bn
            add
            relu
        }
        network n {
            input 3x11x10
            classes 3
            stem { conv 8 3x3; maxpool 3x3 stride=1; blurpool }
            stage { blurred 8 }
            stage { blurred 16; stride 2 }
            head { blurpool size=5 stride=1; avgpool; fc }
        }
    """,
    # Keras' pre-activation unit: its projection starts at the `tap` (the activated input),
    # its stride-only change subsamples the raw input; a max pool over zero padding
    "tap_and_pad": """
        shortcut V {
            channels from tap { conv out 1x1 stride=stride bias=1 }
            stride { subsample stride }
        }
        block unit(w, stride = 1) {
            bn; relu
            tap
            conv w 1x1; bn; relu
            conv w 3x3 stride=stride; bn; relu
            conv w*2 1x1 bias=1
            add
        }
        network n {
            input 3x9x8
            classes 3
            shortcut V
            stem { conv 8 3x3 bias=1; pad 1; maxpool 3x3 stride=2 pad=0; pad 2x1 value=0.5 }
            stage { unit 4; unit 4 stride=2; unit 8 }
            head { bn; relu; avgpool; fc }
        }
    """,
    # a channel concat (CSP's, DenseNet's): the side path's channels after the branch's, then a
    # shortcut that projects to the wider join; a concat whose path is empty doubles the channels
    "concat": """
        block dense(w, stride = 1) {
            conv w 3x3 stride=stride; bn; relu
            concat { conv w//2 3x3; bn; relu; sigmoid }
            conv w 1x1
            concat { }
            add
            relu
        }
        network n {
            input 3x7x9
            classes 3
            stem { conv 8 3x3 }
            stage { dense 8 }
            stage { dense 8; stride 2 }
            head { avgpool; fc }
        }
    """,
    # squeeze-and-excitation written inline: a gate of Cx1x1 that multiplies the branch, which
    # then still ends in the BN that zero_init_residual zeroes
    "mul_gate_inline": """
        block se(w, stride = 1) {
            conv w 3x3 stride=stride; bn; relu
            conv w 3x3; bn
            mul { avgpool; conv w//2 1x1 bias=1; relu; conv w 1x1 bias=1; sigmoid }
            add
            relu
        }
        network n {
            input 3x9x9
            classes 4
            stem { conv 8 3x3; bn; relu }
            stage { se 8 x 2 }
            stage { se 16; stride 2 }
            head { avgpool; fc }
        }
    """,
    # the gate as a block of its own with labelled layers (timm's se.fc1, se.fc2), nested in a
    # side path; a full-size gate (relu first: it must not overwrite what the join reads); a
    # gate through fc layers, flat until the join gives it its 1x1 map again
    "mul_gate_block_labels_full_and_flat": """
        block squeeze(c, r = 4) {
            avgpool
            fc1: conv c//r 1x1 bias=1
            relu
            fc2: conv c 1x1 bias=1
            hardsigmoid
        }
        block unit(w, stride = 1) {
            conv w 3x3 stride=stride; bn
            mul { se: squeeze w }
            mul { relu; conv w 3x3; sigmoid }
            add
            mul { avgpool; fc 3; relu; fc w; sigmoid }
            silu
        }
        network n {
            input 2x7x6
            classes 3
            shortcut C
            stem { conv 6 3x3 }
            stage { unit 6 x 2 }
            stage { unit 8; stride 2 }
            head { avgpool; fc }
        }
    """,
    # timm's names: labelled groups in the stem and head, stages under module paths (nn
    # ModuleDicts in torch), a labelled projection from the tap and a labelled pool left out
    "module_paths_and_labelled_groups": """
        shortcut T {
            channels from tap { conv: conv out 1x1 stride=stride }
            stride { down: avgpool stride stride=stride; proj: conv out 1x1; bn }
        }
        block unit(w, stride = 1) {
            norm1: bn; relu
            tap
            conv1: conv w 3x3 stride=stride
            add
        }
        network n {
            input 3x9x8
            classes 4
            shortcut T
            stem  { group stem { conv: conv 6 3x3 ws=1e-8; act: relu; maxpool 2x2 stride=2 } }
            stage stages.0.blocks { unit 6 x 2; unit 8 }
            stage stages.1.blocks { unit 8 x 2; stride 2 }
            stage { unit 8 }
            head  { norm: bn; relu; group head { global_pool: avgpool; fc: conv 4 1x1 bias=1 } }
        }
    """,
    # PyTorch's ceil mode: a kernel wider than its map still gives one window (ResNet-D's
    # shortcut pool on a 1x1 map), which check refused
    "ceil_pool_wider_than_its_map": """
        network n {
            input 3x1x3
            classes 4
            stem  { conv 6 1x1; avgpool 2x2 stride=2 ceil=1 include_pad=0 }
            stage { basic 6 }
            head  { avgpool 3x3 stride=2 pad=1 ceil=1; fc }
        }
    """,
    # a labelled block call in a group: `stem.c`, not a number
    "labelled_block_in_a_group": """
        block cbr(out) { conv out 3x3; bn; relu }
        network n {
            input 3x8x8
            classes 4
            stem  { group stem { conv 6 3x3; c: cbr 8; cbr 8 } }
            head  { avgpool; fc }
        }
    """,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_chosen_cases(name, tmp_path):
    net = accepted(textwrap.dedent(CASES[name]))
    assert net is not None, name
    check_network(net, tmp_path)


def test_generated_code_is_ruff_clean_across_the_language(tmp_path):
    """Every model.py the strategy's accepted specs give passes ruff format and ruff check."""
    texts = sample(60) + [textwrap.dedent(t) for t in CASES.values()]
    written = 0
    for index, text in enumerate(texts):
        net = accepted(text)
        if net is None:
            continue
        for target in ("torch", "tf"):
            (tmp_path / f"m{index}_{target}.py").write_text(emit(net, target)["model.py"])
            written += 1
    assert written >= 40
    assert ruff("format", "--isolated", "--check", str(tmp_path)).returncode == 0
    assert ruff("check", "--isolated", str(tmp_path)).returncode == 0
