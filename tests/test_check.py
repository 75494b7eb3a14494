"""Broken specs: each error's file:line:col, its message, and for shape errors the path and shapes.

The positions were read off the files by hand; each file in tests/broken/ holds one mistake.
"""

import re

import pytest

from helpers import BROKEN, run

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
    ("syntax_missing_brace", 5, 11, ["unexpected `{`"]),
    ("unknown_block", 5, 13, ["unknown layer or block `basik`"]),
    ("unknown_layer", 4, 30, ["unknown layer or block `rleu`"]),
    ("unknown_parameter", 5, 24, ["unknown parameter `m`"]),
    ("unknown_train_option", 6, 26, ["unknown option `momentun` for `optimizer`"]),
    ("vanishing_maps", 9, 13, ["head › avgpool", "kernel 2x2 is larger than its padded input 1x1"]),
    ("warmup_after_milestone", 6, 12, ["warmup (40000 iterations) must end before", "32000"]),
    ("wrong_classes", 5, 22, ["ends in 100x1x1", "10 classes"]),
    ("wrong_type", 4, 18, ["`conv` argument `out` must be an integer, got 3x3"]),
    ("zero_width", 5, 13, ["stem › conv 1", "at least 1 output channel, got 0"]),
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
