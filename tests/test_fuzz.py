"""Fuzzing the compiler: any bytes in a spec file give a result or errors with positions.

Grammar-generated specs and byte-mutated real specs go through the whole pipeline a user's
`resdsl compile` runs (read, parse, link, build, check, emit for both targets). Only ResdslError
may escape; every error carries a span inside the file; each input stays within a time and memory
budget, which catches runaway inputs. RESDSL_FUZZ_EXAMPLES sets the count (CI runs a few hundred;
the closing notes record 10,000).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import resdsl
from resdsl.emit import emit

from helpers import SPECS, fuzz_settings, within
from test_properties import NETWORK, SOURCE

FUZZ = fuzz_settings("RESDSL_FUZZ_EXAMPLES", 300)
SECONDS, MEGABYTES = 10.0, 256  # per input: far above what any real spec needs
SPEC_BYTES = [p.read_bytes() for p in sorted(SPECS.rglob("*.rds"))]  # the zoo's too
HOSTILE = [
    b"9" * 5000,
    b"+".join([b"1"] * 400),
    b"(" * 500 + b"1" + b")" * 500,
    b"\x00",
    b"\xff\xfe",
    b"\xe9",
    b'"""',
    b"\r\n",
    b"x 1000000",
    b"x 99999999999999",
    b"1e400",
    b"3x1",
    b"0x0",
    b'import "spec.rds"\n',
    b'import "/dev/zero"\n',
    b"\\\n",
    b"block b(w) { b w }\n",
    b"{",
    b"}",
    b";",
]


@st.composite
def mutated(draw) -> bytes:
    """A real spec with a few random edits: bytes inserted, deleted, repeated or replaced."""
    data = bytearray(draw(st.sampled_from(SPEC_BYTES)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["insert", "delete", "repeat", "hostile"]))
        if edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 20))]
        elif edit == "repeat":
            chunk = data[at : at + draw(st.integers(1, 40))]
            data[at:at] = chunk * draw(st.integers(1, 50))
        else:
            data[at:at] = draw(st.sampled_from(HOSTILE))
    return bytes(data)


def compile_everything(path) -> None:
    """What `resdsl check` and `resdsl compile` do with a file, for every network in it."""
    for net in resdsl.check_spec(path):
        resdsl.summary(net)
        for target in ("torch", "tf"):
            emit(net, target)


def only_errors_with_positions(data: bytes, path) -> None:
    path.write_bytes(data)
    lines = data.count(b"\n") + 2
    try:
        with within(SECONDS, MEGABYTES):
            compile_everything(path)
    except resdsl.ResdslError as exc:
        for error in getattr(exc, "errors", [exc]):
            assert error.span is not None, error
            if error.span.source.name == str(path):
                assert 1 <= error.span.line <= lines, error
            assert error.span.column >= 1, error
            assert error.render()  # rendering never fails either


@FUZZ
@given(data=mutated())
def test_mutated_specs(data, tmp_path_factory):
    only_errors_with_positions(data, tmp_path_factory.mktemp("fuzz") / "spec.rds")


@FUZZ
@given(text=st.one_of(SOURCE, NETWORK))
def test_grammar_generated_specs(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "spec.rds"
    only_errors_with_positions(text.encode(), path)


def test_the_mutations_reach_every_stage():
    """Not vacuous: mutated specs are accepted, and refused by each stage, in one sample."""
    import random

    rng = random.Random(0)
    kinds = set()
    for _ in range(150):
        data = bytearray(rng.choice(SPEC_BYTES))
        at = rng.randrange(len(data))
        data[at : at + 1] = rng.choice(HOSTILE + [b"", b"7", b"y"])
        try:
            module = resdsl.parse(data.decode("utf-8", "replace"), "m.rds")
            for name in resdsl.linker.concrete(module):
                resdsl.check(resdsl.build(resdsl.link(module), network=name))
            kinds.add("ok")
        except resdsl.ResdslError as exc:
            kinds.update(type(e).__name__ for e in getattr(exc, "errors", [exc]))
    assert {"ok", "ParseError", "SpecError"} <= kinds, kinds
