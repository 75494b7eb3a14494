"""`resdsl fmt`: the canonical layout, every comment kept, the meaning kept, idempotence."""

from __future__ import annotations

import dataclasses
import os
import random
import re
import textwrap

from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

import resdsl
from resdsl import syntax
from resdsl.cli import main
from resdsl.errors import Source, Span
from resdsl.fmt import format_text
from resdsl.parser import grammar

from helpers import SPECS

EXAMPLES = int(os.environ.get("RESDSL_HYPOTHESIS_EXAMPLES", "100"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def run(*args, **kw):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kw)


def fmt(text: str) -> str:
    return format_text(textwrap.dedent(text))


# ---------------------------------------------------------------- the layout


def test_layout_of_a_messy_spec():
    messy = """\
        # top

        import "a#b.rds"   ; import "c.rds" # two
        block b( w ,s=1 ){ conv w*(2+1)  3x3 stride = s x 2 ; add   # in block
          # own line


            relu }
        network n(k) {   # header
          input 3x32x32 ; classes 10
          stem { conv 16 3x3 ; # inside stem
             bn }
          stage { b 16 x k ; stride 2 }   # one line
          head {avgpool;fc}
          # tail
        }
        network m=n(k=2)shortcut   none
        train n { schedule step at 1  2, 3 by 0.1; batch 3
         warmup lr 0.01 until train_error<80%  # w
        }
    """
    assert fmt(messy) == textwrap.dedent("""\
        # top

        import "a#b.rds"
        import "c.rds"  # two
        block b(w, s = 1) {
            conv w*(2+1) 3x3 stride=s x 2; add  # in block
            # own line

            relu
        }
        network n(k) {  # header
            input 3x32x32; classes 10
            stem {
                conv 16 3x3  # inside stem
                bn
            }
            stage { b 16 x k; stride 2 }  # one line
            head  { avgpool; fc }
            # tail
        }
        network m = n(k = 2) shortcut none
        train n {
            schedule step at 1 2, 3 by 0.1; batch 3
            warmup lr 0.01 until train_error < 80%  # w
        }
    """)


def test_trailing_comments_align_within_a_body():
    text = "network n {\n  input 3x32x32 # a\n  classes 10 # b\n\n  head { fc }   # c\n}\n"
    assert fmt(text) == (
        "network n {\n    input 3x32x32  # a\n    classes 10     # b\n\n    head { fc }  # c\n}\n"
    )


def test_a_long_run_is_split_one_statement_a_line():
    calls = "; ".join(f"conv {64 + i} 3x3 stride=1" for i in range(6))
    out = fmt(f"block b(w) {{\n  {calls}\n}}\n")
    assert out.splitlines()[1:7] == [f"    conv {64 + i} 3x3 stride=1" for i in range(6)]
    assert fmt(out) == out


def test_stage_module_paths_and_labels_in_groups_are_kept():
    text = (
        "network n {\n  stem { group stem { conv: conv 8 3x3; act: relu } }\n"
        "  stage stages.0.blocks {basic 8}\n  stage  stages.1.blocks {\n basic 16\n stride 2 }\n}\n"
    )
    assert fmt(text) == (
        "network n {\n    stem  { group stem { conv: conv 8 3x3; act: relu } }\n"
        "    stage stages.0.blocks { basic 8 }\n"
        "    stage stages.1.blocks {\n        basic 16\n        stride 2\n    }\n}\n"
    )


def test_empty_bodies_and_files():
    assert fmt("") == ""
    assert fmt("\n\n# only a comment\n\n") == "# only a comment\n"
    assert fmt("network n {  }\n") == "network n {}\n"
    assert fmt("network n {\n stage { }\n}\n") == "network n {\n    stage {}\n}\n"


def test_every_spec_is_formatted():
    for path in sorted(SPECS.glob("*.rds")):
        text = path.read_text()
        assert format_text(text, str(path)) == text, f"run: resdsl fmt {path}"


# ---------------------------------------------------------------- the command


def test_fmt_check_prints_a_diff_and_exits_1(tmp_path):
    spec = tmp_path / "a.rds"
    spec.write_text("network n = f( 1 )\n")
    result = run("fmt", "--check", spec)
    assert result.exit_code == 1
    assert f"--- {spec} (original)" in result.stdout
    assert "-network n = f( 1 )\n+network n = f(1)\n" in result.stdout
    assert spec.read_text() == "network n = f( 1 )\n"  # unchanged
    result = run("fmt", spec)
    assert result.exit_code == 0 and spec.read_text() == "network n = f(1)\n"
    assert f"formatted {spec}" in result.stderr
    assert run("fmt", "--check", spec).exit_code == 0


def test_fmt_folders_and_stdin(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.rds").write_text("network  x = f()\n")
    (tmp_path / "y.rds").write_text("network y = f()\n")
    result = run("fmt", "--check", tmp_path)
    assert result.exit_code == 1 and "sub/x.rds (formatted)" in result.stdout
    assert "y.rds" not in result.stdout
    piped = run("fmt", "-", input="network  z = f( 2 )")
    assert piped.exit_code == 0 and piped.stdout == "network z = f(2)\n"


def test_fmt_reports_syntax_errors_with_their_code(tmp_path):
    spec = tmp_path / "bad.rds"
    spec.write_text("network n {\n  stem { conv @ }\n}\n")
    result = run("fmt", spec)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{spec}:2:15: error[RDS001]: unexpected character '@'")
    assert spec.read_text() == "network n {\n  stem { conv @ }\n}\n"


# ---------------------------------------------------------------- properties


def _strip(value):
    """An AST without its spans: what the text means, wherever it sits."""
    if dataclasses.is_dataclass(value) and not isinstance(value, (Span, Source)):
        return (type(value).__name__,) + tuple(
            _strip(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.name.endswith("span") and f.name != "source"
        )
    if isinstance(value, tuple):
        return tuple(_strip(v) for v in value)
    return value


def _meaning(text: str, name: str):
    """The AST without spans, and for each concrete network its summary and IR nodes (or its
    error messages)."""
    module = resdsl.parse(text, name)
    networks = [
        item.name
        for item in module.items
        if isinstance(item, syntax.NetworkInst)
        or isinstance(item, syntax.NetworkDef)
        and not item.params
    ]
    built = {}
    for network in networks:
        try:
            net = resdsl.check(resdsl.build(resdsl.link(module), network=network))
            nodes = [(n.name, n.op, n.args, n.inputs, n.shape, n.path) for n in net.nodes()]
            built[network] = (resdsl.summary(net), nodes)
        except resdsl.ResdslError as exc:
            errors = getattr(exc, "errors", None) or [exc]
            built[network] = sorted(e.message for e in errors)
    return _strip(module), built


def _comment_markers(text: str) -> list[str]:
    return re.findall(r"# c\d+", text)


def check_formatting(text: str, name: str) -> None:
    try:
        resdsl.parse(text, name)
    except resdsl.ParseError:
        assume(False)
    once = format_text(text, name)
    assert format_text(once, name) == once  # idempotent
    assert _comment_markers(once) == _comment_markers(text)  # every comment, in order
    assert _meaning(once, name) == _meaning(text, name)  # the same AST, IR and summary


def _with_comments(text: str, rng: random.Random) -> str:
    """``text`` with numbered comments: at the end of lines and on lines of their own."""
    lines = text.split("\n")
    out = []
    for number, line in enumerate(lines):
        roll = rng.random()
        if roll < 0.25:
            out.append(f"# c{number}x")
        if roll > 0.6 and number < len(lines) - 1:
            line += f"   # c{number}"
        out.append(line)
    return "\n".join(out)


def _terminals() -> dict:
    words = st.sampled_from(["conv", "bn", "relu", "basic", "fc", "n", "w", "stride", "lr", "x1"])
    values = {
        "CASE": st.sampled_from(["keep", "change", "always"]),
        "OFF": st.just("off"),
        "DIMS": st.sampled_from(["3x3", "1x1", "3x32x32"]),
        "IDENT": words,
        "INT": st.integers(0, 40).map(str),
        "FLOAT": st.sampled_from(["0.1", "1e-4", ".5", "2."]),
        "PERCENT": st.sampled_from(["80%", "1.5%"]),
        "RATIO": st.sampled_from(["45000/5000"]),
        "STRING": st.sampled_from(['"cifar.rds"', '"a#b.rds"']),
        "_SEP": st.sampled_from(["\n", ";", "\n\n", " ;\n  ", "\n\n\n"]),
    }
    out = {}
    for terminal in grammar().terminals:
        if terminal.name in values:
            out[terminal.name] = values[terminal.name].map(lambda t: t + " ")
        elif terminal.pattern.type == "str":
            out[terminal.name] = st.just(terminal.pattern.value + " ")
    return out


GENERATED = st.tuples(from_lark(grammar(), explicit=_terminals()), st.randoms()).map(
    lambda pair: _with_comments(pair[0], pair[1])
)


@PROPERTY
@given(GENERATED)
def test_grammar_generated_specs(text):
    check_formatting(text, str(SPECS / "generated.rds"))


SPEC_FILES = sorted(SPECS.rglob("*.rds"))
TOKENS = ["{", "}", ";", "\n", "\n\n", " ", "  ", "x 2", "stride 2", "add", "bn", "(", ")", "*2"]
TOKENS += ["mul {", "fc1:", "keep off", "group g {", "change {"]


@st.composite
def mutated_specs(draw):
    path = draw(st.sampled_from(SPEC_FILES))
    rng = random.Random(draw(st.integers(0, 2**32)))
    text = path.read_text()
    for _ in range(draw(st.integers(0, 3))):
        at = rng.randrange(len(text) + 1)
        action = rng.choice(["delete", "insert", "spaces", "join"])
        if action == "delete":
            text = text[:at] + text[at + rng.randint(1, 4) :]
        elif action == "insert":
            text = text[:at] + rng.choice(TOKENS) + text[at:]
        elif action == "spaces":
            text = text.replace(" ", rng.choice(["  ", " \t "]), rng.randint(1, 20))
        else:
            text = text.replace("\n    ", "; ", rng.randint(1, 4))
    return path, _with_comments(text, rng)


@PROPERTY
@given(mutated_specs())
def test_mutated_specs(case):
    path, text = case
    check_formatting(text, str(path))


def test_the_properties_see_comments_and_meaning():
    """The oracle above can fail: a dropped comment or a changed value is caught."""
    text = (SPECS / "cifar.rds").read_text() + "# c1\n"
    assert _comment_markers(text.replace("# c1", "")) != _comment_markers(text)
    a = _meaning(text, "cifar.rds")
    b = _meaning(text.replace("basic 16", "basic 17"), "cifar.rds")
    assert a != b
