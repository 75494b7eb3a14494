"""Installed from a wheel (not editable), resdsl still finds its grammar, prelude and templates."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from helpers import ROOT, SPECS

pytest.importorskip("hatchling", reason="building the wheel needs hatchling (the test extra)")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
    )
    (path,) = out.glob("resdsl-*.whl")
    return path


def test_wheel_holds_the_grammar_and_the_prelude(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "resdsl/grammars/resdsl.lark" in names
    assert "resdsl/prelude.rds" in names
    assert "resdsl/templates/torch/model.py.j2" in names
    assert "resdsl/schemas/diagnostics.schema.json" in names
    assert "resdsl/schemas/summary.schema.json" in names


def test_installed_copy_runs_away_from_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    work = tmp_path / "work"
    work.mkdir()
    for name in ("cifar.rds", "resnet20.rds"):
        shutil.copy(SPECS / name, work / name)
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import resdsl; print(resdsl.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(target))  # the installed copy, not the checkout
    result = subprocess.run(
        [sys.executable, "-m", "resdsl", "summary", "--json", "resnet20.rds"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["params"] == 269_722
    compiled = subprocess.run(
        [sys.executable, "-m", "resdsl", "compile", "resnet20.rds", "--target", "torch"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert compiled.returncode == 0, compiled.stderr
    assert "class BasicBlock(nn.Module):" in (work / "build/resnet20-torch/model.py").read_text()
