"""The ONNX target: model.onnx is valid ONNX, onnxruntime computes the PyTorch target's logits from
the same npz, its initialisers are the state_dict's, its shapes are the IR's, its bytes are
deterministic, its fresh weights follow build_model()'s distributions, and bad weights are
refused with a code."""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import resdsl
from resdsl.emit import emit

from helpers import QUIET, ROOT, SPECS, calibrate_bn, module_from, run

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

# a head of two fc layers with a relu and dropout between, a windowed avgpool with padding, a
# maxpool with padding, a conv with a bias, option A, a 13x11 input
SMALL = """
network small {
    input 3x13x11
    classes 5
    shortcut A
    stem  { conv 8 3x3 stride=2 bias=1; bn; relu; maxpool 3x3 stride=2 pad=1 }
    stage { basic 8 }
    stage { basic 12; stride 2 }
    head  { avgpool 2x2 stride=1 pad=1; dropout 0.3; fc 7; relu; dropout; fc }
}
"""
# an fc inside a stage, read by blocks as a 1x1 map; BN after an fc; 3x1 kernels; projections
FC_MAPS = """
network fcmaps {
    input 2x9x7
    classes 4
    shortcut B
    stem  { conv 6 3x1 stride=2; relu }
    stage { fc 6; basic 6 }
    stage { basic 8 x 2; stride 2 }
    head  { fc 6; bn; relu; fc }
}
"""
# grouped convs, a conv head that ends in a map (flattened at the end), no fc
GROUPED = """
network grouped {
    input 4x16x16
    classes 3
    stem  { conv 64 3x3 groups=2; bn; relu; conv 64 3x3 groups=8 bias=1; bn; relu }
    stage { basic 64; stride 2 }
    head  { conv 3 1x1; avgpool }
}
"""
SMALL_SPECS = {"small": SMALL, "fcmaps": FC_MAPS, "grouped": GROUPED}
ALL_SPECS = ["resnet20", "resnet50_v1_5", "resnext50_32x4d", "preact_resnet164", *SMALL_SPECS]


def load(spec: str):
    if spec not in SMALL_SPECS:
        return resdsl.load(SPECS / f"{spec}.rds")
    return resdsl.check(
        resdsl.build(resdsl.link(resdsl.parse(textwrap.dedent(SMALL_SPECS[spec]), "s.rds")))
    )


@functools.cache
def fresh(spec: str) -> bytes:
    """model.onnx with fresh weights (computed once per spec: the ImageNet ones take a while)."""
    return emit(load(spec), "onnx")["model.onnx"]


def session(data: bytes):
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def torch_model(net, calibrate: bool = True):
    """The PyTorch target's model.py and its build_model() in eval mode; calibrated, its BN has
    random affine terms and the statistics of two random batches (non-trivial, yet keeping
    the activations of deep nets near unit scale, as trained statistics do)."""
    model = module_from(emit(net, "torch")["model.py"], f"torch_{net.name}")
    torch.manual_seed(0)
    built = model.build_model()
    if calibrate:
        calibrate_bn(torch, built, net.input_shape, batches=2, size=2)
    return model, built.eval()


def exported(net, path):
    """A calibrated torch model of ``net``, its weights saved by save_npz at ``path``."""
    model, built = torch_model(net)
    model.save_npz(built, path)
    return built


def relative_error(logits, reference) -> float:
    return float((np.abs(logits - reference) / np.maximum(1.0, np.abs(reference))).max())


# ---------------------------------------------------------------- validity and parity


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_the_checker_accepts_the_model(spec):
    model = onnx.load_from_string(fresh(spec))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    for node in model.graph.node:
        attributes = {a.name for a in node.attribute}
        assert "auto_pad" not in attributes, node.name
        if node.op_type in ("Conv", "MaxPool", "AveragePool"):
            assert "pads" in attributes, node.name
        if node.op_type == "Dropout":  # with its ratio, in inference mode (no training_mode)
            assert len(node.input) == 2 and node.input[1], node.name


