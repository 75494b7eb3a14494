"""Property-based tests (hypothesis).

(a) Random valid networks get the shapes and parameter counts that closed-form formulas give.
(b) Any text the grammar can generate, and random mutations of the real specs, either compile or
    raise a ResdslError with a span: never another exception.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

import resdsl
from resdsl.parser import grammar

from helpers import SPECS

EXAMPLES = int(os.environ.get("RESDSL_HYPOTHESIS_EXAMPLES", "200"))
PROPERTY = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# ---------------------------------------------------------------- (a) closed forms


@dataclass
class Net:
    channels: int
    height: int
    width: int
    stem_width: int
    stem_kernel: int
    stem_stride: int
    maxpool: bool
    stages: list[tuple[str, int, int, int]]  # block kind, width, count, stride
    policy: str
    classes: int

    def text(self) -> str:
        stem = f"conv {self.stem_width} {self.stem_kernel}x{self.stem_kernel} "
        stem += f"stride={self.stem_stride}; bn; relu"
        if self.maxpool:
            stem += "; maxpool 3x3 stride=2"
        stages = "\n".join(
            f"    stage {{ {kind} {width} x {count}; stride {stride} }}"
            for kind, width, count, stride in self.stages
        )
        return (
            f"network random {{\n    input {self.channels}x{self.height}x{self.width}\n"
            f"    classes {self.classes}\n    shortcut {self.policy}\n"
            f"    stem {{ {stem} }}\n{stages}\n    head {{ avgpool; fc }}\n}}\n"
        )


def conv_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def expected(net: Net):
    """Output shape of every block and the total parameter count, from the paper's formulas."""
    h = conv_size(net.height, net.stem_kernel, net.stem_stride, net.stem_kernel // 2)
    w = conv_size(net.width, net.stem_kernel, net.stem_stride, net.stem_kernel // 2)
    c = net.stem_width
    params = net.channels * c * net.stem_kernel**2 + 2 * c
    if net.maxpool:
        h, w = conv_size(h, 3, 2, 1), conv_size(w, 3, 2, 1)
    shapes = []
    for kind, width, count, stage_stride in net.stages:
        for index in range(count):
            stride = stage_stride if index == 0 else 1
            if kind == "basic":
                out = width
                params += 9 * c * width + 2 * width + 9 * width * width + 2 * width
            else:  # bottleneck, either stride placement: the same parameters
                out = 4 * width
                params += c * width + 9 * width * width + width * out + 2 * (width + width + out)
            # a 3x3 with padding 1 and a 1x1 with padding 0 give the same size at any stride
            nh, nw = conv_size(h, 3, stride, 1), conv_size(w, 3, stride, 1)
            changes = stride > 1 or out != c
            if net.policy == "C" or (net.policy == "B" and changes):
                params += c * out + 2 * out
            c, h, w = out, nh, nw
            shapes.append((c, h, w))
    params += c * net.classes + net.classes
    return shapes, params


@st.composite
def networks(draw, policy=None):
    policy = policy or draw(st.sampled_from(["A", "B", "C", "none"]))
    channels = stem_width = draw(st.integers(1, 16))
    stages = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["basic", "bottleneck", "bottleneck_v1_5"]))
        expansion = 1 if kind == "basic" else 4
        # option A only zero-pads, so under A a stage is never narrower than its input
        low = -(-channels // expansion) if policy == "A" else 1
        width = draw(st.integers(low, low + 12))
        stages.append((kind, width, draw(st.integers(1, 2)), draw(st.sampled_from([1, 2]))))
        channels = expansion * width
    return Net(
        channels=draw(st.integers(1, 4)),
        height=draw(st.integers(1, 40)),
        width=draw(st.integers(1, 40)),
        stem_width=stem_width,
        stem_kernel=draw(st.sampled_from([1, 3, 5, 7])),
        stem_stride=draw(st.sampled_from([1, 2])),
        maxpool=draw(st.booleans()),
        stages=stages,
        policy=policy,
        classes=draw(st.integers(1, 20)),
    )


def block_outputs(result) -> list[tuple[int, int, int]]:
    return [result.node(block.output).shape for block in result.blocks]


@PROPERTY
@given(networks())
def test_shapes_and_parameters_follow_closed_forms(net):
    shapes, params = expected(net)
    result = resdsl.check(resdsl.build(resdsl.link(resdsl.parse(net.text(), "random.rds"))))
    assert block_outputs(result) == shapes
    assert resdsl.summary(result)["params"] == params
    assert result.output.shape == (net.classes, 1, 1)


@PROPERTY
@given(networks(policy="A"), st.integers(1, 8))
def test_option_a_refuses_to_narrow(net, narrower):
    """A stage narrower than the one before it is an error for option A, with both widths."""
    kind, width, count, stride = net.stages[-1]
    out_before = (4 if kind != "basic" else 1) * width
    assume(out_before > narrower)
    net.stages.append(("basic", out_before - narrower, 1, 1))
    with pytest.raises(resdsl.ShapeError) as info:
        resdsl.check(resdsl.build(resdsl.link(resdsl.parse(net.text(), "random.rds"))))
    errors = getattr(info.value, "errors", [info.value])
    assert any(
        f"cannot shrink channels from {out_before} to {out_before - narrower}" in e.message
        for e in errors
    )
    assert all(e.span is not None and e.span.line >= 1 for e in errors)


# ---------------------------------------------------------------- (b) robustness


def compiles_or_reports(text: str, name: str) -> None:
    """The pipeline either accepts ``text`` or raises ResdslErrors that all carry a span."""
    try:
        module = resdsl.parse(text, name)
        for network in resdsl.linker.concrete(module) or [None]:
            if network is None:
                resdsl.link(module)
            else:
                net = resdsl.check(resdsl.build(resdsl.link(module), network=network))
                resdsl.summary(net)
    except resdsl.ResdslError as exc:
        for error in getattr(exc, "errors", [exc]):
            assert error.span is not None, error
            assert error.span.line >= 1 and error.span.column >= 1
            rendered = error.render()
            assert rendered.startswith(f"{error.span.source.name}:{error.span.line}:")


VALUES = {
    "CASE": st.sampled_from(["keep", "change", "always"]),
    "OFF": st.just("off"),
    "DIMS": st.sampled_from(["3x3", "1x1", "7x7", "3x32x32", "0x3", "2x2x2x2"]),
    "IDENT": st.sampled_from(
        [
            "conv",
            "bn",
            "relu",
            "basic",
            "bottleneck",
            "fc",
            "avgpool",
            "maxpool",
            "dropout",
            "n",
            "width",
            "stride",
            "pad",
            "groups",
            "data",
            "cifar10",
            "lr",
            "x1",
            "net",
            "blk",
            "A",
            "B",
            "none",
            "in",
            "out",
            "sigmoid",
            "silu",
            "subsample",
            "zeropad",
            "dilation",
            "ceil",
        ]
    ),
    "INT": st.integers(0, 40).map(str),
    "STRING": st.sampled_from(['"cifar.rds"', '"missing.rds"', '"."']),
    "_SEP": st.sampled_from(["\n", ";", "\n  # comment\n"]),
}


def _terminals() -> dict:
    """A strategy per terminal, each followed by a space.

    from_lark joins tokens with nothing between them, so `block` and `conv` would lex as one name.
    """
    out = {}
    for terminal in grammar().terminals:
        if terminal.name in VALUES:
            out[terminal.name] = VALUES[terminal.name].map(lambda t: t + " ")
        elif terminal.pattern.type == "str":
            out[terminal.name] = st.just(terminal.pattern.value + " ")
    return out


TERMINALS = _terminals()
SOURCE = from_lark(grammar(), explicit=TERMINALS)


def _reachable(start: str) -> dict:
    """TERMINALS cut to those ``start`` reaches: from_lark refuses strategies for the others."""
    rules, seen, todo = grammar().rules, set(), [start]
    while todo:
        name = todo.pop()
        for rule in rules:
            if rule.origin.name == name:
                for symbol in rule.expansion:
                    if symbol.name not in seen:
                        seen.add(symbol.name)
                        todo.append(symbol.name)
    return {k: v for k, v in TERMINALS.items() if k in seen}


# Whole definitions reach elaboration and the checks far more often than whole files do.
NETWORK = st.tuples(
    from_lark(grammar(), start="shortcut_def", explicit=_reachable("shortcut_def")),
    from_lark(grammar(), start="block_def", explicit=_reachable("block_def")),
    from_lark(grammar(), start="network_def", explicit=_reachable("network_def")),
).map(" \n".join)


@PROPERTY
@given(st.one_of(SOURCE, NETWORK))
def test_grammar_generated_text_never_crashes(text):
    compiles_or_reports(text, str(SPECS / "generated.rds"))


SPEC_FILES = sorted(SPECS.glob("*.rds"))
TOKENS = [
    "{",
    "}",
    ";",
    "\n",
    "x",
    "=",
    "(",
    ")",
    ",",
    "stride 2",
    "add",
    "basic",
    "3x3",
    "0",
    "-1",
    "1e-4",
    "80%",
    "45000/5000",
    "shortcut A",
    "stage { }",
    "#",
    "import",
]


@st.composite
def mutated_specs(draw):
    path = draw(st.sampled_from(SPEC_FILES))
    text = path.read_text()
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(1, 4))):
        action = rng.choice(["delete", "insert", "number", "swap_lines", "duplicate_line"])
        at = rng.randrange(len(text) + 1)
        if action == "delete":
            text = text[:at] + text[at + rng.randint(1, 8) :]
        elif action == "insert":
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        elif action == "number":
            digits = [i for i, ch in enumerate(text) if ch.isdigit()]
            if digits:
                i = rng.choice(digits)
                text = text[:i] + str(rng.choice([0, 1, 2, 3, 5, 16, 64, 100])) + text[i + 1 :]
        else:
            lines = text.split("\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            if action == "swap_lines":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines.insert(i, lines[j])
            text = "\n".join(lines)
    return path, text


@PROPERTY
@given(mutated_specs())
def test_mutated_specs_never_crash(case):
    path, text = case
    compiles_or_reports(text, str(path))


def test_mutations_reach_the_checker():
    """The mutations above are not all syntax errors: some reach elaboration and the checks."""
    rng = random.Random(0)
    kinds = set()
    # every other mutation in a file whose own network has a train section, so some reach it
    trained = [
        p
        for p in SPEC_FILES
        if "\ntrain " in p.read_text() and resdsl.linker.concrete(resdsl.parse_file(p))
    ]
    for _ in range(300):
        path = rng.choice(trained if _ % 2 else SPEC_FILES)
        text = path.read_text()
        digits = [i for i, ch in enumerate(text) if ch.isdigit()]
        i = rng.choice(digits)
        text = text[:i] + str(rng.choice([0, 1, 2, 3, 5, 16, 64, 100])) + text[i + 1 :]
        try:
            module = resdsl.parse(text, str(path))
            for name in resdsl.linker.concrete(module):
                resdsl.check(resdsl.build(resdsl.link(module), network=name))
            kinds.add("ok")
        except resdsl.ResdslError as exc:
            kinds.update(type(e).__name__ for e in getattr(exc, "errors", [exc]))
    assert {"ok", "SpecError", "TrainError"} <= kinds, kinds
    assert math.isfinite(len(kinds))
