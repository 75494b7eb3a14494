"""The shared oracle for resdsl's tests: run the pipeline and read results the way users do."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
import tracemalloc
import types
import zipfile
from pathlib import Path

import numpy as np
from click.testing import CliRunner

import resdsl
from resdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
BROKEN = Path(__file__).resolve().parent / "broken"
GOLDEN = Path(__file__).resolve().parent / "golden"
# what `resdsl compile` writes for each target, in this order
GENERATED = ("model.py", "data.py", "runfolder.py", "train.py")
# every spec file that defines a network to build (library files define only families)
NETWORK_SPECS = [
    p for p in sorted(SPECS.glob("*.rds")) if resdsl.linker.concrete(resdsl.parse_file(p))
]
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "2"}


@contextlib.contextmanager
def within(seconds: float, megabytes: int):
    """Fails the test where its body takes longer or allocates more (Python's and numpy's
    allocations, as tracemalloc sees them) than the budget."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        yield
    finally:  # held to the budget whether the body returned or raised (a refusal too)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert elapsed < seconds, f"{elapsed:.1f} s"
        assert peak < megabytes * 2**20, f"{peak / 2**20:.0f} MB"


def fuzz_settings(variable: str, default: int):
    """Hypothesis settings for a fuzz run of ``$variable`` examples (``default`` in CI), with no
    deadline: each test holds its inputs to a time budget of its own."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=int(os.environ.get(variable, str(default))),
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def compile_text(text: str, name: str = "<test>", **kw):
    """Parse, build and check a dedented spec; the checked Network or a ResdslError."""
    return resdsl.check(resdsl.build(resdsl.link(resdsl.parse(textwrap.dedent(text), name)), **kw))


def errors_of(text: str, name: str = "<test>", **kw) -> list[resdsl.ResdslError]:
    """Every error the pipeline reports for a spec; fails the test if there is none."""
    try:
        compile_text(text, name, **kw)
    except resdsl.ResdslError as exc:
        return list(getattr(exc, "errors", [exc]))
    raise AssertionError("the spec was accepted, but errors were expected")


def run(*args: str):
    """Invoke the CLI in-process, keeping stdout and stderr apart."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def summary_json(spec: Path | str, *flags: str) -> dict:
    result = run("summary", "--json", spec, *flags)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def family_spec(path: Path, network: str, call: str, train: str = "") -> Path:
    """Write a spec that instantiates a family of specs/ (e.g. `cifar_resnet(n = 3)`)."""
    family = "imagenet" if call.startswith("imagenet") else "cifar"
    text = f'import "{SPECS / f"{family}.rds"}"\nnetwork {network} = {call}\n'
    if train:
        text += f"train {network} {{\n{textwrap.indent(train.strip(), '    ')}\n}}\n"
    path.write_text(text)
    return path


def write_cifar(folder: Path, per_batch: int = 20, packed: bool = False) -> Path:
    """Small files in CIFAR-10's official format (pickled dicts of uint8 rows and labels), as a
    cifar-10-batches-py folder or, packed, a cifar-10-python.tar.gz. Returns the --data-dir."""
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            "labels": [int(v) for v in rng.integers(0, 10, per_batch)],
            "batch_label": name,
        }
        (batches / name).write_bytes(pickle.dumps(batch))
    if not packed:
        return folder
    archive = folder / "packed"
    archive.mkdir()
    with tarfile.open(archive / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name in names:
            tar.add(batches / name, f"cifar-10-batches-py/{name}")
    return archive


# ---------------------------------------------------------------- generated code


def module_from(text: str, name: str) -> types.ModuleType:
    """Run generated source as a module, without writing it anywhere."""
    module = types.ModuleType(name)
    exec(compile(text, f"<{name}>", "exec"), module.__dict__)
    return module


def generated_model(spec: str, target: str) -> types.ModuleType:
    """The model.py that `target` generates for specs/<spec>.rds, as a module."""
    from resdsl.emit import emit

    source = emit(resdsl.load(SPECS / f"{spec}.rds"), target)["model.py"]
    return module_from(source, f"{target}_{spec}")


def compile_to(spec, out: Path, target: str, *flags) -> Path:
    result = run("compile", spec, "--target", target, "-o", out, *flags)
    assert result.exit_code == 0, result.stderr
    return out


def check_golden(target: str, spec: str, out: Path) -> None:
    """Diff generated files against reviewed copies; RESDSL_UPDATE_GOLDEN=1 rewrites them."""
    for name in GENERATED:
        golden = GOLDEN / target / spec / name
        if os.environ.get("RESDSL_UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text((out / name).read_text())
        assert (out / name).read_text() == golden.read_text(), f"{target}/{spec}/{name} changed"


def calibrate_bn(torch, model, shape, batches: int, size: int):
    """Non-trivial BN for parity tests: random affine terms, and running statistics of
    ``batches`` random batches of ``size`` (cumulative averages), which keep the activations of
    deep nets near unit scale as trained statistics do. Returns ``model`` in eval mode."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.momentum = None  # cumulative averages of the batches below
                m.reset_running_stats()
        model.train()
        for _ in range(batches):
            model(torch.randn(size, *shape))
    return model.eval()


def ruff(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], capture_output=True, text=True)


def train(folder: Path, *flags, check: bool = True, timeout: int = 900):
    """Run a generated train.py in its folder."""
    result = subprocess.run(
        [sys.executable, "train.py", *map(str, flags)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=QUIET,
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def records(run_dir: Path, kind: str | None = None) -> list[dict]:
    """metrics.jsonl's records, of one kind or all."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if kind is None or r["kind"] == kind]


def write_image_folder(root: Path) -> Path:
    """A small ImageFolder tree of JPEGs: train/ and val/, two classes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder, count in (("train", 3), ("val", 2)):
        for cls in ("n01440764", "n01443537"):
            (root / folder / cls).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (240, 300, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / folder / cls / f"{i}.JPEG")
    return root


def run_until_sigterm(folder: Path, run_dir: Path) -> dict:
    """Start a long digits run, send SIGTERM once it has logged, and return its stop event."""
    flags = ["--data", "digits", "--iters", "100000", "--batch-size", "16", "--log-every", "1"]
    proc = subprocess.Popen(
        [sys.executable, "train.py", *flags, "--out", str(run_dir)],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=QUIET,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (run_dir / "metrics.jsonl").exists() and records(run_dir, "train"):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]  # stopped, after its checkpoint
    (stop,) = [r for r in records(run_dir, "event") if r["event"] == "stop"]
    return stop


def skip_without_tensorflow():
    """Skip where TensorFlow is not installed, without importing it: it shares no process with
    PyTorch, so Keras models are read and run in processes of their own."""
    import importlib.util

    import pytest

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")


def npz_bomb(path, name: str = "fc.weight", shape=(100_000, 100_000), others=None) -> Path:
    """An npz whose array ``name``'s header claims ``shape`` (40 GB of float32) over 16 bytes
    of data, beside the arrays ``others``: a reader that trusts the header before holding it to
    the network allocates, or fails at the data rather than at the header."""
    path = Path(path)
    with zipfile.ZipFile(path, "w") as archive:
        for other, array in (others or {}).items():
            if other != name:
                with archive.open(f"{other}.npy", "w") as f:
                    np.lib.format.write_array(f, np.asarray(array))
        with archive.open(f"{name}.npy", "w") as f:
            header = {"descr": "<f4", "fortran_order": False, "shape": tuple(shape)}
            np.lib.format.write_array_header_1_0(f, header)
            f.write(bytes(16))
    return path