@pytest.mark.parametrize(
    "spec, batch",
    [
        ("resnet20", 2),
        ("resnet50_v1_5", 2),
        ("resnext50_32x4d", 2),
        ("small", 2),
        ("fcmaps", 2),
        ("grouped", 2),
        ("resnet20", 1),
        ("resnet20", 3),
    ],
)
def test_logits_equal_the_pytorch_targets(spec, batch, tmp_path):
    """The PyTorch target's model, its BN calibrated, saved with save_npz; compiled with
    --weights through the CLI; run by onnxruntime on the same input (batch 1 and 3: the symbolic
    batch dimension)."""
    net = load(spec)
    path = tmp_path / "w.npz"
    built = exported(net, path)
    if spec in SMALL_SPECS:  # the CLI needs a file
        (tmp_path / "s.rds").write_text(textwrap.dedent(SMALL_SPECS[spec]))
        source = tmp_path / "s.rds"
    else:
        source = SPECS / f"{spec}.rds"
    result = run("compile", source, "--target", "onnx", "--weights", path, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'out' / 'model.onnx'}" in result.output
    x = np.random.default_rng(1).standard_normal((batch, *net.input_shape)).astype(np.float32)
    with torch.no_grad():
        reference = built(torch.from_numpy(x)).numpy()
    (logits,) = session((tmp_path / "out" / "model.onnx").read_bytes()).run(None, {"input": x})
    assert logits.shape == reference.shape == (batch, net.classes)
    error = relative_error(logits, reference)
    print(f"\n{spec} batch {batch}: max |diff| / max(1, |logit|) = {error:.2e}")
    assert error <= 1e-4
    assert np.abs(reference).max() > 1e-3  # the logits are not all zero


@pytest.mark.parametrize("spec", ["resnet20", "small", "fcmaps"])
def test_initialisers_are_the_state_dict(spec, tmp_path):
    net = load(spec)
    built = exported(net, tmp_path / "w.npz")
    state = {k: v.numpy() for k, v in built.state_dict().items() if "num_batches" not in k}
    model = onnx.load_from_string(emit(net, "onnx", weights=tmp_path / "w.npz")["model.onnx"])
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    assert sorted(inits) == sorted(state)
    for name, array in state.items():
        assert inits[name].dtype == np.float32 and np.array_equal(inits[name], array), name
    # every op node is named as the IR names it; helpers are named after their IR node
    names = {n.name for n in model.graph.node}
    ir = {n.name for n in net.nodes()[1:]}
    assert ir <= names
    helpers = names - ir  # fc.flatten, fc.unflatten, fc.unflatten.shape, layer1.0.pads...
    assert helpers and all(any(h.startswith(f"{n}.") for n in ir) for h in helpers), helpers


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_inferred_shapes_are_the_irs(spec):
    """onnx's own shape inference, on the model stripped of its value_info, gives every IR node's
    tensor the IR's shape: (N, C, H, W), or (N, C) where an fc (then relu, dropout) left it flat."""
    net = load(spec)
    model = onnx.load_from_string(fresh(spec))
    declared = {v.name for v in model.graph.value_info}
    del model.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    shapes = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.graph.value_info, *inferred.graph.output]
    }
    flat = set()
    for node in net.nodes()[1:]:
        if node.op == "fc" or node.op in ("relu", "dropout") and node.inputs[0] in flat:
            flat.add(node.name)
    last = net.nodes()[-1]
    for node in net.nodes()[1:]:
        tensor = "logits" if node is last and node.name in flat else node.name
        want = ["N", node.shape[0]] if node.name in flat else ["N", *node.shape]
        assert shapes[tensor] == want, (node.name, shapes[tensor], want)
        assert tensor == "logits" or tensor in declared, tensor
    assert shapes["logits"] == ["N", net.classes]


# ---------------------------------------------------------------- determinism and fresh weights


