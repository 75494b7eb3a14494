"""The CLI, in-process through CliRunner: exit codes and the text people read."""

import json

import pytest

from helpers import SPECS, run, summary_json


def test_summary_table():
    result = run("summary", SPECS / "resnet20.rds")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "network resnet20  (input 3x32x32)"
    assert lines[1].split() == ["layer", "kind", "input", "output", "params", "MACs"]
    assert lines[3].split() == ["stem", "stem", "3x32x32", "16x32x32", "464", "442,368"]
    conv1 = lines[4].split()
    assert conv1 == [
        "conv1",
        "conv",
        "3x32x32",
        "16x32x32",
        "432",
        "442,368",
    ]  # 3*16*9; 16*32*32*27
    stage = next(line.split() for line in lines if line.startswith("layer2 "))
    assert stage[:4] == ["layer2", "stage", "16x32x32", "32x16x16"]
    block = next(line.split() for line in lines if line.startswith("  layer2.0 "))
    assert block[:4] == ["layer2.0", "basic", "16x32x32", "32x16x16"]
    assert not [line for line in lines if line.startswith("    ")]  # --depth 2: no block's ops
    totals = dict(line.split(":", 1) for line in lines if ":" in line and "network" not in line)
    assert totals["trainable params"].split() == ["269,722", "(269.72K)"]
    # the BN layers' running means and variances: 2 x (16 + 6 x 16 + 6 x 32 + 6 x 64)
    assert totals["non-trainable params"].split() == ["1,376", "(1.38K)"]
    assert totals["MACs"].split() == ["40,551,040", "(40.55M)"]
    assert totals["params size"].split() == ["1.08MB", "(float32)"]  # 4 x 271,098


def test_summary_depth():
    one = run("summary", "--depth", "1", SPECS / "resnet50.rds").stdout.splitlines()
    names = [line.split()[0] for line in one[3:] if line and not line.startswith("-")]
    assert names[:6] == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    deep = run("summary", "--depth", "3", SPECS / "resnet50.rds").stdout
    assert "    layer4.2.conv3 " in deep and "    layer1.0.downsample.0 " in deep
    assert run("summary", "--depth", "0", SPECS / "resnet50.rds").exit_code == 2


def test_summary_counts_agree_with_torchvision_and_keras():
    """ResNet-50: torchvision's parameters and BN buffers (Keras reports the same 53,120
    non-trainable numbers); bytes are float32's four per parameter."""
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet50()
    running = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    info = summary_json(SPECS / "resnet50.rds")
    assert info["params"] == sum(p.numel() for p in model.parameters())
    assert info["non_trainable"] == running == 53_120
    assert info["param_bytes"] == 4 * (info["params"] + running)
    stages = {g["name"]: g for g in info["groups"]}
    assert stages["layer3"]["params"] == sum(p.numel() for p in model.layer3.parameters())
    assert stages["layer3"]["input"] == [512, 28, 28] and stages["layer3"]["shape"] == [
        1024,
        14,
        14,
    ]


def test_summary_json_schema():
    info = summary_json(SPECS / "resnet18.rds")
    assert set(info) == {
        "network", "input", "params", "non_trainable", "macs", "param_bytes",
        "activation_bytes", "layers", "groups",
    }  # fmt: skip
    assert info["network"] == "resnet18" and info["input"] == [3, 224, 224]
    first = info["layers"][0]
    assert first == {
        "name": "conv1",
        "op": "conv",
        "input": [3, 224, 224],
        "shape": [64, 112, 112],
        "params": 64 * 3 * 7 * 7,
        "non_trainable": 0,
        "macs": 64 * 112 * 112 * 3 * 7 * 7,
    }
    assert info["layers"][1]["non_trainable"] == 2 * 64  # bn1's running mean and variance
    assert info["layers"][-1] == {
        "name": "fc",
        "op": "fc",
        "input": [512, 1, 1],
        "shape": [1000, 1, 1],
        "params": 512 * 1000 + 1000,
        "non_trainable": 0,
        "macs": 512 * 1000,
    }


def test_summary_json_is_one_object():
    result = run("summary", "--json", SPECS / "resnet56.rds")
    assert result.stdout.count("\n") == 1
    json.loads(result.stdout)


def test_python_m_and_console_script_agree():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "resdsl", "summary", "--json", str(SPECS / "resnet20.rds")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["params"] == 269_722


@pytest.mark.parametrize("command", ["check", "summary"])
def test_shortcut_flag_on_every_command(command):
    result = run(command, SPECS / "resnet20.rds", "--shortcut", "B")
    assert result.exit_code == 0
    assert "272,474" in result.stdout


def test_shortcut_flag_takes_the_specs_own_definitions():
    result = run("summary", SPECS / "zoo" / "resnet18.rds", "--shortcut", "D")
    assert result.exit_code == 0, result.stderr
    # ResNet-D's projections: the 1x1 convs and BNs of torchvision's resnet18, with pools
    assert "11,689,512" in result.stdout
    result = run("summary", SPECS / "resnet20.rds", "--shortcut", "D")
    assert result.exit_code == 1
    assert "error[RDS113]: unknown shortcut 'D'" in result.stderr
    assert "A, B, C, none" in result.stderr


