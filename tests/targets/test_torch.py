"""The PyTorch target: generated code, its equality with torchvision, and training runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given

import resdsl
from resdsl.emit import emit

from helpers import (
    GENERATED,
    SPECS,
    compile_to,
    family_spec,
    generated_model,
    module_from,
    records,
    run,
    run_until_sigterm,
    train,
)
from test_properties import PROPERTY, networks

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- generated code


def test_compile_prints_what_it_wrote_and_defaults_to_build(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("compile", SPECS / "resnet20.rds", "--target", "torch")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [f"wrote build/resnet20-torch/{n}" for n in GENERATED]


def test_compile_bad_target_is_a_usage_error():
    result = run("compile", SPECS / "resnet20.rds", "--target", "jax")
    assert result.exit_code == 2
    assert "Invalid value for '--target'" in result.stderr


def test_spec_strings_are_emitted_as_literals(tmp_path):
    spec = family_spec(tmp_path / "odd.rds", "odd", "cifar_resnet(1)", "data digits")
    out = compile_to(spec, tmp_path / "out", "torch")
    text = (out / "train.py").read_text()
    assert 'data = "digits"' in text
    assert 'out = "runs/odd"' in text


def test_option_a_and_plain_blocks(tmp_path):
    model = module_from(
        emit(resdsl.load(SPECS / "resnet20.rds"), "torch")["model.py"], "torch_resnet20"
    )
    net = model.build_model()
    shortcut = net.layer2[0].downsample
    assert [type(m).__name__ for m in shortcut] == ["Subsample", "ZeroPad"]
    assert sum(p.numel() for p in shortcut.parameters()) == 0
    x = torch.randn(1, 16, 32, 32)
    assert shortcut(x).shape == (1, 32, 16, 16)
    assert torch.equal(shortcut(x)[:, :16], x[:, :, ::2, ::2])
    assert not shortcut(x)[:, 16:].any()
    plain = module_from(
        emit(resdsl.load(SPECS / "plain20.rds"), "torch")["model.py"], "torch_plain20"
    )
    block = plain.build_model().layer1[0].eval()
    assert not hasattr(block, "downsample")
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():  # no addition: the block's output is its branch alone
        branch = block.relu2(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))))
        assert torch.equal(block(x), branch)
        assert not torch.equal(block(x), torch.relu(branch + x))


def test_initialisation_and_zero_init_residual():
    model = module_from(
        emit(resdsl.load(SPECS / "resnet20.rds"), "torch")["model.py"], "torch_resnet20"
    )
    torch.manual_seed(0)
    net = model.build_model()
    conv = net.layer3[0].conv1.weight  # fan_out = 64 * 3 * 3
    assert abs(conv.std().item() - (2 / (64 * 9)) ** 0.5) < 0.01
    assert torch.equal(net.layer1[0].bn2.weight, torch.ones(16))
    zeroed = model.build_model(zero_init_residual=True)
    assert not zeroed.layer1[0].bn2.weight.any()
    assert zeroed.layer1[0].bn1.weight.all()


@pytest.mark.parametrize(
    "spec", ["resnet18", "resnet34", "resnet50_v1_5", "resnext50_32x4d", "wide_resnet50_2"]
)
def test_torchvision_weights_load_and_logits_match(spec):
    torchvision = pytest.importorskip("torchvision")
    reference = getattr(torchvision.models, spec.replace("_v1_5", ""))().eval()
    torch.manual_seed(0)
    with torch.no_grad():  # non-trivial BN statistics, so eval mode tests them
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model = generated_model(spec, "torch")
    ours = model.build_model().eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert (ours(x) - reference(x)).abs().max().item() <= 1e-5


def test_npz_round_trip(tmp_path):
    model = module_from(
        emit(resdsl.load(SPECS / "resnet20.rds"), "torch")["model.py"], "torch_resnet20"
    )
    a, b = model.build_model(), model.build_model()
    a.layer1[0].bn1.running_mean.fill_(0.25)
    model.save_npz(a, tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as arrays:
        assert arrays["layer2.0.conv1.weight"].shape == (32, 16, 3, 3)  # OIHW
        assert "layer1.0.bn1.running_var" in arrays.files
        assert not [k for k in arrays.files if k.endswith("num_batches_tracked")]
    model.load_npz(b, tmp_path / "w.npz")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        if not name.endswith("num_batches_tracked"):
            assert torch.equal(x, y), name
    other = module_from(
        emit(resdsl.load(SPECS / "resnet32.rds"), "torch")["model.py"], "torch_resnet32"
    )
    with pytest.raises(other.WeightsMismatch, match="holds weights of resnet20 with blocks 9"):
        other.load_npz(other.build_model(), tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as arrays:  # without its identity, the names decide
        plain = {k: arrays[k] for k in arrays.files if k != "resdsl:identity"}
    np.savez(tmp_path / "plain.npz", **plain)
    model.load_npz(b, tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="weights do not match"):
        other.load_npz(other.build_model(), tmp_path / "plain.npz")


@PROPERTY
@given(networks())
def test_inferred_shapes_equal_torch_shapes(net):
    """Every IR node that is a module has the shape torch computes (forward hooks)."""
    ir = resdsl.check(resdsl.build(resdsl.link(resdsl.parse(net.text(), "random.rds"))))
    model = module_from(emit(ir, "torch")["model.py"], "torch_random").build_model().eval()
    seen = {}
    modules = dict(model.named_modules())

    def record(name):
        def hook(module, inputs, output):
            seen[name] = tuple(output.shape[1:])  # returns None: the output stays as it is

        return hook

    for node in ir.nodes():
        if node.name in modules:
            modules[node.name].register_forward_hook(record(node.name))
    with torch.no_grad():
        model(torch.randn(2, *ir.input_shape))
    compared = 0
    for node in ir.nodes():
        if node.name in seen:
            shape = seen[node.name]
            assert shape + (1,) * (3 - len(shape)) == node.shape, node.name
            compared += 1
    # every op but the input and the additions is a module
    assert compared == sum(n.op not in ("input", "add") for n in ir.nodes())


# ---------------------------------------------------------------- training runs


@pytest.fixture(scope="module")
def resnet20(tmp_path_factory):
    return compile_to(SPECS / "resnet20.rds", tmp_path_factory.mktemp("resnet20"), "torch")


@pytest.fixture(scope="module")
def digits_run(resnet20, tmp_path_factory):
    """ResNet-20 on digits: 150 iterations at batch 64 on the CPU."""
    run_dir = tmp_path_factory.mktemp("digits")
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
    assert test["iter"] == 150
    assert test["error"] <= 10.0
    trains = records(digits_run, "train")
    assert trains[-1]["iter"] == 150  # a train record at the last iteration
    assert set(trains[-1]) == {"kind", "iter", "lr", "loss", "error", "images_per_s"}
    config = json.loads((digits_run / "config.json").read_text())
    assert config["data"] == "digits" and config["iters"] == 150 and config["flip"] is True
    events = [r["event"] for r in records(digits_run, "event")]
    assert events[-2:] == ["checkpoint", "stop"]
    assert len(list(digits_run.glob("ckpt-*.pt"))) == 1


def test_responses_are_the_branch_bns_in_layer_order(digits_run):
    layers = json.loads((digits_run / "responses.json").read_text())["layers"]
    expected = [f"layer{s}.{b}.bn{k}" for s in (1, 2, 3) for b in range(3) for k in (1, 2)]
    assert [layer["name"] for layer in layers] == expected
    assert all(layer["std"] > 0 for layer in layers)


def test_exported_weights_start_another_run(digits_run, resnet20, tmp_path):
    model = module_from((resnet20 / "model.py").read_text(), "torch_resnet20")
    net = model.build_model()
    model.load_npz(net, digits_run / "w.npz")
    ckpt = torch.load(sorted(digits_run.glob("ckpt-*.pt"))[-1], weights_only=True)
    assert torch.equal(net.fc.weight, ckpt["model"]["fc.weight"])
    run_dir = tmp_path / "again"
    train(
        resnet20,
        "--data",
        "digits",
        "--iters",
        1,
        "--batch-size",
        64,
        "--out",
        run_dir,
        "--init-weights",
        digits_run / "w.npz",
        "--eval-every",
        1,
    )
    (test,) = [r for r in records(run_dir, "eval") if r["split"] == "test"]
    assert test["error"] <= 15.0  # one step from trained weights, not from scratch


def test_sigterm_checkpoints_and_resumes(resnet20, tmp_path):
    run_dir = tmp_path / "run"
    stop = run_until_sigterm(resnet20, run_dir)
    assert stop["reason"] == "SIGTERM"
    (ckpt,) = run_dir.glob("ckpt-*.pt")
    assert int(ckpt.stem.split("-")[1]) == stop["iter"]
    train(
        resnet20,
        "--data",
        "digits",
        "--iters",
        stop["iter"] + 2,
        "--batch-size",
        16,
        "--out",
        run_dir,
        "--resume",
    )
    assert records(run_dir, "train")[-1]["iter"] == stop["iter"] + 2


def test_missing_data_says_where_and_what_to_do(resnet20, tmp_path):
    result = train(
        resnet20,
        "--data",
        "cifar10",
        "--data-dir",
        tmp_path / "nowhere",
        "--iters",
        1,
        "--out",
        tmp_path / "run",
        check=False,
    )
    assert result.returncode == 1
    assert "CIFAR-10 not found: looked for" in result.stderr
    assert str(tmp_path / "nowhere") in result.stderr
    assert "--data digits" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--iters", "0"], "--iters must be at least 1"), (["--data", "mnist"], "invalid choice")],
)
def test_bad_flags(resnet20, flags, message):
    result = train(resnet20, *flags, check=False)
    assert result.returncode == 2
    assert "usage: train.py" in result.stderr and message in result.stderr


def test_torchrun_two_processes(resnet20, tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "train.py",
            "--data",
            "digits",
            "--iters",
            "6",
            "--batch-size",
            "32",
            "--device",
            "cpu",
            "--out",
            str(run_dir),
            "--log-every",
            "1",
        ],
        cwd=resnet20,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    iters = [r["iter"] for r in records(run_dir, "train")]
    assert iters == list(range(1, 7))  # written once, by rank 0
    (stop,) = [r for r in records(run_dir, "event") if r["event"] == "stop"]
    first, second = stop["weight_sums"]
    assert first == second


def test_amp_and_channels_last_run(resnet20, tmp_path):
    train(
        resnet20,
        "--data",
        "digits",
        "--iters",
        3,
        "--batch-size",
        16,
        "--out",
        tmp_path,
        "--amp",
        "--channels-last",
        "--log-every",
        1,
    )
    losses = [r["loss"] for r in records(tmp_path, "train")]
    assert len(losses) == 3 and all(np.isfinite(losses))
