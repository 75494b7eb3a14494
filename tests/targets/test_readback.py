"""Each target reads what it writes: every spec of specs/ and specs/zoo/ goes out through a target
(PyTorch's model.py, Keras' model.py, model.onnx) and back through that target's read table
(``resdsl import``), and must come back the same network: the same ops with the same arguments and
shapes, the same weighted names (the state_dict keys), and the same logits: the spec read back,
written again with the file's weights, gives onnxruntime the written file's logits. The weights are
the PyTorch target's with random BN terms and statistics, so that a reader that confused a BN's
tensors would fail. The import's own proof (the spec compiled for PyTorch, the file's weights loaded
strictly, logits within 1e-4 of max(1, |logit|)) runs for the specs CI reads; for deep plain
networks two float32 runtimes drift apart by more than that (plain110: 0.1 with BN statistics of 16
random images), so the zoo run compares the file with itself in one runtime.

ONNX files are inference graphs: drop path is an identity there, so the network read back is the
written one without it (dropout is ONNX's Dropout, with its ratio). CI reads a few specs;
``RESDSL_ZOO=1`` reads every one.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest
from test_zoo import NOT_READ, NOT_READ_YET

import resdsl
from resdsl.emit import emit, write
from resdsl.identity import KEY
from resdsl.importer import import_source
from resdsl.ops import OPS, weighted
from resdsl.reading import sample
from resdsl.targets.weights import npz

from helpers import SPECS, calibrate_bn, module_from, skip_without_tensorflow

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

ALL = os.environ.get("RESDSL_ZOO") == "1"
SPEC_FILES = sorted(SPECS.glob("*.rds")) + sorted((SPECS / "zoo").glob("*.rds"))
CASES = [
    pytest.param(path, name, marks=[NOT_READ] if name in NOT_READ_YET else [])
    for path in SPEC_FILES
    for name in resdsl.linker.concrete(resdsl.parse_file(path))
]
IDS = [f"{c.values[0].relative_to(SPECS)}:{c.values[1]}" for c in CASES]
# one of each kind of op and structure: option A's subsample and zeropad, pre-activation, plain
# blocks, groups, ECA's gate and channel conv, blur pools, group norm, standardised convs
IN_CI = {
    "resnet20",
    "plain20",
    "preact_resnet164",
    "resnext50_32x4d",
    "ecaresnet50d",
    "resnetblur50",
    "resnet50_gn",
    "resnetv2_50x1_bit",
    "seresnet50",
}


def _ops(net, eval_only: bool) -> Counter:
    """Every op of the network but the input, with its arguments and shape."""
    return Counter(
        (node.op, repr(sorted(node.arg.items())), node.shape)
        for node in net.nodes()
        if OPS[node.op].inputs and not (eval_only and OPS[node.op].stochastic)
    )


def _weighted(net) -> list[tuple[str, str, tuple]]:
    return [(n.name, n.op, n.shape) for n in net.nodes() if weighted(n.op)]


def _written(path, name, tmp_path):
    """The network of ``name``, and the PyTorch target's model of it with random BN terms and
    statistics (and its weights saved as save_npz writes them)."""
    net = resdsl.check(resdsl.build(resdsl.link(resdsl.parse_file(path)), network=name))
    source = emit(net, "torch")["model.py"]
    (tmp_path / f"readback_{_unique(path, name)}.py").write_text(source, encoding="utf-8")
    generated = module_from(source, f"readback_{name}")
    torch.manual_seed(0)
    model = calibrate_bn(torch, generated.build_model(), net.input_shape, batches=1, size=16)
    weights = tmp_path / "weights.npz"
    generated.save_npz(model, weights)
    return net, weights


def _trained(path, module: str, weights, also: str = "") -> None:
    """A user's factory module at ``path``: ``module``'s model with ``weights`` loaded."""
    path.write_text(
        f"from {module} import {also}build_model, load_npz  # noqa: F401\n\n\n"
        f"def trained():\n    model = build_model()\n    load_npz(model, {str(weights)!r})\n"
        "    return model\n",
        encoding="utf-8",
    )


def _unique(path, name) -> str:
    """A module name of its own for each case (specs/ and specs/zoo/ both have a resnet50), as
    Python keeps each module it imported."""
    return f"{path.parent.name}_{name}"


def _same_network(text: str, net, eval_only: bool):
    back = resdsl.check(resdsl.build(resdsl.link(resdsl.parse(text, "back.rds"))))
    assert back.input_shape == net.input_shape and back.classes == net.classes
    assert _weighted(back) == _weighted(net)
    assert _ops(back, eval_only) == _ops(net, eval_only)
    return back


@pytest.mark.parametrize("path, name", CASES, ids=IDS)
def test_torch_reads_what_it_writes(path, name, tmp_path, monkeypatch):
    """model.py's model, its weights loaded, imported as a user's factory: the same network, its
    weights loaded strictly and its logits equal (the import's proof, PyTorch against PyTorch).
    model.py's INPUT_SHAPE gives the input's size."""
    if not ALL and name not in IN_CI:
        pytest.skip("RESDSL_ZOO=1 reads every spec back")
    net, weights = _written(path, name, tmp_path)
    unique = _unique(path, name)
    _trained(tmp_path / f"trained_{unique}.py", f"readback_{unique}", weights, "INPUT_SHAPE, ")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = import_source(f"module:trained_{unique}:trained")
    assert "strict load ok, logits equal" in result.report, result.report
    _same_network(result.text, net, eval_only=False)


@pytest.mark.parametrize("path, name", CASES, ids=IDS)
def test_tf_reads_what_it_writes(path, name, tmp_path, monkeypatch):
    """The Keras model.py's model, the same weights loaded (its load_npz), imported as a user's
    Keras factory: the same network, its weights loaded strictly into PyTorch, and Keras' logits
    equal to PyTorch's (the import's proof, read and run in a process of its own)."""
    if not ALL and name not in IN_CI:
        pytest.skip("RESDSL_ZOO=1 reads every spec back")
    skip_without_tensorflow()
    net, weights = _written(path, name, tmp_path)
    unique = _unique(path, name)
    (tmp_path / f"keras_{unique}.py").write_text(emit(net, "tf")["model.py"], encoding="utf-8")
    _trained(tmp_path / f"keras_trained_{unique}.py", f"keras_{unique}", weights)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = import_source(f"keras:keras_trained_{unique}:trained", verify=name in IN_CI)
    if name in IN_CI:  # its proof: a strict load into PyTorch, and Keras' logits
        assert "strict load ok, logits equal" in result.report, result.report
    back = _same_network(result.text, net, eval_only=False)
    got = result.weights()
    with np.load(weights) as archive:  # the weights came back as they went out
        for key in archive.files:
            if key != KEY:
                np.testing.assert_array_equal(got[key], archive[key], err_msg=key)
    if name not in IN_CI:  # the spec read back, in Keras, gives the written model's logits
        folder = tmp_path / "back"
        write(emit(back, "tf"), folder)
        (folder / "weights.npz").write_bytes(npz(back, got))
        want = result.source.forward(sample(net.input_shape))
        again = _keras_logits(folder, sample(net.input_shape))
        assert np.abs(again - want).max() <= 1e-6 * max(1.0, np.abs(want).max())


def _keras_logits(folder, x):
    """model.py of ``folder`` with its weights.npz, run by Keras in a process of its own."""
    import subprocess
    import sys

    np.save(folder / "x.npy", x)
    script = (
        "import numpy as np, model\nnet = model.build_model()\n"
        "model.load_npz(net, 'weights.npz')\nx = np.load('x.npy').transpose(0, 2, 3, 1)\n"
        "np.save('logits.npy', np.asarray(net(x, training=False)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=folder, capture_output=True, text=True, timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(folder / "logits.npy")


@pytest.mark.parametrize("path, name", CASES, ids=IDS)
def test_onnx_reads_what_it_writes(path, name, tmp_path):
    if not ALL and name not in IN_CI:
        pytest.skip("RESDSL_ZOO=1 reads every spec back")
    net, weights = _written(path, name, tmp_path)
    written = tmp_path / f"{name}.onnx"
    written.write_bytes(emit(net, "onnx", weights=weights)["model.onnx"])
    result = import_source(str(written), verify=name in IN_CI)
    if name in IN_CI:  # its proof: a strict load into PyTorch, and onnxruntime's logits
        assert "strict load ok, logits equal" in result.report, result.report
    back = _same_network(result.text, net, eval_only=True)
    with np.load(weights) as archive:  # the names were compared above; its identity is net's
        arrays = {k: archive[k] for k in archive.files if k != KEY}
    again = emit(back, "onnx", weights=arrays)["model.onnx"]
    x = np.random.default_rng(0).standard_normal((2, *net.input_shape)).astype(np.float32)
    expected, got = _run(written.read_bytes(), x), _run(again, x)
    assert np.abs(got - expected).max() <= 1e-6 * max(1.0, np.abs(expected).max())


def _run(model: bytes, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]
