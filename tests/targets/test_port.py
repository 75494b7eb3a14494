"""`resdsl port` and `resdsl import --weights`: a trained network and its weights carried to
another framework, proved against the source itself.

The source is timm's or torchvision's architecture with random BN terms and statistics, saved as
a checkpoint file the way a user has one (safetensors, or torch.save of a state_dict). The
truth is the source model's own logits, computed here by timm or torchvision.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from resdsl.identity import KEY

from helpers import module_from, run, skip_without_tensorflow

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
safetensors_torch = pytest.importorskip("safetensors.torch")

from test_zoo import randomise  # noqa: E402


def trained(name: str, folder, library=timm):
    """``name``'s architecture with random BN statistics, and a checkpoint file of it."""
    torch.manual_seed(0)
    if library is timm:
        model = timm.create_model(name, pretrained=False).eval()
    else:
        model = library.models.get_model(name, weights=None).eval()
    randomise(model)
    path = folder / f"{name}.safetensors"
    safetensors_torch.save_file(model.state_dict(), str(path))
    return model, path


def logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("target", ["onnx", "tf"])
def test_resnet50d_ports_with_its_checkpoint(target, tmp_path):
    """The issue's acceptance: timm's resnet50d to TensorFlow and to ONNX, logits within 1e-4 of
    max(1, |logit|), its checkpoint loaded through --checkpoint."""
    model, checkpoint = trained("resnet50d", tmp_path)
    out = tmp_path / "out"
    result = run(
        "port", "timm:resnet50d", "--target", target, "-o", out, "--checkpoint", checkpoint
    )
    assert result.exit_code == 0, result.stderr
    assert "strict load ok, logits equal" in result.stderr
    assert f"ported to {target}: logits equal to the source's" in result.stderr
    assert {"resnet50d.rds", "weights.npz"} <= {p.name for p in out.iterdir()}
    with np.load(out / "weights.npz") as npz:  # the checkpoint's tensors, under its own names
        state = model.state_dict()
        for name in ("conv1.0.weight", "layer4.2.bn3.running_var", "fc.bias"):
            assert np.array_equal(npz[name], state[name].numpy()), name
        assert KEY in npz.files
    if target == "onnx":  # checked here against timm itself, in onnxruntime
        onnxruntime = pytest.importorskip("onnxruntime")
        session = onnxruntime.InferenceSession(
            str(out / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        x = np.random.default_rng(3).standard_normal((2, 3, 224, 224)).astype(np.float32)
        (got,) = session.run(None, {"input": x})
        want = logits(model, x)
        assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
    else:
        assert {"model.py", "train.py"} <= {p.name for p in out.iterdir()}


def test_import_writes_the_weights_that_load_npz_reads(tmp_path):
    """`resdsl import --weights`: torchvision's resnet18 checkpoint, as the torch target's npz,
    loaded by the generated model's load_npz, gives torchvision's logits."""
    import torchvision

    model, checkpoint = trained("resnet18", tmp_path, library=torchvision)
    spec, weights = tmp_path / "r.rds", tmp_path / "w.npz"
    result = run(
        "import", "torchvision:resnet18", "-o", spec, "--weights", weights,
        "--checkpoint", checkpoint,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"wrote {weights}" in result.stderr
    compiled = run("compile", spec, "--target", "torch", "-o", tmp_path / "torch")
    assert compiled.exit_code == 0, compiled.stderr
    generated = module_from((tmp_path / "torch" / "model.py").read_text(), "ported_resnet18")
    ours = generated.build_model().eval()
    generated.load_npz(ours, str(weights))
    x = np.random.default_rng(4).standard_normal((2, 3, 224, 224)).astype(np.float32)
    assert np.abs(logits(ours, x) - logits(model, x)).max() <= 1e-5


def test_a_pickled_checkpoint_is_refused_not_unpickled(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"state_dict": {"fc.weight": torch.zeros(1)}, "note": object.__new__(Exotic)}, path)
    result = run("import", "torchvision:resnet18", "--checkpoint", path)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "error[RDS435]: cannot load the checkpoint" in result.stderr
    assert "never unpickles" in result.stderr


class Exotic:
    """A class torch.load(weights_only=True) will not build."""


def test_another_models_checkpoint_is_refused_by_name(tmp_path):
    import torchvision

    _, checkpoint = trained("resnet18", tmp_path, library=torchvision)
    result = run("import", "timm:resnet34", "--checkpoint", checkpoint)
    assert result.exit_code == 1
    assert "error[RDS435]: cannot load the checkpoint" in result.stderr
    assert "it is not timm:resnet34's" in result.stderr


@pytest.mark.parametrize(
    "state, told",
    [
        ({1: torch.zeros(3)}, "it holds no state_dict of tensors under names"),
        ({"conv1.weight": torch.zeros(3)}, '"bn1.running_var" and {} more'),
    ],
    ids=["int-keys", "nearly-empty"],
)
def test_a_strange_checkpoint_is_refused_in_one_line(state, told, tmp_path):
    """Keys that are no names are refused, not a traceback; a file that misses a hundred keys
    names four of them and counts the rest."""
    import torchvision

    keys = torchvision.models.resnet18().state_dict()  # BN fills in num_batches_tracked itself
    missing = [k for k in keys if k not in state and not k.endswith("num_batches_tracked")]
    told = told.format(len(missing) - 4)
    torch.save(state, tmp_path / "strange.pt")
    result = run("import", "torchvision:resnet18", "--checkpoint", tmp_path / "strange.pt")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    (error,) = [line for line in result.stderr.splitlines() if "error[RDS435]" in line]
    assert told in error, error


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_checkpoint_is_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    result = run("import", "torchvision:resnet18", "--checkpoint", fifo)
    assert result.exit_code == 1
    assert "cannot load the checkpoint" in result.stderr and "not a regular file" in result.stderr


def test_a_failed_port_writes_nothing(tmp_path):
    result = run("port", "torchvision:resnet5", "--target", "onnx", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "error[RDS430]" in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_onnx_file_takes_no_checkpoint(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"")
    result = run("import", tmp_path / "m.onnx", "--checkpoint", tmp_path / "c.pt")
    assert result.exit_code == 1 and "error[RDS430]" in result.stderr
    assert "an ONNX file brings its own weights" in result.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_an_onnx_source_that_never_ends_is_refused_before_it_is_read(tmp_path):
    """A FIFO would block a reader, a link to /dev/zero feed it forever: both are refused by
    what they are, before a byte is read."""
    pytest.importorskip("onnx")
    os.mkfifo(tmp_path / "pipe.onnx")
    (tmp_path / "zero.onnx").symlink_to("/dev/zero")
    for name in ("pipe.onnx", "zero.onnx"):
        result = run("import", tmp_path / name)
        assert result.exit_code == 1, name
        assert (
            "error[RDS430]: cannot read" in result.stderr and "not a regular file" in result.stderr
        )


def test_weights_need_the_proof():
    result = run("import", "torchvision:resnet18", "--weights", "w.npz", "--no-verify")
    assert result.exit_code == 2 and "--weights needs the proof" in result.stderr


# ---------------------------------------------------------------- Keras as a source

KERAS_NET = '''
import sys

import keras
import numpy as np


def trained():
    """keras.applications' ResNet50V2, logits out, with random BN terms and statistics."""
    model = keras.applications.ResNet50V2(weights=None, classifier_activation=None)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            layer.beta.assign(rng.normal(0.0, 0.1, n))
            layer.moving_mean.assign(rng.normal(0.0, 0.1, n))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, n))
    return model


if __name__ == "__main__":  # the truth: Keras' own logits on the test's input; the model saved
    model = trained()
    x = np.load(sys.argv[1])
    np.save(sys.argv[2], np.asarray(model(x.transpose(0, 2, 3, 1), training=False)))
    model.save(sys.argv[3])
'''


def test_keras_resnet50v2_ports_to_torch(tmp_path):
    """The issue's acceptance: keras.applications' ResNet50V2 with random BN statistics, saved as
    a .keras file, ported to PyTorch: the generated model.py, its weights.npz loaded, gives the
    logits Keras itself gives, within 1e-4 of max(1, |logit|)."""
    skip_without_tensorflow()
    import subprocess
    import sys

    (tmp_path / "keras_net.py").write_text(KERAS_NET, encoding="utf-8")
    x = np.random.default_rng(5).standard_normal((2, 3, 224, 224)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    saved = tmp_path / "resnet50v2.keras"
    done = subprocess.run(
        [sys.executable, "keras_net.py", "x.npy", "want.npy", saved.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "out"
    result = run("port", saved, "--target", "torch", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "imported resnet50v2: 25,568,360 parameters, strict load ok" in result.stderr
    text = (out / "resnet50v2.rds").read_text()
    assert "stage conv2 { unit 64 x 2; unit 64 stride=2 }" in text  # its stride, last
    generated = module_from((out / "model.py").read_text(), "ported_keras_resnet50v2")
    model = generated.build_model().eval()
    generated.load_npz(model, str(out / "weights.npz"))
    want, got = np.load(tmp_path / "want.npy"), logits(model, x)
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


def test_keras_applications_are_sources_by_name():
    """`keras:ResNet50`: v1's names (the shortcut's `_0_conv` and `_0_bn`) and its "same"
    padding read, proved against Keras' logits; a name Keras lacks gets a did-you-mean."""
    skip_without_tensorflow()
    result = run("import", "keras:ResNet50")
    assert result.exit_code == 0, result.stderr
    assert "imported ResNet50: 25,583,592 parameters, strict load ok, logits equal" in result.stderr
    assert "change { conv out 1x1 stride=stride bias=1; bn eps=1.001e-5 }" in result.stdout
    assert "stage conv3 { unit 128 x 4; stride 2 }" in result.stdout
    wrong = run("import", "keras:ResNet50v2")
    assert wrong.exit_code == 1 and "error[RDS430]" in wrong.stderr
    assert "did you mean `ResNet50V2`" in wrong.stderr


KERAS_ODD = """
import keras
from keras import layers


def _net(*middle):
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, name="conv1")(inputs)
    for layer in middle:
        x = layer(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(4, name="fc")(x))


def normed():
    return _net(layers.LayerNormalization(name="ln"))


def strided_same():
    return _net(layers.Conv2D(8, 3, strides=2, padding="same", name="conv2"))


def tanh():
    return _net(layers.Conv2D(8, 3, activation="tanh", name="conv2"))


def broken():
    raise RuntimeError("no model today")


def huge():  # a classifier of 300 million classes: 9.6 GB of weights, on a laptop
    inputs = keras.Input((16, 16, 3))
    x = layers.GlobalAveragePooling2D(name="pool")(layers.Conv2D(8, 3, name="conv1")(inputs))
    return keras.Model(inputs, layers.Dense(300_000_000, name="fc")(x))
"""


@pytest.mark.parametrize(
    "source, message",
    [
        ("keras:keras_odd:normed", "error[RDS432]: ln: Keras' LayerNormalization has no resdsl"),
        ("keras:keras_odd:strided_same", 'conv2: "same" padding of 1 over 14 is asymmetric'),
        ("keras:keras_odd:tanh", "conv2: a fused activation `tanh` has no resdsl form"),
        ("keras:keras_odd:broken", "error[RDS431]: keras:keras_odd:broken: building the model"),
        ("keras:keras_odd:nothing", "error[RDS431]: keras_odd has no function `nothing`"),
    ],
)
def test_keras_models_without_a_resdsl_form_are_refused_by_layer(
    source, message, tmp_path, monkeypatch
):
    skip_without_tensorflow()
    (tmp_path / "keras_odd.py").write_text(KERAS_ODD, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # a user's module is found in the current folder
    result = run("import", source)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert message in result.stderr


def test_a_keras_model_larger_than_its_bound_fails_in_its_own_process(tmp_path, monkeypatch):
    """The Keras process may allocate 6 GiB (and 8 times a .keras file's size): a model whose
    layers claim 9.6 GB fails there, refused, with no process of the run ever that large."""
    import resource

    skip_without_tensorflow()
    (tmp_path / "keras_odd.py").write_text(KERAS_ODD, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = run("import", "keras:keras_odd:huge")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "error[RDS43" in result.stderr
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
    assert largest < 7 << 30, largest


def test_a_damaged_keras_file_is_refused(tmp_path):
    skip_without_tensorflow()
    (tmp_path / "junk.keras").write_bytes(b"PK\x03\x04 not a zip at all")
    result = run("import", tmp_path / "junk.keras")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "error[RDS430]: cannot read" in result.stderr


def test_a_keras_model_takes_no_checkpoint(tmp_path):
    result = run("import", "keras:ResNet50", "--checkpoint", tmp_path / "c.pt")
    assert result.exit_code == 1 and "a Keras model brings its own weights" in result.stderr
