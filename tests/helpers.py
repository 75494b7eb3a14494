"""The shared oracle for resdsl's tests: run the pipeline and read results the way users do."""

from __future__ import annotations

import json
import pickle
import tarfile
import textwrap
from pathlib import Path

import numpy as np
from click.testing import CliRunner

import resdsl
from resdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
BROKEN = Path(__file__).resolve().parent / "broken"


def compile_text(text: str, name: str = "<test>", **kw):
    """Parse, build and check a dedented spec; the checked Network or a ResdslError."""
    return resdsl.check(resdsl.build(resdsl.parse(textwrap.dedent(text), name), **kw))


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
