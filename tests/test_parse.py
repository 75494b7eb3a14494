"""The parser: good sources become the expected AST; bad ones fail at the right place."""

import re

import pytest

import resdsl
from resdsl import syntax as ast

from helpers import SPECS


def parse(text):
    return resdsl.parse(text, "t.rds")


def test_block_definition():
    module = parse(
        "block basic(width, stride = 1) {\n"
        "    conv width 3x3 stride=stride; bn; relu\n"
        "    add\n"
        "    relu\n"
        "}\n"
    )
    (block,) = module.items
    assert isinstance(block, ast.BlockDef)
    assert [p.name for p in block.params] == ["width", "stride"]
    assert block.params[1].default.value == 1
    conv, bn, relu, add, post = block.body
    assert conv.name == "conv"
    assert [type(a) for a in conv.args] == [ast.Name, ast.Dims]
    assert conv.args[1].values == (3, 3)
    assert [(k.name, k.value.id) for k in conv.kwargs] == [("stride", "stride")]
    assert (bn.name, relu.name, post.name) == ("bn", "relu", "relu")
    assert isinstance(add, ast.Add)
    assert (add.span.line, add.span.column) == (3, 5)


def test_repeat_and_arithmetic():
    module = parse("network f(n) {\n  stage { basic 16 * 2 x 2*n+1 }\n}\n")
    (stage,) = module.items[0].body
    (call,) = stage.body
    width = call.args[0]
    assert isinstance(width, ast.BinOp) and width.op == "*"
    assert call.repeat.op == "+"
    assert call.repeat.left.op == "*"


def test_x_is_a_keyword_only_before_the_count():
    module = parse("network f(x1) {\n  stage { basic x1 x x1 }\n}\n")
    call = module.items[0].body[0].body[0]
    assert call.args[0].id == "x1"
    assert call.repeat.id == "x1"


def test_network_settings_and_instance():
    module = parse(
        "network f(n) {\n  input 3x32x32\n  classes 10\n  shortcut A\n}\n"
        "network g = f(n = 18) shortcut none\n"
        "network h = f(3)\n"
    )
    family, g, h = module.items
    assert [(s.key, s.value) for s in family.body[:1] + family.body[2:]] == [
        ("input", (3, 32, 32)),
        ("shortcut", "A"),
    ]
    assert family.body[1].value.value == 10
    assert (g.family, g.shortcut, g.kwargs[0].name) == ("f", "none", "n")
    assert (h.args[0].value, h.shortcut) == (3, None)


def test_train_settings():
    module = parse(
        "train r {\n"
        "  data cifar10 split 45000/5000 augment pad 4 crop 32 flip\n"
        "  schedule step at 32000, 48000 by 0.1\n"
        "  warmup lr 0.01 until train_error < 80%\n"
        "  optimizer sgd weight_decay 1e-4\n"
        "}\n"
    )
    data, schedule, warmup, optimizer = module.items[0].settings
    assert [o.name for o in data] == ["data", "cifar10", "split", "augment", "pad", "crop", "flip"]
    assert data[2].values[0].value == (45000, 5000)
    assert [v.value for v in schedule[2].values] == [32000, 48000]
    assert schedule[3].values[0].value == pytest.approx(0.1)
    assert warmup[2].name == "until"
    assert [v.value for v in warmup[2].values] == ["train_error", 80.0]
    assert optimizer[2].values[0].value == pytest.approx(1e-4)


def test_comments_semicolons_and_blank_lines():
    module = parse('# a comment\n\n\nimport "x.rds"   # trailing\n;;\nnetwork n = f()\n')
    imp, inst = module.items
    assert imp.path == "x.rds"
    assert inst.name == "n"


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("network n {\n  input 3x32x32\n", 2, 16, "unexpected end of file"),
        ("network n {\n  stem { conv 16 3x3 stride=2 4 }\n}\n", 2, 31, "positional value"),
        ("shortcut D {\n  sometimes { bn }\n}\n", 2, 3, "unexpected"),
        ("block b(w) {\n  conv w $\n}\n", 2, 10, "unexpected character '$'"),
        ("network n = f(n = 1, 2)\n", 1, 22, "positional value cannot follow"),
        ("train t {\n  warmup lr 0.01 until train_error > 80%\n}\n", 2, 36, "unexpected"),
    ],
)
def test_syntax_errors(text, line, column, message):
    with pytest.raises(resdsl.ParseError) as info:
        parse(text)
    error = info.value
    assert (error.span.line, error.span.column) == (line, column), error.render()
    assert message in error.message
    assert re.match(rf"t\.rds:{line}:{column}: error\[RDS0\d\d\]: ", str(error)), str(error)


