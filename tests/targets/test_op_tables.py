"""An op is one row of the op table, one write and one read entry per target, and a test that fails
where one is missing: every op of the table has an example here (a new row without one fails the
first test), is written by each target, and reads back through the target's read table as the same
op with the same arguments.

The truth is the example's own network, built by the compiler from the spec text; the read side is
`resdsl import` of what a target wrote (model.py's build_model() as a factory, PyTorch's or Keras',
and model.onnx as a file). ONNX files are inference graphs: dropout is ONNX's Dropout there, with
its ratio, and reads back; drop path, which ONNX has no op for, is an Identity and must be gone
from what is read back.
"""

from __future__ import annotations

from collections import Counter

import pytest

import resdsl
from resdsl.emit import emit
from resdsl.importer import import_source
from resdsl.ops import OPS
from resdsl.targets import onnx as onnx_target
from resdsl.targets.tf import VARIABLES, KerasWriter
from resdsl.targets.torch import TorchWriter

from helpers import skip_without_tensorflow

pytest.importorskip("torch")

# each op in a network of its own: a layer of the stem, or a block for the joins and shortcuts
EXAMPLES = {
    "conv": "stem { conv 8 3x3; conv 12 3x3 stride=2 groups=4 bias=1 dilation=2 ws=1e-6 }",
    "bn": "stem { conv 8 3x3; bn eps=1e-3 }",
    "gn": "stem { conv 8 3x3; gn 4 }",
    "channel_conv": "stem { conv 8 3x3; channel_conv 3 }",
    "blurpool": "stem { conv 8 3x3; blurpool stride=2 size=4 }",
    "pad": "stem { conv 8 3x3; pad 1x2 value=0.5 }",
    "relu": "stem { conv 8 3x3; relu }",
    "sigmoid": "stem { conv 8 3x3; sigmoid }",
    "hardsigmoid": "stem { conv 8 3x3; hardsigmoid }",
    "relu6": "stem { conv 8 3x3; relu6 }",
    "hardswish": "stem { conv 8 3x3; hardswish }",
    "silu": "stem { conv 8 3x3; silu }",
    "leakyrelu": "stem { conv 8 3x3; leakyrelu 0.2 }",
    "maxpool": "stem { conv 8 3x3; maxpool 3x3 stride=2 pad=0; maxpool 2x2 stride=2 ceil=1 }",
    "avgpool": "stem { conv 8 3x3; avgpool 3x3 stride=2 ceil=1 include_pad=0 }",
    "adaptive_avgpool": "stem { conv 8 3x3; adaptive_avgpool 5x3; adaptive_avgpool 7x8 }",
    "fc": "stem { conv 8 3x3; fc 12 }",
    "dropout": "stem { conv 8 3x3; dropout 0.3 }",
    "droppath": "stem { conv 8 3x3; droppath 0.2 }",
    "subsample": "stem { conv 8 3x3; subsample 2 }",
    "zeropad": "stem { conv 8 3x3; zeropad 12 }",
    "add": "stage { unit 8 x 2 }",
    "mul": "stage { gated 8 x 2 }",
    "concat": "stage { widened 8 x 2 }",
    "input": "stem { conv 8 3x3 }",
}
BLOCKS = """
block unit(w) { conv w 3x3; bn; relu; conv w 3x3; bn; add; relu }
block gate(c) { avgpool; conv c 1x1 bias=1; sigmoid }
block gated(w) { conv w 3x3; bn; mul { se: gate w }; add }
block widened(w) { conv w 3x3; concat { side: conv w//2 1x1 }; conv w 1x1; add }
"""


def spec(op: str) -> str:
    sections = EXAMPLES[op].replace("stage {", "stem { conv 8 3x3 }\n    stage {")
    body = f"    input 4x16x16\n    classes 5\n    {sections}\n    head {{ avgpool; fc }}"
    return f"{BLOCKS}\nnetwork ex {{\n{body}\n}}\n"


def network(op: str):
    return resdsl.check(resdsl.build(resdsl.link(resdsl.parse(spec(op), "ex.rds"))))


def ops_of(net, eval_only: bool) -> Counter:
    return Counter(
        (n.op, repr(sorted(n.arg.items())), n.shape)
        for n in net.nodes()
        if not (eval_only and OPS[n.op].stochastic)
    )


def test_every_op_of_the_table_has_an_example():
    assert set(EXAMPLES) == set(OPS)


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_target_writes_every_op(op):
    """The targets' tables: ONNX spells each op; the Python targets spell each op that is a
    module (a join is a line of forward(), the input its argument)."""
    assert op in onnx_target.SPELL or op == "input"
    if OPS[op].inputs == 1:
        assert op in TorchWriter.TRANSFORMS and op in KerasWriter.TRANSFORMS
    assert any(n.op == op for n in network(op).nodes())  # the example uses it


@pytest.mark.parametrize("op", sorted(OPS))
def test_keras_holds_every_tensor_of_a_row(op):
    """Keras' variables of each op's tensors (model.py's VARIABLES, the reader's layouts): one
    for each tensor the op's row owns, and none for an op that owns none."""
    names = {t.name for t in OPS[op].tensors}
    held = set(VARIABLES[op][1]) if op in VARIABLES else set()
    assert held == names


@pytest.mark.parametrize("target", ["torch", "onnx", "tf"])
@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_reads_back_as_itself(op, target, tmp_path, monkeypatch):
    net = network(op)
    if target == "tf":  # read in a process of its own: Keras and PyTorch do not share one
        skip_without_tensorflow()
        (tmp_path / f"keras_example_{op}.py").write_text(emit(net, "tf")["model.py"])
        monkeypatch.syspath_prepend(str(tmp_path))
        source = f"keras:keras_example_{op}:build_model"
    elif target == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
        path = tmp_path / "ex.onnx"
        path.write_bytes(emit(net, "onnx")["model.onnx"])
        source = str(path)
    else:
        (tmp_path / f"example_{op}.py").write_text(emit(net, "torch")["model.py"])
        monkeypatch.syspath_prepend(str(tmp_path))
        source = f"module:example_{op}:build_model"
    result = import_source(source)  # proved: a strict load, and equal logits
    assert "strict load ok, logits equal" in result.report
    back = resdsl.check(resdsl.build(resdsl.link(resdsl.parse(result.text, "back.rds"))))
    eval_only = target == "onnx" and op == "droppath"
    assert ops_of(back, eval_only) == ops_of(net, eval_only)
    if eval_only:
        assert not any(n.op == op for n in back.nodes())
