"""Broken specs: each error's file:line:col, its message, and for shape errors the path and shapes.

The positions were read off the files by hand; each file in tests/broken/ holds one mistake.
"""

import re

import pytest

import resdsl

from helpers import BROKEN, SPECS, run

# file, line, column, fragments the message must contain
CASES = [
    ("add_mismatch", 4, 5, ["stage 1 › block 1 › add", "cannot add 16x32x32 to 16x30x30"]),
    ("bad_milestones", 6, 19, ["milestones must be strictly increasing", "48000, 32000"]),
    (
        "channels_shrink_option_a",
        8,
        13,
        ["stage 2 › block 1 › shortcut", "cannot shrink channels from 32 to 16"],
    ),
    ("duplicate_block", 5, 7, ["duplicate definition of `twice`"]),
    (
        "kernel_too_large",
        4,
        13,
        ["stem › conv 1", "kernel 9x9 is larger than its padded input 7x7", "1x5x5"],
    ),
    ("python_keyword", 1, 7, ["`class` cannot be a name"]),
    ("recursive_block", 6, 5, ["recursive block `ping`", "ping → pong → ping"]),
    ("split_too_large", 6, 18, ["48000/5000 needs 53000 images", "has 50000"]),
    ("stride_without_param", 11, 28, ["block `plain_pair` has no `stride` parameter"]),
    ("syntax_bad_char", 4, 25, ["unexpected character '@'"]),
    ("syntax_missing_brace", 4, 34, ["missing `}` before `head`"]),
    ("unknown_block", 5, 13, ["unknown layer or block `basik`"]),
    ("unknown_layer", 4, 30, ["unknown layer or block `rleu`"]),
    ("unknown_parameter", 5, 24, ["unknown parameter `m`"]),
    ("unknown_train_option", 6, 26, ["unknown option `momentun` for `optimizer`"]),
    ("vanishing_maps", 9, 13, ["head › avgpool", "kernel 2x2 is larger than its padded input 1x1"]),
    ("tap_after_add", 2, 69, ["block `pre`'s `tap` comes after its `add`"]),
    ("warmup_after_milestone", 6, 12, ["warmup (40000 iterations) must end before", "32000"]),
    ("wrong_classes", 5, 22, ["ends in 100x1x1", "10 classes"]),
    ("wrong_type", 4, 18, ["`conv` argument `out` must be an integer, got 3x3"]),
    ("zero_width", 5, 18, ["stem › conv 1", "at least 1 output channel, got 0"]),
]

HINTS = {
    "channels_shrink_option_a": (
        "zeropad only adds channels (as option A does); a projection such as `shortcut B`"
    ),
    "unknown_block": "did you mean `basic`?",
    "unknown_layer": "did you mean `relu`?",
    "unknown_train_option": "did you mean `momentum`?",
}
NOTES = {"duplicate_block": ":1:7: note: first defined here"}


def test_every_broken_spec_is_listed():
    assert sorted(p.stem for p in BROKEN.glob("*.rds")) == sorted(
        [c[0] for c in CASES] + ["milestone_past_end"]
    )