def test_parse_error_names_what_was_expected():
    with pytest.raises(resdsl.ParseError) as info:
        parse("network n {\n  input\n}\n")
    assert "dimensions such as 3x3" in info.value.hint


def test_unreadable_file(tmp_path):
    with pytest.raises(resdsl.ParseError, match="cannot read"):
        resdsl.parse_file(tmp_path / "missing.rds")


def test_the_parser_tables_are_cached_in_the_users_folder_and_survive_damage(tmp_path):
    """lark's LALR tables go to $XDG_CACHE_HOME/resdsl (a folder of the user's own, 0700: lark
    unpickles the file); a damaged cache file is rebuilt, silently, and the check still
    answers."""
    import os
    import stat
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "resdsl", "check", str(SPECS / "resnet20.rds")]
    first = subprocess.run(command, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "resdsl"
    (cached,) = folder.glob("grammar-*.lark-cache")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    cached.write_bytes(b"garbage\n" + bytes(range(256)))
    again = subprocess.run(command, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert again.stdout == first.stdout


SEVERAL = """\
network n {
    input 3x32x32
    clases 10
    stem { conv 16 3x3 @ 2; bn }
    stage { basic 16 stride=2 x 2 junk }
    head { avgpool; fc }
}

block b(w) {
    conv w 3x3 ^ 4
}
"""
GOOD = """\
network n {
    input 3x32x32
    classes 10
    stem { conv 16 3x3; bn; relu }
    stage { basic 16 x 2 }
    stage { basic 32 x 2; stride 2 }
    head { avgpool; fc }
}
"""


def test_every_independent_syntax_error_of_a_file_is_reported():
    with pytest.raises(resdsl.ResdslError) as info:
        resdsl.parse(SEVERAL, "s.rds")
    found = [(e.span.line, e.span.column, e.code) for e in info.value.errors]
    assert found == [(3, 5, "RDS002"), (4, 24, "RDS001"), (5, 35, "RDS002"), (10, 16, "RDS001")]


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("network n {", "netwrk n {", (1, 1)),  # the rest is inside a brace it never opened
        ("stem { conv", "stem conv", (4, 10)),
        ("relu }", "relu }}", (5, 5)),  # the network closed early: what follows is its echo
        ("basic 16 x 2 }", "basic 16 x 2", (5, 25)),  # a section left open: where its `}` goes
        ("3x32x32", "3x32x32x", (2, 11)),
        ("stride 2 }", "stride 2 ]", (6, 36)),
    ],
)
def test_one_mistake_is_one_error_not_a_cascade(old, new, where):
    with pytest.raises(resdsl.ParseError) as info:  # one error: itself, not a group
        resdsl.parse(GOOD.replace(old, new, 1), "one.rds")
    assert (info.value.span.line, info.value.span.column) == where


@pytest.mark.parametrize(
    "old, new, word, suggestion",
    [
        ("train tiny {", "training tiny {", "training", "train"),
        ("network tiny {", "networks tiny {", "networks", "network"),
        ("    stage { basic 16 }", "    stages { basic 16 }", "stages", "stage"),
        ("    classes 10", "    classes10", "classes10", "classes"),
        ("    input 3x32x32", "    inputs 3x32x32", "inputs", "input"),
        ("    shortcut B", "    shortcuts B", "shortcuts", "shortcut"),
    ],
)
def test_a_keyword_is_a_keyword_only_as_a_whole_word(old, new, word, suggestion):
    """`training` is not `train` followed by `ing`, nor `stages {` a stage with module path `s`
    (which parsed, silently), nor `classes10` the setting `classes 10`: the whole word is
    unexpected, at its first letter, and the keyword it resembles is suggested."""
    text = (
        "network tiny {\n    input 3x32x32\n    classes 10\n    shortcut B\n"
        "    stem { conv 16 3x3 }\n    stage { basic 16 }\n    head { avgpool; fc }\n}\n"
        "train tiny {\n    batch 8\n}\n"
    )
    resdsl.parse(text)  # as written, it parses
    assert old in text
    broken = text.replace(old, new)
    with pytest.raises(resdsl.ParseError) as info:
        resdsl.parse(broken)
    error = info.value
    row = next(i for i, line in enumerate(broken.splitlines(), 1) if word in line)
    assert error.message == f"unexpected `{word}`"
    assert (error.span.line, error.span.column) == (
        row,
        broken.splitlines()[row - 1].index(word) + 1,
    )
    assert error.hint.startswith(f"did you mean `{suggestion}`?")


