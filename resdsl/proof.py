"""The proofs of `resdsl import` and `resdsl port`: the spec written for a source, given the
source's weights, computes the source's logits, in the framework that will run it.

Each proof runs the source on the same random input (2 images, seed 0) and requires the target's
logits within 1e-4 of max(1, |logit|). PyTorch's runs in this process (its state_dict is loaded
with strict=True, so every name and shape must agree); TensorFlow's runs in a process of its own,
as the generated model.py runs for a user.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from .errors import ResdslError
from .reading import TF_TIMEOUT, as_array, in_tensorflow, last_line, load_problem, needs, refuse
from .reading import sample as inputs_of
from .sources import Source

TOLERANCE = 1e-4  # of max(1, |logit|)


def network_of(text: str, source: Source):
    """The checked network of a spec written for ``source``."""
    from . import build, check, link, parse

    try:
        return check(build(link(parse(text, f"{source.name}.rds"))))
    except ResdslError as exc:
        raise refuse(
            f"the spec written for {source.origin} does not check: {exc.message}",
            "the source holds a layer resdsl refuses (does it run in its own framework?); "
            "if it does, this is a bug in resdsl import: please report it with the source",
            code="RDS433",
        ) from None


def sample(source: Source):
    """The proofs' input: 2 images of the source's size, standard normal, from seed 0."""
    return inputs_of(source.input_shape)


def expected(source: Source, x):
    """The source's logits on ``x``, as numpy; None where nothing here runs it."""
    import numpy as np

    torch = needs("torch", "'resdsl[torch]'")
    with torch.no_grad():
        out = source.forward(torch.from_numpy(x))
    return None if out is None else np.asarray(torch.as_tensor(out).reshape(len(x), -1))


def compare(got, want, source: Source, target: str) -> float:
    """The largest difference of the logits, or a refusal where it is over the tolerance."""
    import numpy as np

    if not np.isfinite(want).all():  # nothing to prove: the source's own weights are broken
        state = source.state()
        broken = [k for k, v in state.items() if not np.isfinite(as_array(v)).all()]
        raise refuse(
            f"{source.origin}'s own logits are not finite on the proof's input"
            + (f": its tensor `{broken[0]}` holds NaN or infinity" if broken else ""),
            "give a model whose weights are finite",
            code="RDS430",
        )
    got = np.asarray(got).reshape(want.shape)
    diff = float(np.abs(got - want).max())
    if not diff <= TOLERANCE * max(1.0, float(np.abs(want).max())):
        raise refuse(
            f"the {target} model's logits differ from {source.origin}'s by {diff:.3g}",
            code="RDS433",
        )
    return diff


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_proof(net, source: Source) -> str:
    """Compile ``net`` for PyTorch, load the source's state_dict strictly, compare logits."""
    needs("torch", "'resdsl[torch]'")
    from .emit import emit

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.py"
        path.write_text(emit(net, "torch")["model.py"], encoding="utf-8")
        model = load_module(path, f"resdsl_import_{source.name}").build_model().eval()
    try:
        model.load_state_dict(source.state(), strict=True)
    except RuntimeError as exc:
        raise refuse(
            f"{source.origin}'s state_dict does not load into the imported spec's model: "
            f"{load_problem(exc)}",
            code="RDS433",
        ) from None
    params = source.parameters
    x = sample(source)
    want = expected(source, x)
    if want is None:  # an ONNX file without onnxruntime to run it
        return (
            f"imported {source.name}: {params:,} parameters, strict load ok, logits not "
            "compared (onnxruntime is not installed)"
        )
    torch = needs("torch", "'resdsl[torch]'")
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    diff = compare(got, want, source, "imported spec's")
    return (
        f"imported {source.name}: {params:,} parameters, strict load ok, "
        f"logits equal (max {diff:.1g})"
    )


def onnx_proof(model: bytes, source: Source, want, x) -> float:
    """model.onnx, run by onnxruntime, against the source's logits."""
    ort = needs("onnxruntime", "onnxruntime")
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x})
    return compare(got, want, source, "ONNX")


_TF_RUN = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import model
net = model.build_model()
model.load_npz(net, sys.argv[2])
x = np.load(sys.argv[3])
np.save(sys.argv[4], np.asarray(net(x.transpose(0, 2, 3, 1), training=False)))
"""


def tf_proof(folder: Path, weights: Path, source: Source, want, x) -> float:
    """The TensorFlow target's model.py with the weights loaded, run in a process of its own
    (on NHWC input, as Keras reads it), against the source's logits."""
    import numpy as np

    with tempfile.TemporaryDirectory() as scratch:
        inputs, outputs = Path(scratch) / "x.npy", Path(scratch) / "logits.npy"
        np.save(inputs, x)
        done = in_tensorflow(_TF_RUN, str(folder), str(weights), str(inputs), str(outputs))
        if done is None:
            raise refuse(
                f"the TensorFlow model did not give its logits in {TF_TIMEOUT} s", code="RDS433"
            )
        if done.returncode != 0:
            raise refuse(
                f"the TensorFlow model does not run: {last_line(done)}",
                "pip install 'resdsl[tf]'",
                code="RDS433",
            )
        got = np.load(outputs)
    return compare(got, want, source, "TensorFlow")
