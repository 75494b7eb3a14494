"""Fuzzing the files resdsl reads besides specs: ONNX models given to `resdsl import`, and .npz
weights given to `resdsl compile --weights` and to a generated model.py's load_npz
(`train.py --init-weights`).

Each input is a sound file of a small network, changed as a careless tool or an attacker would:
protobuf fields (dims, attributes, op types, names from the whole space, dtypes, dropped nodes,
rewired inputs, non-finite values) and random bytes for ONNX; headers (shapes, dtypes), names,
members, compression bombs, truncation and random bytes for npz. Only resdsl's own errors may
escape resdsl (a generated model.py's: its WeightsMismatch), within a time and memory budget;
an import that is accepted has passed its proof. RESDSL_FILE_FUZZ_EXAMPLES sets the count (CI
runs a few dozen; the closing notes record thousands).
"""

from __future__ import annotations

import io
import random
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import resdsl
from resdsl.emit import emit

from helpers import fuzz_settings, within

FUZZ = fuzz_settings("RESDSL_FILE_FUZZ_EXAMPLES", 40)
SECONDS, MEGABYTES = 30.0, 256  # per input: far above what the sound file needs

SPEC = """\
block sq(c) { avgpool; fc1: conv c//2 1x1 bias=1; relu; fc2: conv c 1x1 bias=1; sigmoid }

block unit(width, stride = 1) {
    conv width 3x3 stride=stride; bn; relu
    conv width 3x3; bn
    mul { se: sq width }
    add
    relu
}

network tiny {
    input 3x16x16
    classes 5
    stem  { conv 8 3x3; bn; relu; maxpool 3x3 stride=2 }
    stage { unit 8 x 2 }
    stage { unit 16; stride 2 }
    head  { avgpool; fc }
}
"""
# names a source may give a node or a tensor: empty, private, keywords, the language's own
# words, control characters, non-ASCII, long, dotted oddly
NAMES = ["", "_x", "__init__", "a\nb", "class", "group", "tap", "é", "x" * 300, "a..b", "1", "\0"]


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "tiny.rds"
    path.write_text(SPEC)
    (network,) = resdsl.check_spec(path)
    return network


def within_budget(call) -> str:
    """``call()``'s outcome: "ok", or the code of the resdsl error it raised; anything else
    fails, as does running over the time or memory budget."""
    try:
        with within(SECONDS, MEGABYTES):
            call()
    except resdsl.ResdslError as exc:
        assert exc.code and exc.message and "Traceback" not in exc.render(), exc
        return exc.code
    return "ok"


# ---------------------------------------------------------------- ONNX models


def mutated_onnx(good: bytes, rng: random.Random) -> bytes:
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load_from_string(good)
    g = model.graph
    outputs = [x for node in g.node for x in node.output]
    for _ in range(rng.randint(1, 3)):
        edit = rng.choice(
            ["dims", "attr", "name", "tensor", "op", "drop", "input", "dtype", "value"]
        )
        node = rng.choice(g.node)
        tensor = rng.choice(g.initializer)
        if edit == "dims" and tensor.dims:
            tensor.dims[rng.randrange(len(tensor.dims))] = rng.choice([0, 1, 7, 2**40])
        elif edit == "attr" and node.attribute:
            attr = rng.choice(node.attribute)
            if attr.ints:
                attr.ints[rng.randrange(len(attr.ints))] = rng.choice([0, -1, 2, 100, 2**31])
            elif attr.type == onnx.AttributeProto.INT:
                attr.i = rng.choice([0, -1, 5, 2**40])
            elif attr.type == onnx.AttributeProto.FLOAT:
                attr.f = rng.choice([float("nan"), -1.0, 1e30])
        elif edit == "name":
            node.name = rng.choice(NAMES) + rng.choice(["", ".conv1", "/Conv"])
        elif edit == "tensor":  # an initialiser renamed where it is read too
            new = rng.choice(NAMES) + ".weight"
            for reader in g.node:
                reader.input[:] = [new if x == tensor.name else x for x in reader.input]
            tensor.name = new
        elif edit == "op":
            node.op_type = rng.choice(["Relu", "Conv", "Add", "Mul", "Concat", "Foo", "Gemm"])
        elif edit == "drop":
            g.node.remove(node)
        elif edit == "input" and node.input:
            node.input[rng.randrange(len(node.input))] = rng.choice([*outputs, "nope", ""])
        elif edit == "dtype":
            tensor.data_type = rng.choice([0, 2, 7, 8, 10, 11, 16, 99])
        elif edit == "value" and tensor.data_type == onnx.TensorProto.FLOAT:
            try:
                array = numpy_helper.to_array(tensor).copy()
            except ValueError:  # its dims changed by an earlier edit: its data no longer fit
                continue
            if array.size:
                array.flat[rng.randrange(array.size)] = rng.choice([np.nan, np.inf, 1e30])
                tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
    data = bytearray(model.SerializeToString())
    for _ in range(rng.choice([0, 0, 0, 1, 4])):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


