"""Pre-activation ResNet-164 (He et al. 2016) compiles and trains on digits in both targets."""

from __future__ import annotations

import os

import numpy as np
import pytest

import resdsl
from resdsl.emit import emit

from helpers import SPECS, compile_to, module_from, records, summary_json, train


def test_preact_structure():
    """BN and ReLU before each conv, nothing after the add, BN and ReLU before the pooling."""
    net = resdsl.load(SPECS / "preact_resnet164.rds")
    ops = [n.op for n in net.nodes() if n.block == "layer2.3"]
    assert ops == ["bn", "relu", "conv", "bn", "relu", "conv", "bn", "relu", "conv", "add"]
    head = [n.op for n in net.nodes() if n.section == "head"]
    assert head == ["bn", "relu", "avgpool", "fc"]
    # 3 stages of 18 units, 3 convs each, plus the stem conv and the fc: 164 layers
    convs = sum(n.op == "conv" and n.role != "shortcut" for n in net.nodes())
    assert convs + 1 == 164
    # the paper's 1.7M parameters, counted by hand: a unit of width w on c channels has
    # BN(c), a 1x1 c->w, BN(w), a 3x3 w->w, BN(w) and a 1x1 w->4w; each stage's first unit a
    # 1x1 projection c->4w with its BN
    params, c = 3 * 16 * 9, 16
    for w in (16, 32, 64):
        for unit in range(18):
            params += 2 * c + c * w + 2 * w + 9 * w * w + 2 * w + 4 * w * w
            if unit == 0:
                params += c * 4 * w + 2 * 4 * w
            c = 4 * w
    params += 2 * c + c * 10 + 10
    assert params == 1_704_154  # the paper: 1.7M
    assert summary_json(SPECS / "preact_resnet164.rds")["params"] == params


SLOW = pytest.mark.skipif(
    not os.environ.get("RESDSL_SLOW"),
    reason="ResNet-164 trains for minutes on 2 cores; set RESDSL_SLOW=1 (CI trains n = 2 below)",
)


def trains_on_digits(spec, target, tmp_path, iters=30):
    """Compile ``spec`` for ``target``, train on digits, and check that it learns."""
    pytest.importorskip("torch" if target == "torch" else "tensorflow")
    folder = compile_to(spec, tmp_path / "out", target)
    run = tmp_path / "run"
    train(
        folder,
        "--data",
        "digits",
        "--iters",
        iters,
        "--batch-size",
        32,
        "--eval-every",
        1000,  # one evaluation, at the end: ResNet-164 takes 20 s to evaluate digits here
        "--ckpt-every",
        1000,
        "--out",
        run,
        "--log-every",
        1,
        timeout=1800,
    )
    trains = records(run, "train")
    losses = [r["loss"] for r in trains]
    assert len(losses) == iters
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first, (first, last)  # it learns: the loss falls
    assert trains[-1]["error"] < 90.0  # better than chance over the last batches (10 classes)


@SLOW
@pytest.mark.parametrize("target", ["torch", "tf"])
def test_preact_resnet164_trains_on_digits(target, tmp_path):
    trains_on_digits(SPECS / "preact_resnet164.rds", target, tmp_path)


@pytest.mark.parametrize("target", ["torch", "tf"])
def test_preact_units_train_on_digits(target, tmp_path):
    """The same units, two per stage (ResNet-164's code with n = 2): CI-sized."""
    spec = tmp_path / "preact20.rds"
    spec.write_text(f'import "{SPECS / "preact.rds"}"\nnetwork preact20 = preact_cifar(n = 2)\n')
    trains_on_digits(spec, target, tmp_path, iters=40)


@pytest.mark.parametrize("target", ["torch", "tf"])
def test_preact_resnet164_builds_with_the_irs_parameters(target):
    """ResNet-164 itself, in CI: both targets build it with the IR's 1,704,154 parameters."""
    net = resdsl.load(SPECS / "preact_resnet164.rds")
    source = emit(net, target)["model.py"]
    model = module_from(source, f"preact164_{target}").build_model()
    if target == "torch":
        pytest.importorskip("torch")
        count = sum(p.numel() for p in model.parameters())
    else:
        count = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert count == 1_704_154
