"""The TensorFlow target: generated code, parity with the PyTorch target, and training runs."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import resdsl
from resdsl.emit import emit

from helpers import (
    GENERATED,
    SPECS,
    calibrate_bn,
    compile_to,
    module_from,
    records,
    run_until_sigterm,
    train,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")


def trainable(model) -> int:
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


# ---------------------------------------------------------------- generated code


def test_no_lambda_layers_and_padding_is_explicit(tmp_path):
    text = emit(resdsl.load(SPECS / "resnet20.rds"), "tf")["model.py"]
    assert "Lambda" not in text
    assert 'padding="same"' not in text
    model = module_from(text, "tf_resnet20").build_model()
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Subsample", "ZeroPad", "ZeroPadding2D"} <= kinds
    bn = model.get_layer("layer1.0.bn1")
    assert (bn.epsilon, bn.momentum) == (1e-5, 0.9)
    # the model saves and loads through Keras' own format, custom layers included
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x), again(x), atol=1e-6)


# ---------------------------------------------------------------- parity with PyTorch


def models(spec):
    torch = pytest.importorskip("torch")
    net = resdsl.load(SPECS / f"{spec}.rds")
    t = module_from(emit(net, "torch")["model.py"], f"torch_{spec}")
    k = module_from(emit(net, "tf")["model.py"], f"tf_{spec}")
    return torch, net, t, k


def calibrated(torch, t, shape):
    """A torch model with non-trivial BN: random affine terms, statistics of real batches."""
    torch.manual_seed(0)
    return calibrate_bn(torch, t.build_model(), shape, batches=3, size=4)


@pytest.mark.parametrize("spec", ["resnet20", "plain20", "resnet18", "resnet50"])
def test_logits_agree_both_ways_through_npz(spec, tmp_path):
    torch, net, t, k = models(spec)
    torch_model = calibrated(torch, t, net.input_shape)
    x = np.random.default_rng(1).standard_normal((2, *net.input_shape)).astype(np.float32)
    with torch.no_grad():
        reference = torch_model(torch.from_numpy(x)).numpy()
    t.save_npz(torch_model, tmp_path / "from_torch.npz")
    keras_model = k.build_model()
    k.load_npz(keras_model, tmp_path / "from_torch.npz")
    logits = keras_model(x.transpose(0, 2, 3, 1), training=False).numpy()
    assert np.abs(logits - reference).max() <= 1e-4
    assert np.abs(reference).max() > 0.1  # the comparison is not between zeros
    k.save_npz(keras_model, tmp_path / "from_tf.npz")
    back = t.build_model().eval()
    t.load_npz(back, tmp_path / "from_tf.npz")
    with torch.no_grad():
        assert np.abs(back(torch.from_numpy(x)).numpy() - logits).max() <= 1e-4


def load_train_module(folder, name):
    """Import a generated train.py with the files beside it (both targets call theirs `model`,
    `data` and `runfolder`), leaving sys.modules and sys.path as they were."""
    siblings = [n.removesuffix(".py") for n in GENERATED if n != "train.py"]
    saved = {n: sys.modules.pop(n) for n in siblings if n in sys.modules}
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(name, folder / "train.py")
        train = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(train)
        model = sys.modules["model"]
    finally:
        sys.path.remove(str(folder))
        for n in siblings:
            sys.modules.pop(n, None)
        sys.modules.update(saved)
    return model, train


def test_five_sgd_steps_agree(tmp_path):
    """Five SGD steps from the same weights on the same batches (digits, no augmentation) leave
    both targets' weights within 1e-4, relative. The lr doubles after two steps, as at a warmup
    switch, which is where Keras' momentum convention would part from PyTorch's.

    The lr is small on purpose: at lr 0.1 from initialisation the steps are chaotic, and the
    PyTorch target itself drifts this much from a copy of itself perturbed by 1e-8.
    """
    torch = pytest.importorskip("torch")
    digits = pytest.importorskip("sklearn.datasets").load_digits()
    spec = SPECS / "resnet20.rds"
    t_model, _ = load_train_module(compile_to(spec, tmp_path / "torch", "torch"), "t_train")
    k_model, k_train = load_train_module(compile_to(spec, tmp_path / "tf", "tf"), "k_train")
    images = torch.from_numpy(digits.images[:80, None].astype(np.float32) / 16)
    images = torch.nn.functional.interpolate(images, size=(32, 32), mode="bilinear")
    images = (images - images.mean(0, keepdim=True)).repeat(1, 3, 1, 1).numpy()
    batches = [(images[i : i + 16], digits.target[i : i + 16]) for i in range(0, 80, 16)]
    lrs = [0.001, 0.001, 0.002, 0.002, 0.002]
    torch.manual_seed(0)
    t_model.save_npz(t_model.build_model(), tmp_path / "w.npz")

    ours = t_model.build_model().train()
    t_model.load_npz(ours, tmp_path / "w.npz")
    sgd = torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for (x, y), lr in zip(batches, lrs, strict=True):
        for group in sgd.param_groups:
            group["lr"] = lr
        sgd.zero_grad()
        logits = ours(torch.from_numpy(x))
        torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)).backward()
        sgd.step()
    reference = {k: v.detach().numpy() for k, v in ours.state_dict().items()}

    def distance(optimizer_class):
        """The TF target's weights after the same steps, relative to PyTorch's."""
        model = k_model.build_model()
        k_model.load_npz(model, tmp_path / "w.npz")
        opt = optimizer_class(model.trainable_variables, 0.9, 1e-4)
        for (x, y), lr in zip(batches, lrs, strict=True):
            with tf.GradientTape() as tape:
                logits = model(x.transpose(0, 2, 3, 1), training=True)
                losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
                loss = tf.reduce_mean(losses)
            opt.apply(tape.gradient(loss, model.trainable_variables), lr)
        after = k_model.torch_layout(model)
        names = [n for n in after if not n.endswith(("running_mean", "running_var"))]
        assert len(names) == sum(1 for _ in ours.parameters())
        diff = sum(np.sum((after[n] - reference[n]) ** 2) for n in names)
        return math.sqrt(diff / sum(np.sum(reference[n] ** 2) for n in names))

    class KerasMomentum(k_train.TorchSGD):
        """Keras' and Caffe's convention, v = m*v - lr*g; p += v: what TorchSGD avoids."""

        def apply(self, grads, lr):
            for var, grad, buf in zip(self.variables, grads, self.buffers, strict=True):
                buf.assign(0.9 * buf - lr * (grad + 1e-4 * var))
                var.assign_add(buf)

    assert distance(k_train.TorchSGD) <= 1e-4
    assert distance(KerasMomentum) > 3e-4  # the test tells the conventions apart
    start = np.load(tmp_path / "w.npz")["fc.weight"]
    assert np.abs(reference["fc.weight"] - start).max() > 1e-4  # the steps moved the weights


# ---------------------------------------------------------------- training runs


@pytest.fixture(scope="module")
def resnet20(tmp_path_factory):
    return compile_to(SPECS / "resnet20.rds", tmp_path_factory.mktemp("resnet20-tf"), "tf")


@pytest.fixture(scope="module")
def digits_run(resnet20, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tf-digits")
    train(
        resnet20,
        "--data",
        "digits",
        "--iters",
        150,
        "--batch-size",
        64,
        "--out",
        run_dir,
        "--log-responses",
        "--export-weights",
        run_dir / "w.npz",
    )
    return run_dir


def test_digits_reaches_ten_percent_test_error(digits_run):
    (test,) = [r for r in records(digits_run, "eval") if r["split"] == "test"]
    assert test["iter"] == 150 and test["error"] <= 10.0
    trains = records(digits_run, "train")
    assert trains[-1]["iter"] == 150
    assert set(trains[-1]) == {"kind", "iter", "lr", "loss", "error", "images_per_s"}
    config = json.loads((digits_run / "config.json").read_text())
    assert config["data"] == "digits" and config["iters"] == 150
    layers = json.loads((digits_run / "responses.json").read_text())["layers"]
    assert [layer["name"] for layer in layers][:3] == [
        "layer1.0.bn1",
        "layer1.0.bn2",
        "layer1.1.bn1",
    ]
    assert len(layers) == 18 and all(layer["std"] > 0 for layer in layers)


def test_weights_trained_in_tf_continue_in_torch(digits_run, tmp_path):
    pytest.importorskip("torch")
    code = compile_to(SPECS / "resnet20.rds", tmp_path / "torch", "torch")
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--data",
            "digits",
            "--iters",
            "1",
            "--batch-size",
            "64",
            "--out",
            str(tmp_path / "run"),
            "--eval-every",
            "1",
            "--lr",
            "0.01",
            "--init-weights",
            str(digits_run / "w.npz"),
        ],
        cwd=code,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (test,) = [r for r in records(tmp_path / "run", "eval") if r["split"] == "test"]
    assert test["error"] <= 15.0  # the TF-trained weights, one small step later


def test_mirrored_strategy_matches_one_device(resnet20, tmp_path):
    flags = ["--data", "digits", "--batch-size", 32, "--iters", 5, "--log-every", 1]
    train(resnet20, *flags, "--out", tmp_path / "one")
    train(resnet20, *flags, "--out", tmp_path / "two", "--distribute", "--virtual-cpus", 2)
    assert json.loads((tmp_path / "two" / "config.json").read_text())["world_size"] == 2
    one = [r["loss"] for r in records(tmp_path / "one", "train")]
    two = [r["loss"] for r in records(tmp_path / "two", "train")]
    assert len(one) == len(two) == 5
    # BN statistics are per replica, so the runs differ slightly, as under DDP
    assert abs(one[0] - two[0]) / one[0] < 0.01
    assert max(abs(a - b) / a for a, b in zip(one, two, strict=True)) < 0.1


def test_sigterm_checkpoints(resnet20, tmp_path):
    run_dir = tmp_path / "run"
    stop = run_until_sigterm(resnet20, run_dir)
    assert stop["reason"] == "SIGTERM"
    assert (run_dir / f"ckpt-{stop['iter']:09d}.npz").exists()


def test_bad_input_and_an_ignored_flag(resnet20, tmp_path):
    """(A non-finite loss, for both targets: tests/targets/test_training.py.)"""
    missing = train(
        resnet20,
        "--data",
        "cifar10",
        "--data-dir",
        tmp_path / "none",
        "--out",
        tmp_path / "m",
        check=False,
    )
    assert missing.returncode == 1 and "CIFAR-10 not found: looked for" in missing.stderr
    bad = train(resnet20, "--iters", "0", check=False)
    assert bad.returncode == 2 and "--iters must be at least 1" in bad.stderr
    note = train(
        resnet20,
        "--data",
        "digits",
        "--iters",
        1,
        "--batch-size",
        8,
        "--out",
        tmp_path / "cl",
        "--channels-last",
    )
    assert "--channels-last means nothing in TensorFlow" in note.stdout
