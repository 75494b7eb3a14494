"""A one-mistake trial, as a new user makes them: each case changes one thing in a sound spec,
and `check` must give one error, with the right code, its caret on the token at fault, and a
hint that says what was meant. The expected texts are the fixes a person would make, written
by hand from the spec's own syntax (README), not read from resdsl's output."""

from __future__ import annotations

import shutil

import pytest

from helpers import SPECS, run

BASE = """\
block mybasic(width, stride = 1) {
    conv width 3x3 stride=stride; bn; relu
    conv width 3x3; bn
    add
    relu
}

network tiny {
    input 3x32x32
    classes 10
    shortcut B
    stem  { conv 16 3x3; bn; relu }
    stage { mybasic 16 x 3 }
    stage { mybasic 32 x 3; stride 2 }
    head  { avgpool; fc }
}

train tiny {
    data cifar10 split 45000/5000
    augment pad 4 crop 32 flip
    batch 128
    optimizer sgd lr 0.1 momentum 0.9 weight_decay 1e-4
    schedule step at 32000, 48000 by 0.1
    iterations 64000
    warmup lr 0.01 until train_error < 80%
}
"""

INSTANCE = """\
import "cifar.rds"
network resnet56 = cifar_resnet(n = 9)
train resnet56 {
    warmup lr 0.01 until train_error < 80%
}
"""

# the constructs since the paper's: a shortcut definition `from tap`, labels, groups, stage
# paths, gates and side paths, and the layers of timm's families
NEWER = """\
shortcut proj {
    change from tap { conv: conv out 1x1 stride=stride; norm: bn }
    stride { subsample stride }
}

block eca(kernel = 3) {
    avgpool
    conv: channel_conv kernel
    sigmoid
}

block unit(width, stride = 1) {
    bn; relu
    tap
    conv1: conv width 3x3 stride=stride dilation=1
    gn 8; relu
    conv2: conv width 3x3 ws=1e-5
    mul { attn: eca 3 }
    concat { side: conv width//2 1x1 }
    conv width 1x1
    droppath 0.1
    add
}

network newer {
    input 3x32x32
    classes 10
    shortcut proj
    stem  { group conv1 { conv 16 3x3; bn; relu }; blurpool stride=2 }
    stage stages.0 { unit 16 x 2 }
    stage stages.1 { unit 32 x 2; stride 2 }
    head  { bn; relu; avgpool; fc }
}
"""