def test_bytes_are_deterministic(tmp_path):
    """The same spec (and weights) give the same bytes: in one process, through the CLI, and in
    another interpreter with another hash seed."""
    spec = SPECS / "resnet20.rds"
    first = emit(resdsl.load(spec), "onnx")["model.onnx"]
    assert emit(resdsl.load(spec), "onnx")["model.onnx"] == first
    exported(resdsl.load(spec), tmp_path / "w.npz")
    for out in ("a", "b"):
        flags = ["--target", "onnx", "--weights", tmp_path / "w.npz", "-o", tmp_path / out]
        result = run("compile", spec, *flags)
        assert result.exit_code == 0, result.output
    written = (tmp_path / "a" / "model.onnx").read_bytes()
    assert written == (tmp_path / "b" / "model.onnx").read_bytes()
    assert written != first  # the weights went in
    command = [sys.executable, "-m", "resdsl", "compile", spec, "--target", "onnx"]
    command += ["-o", tmp_path / "fresh"]
    env = {**QUIET, "PYTHONHASHSEED": "123"}
    fresh = subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=True)
    assert fresh.returncode == 0, fresh.stderr
    assert (tmp_path / "fresh" / "model.onnx").read_bytes() == first


@pytest.mark.parametrize("spec", ["resnet20", "grouped"])
def test_fresh_weights_follow_build_model(spec):
    """He normal (fan_out = out x kh x kw, as kaiming_normal_ counts it, groups or not) for conv
    weights, nn.Conv2d's and nn.Linear's uniform within 1/sqrt(fan_in) for biases and fc weights,
    BN at 1, 0, 0, 1; compared with the formulas and with build_model()'s own draws."""
    net = load(spec)
    model = onnx.load_from_string(fresh(spec))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    _, built = torch_model(net, calibrate=False)
    state = {k: v.numpy() for k, v in built.state_dict().items() if "num_batches" not in k}
    assert sorted(inits) == sorted(state)
    drawn = 0
    for name, ours in inits.items():
        theirs, owner = state[name], net.node(name.rpartition(".")[0])
        assert ours.shape == theirs.shape, name
        if owner.op == "bn":
            assert np.array_equal(ours, theirs), name  # weight 1, bias 0, mean 0, variance 1
            continue
        drawn += 1
        if name.endswith("weight") and owner.op == "conv":
            kh, kw = owner.arg["kernel"]
            std = np.sqrt(2 / (owner.arg["out"] * kh * kw))
            assert abs(ours.std() / std - 1) < 5 / np.sqrt(2 * ours.size), name
            assert abs(ours.mean()) < 5 * std / np.sqrt(ours.size), name
        else:  # conv biases, fc weights and biases: uniform within 1/sqrt(fan_in)
            c, h, w = net.node(owner.inputs[0]).shape
            if owner.op == "conv":
                kh, kw = owner.arg["kernel"]
                fan_in = c // owner.arg["groups"] * kh * kw
            else:
                fan_in = c * h * w
            bound = 1 / np.sqrt(fan_in)
            assert 0.8 * bound < np.abs(ours).max() <= bound, name
            assert abs(ours.mean()) < 5 * bound / np.sqrt(3 * ours.size), name
        if ours.size >= 1000:  # and torch's own draws agree
            assert abs(ours.std() / theirs.std() - 1) < 0.15, name
        assert not np.array_equal(ours, theirs), name  # a draw, not a copy
    assert drawn >= 3


# ---------------------------------------------------------------- the CLI and bad weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """resnet20's weights as the PyTorch target's save_npz writes them."""
    folder = tmp_path_factory.mktemp("weights")
    exported(resdsl.load(SPECS / "resnet20.rds"), folder / "w.npz")
    with np.load(folder / "w.npz") as arrays:
        return folder, dict(arrays)


def bad(tmp_path, **arrays):
    np.savez(tmp_path / "bad.npz", **arrays)
    return tmp_path / "bad.npz"


BAD = ["missing file", "text", "npy", "missing key", "unexpected key", "shape", "nan", "inf"]
BAD += ["strings", "variance", "other network", "other shortcut"]


