"""One rule for every name a user gives: a label, a group, a stage's module path. Names are drawn
from the whole space (Python's keywords and builtins, nn.Module's and Keras' attributes, the
generated code's own names, underscores, digits, non-ASCII letters); each spec is either refused
with a code and a position, or accepted, and then every target keeps the IR's names: PyTorch's
state_dict keys, ONNX's initialisers and Keras' weights (its torch_layout) are the IR's tensors,
in order.

RESDSL_NAME_EXAMPLES sets the example count (CI runs a few; the closing notes record more).
"""

from __future__ import annotations

import builtins
import os

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import resdsl
from resdsl import names
from resdsl.emit import emit
from resdsl.targets.weights import tensors

from helpers import module_from

torch = pytest.importorskip("torch")
pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
onnx = pytest.importorskip("onnx")

EXAMPLES = int(os.environ.get("RESDSL_NAME_EXAMPLES", "15"))
NAMES = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# names a target or a framework might hold for itself
WORDS = sorted(
    names.PYTHON
    | names.MODULE_ATTRIBUTES
    | {n for n in dir(builtins) if not n.startswith("__")}
    | {"name", "call", "build", "weights", "layers", "trainable", "dtype", "input", "output"}
    | {"x", "out", "identity", "downsample", "self", "nn", "F", "np", "keras", "torch", "model"}
    | {"layer1", "conv1", "bn1", "fc", "stem", "head", "stage", "group", "block", "network"}
    | {"weight", "bias", "running_mean", "__init__", "_x", "__g", "a1", "A", "mul", "tap"}
)
IDENT = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}", fullmatch=True)  # mostly accepted
NAME = st.one_of(
    st.sampled_from(WORDS),
    IDENT,
    IDENT,
    IDENT,
    st.from_regex(r"_[A-Za-z0-9_]{0,4}", fullmatch=True),
    st.text(alphabet="ab_1é", min_size=1, max_size=4),
)


def spec(layer: str, group: str, member: str, head: str, stage: str) -> str:
    return f"""
block unit(w) {{ {layer}: conv w 3x3; bn; relu; add }}
network n {{
    input 3x8x8
    classes 4
    stem {{ conv 8 3x3; group {group} {{ {member}: conv 8 1x1; bn }} }}
    stage {stage} {{ unit 8 x 2 }}
    head {{ avgpool; {head}: fc }}
}}
"""


def accepted(text: str):
    """The network, or None where resdsl refuses the spec: with a code and a position."""
    try:
        return resdsl.check(resdsl.build(resdsl.link(resdsl.parse(text, "names.rds"))))
    except resdsl.ResdslError as exc:
        errors = getattr(exc, "errors", [exc])
        assert all(e.code and e.span is not None for e in errors), exc
        return None


SLOTS = {"layer": "lab", "group": "grp", "member": "mem", "head": "top", "stage": "stg"}


@NAMES
@given(NAME, st.sampled_from(sorted(SLOTS)), st.booleans())
def test_a_name_is_refused_or_kept_by_every_target(name, slot, dotted):
    """One name drawn for one place (the others are plain), so that about half are accepted."""
    given = {**SLOTS, slot: name}
    if dotted:
        given["stage"] = f"stages.{given['stage']}.0"
    net = accepted(spec(**given))
    event("accepted" if net is not None else "refused")
    if net is None:
        return
    wanted = list(tensors(net))
    model = module_from(emit(net, "torch")["model.py"], "names_torch").build_model()
    assert [k for k in model.state_dict() if not k.endswith("num_batches_tracked")] == wanted
    graph = onnx.load_from_string(emit(net, "onnx")["model.onnx"]).graph
    assert [t.name for t in graph.initializer] == wanted
    k = module_from(emit(net, "tf")["model.py"], "names_tf")
    assert sorted(k.torch_layout(k.build_model())) == sorted(wanted)
    keras.backend.clear_session()


def test_the_names_reach_the_targets():
    """The strategy's names are accepted often enough that the targets are compared."""
    kept = [n for n in ("conv", "proj", "a1", "stem2") if accepted(spec(n, "g", n, "fc", n))]
    assert kept == ["conv", "proj", "a1", "stem2"]
    assert accepted(spec("forward", "g", "m", "fc", "layer1")) is None
    assert accepted(spec("c", "__g", "m", "fc", "layer1")) is None