# (file, old, new, code, the token the caret is on, a fragment of the hint or message); " " is
# the end of a line, where a `}` left out belongs
CASES = [
    ("b", "conv 16 3x3; bn", "cnov 16 3x3; bn", "RDS101", "cnov", "did you mean `conv`?"),
    ("b", "3x3; bn; relu }", "3x3; batchnorm; relu }", "RDS101", "batchnorm", "`bn`"),
    ("b", "avgpool; fc", "avgpool; linear", "RDS101", "linear", "did you mean `fc`?"),
    ("b", "avgpool; fc", "avgpool2d; fc", "RDS101", "avgpool2d", "did you mean `avgpool`?"),
    ("b", "mybasic 16 x 3 }", "mybasic 16 x }", "RDS002", "}", "expected a value"),
    ("b", "mybasic 16 x 3 }", "mybasic 16x3 }", "RDS140", "16x3", "write `16 x 3`"),
    ("b", "conv 16 3x3; bn", "conv 16 (3,3); bn", "RDS002", ",", "expected `)`"),
    ("b", "conv 16 3x3; bn", "conv 16 3x3 stride 2; bn", "RDS120", "stride", "`stride=2`"),
    ("b", "conv 16 3x3; bn", "conv 16 3x3 stride: 2; bn", "RDS002", ":", "`stride=2`"),
    ("b", "conv 16 3x3; bn; relu", "conv 16 3x3, bn, relu", "RDS002", ",", "not `,`"),
    ("b", "conv 16 3x3; bn", "conv 16 3x3 kernal=3; bn", "RDS121", "kernal", "`kernel`"),
    ("b", "conv 16 3x3; bn", "conv 16 3x3 pad=same; bn", "RDS102", "same", "`pad=0`"),
    ("b", "conv 16 3x3; bn", "conv 16; bn", "RDS123", "conv", "conv 64 3x3"),
    ("b", "conv 16 3x3; bn", "conv 3x3 16; bn", "RDS140", "3x3", "conv 64 3x3"),
    ("b", "bn; relu }", "bn; relu", "RDS002", " ", "end this line with `}`"),
    ("b", "avgpool; fc }\n}", "avgpool; fc }\n", "RDS002", " ", "missing `}` before `train`"),
    ("b", "x 3; stride 2 }", "x 3; stride 2", "RDS002", " ", "missing `}` before `head`"),
    ("b", "head  { avgpool; fc }", "head  { avgpool }", "RDS210", "avgpool", "avgpool; fc"),
    ("b", "    head  { avgpool; fc }\n", "", "RDS210", "mybasic 32", "add `head"),
    ("b", "input 3x32x32", "input 3x32", "RDS144", "3x32", "3x32x32"),
    ("b", "input 3x32x32", "input 3, 32, 32", "RDS002", "3", "dimensions"),
    ("b", "    input 3x32x32\n", "", "RDS128", "network", "input 3x32x32"),
    ("b", "    classes 10\n", "", "RDS128", "network", "classes 10"),
    ("b", "classes 10", "classes ten", "RDS102", "ten", "unknown parameter"),
    ("b", "classes 10", "classes 0", "RDS143", "0", "at least 1"),
    ("b", "classes 10", "num_classes 10", "RDS002", "num_classes", "`classes`"),
    ("b", "classes 10", "classes10", "RDS002", "classes10", "`classes`"),
    ("b", "shortcut B", "shortcut D", "RDS113", "D", "A, B, C, none"),
    ("b", "shortcut B", "shortcut b", "RDS113", "b", "did you mean `B`?"),
    ("b", "shortcut B", "shortcuts B", "RDS002", "shortcuts", "`shortcut`"),
    ("b", "3 }\n    stage { my", "3 }\n    stages { my", "RDS002", "stages", "`stage`"),
    ("b", "x 3; stride 2 }", "x 3 stride 2 }", "RDS002", "stride", "statement's end"),
    ("b", "x 3; stride 2 }", "x 3; stride=2 }", "RDS002", "=", "expected a value"),
    ("b", "x 3; stride 2 }", "x 3; stride 0 }", "RDS143", "0", "at least 1"),
    ("b", "mybasic 32 x 3", "mybasic x 3", "RDS123", "mybasic", "width"),
    ("b", "mybasic 16 x 3", "mybasik 16 x 3", "RDS101", "mybasik", "`mybasic`"),
    ("b", "mybasic 16 x 3", "mybasic 16 x 0", "RDS143", "0", "at least 1"),
    ("b", "mybasic 16 x 3", "mybasic 16 x 3.5", "RDS140", "3.5", "integer"),
    ("b", "mybasic 16 x 3", "mybasic 16 strid=2 x 3", "RDS121", "strid", "`stride`"),
    ("b", "(width, stride = 1)", "(width stride = 1)", "RDS002", "stride", "`,`"),
    ("b", "conv width 3x3 stride", "conv widht 3x3 stride", "RDS102", "widht", "`width`"),
    ("b", "    add\n", "    add\n    add\n", "RDS127", "add", "more than one `add`"),
    ("b", "    add\n", "    add()\n", "RDS002", "(", "statement's end"),
    ("b", "network tiny {", "network tiny", "RDS002", "", "`{`"),
    ("b", "network tiny {", "net tiny {", "RDS002", "net", "`network`"),
    ("b", "network tiny {", "networks tiny {", "RDS002", "networks", "`network`"),
    ("b", "train tiny {", "train tny {", "RDS108", "tny", "`tiny`"),
    ("b", "train tiny {", "training tiny {", "RDS002", "training", "`train`"),
    ("b", "batch 128", "batch 0", "RDS314", "batch", "at least 1"),
    ("b", "batch 128", "batch_size 128", "RDS301", "batch_size", "`batch`"),
    ("b", "batch 128", "batch 128.5", "RDS304", "128.5", "integers"),
    ("b", "optimizer sgd lr 0.1", "optimizer adam lr 0.1", "RDS304", "adam", "sgd"),
    ("b", "momentum 0.9 weight_decay", "momentum 0.9 wd", "RDS301", "wd", "weight_decay"),
    ("b", "    optimizer sgd", "    lr 0.1\n    optimizer sgd", "RDS301", "lr", "`optimizer`"),
    ("b", "step at 32000, 48000 by 0.1", "step 32000, 48000", "RDS304", "32000", "step at"),
    ("b", "at 32000, 48000", "at 48000, 32000", "RDS316", "at", "increasing"),
    ("b", "at 32000, 48000", "at 32000, 96000", "RDS316", "at", "64000"),
    ("b", "schedule step", "schedule multistep", "RDS304", "multistep", "`step`"),
    ("b", "iterations 64000", "iterations 64k", "RDS304", "64k", "iterations 64000"),
    ("b", "iterations 64000", "iterations 64,000", "RDS304", "iterations", "iterations 64000"),
    ("b", "iterations 64000", "epochs 182", "RDS301", "epochs", "iterations"),
    ("b", "iterations 64000", "iters 64000", "RDS301", "iters", "`iterations`"),
    ("b", "train_error < 80%", "train_error < 80", "RDS305", "until", "80%"),
    ("b", "warmup lr 0.01", "warmup 0.01", "RDS304", "0.01", "warmup lr 0.01"),
    ("b", "data cifar10 split", "data cifar split", "RDS304", "cifar", "`cifar10`"),
    ("b", "split 45000/5000", "split 50000/5000", "RDS311", "split", "50000"),
    ("b", "crop 32 flip", "crop 32 hflip", "RDS301", "hflip", "`flip`"),
    ("b", "crop 32 flip", "crop 40 flip", "RDS312", "crop", "32x32"),
    ("i", "cifar_resnet(n = 9)", "cifar_resnet(n: 9)", "RDS002", ":", "`n=9`"),
    ("i", "cifar_resnet(n = 9)", "cifar_resnet()", "RDS123", "cifar_resnet", "n = VALUE"),
    ("i", "cifar_resnet(n = 9)", "cifar_resnt(n = 9)", "RDS112", "cifar_resnt", "cifar_resnet"),
    ("i", "cifar_resnet(n = 9)", "cifar_resnet(m = 9)", "RDS121", "m =", "parameters: n"),
    ("i", "cifar_resnet(n = 9)", "cifar_resnet(n = -1)", "RDS002", "-", "no negative"),
    ("i", "cifar_resnet(n = 9)", "cifar_resnet(n = 0)", "RDS143", "0", "at least 1"),
    ("i", "cifar_resnet(n = 9)", "cifar_resnet(n = 9) shortcut E", "RDS113", "E", "A, B"),
    ("i", 'import "cifar.rds"', "import cifar.rds", "RDS002", "cifar", "quoted path"),
    ("i", 'import "cifar.rds"', 'import "cifar"', "RDS107", '"cifar"', '"cifar.rds"'),
    ("i", 'import "cifar.rds"', 'import "cfar.rds"', "RDS107", '"cfar', '"cifar.rds"'),
    ("i", 'import "cifar.rds"\n', "", "RDS112", "cifar_resnet", "not defined"),
    ("i", "network resnet56 =", "network resnet-56 =", "RDS002", "-", "`=`"),
    ("i", "train resnet56 {", "train resnet {", "RDS108", "resnet", "`resnet56`"),
    # the newer constructs
    ("n", "gn 8; relu", "gn 5; relu", "RDS211", "5", "must divide the channels (16)"),
    ("n", "blurpool stride=2", "blurpool stride=2 size=1", "RDS205", "1", "size 1"),
    ("n", "blurpool stride=2", "blurpool stride=0", "RDS205", "0", "stride 0"),
    ("n", "droppath 0.1", "droppath 1.0", "RDS207", "1.0", "[0, 1)"),
    ("n", "droppath 0.1", "droppath", "RDS123", "droppath", "needs `p`"),
    ("n", "droppath 0.1", "droppath 0.1 0.2", "RDS120", "0.2", "too many values"),
    ("n", "dilation=1", "dilation=0", "RDS205", "0", "at least 1"),
    ("n", "dilation=1", "dilation=1.5", "RDS140", "1.5", "integer"),
    ("n", "ws=1e-5", "ws=-1", "RDS002", "-", "no negative"),
    ("n", "ws=1e-5", "ws=1", "RDS207", "1", "[0, 1)"),
    ("n", "attn: eca 3", "attn: eca 4", "RDS212", "4", "odd"),
    ("n", "attn: eca 3", "attn: eca 0", "RDS212", "0", "odd and at least 1"),
    ("n", "attn: eca 3", "attn: eca 3 5", "RDS124", "5", "takes 1 value"),
    ("n", "attn: eca 3", "attn: ecaa 3", "RDS101", "ecaa", "`eca`"),
    ("n", "attn: eca 3", "attn: eca size=3", "RDS121", "size", "no parameter `size`"),
    ("n", "mul { attn: eca 3 }", "mul { attn: eca 3", "RDS002", " ", "end this line with `}`"),
    ("n", "mul { attn: eca 3 }", "mul { attn: eca 3; add }", "RDS101", "add", "`add`"),
    ("n", "    tap\n", "    tap\n    tap\n", "RDS119", "tap", "more than one `tap`"),
    ("n", "    add\n", "    add\n    tap\n", "RDS119", "tap", "more than one `tap`"),
    ("n", "    gn 8; relu\n", "    gn 8; relu\n    add\n", "RDS127", "add", "one `add`"),
    ("n", "blurpool stride=2 }", "blurpool stride=2; tap }", "RDS101", "tap", "`tap`"),
    ("n", "stride=2 }", "stride=2; mul { sigmoid } }", "RDS002", "mul", "in a block"),
    ("n", "stride=2 }", "stride=2; concat { bn } }", "RDS002", "concat", "a block's statement"),
    ("n", "{ bn; relu; avgpool", "{ mul { sigmoid }; bn; relu; avgpool", "RDS002", "mul", "block"),
    ("n", "norm: bn }", "norm: bn; mul { sigmoid } }", "RDS002", "mul", "a shortcut case"),
    ("n", "mul { attn: eca 3 }", "mul { group g { eca 3 } }", "RDS002", "group", "a side path"),
    ("n", "norm: bn }", "norm: bn; group g { bn } }", "RDS002", "group", "a shortcut case"),
    ("n", "group conv1 {", "group {", "RDS117", "group", "numbered"),
    ("n", "bn; relu }; blurpool", "bn; relu } x 2; blurpool", "RDS002", "x", "unexpected `x`"),
    ("n", "conv1: conv width", "_conv1: conv width", "RDS117", "_conv1", "private"),
    ("n", "conv1: conv width", "conv2: conv width", "RDS116", "conv2:", "`conv2` is taken"),
    ("n", "attn: eca", "_attn: eca", "RDS117", "_attn", "starting with `_`"),
    ("n", "side: conv", "__init__: conv", "RDS117", "__init__", "starting with `_`"),
    ("n", "conv: conv out", "_conv: conv out", "RDS117", "_conv", "starting with `_`"),
    ("n", "group conv1 {", "group _c {", "RDS117", "_c", "cannot name a group"),
    ("n", "group conv1 {", "group class {", "RDS116", "class", "`class`"),
    ("n", "{ conv 16 3x3; bn; relu }", "{ conv 16 3x3; bnn; relu }", "RDS101", "bnn", "`bn`"),
    ("n", "stage stages.0 {", "stage _stages.0 {", "RDS117", "_stages", "stage's module"),
    ("n", "stage stages.0 {", "stage stages..0 {", "RDS002", ".0", "unexpected"),
    ("n", "stage stages.1 {", "stage stages.0 {", "RDS116", "stages.0", "clashes"),
    ("n", "{ unit 16 x 2 }", "{ u: unit 16 x 2 }", "RDS117", "u", "a stage's blocks"),
    ("n", "channel_conv kernel", "chanel_conv kernel", "RDS101", "chanel_conv", "channel_conv"),
    ("n", "channel_conv kernel", "channel_conv kernal", "RDS102", "kernal", "`kernel`"),
    ("n", "channel_conv kernel", "channel_conv 3x3", "RDS140", "3x3", "integer"),
    ("n", "norm: bn }", "norm: bnn }", "RDS101", "bnn", "`bn`"),
    ("n", "subsample stride }", "subsample strde }", "RDS102", "strde", "`stride`"),
    ("n", "change from tap", "change from tab", "RDS002", "tab", "`from tap`"),
    ("n", "change from tap", "change frm tap", "RDS002", "frm", "unexpected `frm`"),
    ("n", "    stride { subsample", "    strides { subsample", "RDS002", "strides", "`stride`"),
    ("n", "conv: conv out 1x1", "conv: conv outt 1x1", "RDS102", "outt", "`out`"),
    ("n", "shortcut proj\n", "shortcut prj\n", "RDS113", "prj", "`proj`"),
    ("n", "    tap\n", "", "RDS118", "add", "has no `tap`"),
    ("n", "concat { side: conv width//2 1x1 }", "concat { side: gn 3 }", "RDS211", "3", "divide"),
    ("n", "avgpool; fc }", "avgpool 3x3 ceil=2; fc }", "RDS140", "2", "0 or 1"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[1].strip()!r}->{c[2].strip()!r}")
def test_one_mistake_gets_one_error_at_its_token_with_what_was_meant(tmp_path, case):
    which, old, new, code, token, fragment = case
    shutil.copy(SPECS / "cifar.rds", tmp_path / "cifar.rds")
    text = {"b": BASE, "i": INSTANCE, "n": NEWER}[which]
    assert old in text
    path = tmp_path / "spec.rds"
    path.write_text(text)
    assert run("check", path).exit_code == 0  # the spec is sound before the mistake
    broken = text.replace(old, new, 1)
    path.write_text(broken)
    result = run("check", path)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if ": error[" in line]
    assert len(errors) == 1, result.stderr
    where, _, rest = errors[0].partition(": error[")
    assert rest.startswith(f"{code}]"), result.stderr
    file, line, column = where.rsplit(":", 2)
    shown = (tmp_path / file).read_text() if file != str(path) else broken
    row = shown.splitlines()[int(line) - 1] + " "
    assert row[int(column) - 1 :].startswith(token), (row, column, token)
    assert fragment in result.stderr, result.stderr