@pytest.mark.parametrize("case", BAD)
def test_bad_weights_are_refused_with_a_code(case, weights, tmp_path):
    _, good = weights
    first, flags = "layer1.0.conv1.weight", []
    if case == "missing file":
        path, expect = tmp_path / "nope.npz", ("RDS404", "cannot read the weights", "No such file")
    elif case == "text":
        (tmp_path / "w.npz").write_text("not numbers\n")
        path, expect = tmp_path / "w.npz", ("RDS404", "cannot read the weights", "not an .npz")
    elif case == "npy":
        np.save(tmp_path / "w.npy", good[first])
        path, expect = tmp_path / "w.npy", ("RDS404", "one .npy array, not an .npz")
    elif case == "missing key":
        path = bad(tmp_path, **{k: v for k, v in good.items() if k != first})
        expect = ("RDS405", "do not match network `resnet20`", f"missing {first}")
    elif case == "unexpected key":
        path = bad(tmp_path, **good, **{"layer9.weight": good[first]})
        expect = ("RDS405", "unexpected layer9.weight")
    elif case == "shape":
        path = bad(tmp_path, **{**good, first: good[first][:, :8]})
        expect = ("RDS405", f"{first} has shape (16, 8, 3, 3)", "expects (16, 16, 3, 3)")
    elif case in ("nan", "inf"):
        broken = good[first].copy()
        broken[0, 0, 0, :2] = np.nan if case == "nan" else np.inf
        path = bad(tmp_path, **{**good, first: broken})
        expect = ("RDS405", f"{first} has 2 non-finite values")
    elif case == "strings":
        path = bad(tmp_path, **{**good, "fc.bias": np.array(["a"] * 10)})
        expect = ("RDS405", "fc.bias holds <U1 values, not real numbers")
    elif case == "variance":
        path = bad(tmp_path, **{**good, "bn1.running_var": -np.ones(16, np.float32)})
        expect = ("RDS405", "bn1.running_var has negative variances")
    elif case == "other network":  # resnet32's weights for resnet20
        _, other = torch_model(resdsl.load(SPECS / "resnet32.rds"), calibrate=False)
        path = bad(
            tmp_path,
            **{k: v.numpy() for k, v in other.state_dict().items() if "num_batches" not in k},
        )
        expect = ("RDS405", "unexpected layer1.3.bn1.bias", "and 55 more")
    elif case == "other shortcut":  # the same names and shapes: the file's identity tells
        path, flags = bad(tmp_path, **good), ["--shortcut", "none"]
        told = "these are the weights of resnet20 with shortcut A; this is resnet20 with shortcut"
        expect = ("RDS405", f"{told} none")
    out = tmp_path / "out"
    flags += ["--target", "onnx", "--weights", path, "-o", out]
    result = run("compile", SPECS / "resnet20.rds", *flags)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for text in expect:
        assert text in result.stderr, (text, result.stderr)
    assert f"error[{expect[0]}]" in result.stderr
    assert not (out / "model.onnx").exists()


def test_the_weights_pass_through_the_python_api(weights):
    """emit() takes the arrays themselves as well as a path, and checks them the same way."""
    net = resdsl.load(SPECS / "resnet20.rds")
    folder, good = weights
    assert emit(net, "onnx", weights=good) == emit(net, "onnx", weights=folder / "w.npz")
    with pytest.raises(resdsl.ResdslError, match="missing fc.bias") as caught:
        emit(net, "onnx", weights={k: v for k, v in good.items() if k != "fc.bias"})
    assert caught.value.code == "RDS405"


@pytest.mark.parametrize("target", ["torch", "tf"])
def test_weights_with_another_target_is_a_usage_error(target, weights, tmp_path):
    folder, _ = weights
    flags = ["--target", target, "--weights", folder / "w.npz", "-o", tmp_path / "out"]
    result = run("compile", SPECS / "resnet20.rds", *flags)
    assert result.exit_code == 2, result.output
    assert f"--weights is for --target onnx, not {target}" in result.stderr
    assert not (tmp_path / "out").exists()


def test_without_onnx_the_target_asks_for_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    result = run("compile", SPECS / "resnet20.rds", "--target", "onnx", "-o", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert "error[RDS406]: the onnx target needs the onnx package" in result.stderr
    assert "hint: pip install 'resdsl[onnx]'" in result.stderr


def test_resdsl_imports_and_lists_the_target_without_onnx():
    """In a fresh interpreter where onnx cannot be imported, `compile --help` lists onnx."""
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "from resdsl.cli import main\n"
        "main(['compile', '--help'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=QUIET
    )
    assert result.returncode == 0, result.stderr
    assert "[onnx|tf|torch]" in result.stdout
    assert "--weights W.npz" in result.stdout