@pytest.mark.parametrize(("name", "line", "column", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_broken_spec(name, line, column, fragments):
    path = BROKEN / f"{name}.rds"
    result = run("check", path)
    assert result.exit_code == 1
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    where = re.escape(f"{path}:{line}:{column}")
    assert re.match(rf"{where}: error(\[RDS\d{{3}}\])?: ", first), first
    for fragment in fragments:
        assert fragment in first
    # the source line, then a caret under the column
    lines = result.stderr.splitlines()
    assert lines[2].index("^") - 4 == column - 1
    if name in HINTS:
        assert lines[3].startswith(f"hint: {HINTS[name]}")
    if name in NOTES:
        assert lines[3] == f"{path}{NOTES[name]}"
    assert "Traceback" not in result.stderr


def test_errors_are_collected_across_files():
    """An instance's recipe overrides its family's line by line; both bad lines are reported."""
    path = BROKEN / "milestone_past_end.rds"
    result = run("check", path)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if ": error[RDS" in line]
    assert len(errors) == 2
    family = next(e for e in errors if e.startswith("specs/cifar.rds:"))
    assert family.startswith("specs/cifar.rds:21:19: error[RDS316]: milestones must lie between 1")
    assert "iteration count (30000)" in family
    assert f"{path}:7:19: error[RDS315]: lr 0 must be above 0" in errors


def test_check_reports_each_file_and_fails_if_any_fails():
    good, bad = BROKEN.parent.parent / "specs" / "resnet20.rds", BROKEN / "unknown_layer.rds"
    result = run("check", good, bad)
    assert result.exit_code == 1
    assert "resnet20.rds: ok: resnet20" in result.stdout
    assert "unknown layer or block `rleu`" in result.stderr


# ---------------------------------------------------------------- definitions nothing uses

UNUSED = """
block unused(width, stride = 1) {{
    {body}
}}
"""


@pytest.mark.parametrize(
    ("body", "code", "message", "marked"),
    [
        ("conv width 3x3; bn; rleu", "RDS101", "unknown layer or block `rleu`", "rleu"),
        ("conv widht 3x3; bn", "RDS102", "unknown parameter `widht`", "widht"),
        ("conv width 3x3 strides=2", "RDS121", "`conv` has no argument `strides`", "strides=2"),
        ("conv width 3x3 2", "RDS120", "too many values for `conv`", "2"),
        ("basic width stide=stride", "RDS121", "`basic` has no parameter `stide`", "stide="),
        ("basic width x depth", "RDS102", "unknown parameter `depth`", "depth"),
        ("mul { conv width 1x1; sigmoidd }", "RDS101", "unknown layer or block `sigmoidd`", "sig"),
    ],
)
def test_a_block_nothing_calls_is_resolved(tmp_path, body, code, message, marked):
    """`check` on a file of definitions only resolves every name in them: the mistake is found
    where it is, with the code the elaborator gives it in a block that is used."""
    path = tmp_path / "lib.rds"
    path.write_text(UNUSED.format(body=body))
    result = run("check", path)
    assert result.exit_code == 1, result.output
    line = UNUSED.format(body=body).splitlines()[2]
    assert f"lib.rds:3:{line.index(marked) + 1}: error[{code}]: {message}" in result.stderr


DEFAULTED = """\
network fam(n = 2, w = 8) {
    input 3x32x32
    classes 10
    stem  { conv w 3x3; bn; relu }
    stage { basic w x n; maxpool 40x40 pad=0 }
    head  { avgpool; fc }
}
"""


def test_a_family_with_every_default_is_checked_at_them(tmp_path):
    """A family whose parameters all have defaults is built at them: a 40x40 window on the
    32x32 maps is found, with a note saying which values, and a sound one is reported as
    checked (ResNet-14 at w = 8 after 6n + 2: two stages' convs, BN and fc counted by hand)."""
    path = tmp_path / "fam.rds"
    path.write_text(DEFAULTED)
    result = run("check", path)
    assert result.exit_code == 1, result.output
    line = DEFAULTED.splitlines()[4]
    assert f"fam.rds:5:{line.index('maxpool') + 1}: error[RDS203]" in result.stderr
    assert "fam.rds:1:9: note: `fam` checked at its defaults: n = 2, w = 8" in result.stderr
    path.write_text(DEFAULTED.replace("; maxpool 40x40 pad=0", ""))
    result = run("check", path)
    assert result.exit_code == 0, result.output
    # stem conv 3->8 and BN; two basic blocks of two 3x3 convs 8->8 and two BNs; fc 8->10
    params = 27 * 8 + 16 + 2 * (2 * 9 * 8 * 8 + 2 * 16) + 8 * 10 + 10
    assert "fam.rds: ok: fam at its defaults, " in result.stdout
    assert f"{params:,} params" in result.stdout
    # a family with a parameter left without a default is only resolved
    path.write_text(DEFAULTED.replace("n = 2", "n"))
    assert "ok: definitions only" in run("check", path).stdout


def test_a_family_nothing_instantiates_is_resolved(tmp_path):
    """specs/cifar.rds with one typo inside its family: found, not "ok: definitions only"."""
    text = (SPECS / "cifar.rds").read_text().replace("basic 32 x n", "basci 32 x n")
    text = text.replace("classes 10", "classes clases")
    (tmp_path / "cifar.rds").write_text(text)
    result = run("check", tmp_path / "cifar.rds")
    assert result.exit_code == 1
    assert "error[RDS101]: unknown layer or block `basci`" in result.stderr
    assert "did you mean `basic`?" in result.stderr
    assert "error[RDS102]: unknown parameter `clases`" in result.stderr
    shortcut = tmp_path / "shortcut.rds"
    shortcut.write_text("shortcut S {\n    change { conv out 1x1 stride=strid; bn }\n}\n")
    result = run("check", shortcut)
    assert "error[RDS102]: unknown parameter `strid`" in result.stderr
    assert "did you mean `stride`?" in result.stderr


def test_a_mistake_in_a_used_block_is_reported_once(tmp_path):
    path = tmp_path / "one.rds"
    path.write_text(
        "block b(w) {\n    conv w 3x3; rleu\n}\n"
        "network n {\n    input 3x8x8\n    classes 2\n    stage { b 4 }\n"
        "    head { avgpool; fc }\n}\n"
    )
    result = run("check", path)
    assert result.exit_code == 1
    assert result.stderr.count("unknown layer or block `rleu`") == 1


@pytest.mark.parametrize(
    ("call", "value"),
    [("cifar_resnet(n = 0)", "0"), ("imagenet_resnet(basic, 2, 0, 2, 2)", "0, 2, 2")],
)
def test_a_bad_family_argument_is_marked_where_it_is_written(tmp_path, call, value):
    """The mistake is the argument, not the family's line that uses it: the error is at the
    argument, once (not once per stage), with a note where the family uses it."""
    family = "imagenet" if call.startswith("imagenet") else "cifar"
    line = f"network r = {call}"
    (tmp_path / "r.rds").write_text(f'import "{SPECS / family}.rds"\n{line}\n')
    result = run("check", tmp_path / "r.rds")
    assert result.exit_code == 1
    column = line.index(value) + 1
    assert f"r.rds:2:{column}: error[RDS143]: a repeat count must be at least 1, got 0" in (
        result.stderr
    )
    assert result.stderr.count("error[") == 1
    assert f"{family}.rds:" in result.stderr and "note: used here" in result.stderr


# ---------------------------------------------------------------- warnings

WARNED = """\
block spare(width) {
    conv width 3x3; bn; relu
}

block pair(relu, width) {
    relu width
}

network n {
    input 3x32x32
    classes 10
    stem { conv 16 3x3; bn; relu }
    stage { basic 16 stride=2 x 2 }
    stage { basic 32; stride 1 }
    head { avgpool; fc }
}
"""
EXPECTED = [  # (line, column, code, message), in source order
    (1, 7, "RDS501", "block `spare` is never used"),
    (5, 7, "RDS501", "block `pair` is never used"),
    (5, 12, "RDS504", "parameter `relu` of `pair` hides the layer `relu`"),
    (13, 22, "RDS502", "`stride=` on `basic ... x N` strides each of the repeats"),
    (14, 23, "RDS503", "a stage's `stride 1` changes nothing"),
]


def test_warnings_are_shown_with_codes_and_pass(tmp_path):
    (tmp_path / "w.rds").write_text(WARNED)
    result = run("check", tmp_path / "w.rds")
    assert result.exit_code == 0, result.output
    found = re.findall(r"w\.rds:(\d+):(\d+): warning\[(RDS\d+)\]: (.*)", result.stderr)
    assert [(int(a), int(b), c, m) for a, b, c, m in found] == EXPECTED
    assert "run `resdsl explain RDS502` for more about this warning" in result.stderr
    assert "w.rds: ok: n," in result.stdout


def test_deny_warnings_makes_them_errors(tmp_path):
    (tmp_path / "w.rds").write_text(WARNED)
    result = run("check", "--deny-warnings", tmp_path / "w.rds")
    assert result.exit_code == 1
    assert result.stderr.count("error[RDS5") == len(EXPECTED) and "warning[" not in result.stderr
    assert "ok:" not in result.stdout
    clean = tmp_path / "clean.rds"
    library = WARNED.split("network n")[0].replace("relu", "kind").replace("bn; kind", "bn; relu")
    clean.write_text(library)
    assert run("check", "--deny-warnings", clean).exit_code == 0  # a library: never unused


def test_warnings_in_json(tmp_path):
    import json

    (tmp_path / "w.rds").write_text(WARNED)
    report = json.loads(run("check", "--format", "json", tmp_path / "w.rds").stdout)
    assert report["ok"] is True and report["files"][0]["ok"] is True
    assert [(d["code"], d["severity"]) for d in report["diagnostics"]] == [
        (code, "warning") for _, _, code, _ in EXPECTED
    ]
    denied = run("check", "--format", "json", "--deny-warnings", tmp_path / "w.rds")
    assert denied.exit_code == 1
    assert {d["severity"] for d in json.loads(denied.stdout)["diagnostics"]} == {"error"}


def test_the_shipped_specs_have_no_warnings():
    result = run("check", "--deny-warnings", SPECS)
    assert result.exit_code == 0, result.stderr[-2000:]
    assert "warning" not in result.stderr


@pytest.mark.parametrize(
    ("text", "where", "code"),
    [
        ("network n {\n    input 3x32\n    classes 10\n}\n", "2:11", "RDS144"),  # the value
        (  # the name, not `train`
            f'import "{SPECS / "cifar.rds"}"\nnetwork r = cifar_resnet(n = 1)\n'
            "train tny {\n    batch 64\n}\n",
            "3:7",
            "RDS108",
        ),
        ("network n {\n    input 3x8x8\n    classes 2\n    shortcut Q\n}\n", "4:14", "RDS113"),
    ],
)
def test_carets_sit_on_the_name_or_value_at_fault(tmp_path, text, where, code):
    (tmp_path / "c.rds").write_text(text)
    result = run("check", tmp_path / "c.rds")
    assert f"c.rds:{where}: error[{code}]" in result.stderr, result.stderr


def test_a_section_left_open_on_its_line_gets_a_note(tmp_path):
    (tmp_path / "o.rds").write_text(
        "network n {\n    input 3x32x32\n    classes 10\n    stage { basic 16\n"
        "    head { avgpool; fc }\n}\n"
    )
    result = run("check", tmp_path / "o.rds")
    assert "o.rds:4:21: error[RDS002]: missing `}` before `head`" in result.stderr
    assert "o.rds:4:11: note: this `{` is not closed on its line" in result.stderr
    # a brace that opens a block of lines is not suspected
    (tmp_path / "p.rds").write_text("network n {\n    input 3x32x32\n    clases 10\n}\n")
    assert "not closed" not in run("check", tmp_path / "p.rds").stderr


@pytest.mark.parametrize(
    "body, where, message",
    [
        (
            "stem { conv 16 3x3 stride 2; bn }",
            "stride 2",
            "`stride 2` reads as two more values for `conv`",
        ),
        (
            "stage { basic 16 stride 2 x 2 }",
            "stride 2",
            "`stride 2` reads as two more values for `basic`",
        ),
    ],
)
def test_a_value_by_name_without_its_equals_is_one_error(tmp_path, body, where, message):
    """`stride 2` for `stride=2` is one mistake: one error over both words with the fix, not
    an unknown parameter `stride` and too many values besides."""
    text = "network n {\n    input 3x32x32\n    classes 10\n"
    text += f"    {body}\n    head {{ avgpool; fc }}\n}}\n"
    (tmp_path / "n.rds").write_text(text)
    result = run("check", tmp_path / "n.rds")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if ": error[" in line]
    column = text.splitlines()[3].index(where) + 1
    assert errors == [f"{tmp_path / 'n.rds'}:4:{column}: error[RDS120]: {message}"], result.stderr
    assert "hint: to set" in result.stderr and "write `stride=2`" in result.stderr
    # and a shortcut's `conv out 1x1`, where `out` is a value, is no such mistake
    assert run("check", SPECS / "resnet50.rds").exit_code == 0


