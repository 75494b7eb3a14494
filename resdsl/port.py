"""`resdsl port SOURCE --target T -o DIR`: a trained network carried to another framework.

The source is imported (its spec, proved in PyTorch by a strict load), its weights are written in
the npz layout every target reads, the target's files are compiled from the spec (model.onnx with
the weights inside it), and the result is proved in the target's own framework: its logits
against the source's, within 1e-4 of max(1, |logit|). Only a proved port is written, all of its
files at once.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .emit import emit, write
from .importer import import_source
from .proof import expected, onnx_proof, sample, tf_proof
from .targets.weights import npz

WEIGHTS = "weights.npz"


@dataclass
class Ported:
    files: dict[str, str | bytes]  # what is written into DIR
    report: str  # the import's proof, then the target's


def port(source: str, target: str, checkpoint: str | None = None) -> Ported:
    """The files of ``source`` ported to ``target``, proved; nothing is written."""
    imported = import_source(source, verify=True, checkpoint=checkpoint)
    net, loaded = imported.net, imported.source
    arrays = imported.weights()
    weights = npz(net, arrays)
    files: dict[str, str | bytes] = {f"{loaded.name}.rds": imported.text, WEIGHTS: weights}
    x = sample(loaded)
    want = expected(loaded, x)
    if target == "onnx":
        files |= emit(net, "onnx", weights=arrays)
        diff = None if want is None else onnx_proof(files["model.onnx"], loaded, want, x)
    else:
        files |= emit(net, target)
        diff = None if want is None else _prove_in_folder(target, files, loaded, want, x)
    proof = "not compared (onnxruntime is not installed)" if diff is None else (
        f"logits equal to the source's (max {diff:.1g})"
    )  # fmt: skip
    return Ported(files, f"{imported.report}\nported to {target}: {proof}")


def _prove_in_folder(target: str, files: dict, loaded, want, x) -> float:
    """The generated model.py, run by its framework with the weights loaded (its load_npz)."""
    with tempfile.TemporaryDirectory() as folder:
        write(files, folder)
        if target == "tf":
            return tf_proof(Path(folder), Path(folder) / WEIGHTS, loaded, want, x)
        return _torch_run(Path(folder), loaded, want, x)


def _torch_run(folder: Path, loaded, want, x) -> float:
    from .proof import compare, load_module
    from .reading import needs

    torch = needs("torch", "'resdsl[torch]'")
    module = load_module(folder / "model.py", f"resdsl_port_{loaded.name}")
    model = module.build_model()
    module.load_npz(model, str(folder / WEIGHTS))
    with torch.no_grad():
        got = model.eval()(torch.from_numpy(x)).numpy()
    return compare(got, want, loaded, "PyTorch")