class Sound(bytes):
    """A sound file's bytes, shown by their size where hypothesis reports a failing case."""

    def __repr__(self) -> str:
        return f"<{len(self):,} bytes>"


@pytest.fixture(scope="module")
def sound_onnx(net):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    return Sound(emit(net, "onnx")["model.onnx"])


def imports(data: bytes, path) -> str:
    from resdsl.importer import import_source

    path.write_bytes(data)
    result = {}

    def run():
        result["imported"] = import_source(str(path), verify=True)

    outcome = within_budget(run)
    if outcome == "ok":  # accepted means proven: its spec checks and its logits agree
        assert "logits equal" in result["imported"].report, result["imported"].report
        resdsl.check(resdsl.build(resdsl.link(resdsl.parse(result["imported"].text))))
    return outcome


@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_mutated_onnx_files_are_imported_or_refused(seed, sound_onnx, tmp_path):
    imports(mutated_onnx(sound_onnx, random.Random(seed)), tmp_path / "m.onnx")


def test_the_onnx_mutations_reach_acceptance_and_each_refusal(sound_onnx, tmp_path):
    """Not vacuous: a fixed sample has files imported, files that are no valid ONNX, and files
    whose layers, names or weights resdsl refuses."""
    rng = random.Random(0)
    seen = {imports(mutated_onnx(sound_onnx, rng), tmp_path / "m.onnx") for _ in range(60)}
    assert {"ok", "RDS430", "RDS432"} <= seen, seen


# ---------------------------------------------------------------- npz weights


def npy(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def mutated_npz(good: bytes, rng: random.Random) -> bytes:
    edit = rng.choice(["bytes", "truncate", "shape", "descr", "name", "bomb", "dtype", "drop"])
    if edit == "bytes":
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if edit == "truncate":
        return good[: rng.randrange(len(good))]
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    name = rng.choice(sorted(members))
    if edit in ("shape", "descr"):  # the .npy header rewritten, its data left as it was
        data = members[name]
        size = int.from_bytes(data[8:10], "little")
        header = data[10 : 10 + size].decode("latin1")
        if edit == "shape":
            claim = rng.choice(["100000, 100000, ", "0, ", "99999999999999999999, ", "1, "])
            header = header.replace("'shape': (", "'shape': (" + claim, 1)
        else:
            descr = rng.choice(["'|O'", "'<c8'", "'<U4'", "'V8'", "'>f8'", "'<f2'"])
            header = header.replace("'descr': '<f4'", "'descr': " + descr)
        raw = header.encode("latin1")
        raw += b" " * ((64 - (10 + len(raw)) % 64) % 64)
        members[name] = data[:8] + len(raw).to_bytes(2, "little") + raw + data[10 + size :]
    elif edit == "name":
        new = rng.choice(["x/", "../x.npy", "a\nb.npy", "_x.npy", "x" * 300, name[:-4]])
        members[new] = members.pop(name)
    elif edit == "bomb":  # 64 MB of zeros, a few kilobytes deflated
        members[name] = npy(np.zeros((4096, 4096), np.float32))
    elif edit == "dtype" and name != "resdsl:identity.npy":
        kind = rng.choice([np.float16, np.float64, np.int8, np.bool_, np.complex64])
        members[name] = npy(np.load(io.BytesIO(members[name])).astype(kind))
    elif edit == "drop":
        members.pop(name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return out.getvalue()


@pytest.fixture(scope="module")
def sound_npz(net, tmp_path_factory):
    """The npz of the network, and a PyTorch model.py generated for it."""
    from resdsl.proof import load_module
    from resdsl.targets.weights import fresh, npz

    folder = tmp_path_factory.mktemp("generated")
    (folder / "model.py").write_text(emit(net, "torch")["model.py"])
    pytest.importorskip("torch")
    return Sound(npz(net, fresh(net, 0))), load_module(folder / "model.py", "fuzzed_model")


def loads(data: bytes, path, net, generated) -> tuple[str, str]:
    """What resdsl (compile --weights) and the generated load_npz make of one file."""
    from resdsl.targets.weights import checked

    path.write_bytes(data)
    ours = within_budget(lambda: checked(net, path))
    model = generated.build_model()

    def theirs():
        try:
            generated.load_npz(model, str(path))
        except generated.WeightsMismatch as exc:  # the generated code's one refusal
            raise resdsl.ResdslError(str(exc), code="RDS405") from None

    return ours, within_budget(theirs)


@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_mutated_weights_are_loaded_or_refused_alike(seed, sound_npz, net, tmp_path):
    good, generated = sound_npz
    ours, theirs = loads(mutated_npz(good, random.Random(seed)), tmp_path / "w.npz", net, generated)
    assert (ours == "ok") == (theirs == "ok"), (ours, theirs)  # the two readers agree


def test_the_npz_mutations_reach_acceptance_and_each_refusal(sound_npz, net, tmp_path):
    good, generated = sound_npz
    rng = random.Random(0)
    seen = {loads(mutated_npz(good, rng), tmp_path / "w.npz", net, generated)[0] for _ in range(60)}
    assert {"ok", "RDS404", "RDS405"} <= seen, seen