TINY = """\
network tiny {
    input 3x32x32
    classes 10
    stem { conv 16 3x3; bn; relu }
    head { avgpool; fc }
}
train tiny {
    batch 8
}
"""


@pytest.mark.parametrize(
    "old, new, hint",
    [
        ("conv 16 3x3;", "conv 16 3x3 stride: 2;", "given by name with `=`: `stride=2`"),
        ("conv 16 3x3; bn; relu", "conv 16 3x3, bn, relu", "separated by `;` or a newline"),
    ],
)
def test_a_token_from_another_language_is_explained(old, new, hint):
    with pytest.raises(resdsl.ParseError) as info:
        resdsl.parse(TINY.replace(old, new))
    assert hint in info.value.hint


@pytest.mark.parametrize(
    "old, new, brace_line, note",
    [
        (
            "    head { avgpool; fc }\n}\n",
            "    head { avgpool; fc }\n",
            1,
            "not closed before `train`",
        ),
        ("head { avgpool; fc }", "head { avgpool; fc", 5, "not closed on its line"),
    ],
)
def test_a_missing_brace_before_a_definition_is_shown_at_its_brace(old, new, brace_line, note):
    """The network's `}` left out, or a one-line head's: the error is where the `}` belongs, at
    the end of the line before the next definition, and a note points at the `{` it closes."""
    with pytest.raises(resdsl.ParseError) as info:
        resdsl.parse(TINY.replace(old, new))
    error = info.value
    assert error.message == "missing `}` before `train`"
    rows = TINY.replace(old, new).splitlines()
    head = next(n for n, row in enumerate(rows, 1) if row.strip().startswith("head"))
    assert (error.span.line, error.span.column) == (head, len(rows[head - 1]) + 1)
    (related,) = error.related
    assert related.span.line == brace_line and note in related.message
    line = TINY.splitlines()[brace_line - 1]
    assert related.span.column == line.index("{") + 1


@pytest.mark.parametrize(
    "text, line, column, message",
    [
        ("network n {\n  stem { conv 8 3x3; mul { bn } }\n}\n", 2, 22, "`mul` is a block's"),
        ("network n {\n  head { concat { conv 4 1x1 }; fc }\n}\n", 2, 10, "`concat` is a block's"),
        ("shortcut S { change {\n  mul { conv out 1x1 } } }\n", 2, 3, "`mul` is a block's"),
        ("block b(w) { conv w 3x3; mul { group g { bn } } }\n", 1, 32, "`group` is a statement"),
        ("shortcut S { change { group g { bn } } }\n", 1, 23, "`group` is a statement"),
    ],
)
def test_a_word_out_of_place_is_named_where_it_is(text, line, column, message):
    """`mul { }` in a section, `group` in a side path or a shortcut: the word is named at its
    place, with where it belongs, not reported as an unexpected `{` after it."""
    with pytest.raises(resdsl.ResdslError) as info:
        resdsl.parse(text, "w.rds")
    error = info.value
    assert error.code == "RDS002" and error.message.startswith(message), error.message
    assert (error.span.line, error.span.column) == (line, column)


def test_a_statement_end_inside_a_section_left_open_is_an_error_not_a_crash():
    """Found by the fuzz at 10,000: a line continued by a comment's backslash, then blank lines,
    inside a one-line section left open. The fault is a statement's end, not a word."""
    text = "shortcut conv { \n keep { conv 0 + 0 #\\\n\\\n\n } }  \nblock conv { }  \n"
    with pytest.raises(resdsl.ParseError) as info:
        resdsl.parse(text, "f.rds")
    assert (info.value.span.line, info.value.code) == (4, "RDS002")