@pytest.mark.parametrize(
    "module, layer",
    [
        ("Linear", "fc"),
        ("Conv2d", "conv"),
        ("BatchNorm2d", "bn"),
        ("GroupNorm", "gn"),
        ("MaxPool2d", "maxpool"),
        ("AdaptiveAvgPool2d", "adaptive_avgpool"),
        ("LeakyReLU", "leakyrelu"),
        ("ZeroPad2d", "pad"),
    ],
)
def test_another_frameworks_name_for_a_layer_suggests_resdsls(tmp_path, module, layer):
    """A layer written with PyTorch's class name gets resdsl's name for it (the names are
    torch.nn's own: the test reads them there)."""
    torch = pytest.importorskip("torch")
    assert hasattr(torch.nn, module)
    text = f"network n {{\n    input 3x32x32\n    classes 10\n    stem {{ {module} }}\n}}\n"
    (tmp_path / "n.rds").write_text(text)
    result = run("check", tmp_path / "n.rds")
    assert f"error[RDS101]: unknown layer or block `{module}`" in result.stderr
    assert f"did you mean `{layer}`?" in result.stderr


def test_a_network_without_a_head_is_told_so_at_its_last_block(tmp_path):
    """The last op is inside a block's definition; the error points at the stage's call of
    it, which is what the writer can change, and names the missing head."""
    text = (
        "block b(w) {\n    conv w 3x3; bn\n    add\n    relu\n}\n"
        "network n {\n    input 3x8x8\n    classes 10\n    stem { conv 4 3x3 }\n"
        "    stage { b 4 x 2 }\n}\n"
    )
    (tmp_path / "n.rds").write_text(text)
    result = run("check", tmp_path / "n.rds")
    column = text.splitlines()[9].index("b 4") + 1
    assert f"n.rds:10:{column}: error[RDS210]: the network ends in 4x8x8" in result.stderr
    assert "add `head { avgpool; fc }`" in result.stderr