def test_check_ok_lines():
    # 387 ops: a 3-op stem, 54 blocks of 7, two option-A shortcuts of 2, and avgpool and fc
    result = run("check", SPECS / "resnet110.rds", SPECS / "cifar.rds")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"{SPECS / 'resnet110.rds'}: ok: resnet110, 387 ops, 1,727,962 params, 252,887,680 MACs",
        f"{SPECS / 'cifar.rds'}: ok: definitions only",
    ]


def test_every_spec_checks():
    result = run("check", *sorted(SPECS.glob("*.rds")))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count(": ok: ") == len(list(SPECS.glob("*.rds")))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["summary", "SPEC", "--frobnicate"], "No such option '--frobnicate'"),
        (["summary", "missing.rds"], "'missing.rds' does not exist"),
        (["check"], "Missing argument 'SPECS...'"),
        (["compiel"], "No such command 'compiel'"),
    ],
)
def test_bad_flags_are_usage_errors(args, message):
    args = [str(SPECS / "resnet20.rds") if a == "SPEC" else a for a in args]
    result = run(*args)
    assert result.exit_code == 2
    assert "Usage: " in result.stderr
    assert message in result.stderr


def test_spec_error_exit_1_without_traceback(tmp_path):
    spec = tmp_path / "bad.rds"
    spec.write_text(
        "network n {\n  input 3x32x32\n  classes 10\n  stem { conv 16 3x3 stride=0 }\n}\n"
    )
    result = run("summary", spec)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"{spec}:4:29: error[RDS205]: stem › conv 1: conv stride 0 must be"
    )
    assert "Traceback" not in result.stderr


def test_network_flag(tmp_path):
    spec = tmp_path / "two.rds"
    cifar = SPECS / "cifar.rds"
    spec.write_text(f'import "{cifar}"\nnetwork a = cifar_resnet(1)\nnetwork b = cifar_resnet(2)\n')
    result = run("summary", "--json", spec)
    assert result.exit_code == 1
    assert f"{spec}:3:1: error[RDS111]:" in result.stderr
    assert "hint: choose one with --network" in result.stderr
    assert summary_json(spec, "--network", "b")["network"] == "b"
    result = run("summary", spec, "--network", "c")
    assert result.exit_code == 1
    assert "no network `c`" in result.stderr


# ------------------------------------------------------------ files as people's tools write them

BOM = b"\xef\xbb\xbf"
SMALL = 'import "{specs}/cifar.rds"\nnetwork r  =  cifar_resnet(n = 1)\n'


def test_a_byte_order_mark_is_not_text(tmp_path):
    """Notepad starts UTF-8 files with a BOM: the file checks, and carets count from after it."""
    spec = tmp_path / "bom.rds"
    spec.write_bytes(BOM + SMALL.format(specs=SPECS.as_posix()).encode())
    result = run("check", spec)
    assert result.exit_code == 0 and "ok: r, 30 ops, 75,290 params" in result.stdout
    spec.write_bytes(BOM + b"network n {\n  input 3x32x32\n  classes 10\n  stem { rleu }\n}\n")
    result = run("check", spec)
    assert result.exit_code == 1
    assert f"{spec}:4:10: error[RDS101]: unknown layer or block `rleu`" in result.stderr


@pytest.mark.parametrize("bom", [b"", BOM], ids=["plain", "bom"])
def test_fmt_keeps_the_files_line_endings_and_byte_order_mark(bom, tmp_path):
    text = SMALL.format(specs=SPECS.as_posix())
    lf, crlf = tmp_path / "lf.rds", tmp_path / "crlf.rds"
    lf.write_bytes(text.encode())
    crlf.write_bytes(bom + text.replace("\n", "\r\n").encode())
    assert run("fmt", lf, crlf).exit_code == 0
    formatted = lf.read_bytes()
    assert b"network r = cifar_resnet(n = 1)\n" in formatted  # it did format
    assert crlf.read_bytes() == bom + formatted.replace(b"\n", b"\r\n")
    assert run("fmt", "--check", crlf).exit_code == 0


def test_check_takes_folders(tmp_path):
    result = run("check", SPECS)
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == len(list(SPECS.rglob("*.rds")))
    assert f"{SPECS / 'cifar.rds'}: ok: definitions only" in result.stdout
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "bad.rds").write_text("network n {\n  classes 10\n}\n")
    result = run("check", tmp_path)
    assert result.exit_code == 1 and "error[RDS128]" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run("check", tmp_path / "empty")
    assert result.exit_code == 2 and "no .rds files in" in result.stderr


def test_check_json_answers_a_missing_file_in_json(tmp_path):
    result = run("check", "--format", "json", tmp_path / "missing.rds")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    (diagnostic,) = report["diagnostics"]
    assert (report["ok"], diagnostic["code"]) == (False, "RDS005")
    assert "No such file or directory" in diagnostic["message"]
    text = run("check", tmp_path / "missing.rds")
    assert text.exit_code == 2 and "does not exist" in text.stderr