RECIPE = """\
network n {
    input 3x32x32
    classes 10
    stem { conv 16 3x3 }
    head { avgpool; fc }
}
train n {
    data cifar10 split 45000/5000
    batch 128
    optimizer sgd lr 0.1 momentum 0.9
    iterations 64000
    warmup lr 0.01 until train_error < 80%
}
"""


@pytest.mark.parametrize(
    "old, new, code, hint",
    [
        (
            "    batch 128",
            "    batch 128\n    lr 0.1",
            "RDS301",
            "`lr` is an option of `optimizer`",
        ),
        ("    batch 128", "    batch 128\n    weight_decay 1e-4", "RDS301", "of `optimizer`"),
        ("iterations 64000", "epochs 182", "RDS301", "resdsl counts iterations"),
        ("iterations 64000", "iterations 64,000", "RDS304", "`iterations 64000`"),
        ("warmup lr 0.01", "warmup 0.01", "RDS304", "`warmup lr 0.01 until train_error < 80%`"),
    ],
)
def test_recipe_mistakes_get_the_setting_they_meant(tmp_path, old, new, code, hint):
    """Train settings written as other tools write them: the hint shows resdsl's spelling."""
    assert old in RECIPE
    (tmp_path / "n.rds").write_text(RECIPE.replace(old, new))
    (tmp_path / "ok.rds").write_text(RECIPE)
    assert run("check", tmp_path / "ok.rds").exit_code == 0
    result = run("check", tmp_path / "n.rds")
    errors = [line for line in result.stderr.splitlines() if ": error[" in line]
    assert len(errors) == 1 and f"error[{code}]" in errors[0], result.stderr
    assert hint in result.stderr


def test_an_input_written_channels_last_is_warned_about(tmp_path):
    """`input 32x32x3` (Keras' order) builds 32 channels of 32x3 maps: legal, so a warning,
    at the dimensions, with the channels-first spelling; 3x32x32 and 1x28x28 are not warned."""
    text = "network n {\n    input 32x32x3\n    classes 10\n    head { avgpool; fc }\n}\n"
    (tmp_path / "n.rds").write_text(text)
    result = run("check", tmp_path / "n.rds")
    assert result.exit_code == 0
    assert "n.rds:2:11: warning[RDS505]: `input 32x32x3` reads as 32 channels" in result.stderr
    assert "did you mean `input 3x32x32`?" in result.stderr
    assert run("check", "--deny-warnings", tmp_path / "n.rds").exit_code == 1
    for sound in ("3x32x32", "1x28x28", "3x224x224"):
        (tmp_path / "n.rds").write_text(text.replace("32x32x3", sound))
        assert "warning" not in run("check", tmp_path / "n.rds").stderr


def test_summary_and_load_refuse_what_check_refuses(tmp_path):
    """An unused block that names an unknown parameter: `check` refuses the file, and so do
    `summary` and the API's `load`, which are `check`'s first steps in a row."""
    spec = tmp_path / "unused.rds"
    spec.write_text(
        "block unused(w) { conv q 3x3 }\n"
        "network n {\n    input 3x8x8\n    classes 4\n    stem { conv 8 3x3 }\n"
        "    head { avgpool; fc }\n}\n"
    )
    for command in ("check", "summary"):
        result = run(command, spec)
        assert result.exit_code == 1, command
        assert "unused.rds:1:24: error[RDS102]: unknown parameter `q`" in result.stderr, command
    with pytest.raises(resdsl.ResdslError, match="unknown parameter `q`"):
        resdsl.load(spec)


@pytest.mark.parametrize(
    "statement",
    [
        "conv 8 3x3 dilation=^0",
        "gn ^5",
        "blurpool size=^1",
        "droppath ^1.0",
        "conv 8 3x3 ws=^1",
        "dilated ^0",  # a block's argument: at the call, where the value was written
        "gated ^0",  # ... and through a gate's block
    ],
)
def test_a_bad_value_is_marked_at_the_value(statement, tmp_path):
    """The caret goes to the value at fault (at ^), not to the whole call; where a block's
    parameter carries it, to the argument the user wrote at the call."""
    spec = tmp_path / "v.rds"
    line = f"    stem {{ conv 12 3x3; {statement} }}"
    spec.write_text(
        "block dilated(d) { conv 12 3x3 dilation=d pad=d }\n"
        "block gated(d) { conv 12 3x3; mul { side: dilated d } }\n"
        f"network n {{\n    input 3x16x16\n    classes 4\n{line.replace('^', '')}\n"
        "    head { avgpool; fc }\n}\n"
    )
    result = run("check", spec)
    assert result.exit_code == 1
    assert f"{spec}:6:{line.index('^') + 1}: error[" in result.stderr, result.stderr
