"""Error codes: the registry, the pages `resdsl explain` prints, and the JSON diagnostics format.

Every error resdsl reports carries a stable code, grouped by the stage that finds it:

- ``RDS0xx`` syntax: the text does not follow the grammar, or a file cannot be read;
- ``RDS1xx`` names, arguments and structure, found while elaborating a spec;
- ``RDS2xx`` shapes, found by shape inference and the checker;
- ``RDS3xx`` training recipes: the `train` section's settings and values;
- ``RDS4xx`` targets and tools: code generation, `graph`, `plot`.

Each :class:`Code` says which module raises it, what it means, a spec that produces it (tested:
tests/test_diagnostics.py runs every example and expects its code) and how to fix it. A code is
never reused for another meaning; a retired code stays in the registry.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ResdslError, Span

FORMAT_VERSION = 1
SCHEMAS = Path(__file__).resolve().parent / "schemas"


@dataclass(frozen=True)
class Code:
    code: str
    title: str
    module: str  # the module that raises it, relative to the package: "parser.py", "targets/"
    explanation: str
    example: str  # a spec that produces the error, written to example.rds
    message: str  # a fragment of the message the example produces
    fix: str
    command: tuple[str, ...] = ("check", "{spec}")  # the resdsl command that shows it
    files: dict[str, str] = field(default_factory=dict)  # other files beside example.rds


_CODES: list[Code] = []


def _code(code: str, title: str, module: str, explanation: str, example: str, message: str,
          fix: str, **extra) -> None:  # fmt: skip
    _CODES.append(
        Code(
            code,
            title,
            module,
            _dedent(explanation),
            _dedent(example),
            message,
            _dedent(fix),
            **extra,
        )
    )


def _dedent(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


_CIFAR = """
    network tiny {
        input 3x32x32
        classes 10
        stem  { conv 16 3x3; bn; relu }
        stage { basic 16 x 2 }
        head  { avgpool; fc }
    }
"""


def _with_train(body: str) -> str:
    return _CIFAR + "\ntrain tiny {\n" + textwrap.indent(_dedent(body), "    ") + "}\n"


_RECIPE = """
    data cifar10
    batch 128
    optimizer sgd lr 0.1 momentum 0.9
    iterations 64000
"""

# ---------------------------------------------------------------- RDS0xx: syntax

_code(
    "RDS001", "unexpected character", "parser.py",
    """
    The text holds a character that no token of the language starts with, such as `@`, `$` or
    a tab inside a name. resdsl's tokens are names, numbers, sizes (`3x3`), percentages,
    splits (`45000/5000`), quoted paths, `{ } ( ) = , ;`, the operators `+ - * //` and `#`
    comments.
    """,
    """
    network odd {
        input 3x32x32
        classes 10
        stem { conv 16 3x3 @ 2 }
        head { avgpool; fc }
    }
    """,
    "unexpected character '@'",
    """
    Remove the character, or write what it meant in resdsl: a stride is `stride=2`.
    """,
)  # fmt: skip
_code(
    "RDS002", "unexpected token", "parser.py",
    """
    A word, number or symbol stands where the grammar does not allow it: a value where a name
    is needed, a shortcut policy other than A, B, C or none, a missing `=` or `,`. The hint
    lists what the parser expected at that point.
    """,
    """
    network n {
        input 3x32x32
        classes 10
        shortcut D
        stem { conv 16 3x3 }
        head { avgpool; fc }
    }
    """,
    "unexpected `D`",
    """
    Write one of the things the hint lists; here a policy: `shortcut B`.
    """,
)  # fmt: skip
_code(
    "RDS003", "unexpected end of file", "parser.py",
    """
    The file ends inside a construct, most often a `{` without its `}`. The error points at the
    end of the file, and a note at the `{` left open.
    """,
    """
    network open {
        input 3x32x32
        classes 10
        stem { conv 16 3x3; bn; relu }
        head { avgpool; fc }
    """,
    "unexpected end of file",
    """
    Close every `{` with a `}`: `stem { conv 16 3x3; bn; relu }`.
    """,
)  # fmt: skip
_code(
    "RDS004", "positional value after a name=value argument", "parser.py",
    """
    A layer, block or family call takes its positional values first, then `name=value` pairs.
    A positional value after a `name=value` pair is ambiguous, so it is refused.
    """,
    """
    network n {
        input 3x32x32
        classes 10
        stem { conv 16 stride=2 3x3 }
        head { avgpool; fc }
    }
    """,
    "a positional value cannot follow a name=value argument",
    """
    Put positional values first: `conv 16 3x3 stride=2`.
    """,
)  # fmt: skip
_code(
    "RDS005", "cannot read a file", "parser.py",
    """
    A spec (or an import) could not be read: it is missing, unreadable, or not UTF-8 text.
    """,
    """
    network n {
        input 3x32x32
        classes 10
        head { avgpool; fc }
    }
    """,
    "cannot read",
    """
    Check the path and the file's encoding: resdsl reads UTF-8.
    """,
    command=("fmt", "{dir}/latin1.rds"),
    files={"latin1.rds": "# caf\udce9\n"},
)  # fmt: skip

_code(
    "RDS006", "a number or expression beyond resdsl's limits", "parser.py",
    """
    An integer literal has more than 15 digits, or an expression more than 100 operators in a
    row. resdsl's values are sizes, counts and iterations; the limits stop runaway inputs
    before any work grows with them.
    """,
    """
    network n {
        input 3x32x32
        classes 10000000000000000000
        head { avgpool; fc }
    }
    """,
    "more than 15 digits",
    """
    Check the number: ResNet-1202's largest value, its iteration count, has 5 digits.
    """,
)  # fmt: skip

# ---------------------------------------------------------------- RDS1xx: names and structure

_code(
    "RDS101", "unknown layer or block", "elaborate.py",
    """
    A statement names neither a built-in layer (conv, bn, relu, maxpool, avgpool, fc, dropout)
    nor a block defined in the spec, its imports or the prelude (basic, bottleneck,
    bottleneck_v1_5). The hint suggests the closest name.
    """,
    """
    network typo {
        input 3x32x32
        classes 10
        stem { conv 16 3x3; bn; rleu }
        head { avgpool; fc }
    }
    """,
    "unknown layer or block `rleu`",
    """
    Correct the name (`relu`), define the block with `block name(...) { ... }`, or import the
    file that defines it.
    """,
)  # fmt: skip
_code(
    "RDS102", "unknown parameter", "elaborate.py",
    """
    An expression uses a name that is not a parameter of the enclosing block or family (nor a
    layer or block passed as a value).
    """,
    """
    network family(n) {
        input 3x32x32
        classes 10
        stem { conv 16 3x3; bn; relu }
        stage { basic 16 x m }
        head { avgpool; fc }
    }

    network member = family(n = 3)
    """,
    "unknown parameter `m`",
    """
    Use one of the parameters (`basic 16 x n`), or add the parameter to the definition.
    """,
)  # fmt: skip
_code(
    "RDS103", "duplicate definition", "elaborate.py",
    """
    Two blocks or networks share one name, in one file or across its imports. Names are global
    to a program: the prelude's blocks, every imported file and the root file.
    """,
    """
    block twice(width) {
        conv width 3x3; bn; relu
    }

    block twice(width) {
        conv width 1x1; bn; relu
    }
    """,
    "duplicate definition of `twice`",
    """
    Rename one of the definitions, or delete the copy.
    """,
)  # fmt: skip
_code(
    "RDS104", "duplicate train section", "elaborate.py",
    """
    A network has two `train` sections. Each network (or family) has at most one; an instance's
    section overrides its family's statement by statement.
    """,
    _CIFAR + "\ntrain tiny {\n    batch 64\n}\n\ntrain tiny {\n    batch 128\n}\n",
    "duplicate train section for `tiny`",
    """
    Merge the two sections into one.
    """,
)  # fmt: skip
_code(
    "RDS105", "a name that is a Python keyword", "elaborate.py",
    """
    Block, network and parameter names become Python identifiers in the generated code, so a
    Python keyword (class, def, lambda, ...) cannot be one.
    """,
    """
    block class(width) {
        conv width 3x3; bn; relu
    }
    """,
    "`class` cannot be a name",
    """
    Choose another name, e.g. `block klass(width)`.
    """,
)  # fmt: skip
_code(
    "RDS106", "redefining a built-in layer", "elaborate.py",
    """
    A block or network takes the name of a built-in layer (conv, bn, relu, ...), which would
    make every use of that layer ambiguous.
    """,
    """
    block relu(width) {
        conv width 3x3
    }
    """,
    "is a built-in layer and cannot be redefined",
    """
    Choose another name for the block.
    """,
)  # fmt: skip
_code(
    "RDS107", "cannot import a file", "elaborate.py",
    """
    An `import` names a file that does not exist. Paths are relative to the importing file.
    """,
    """
    import "missing.rds"
    """,
    'cannot import "missing.rds"',
    """
    Correct the path, relative to the file that imports it: `import "../specs/cifar.rds"`.
    """,
)  # fmt: skip
_code(
    "RDS108", "train section for an unknown network", "elaborate.py",
    """
    A `train NAME { ... }` section names no network or family of the program.
    """,
    _CIFAR + "\ntrain tinny {\n    batch 64\n}\n",
    "train section for unknown network `tinny`",
    """
    Use the network's name: `train tiny { ... }`.
    """,
)  # fmt: skip
_code(
    "RDS109", "no network of that name", "elaborate.py",
    """
    `--network NAME` names no network of the spec or its imports.
    """,
    _CIFAR,
    "no network `small`",
    """
    Pass the name of a network the file defines (here `--network tiny`), or leave the option out
    when the file defines one.
    """,
    command=("check", "{spec}", "--network", "small"),
)  # fmt: skip
_code(
    "RDS110", "no concrete network", "elaborate.py",
    """
    A command that needs one network (summary, compile, graph) was given a file of families
    only: every network in it has parameters.
    """,
    """
    network family(n) {
        input 3x32x32
        classes 10
        stage { basic 16 x n }
        head { avgpool; fc }
    }
    """,
    "defines no concrete network",
    """
    Instantiate a family: `network small = family(n = 3)`.
    """,
    command=("summary", "{spec}"),
)  # fmt: skip
_code(
    "RDS111", "several networks: choose one", "elaborate.py",
    """
    A command that needs one network was given a file that defines several.
    """,
    """
    network family(n) {
        input 3x32x32
        classes 10
        stage { basic 16 x n }
        head { avgpool; fc }
    }

    network a = family(1)
    network b = family(2)
    """,
    "defines several networks",
    """
    Choose one with `--network a`.
    """,
    command=("summary", "{spec}"),
)  # fmt: skip
_code(
    "RDS112", "not a network family", "elaborate.py",
    """
    `network NAME = FAMILY(...)` instantiates a family: a network defined with parameters. The
    name after `=` is undefined, or names a block or a network without parameters.
    """,
    """
    network n = cifar_resnt(n = 3)
    """,
    "`cifar_resnt` is not defined",
    """
    Name a family the program defines, importing its file if needed:
    `import "cifar.rds"` then `network n = cifar_resnet(n = 3)`.
    """,
)  # fmt: skip
_code(
    "RDS113", "unknown shortcut policy", "elaborate.py",
    """
    `resdsl.build(..., shortcut=...)` was given a policy other than A, B, C or none. (The CLI's
    `--shortcut` only offers those four.)
    """,
    _CIFAR,
    "unknown shortcut policy",
    """
    Pass one of A, B, C or none.
    """,
    command=("api:build", "{spec}", "shortcut=D"),
)  # fmt: skip
_code(
    "RDS120", "too many values", "elaborate.py",
    """
    A layer, block or family call has more positional values than it has positional
    parameters. The message lists what it takes.
    """,
    """
    network n {
        input 3x32x32
        classes 10
        stem { conv 16 3x3 2 }
        head { avgpool; fc }
    }
    """,
    "too many values for `conv`",
    """
    Pass the extra value by name: `conv 16 3x3 stride=2`.
    """,
)  # fmt: skip
_code(
    "RDS121", "no such argument or parameter", "elaborate.py",
    """
    A `name=value` argument names no argument of the layer, or no parameter of the block or
    family. The hint suggests the closest name.
    """,
    """
    network n {
        input 3x32x32
        classes 10
        stem { conv 16 3x3 strid=2 }
        head { avgpool; fc }
    }
    """,
    "`conv` has no argument `strid`",
    """
    Correct the name: `stride=2`.
    """,
)  # fmt: skip
_code(
    "RDS122", "given twice", "elaborate.py",
    """
    An argument is given twice (by position and by name, or twice by name), a network setting
    such as `input` appears twice, or a parameter list repeats a name.
    """,
    """
    network n {
        input 3x32x32
        classes 10
        stem { conv 16 3x3 out=32 }
        head { avgpool; fc }
    }
    """,
    "`out` is given twice",
    """
    Keep one of them.
    """,
)  # fmt: skip
_code(
    "RDS123", "a required value is missing", "elaborate.py",
    """
    A layer needs an argument that has no default (conv needs its output channels and kernel),
    or a block or family parameter without a default got no value.
    """,
    """
    network n {
        input 3x32x32
        classes 10
        stem { conv 16 }
        head { avgpool; fc }
    }
    """,
    "`conv` needs `kernel`",
    """
    Give the value: `conv 16 3x3`.
    """,
)  # fmt: skip
_code(
    "RDS124", "wrong number of values for a block or family", "elaborate.py",
    """
    A block or family call passes more positional values than the definition has parameters.
    """,
    """
    network family(n) {
        input 3x32x32
        classes 10
        stage { basic 16 x n }
        head { avgpool; fc }
    }

    network member = family(3, 4)
    """,
    "`family` takes 1 value(s), got 2",
    """
    Pass one value per parameter: `family(3)`.
    """,
)  # fmt: skip
_code(
    "RDS125", "a stage's stride that cannot be applied", "elaborate.py",
    """
    A stage's `stride` goes to the `stride` parameter of its first block. The first block has no
    such parameter, the stage has no block, or the block's call passes `stride` itself.
    """,
    """
    block plain_pair(width) {
        conv width 3x3; bn; relu
        conv width 3x3; bn; relu
    }

    network strided {
        input 3x32x32
        classes 10
        stem { conv 16 3x3; bn; relu }
        stage { plain_pair 16 }
        stage { plain_pair 32; stride 2 }
        head { avgpool; fc }
    }
    """,
    "the stage's stride cannot be applied",
    """
    Give the block a `stride` parameter (`block plain_pair(width, stride = 1)`) and use it on
    its first conv (`conv width 3x3 stride=stride`).
    """,
)  # fmt: skip
_code(
    "RDS126", "recursive block", "elaborate.py",
    """
    A block calls itself, directly or through other blocks, so it would expand forever.
    """,
    """
    block ping(width) {
        pong width
    }

    block pong(width) {
        ping width
    }

    network loop {
        input 3x32x32
        classes 10
        stage { ping 16 }
        head { avgpool; fc }
    }
    """,
    "recursive block `ping`",
    """
    Break the cycle: a block may call other blocks, never one that leads back to itself.
    """,
)  # fmt: skip
_code(
    "RDS127", "more than one `add` in a block", "elaborate.py",
    """
    A block's shortcut joins its residual branch at one `add`; a second `add` has no shortcut
    to join.
    """,
    """
    block double(width) {
        conv width 3x3; bn
        add
        conv width 3x3; bn
        add
    }

    network n {
        input 3x32x32
        classes 10
        stem { conv 16 3x3 }
        stage { double 16 }
        head { avgpool; fc }
    }
    """,
    "has more than one `add`",
    """
    Split the block into two blocks, each with one `add`: `stage { single 16 x 2 }`.
    """,
)  # fmt: skip
_code(
    "RDS128", "a network without input or classes", "elaborate.py",
    """
    Every network says its input (`input 3x32x32`, channels x height x width) and its number of
    classes (`classes 10`).
    """,
    """
    network n {
        input 3x32x32
        stem { conv 16 3x3 }
        head { avgpool; fc }
    }
    """,
    "has no `classes`",
    """
    Add the missing line: `classes 10`.
    """,
)  # fmt: skip
_code(
    "RDS129", "too many ops", "elaborate.py",
    """
    The network expands to more than 1,000,000 ops, the most resdsl builds. This is usually a
    repeat count far larger than meant.
    """,
    """
    network huge {
        input 3x32x32
        classes 10
        stage { basic 16 x 200000 }
        head { avgpool; fc }
    }
    """,
    "ops",
    """
    Check the repeat counts: ResNet-1202 has 4,210 ops.
    """,
)  # fmt: skip
_code(
    "RDS140", "a value of the wrong type", "elaborate.py",
    """
    An argument got a value of the wrong kind: a size (`3x3`) where an integer is needed, a name
    where a number is needed, or a flag other than 0 or 1.
    """,
    """
    network swapped {
        input 3x32x32
        classes 10
        stem { conv 3x3 16 }
        head { avgpool; fc }
    }
    """,
    "must be an integer, got 3x3",
    """
    Pass values in the layer's order: `conv 16 3x3` (out, then kernel).
    """,
)  # fmt: skip
_code(
    "RDS141", "arithmetic on something other than integers", "elaborate.py",
    """
    `+ - * //` work on integers; one side is a size, a float or a block name.
    """,
    """
    network n(k) {
        input 3x32x32
        classes 10
        stem { conv 16 3x3 + 1 }
        head { avgpool; fc }
    }

    network m = n(1)
    """,
    "works on integers",
    """
    Compute with integers only: sizes such as `3x3` are not numbers.
    """,
)  # fmt: skip
_code(
    "RDS142", "division by zero", "elaborate.py",
    """
    A `//` divides by an expression that is 0.
    """,
    """
    network n(k) {
        input 3x32x32
        classes 10
        stem { conv 16 // k 3x3 }
        head { avgpool; fc }
    }

    network m = n(0)
    """,
    "division by zero",
    """
    Pass a non-zero value, or change the expression.
    """,
)  # fmt: skip
_code(
    "RDS143", "a value out of range", "elaborate.py",
    """
    A count must be a positive integer: `classes`, a stage's `stride`, a repeat count (`x n`).
    """,
    """
    network n(k) {
        input 3x32x32
        classes 10
        stage { basic 16 x k }
        head { avgpool; fc }
    }

    network m = n(0)
    """,
    "must be at least 1, got 0",
    """
    Use a value of at least 1.
    """,
)  # fmt: skip
_code(
    "RDS144", "an input that is not CxHxW", "elaborate.py",
    """
    A network's `input` is channels x height x width, each at least 1.
    """,
    """
    network n {
        input 32x32
        classes 10
        head { avgpool; fc }
    }
    """,
    "input must be CxHxW",
    """
    Give three sizes: `input 3x32x32`.
    """,
)  # fmt: skip

# ---------------------------------------------------------------- RDS2xx: shapes

_code(
    "RDS201", "the shortcut and the residual branch differ in shape", "check.py",
    """
    At a block's `add`, the residual branch ends in a different shape from its shortcut, and the
    shortcut policy cannot make them meet (an identity shortcut copies its input unchanged). The
    message names the block path and both shapes.
    """,
    """
    block valid_conv(width, stride = 1) {
        conv width 3x3 stride=stride pad=0; bn
        add
        relu
    }

    network shrinking {
        input 3x32x32
        classes 10
        shortcut B
        stem { conv 16 3x3; bn; relu }
        stage { valid_conv 16 }
        head { avgpool; fc }
    }
    """,
    "cannot add 16x32x32 to 16x30x30",
    """
    Keep the branch's spatial size (padding 1 on a 3x3: the default), so the shortcut's shape
    matches: `conv width 3x3 stride=stride`.
    """,
)  # fmt: skip
_code(
    "RDS202", "option A cannot shrink channels", "check.py",
    """
    Shortcut option A zero-pads the identity to more channels; it cannot drop channels. A block
    whose output is narrower than its input needs a projection.
    """,
    """
    network narrowing {
        input 3x32x32
        classes 10
        shortcut A
        stem { conv 32 3x3; bn; relu }
        stage { basic 32 x 2 }
        stage { basic 16 x 2; stride 2 }
        head { avgpool; fc }
    }
    """,
    "cannot shrink channels from 32 to 16",
    """
    Use `shortcut B` (a projection where the shape changes), or keep the stages widening.
    """,
)  # fmt: skip
_code(
    "RDS203", "a kernel larger than its input", "check.py",
    """
    A convolution or pooling window is larger than its (padded) input, so it has no place to
    slide to: often the feature maps have vanished after too many stride-2 steps on a small
    input.
    """,
    """
    network big_kernel {
        input 1x5x5
        classes 10
        stem { conv 8 9x9 pad=1 }
        head { avgpool; fc }
    }
    """,
    "is larger than its padded input",
    """
    Use a smaller kernel, more padding, or a larger input.
    """,
)  # fmt: skip
_code(
    "RDS204", "no channels or outputs left", "check.py",
    """
    An op would have fewer than one output channel, output or pixel: a conv whose width
    arithmetic reaches 0 (`64 - 16*n` for n = 4), an fc of 0 outputs.
    """,
    """
    network shrinking(n) {
        input 3x32x32
        classes 10
        stem { conv 64 - 16*n 3x3; bn; relu }
        head { avgpool; fc }
    }

    network none_left = shrinking(n = 4)
    """,
    "conv needs at least 1 output channel, got 0",
    """
    Keep every width at least 1: check the arithmetic for the family's arguments.
    """,
)  # fmt: skip
_code(
    "RDS205", "invalid window arguments", "check.py",
    """
    A convolution's or pooling's window cannot work: a kernel below 1x1, a stride below 1, a
    negative padding, or a pooling padding above half its kernel (which PyTorch refuses).
    """,
    """
    network n {
        input 3x32x32
        classes 10
        stem { conv 16 3x3 stride=0 }
        head { avgpool; fc }
    }
    """,
    "stride 0 must be at least 1",
    """
    Use a stride of at least 1 and a padding in [0, kernel / 2].
    """,
)  # fmt: skip
_code(
    "RDS206", "conv groups that do not divide the channels", "check.py",
    """
    A grouped convolution splits its input and output channels into `groups` equal parts, so
    `groups` must divide both.
    """,
    """
    network n {
        input 3x32x32
        classes 10
        stem { conv 16 3x3 groups=2 }
        head { avgpool; fc }
    }
    """,
    "must divide both its input channels",
    """
    Choose groups that divide both channel counts (here the input has 3 channels: groups=1).
    """,
)  # fmt: skip
_code(
    "RDS207", "a dropout probability out of range", "check.py",
    """
    A dropout probability is outside [0, 1).
    """,
    """
    network n {
        input 3x32x32
        classes 10
        stem { conv 16 3x3; dropout 1.5 }
        head { avgpool; fc }
    }
    """,
    "dropout probability 1.5 must be in [0, 1)",
    """
    Use a probability in [0, 1): `dropout 0.5`.
    """,
)  # fmt: skip
_code(
    "RDS208", "a tensor too large to allocate", "check.py",
    """
    One op's weights, or its output for one image, would have more than 2,147,483,647
    elements: the shapes fit together, but no framework would allocate the tensor.
    """,
    """
    network n {
        input 3x8x8
        classes 10
        stem { conv 60000 1x1; conv 60000 1x1 }
        head { avgpool; fc }
    }
    """,
    "more than the",
    """
    Check the widths: ResNet-152's largest weight has 2,359,296 elements.
    """,
)  # fmt: skip


_code(
    "RDS210", "the output does not match the classes", "check.py",
    """
    A classifier ends in `classes x 1 x 1`. The head ends in another shape: an fc of another
    width, or no global pooling before it.
    """,
    """
    network mismatch {
        input 3x32x32
        classes 10
        stem { conv 16 3x3; bn; relu }
        head { avgpool; fc 100 }
    }
    """,
    "but it has 10 classes",
    """
    End the head with `avgpool; fc` (fc's width defaults to the classes).
    """,
)  # fmt: skip

# ---------------------------------------------------------------- RDS3xx: train recipes

_code(
    "RDS301", "unknown train setting or option", "recipe.py",
    """
    A `train` statement starts with a setting (data, augment, normalize, batch, optimizer,
    schedule, iterations, warmup) followed by that setting's options. A word is neither.
    """,
    _with_train(_RECIPE.replace("momentum", "momentun")),
    "unknown option `momentun` for `optimizer`",
    """
    Correct the name; the hint lists the setting's options.
    """,
)  # fmt: skip
_code(
    "RDS302", "a train setting or option given twice", "recipe.py",
    """
    A setting appears twice in one train section, or an option twice in one setting.
    """,
    _with_train(_RECIPE + "batch 64\n"),
    "`batch` is given twice",
    """
    Keep one. (An instance's section may override its family's: that is not a repeat.)
    """,
)  # fmt: skip
_code(
    "RDS303", "a required train setting is missing", "recipe.py",
    """
    A train section (with its family's, where it inherits one) needs `data`, `batch`,
    `optimizer` and `iterations`.
    """,
    _with_train("data cifar10\nbatch 128\noptimizer sgd lr 0.1\n"),
    "has no `iterations` setting",
    """
    Add the setting: `iterations 64000`.
    """,
)  # fmt: skip
_code(
    "RDS304", "the wrong values for a train option", "recipe.py",
    """
    An option got the wrong number or kind of values (`split` takes one ratio such as
    45000/5000, `at` takes integers), a setting that takes none got one, or a choice
    (dataset, optimiser, schedule) is not one the setting knows.
    """,
    _with_train(_RECIPE.replace("data cifar10", "data cifar100")),
    "`data` needs one of",
    """
    Use a value of the kind the message names: `data cifar10`.
    """,
)  # fmt: skip
_code(
    "RDS305", "a malformed warmup or normalize", "recipe.py",
    """
    A warmup reads `warmup lr 0.01 until train_error < 80%` or `warmup linear 400 [from 0.01]`;
    a normalization `normalize pixel_mean` or `normalize mean ... std ...` with both lists.
    """,
    _with_train(_RECIPE + "warmup lr 0.01\n"),
    "a warmup is",
    """
    Complete it: `warmup lr 0.01 until train_error < 80%`.
    """,
)  # fmt: skip
_code(
    "RDS310", "the dataset's classes differ from the network's", "check.py",
    """
    The dataset has another number of classes than the network's `classes`.
    """,
    _with_train(_RECIPE.replace("cifar10", "imagenet")),
    "imagenet has 1000 classes",
    """
    Match them: `classes 1000` for ImageNet, or another dataset.
    """,
)  # fmt: skip
_code(
    "RDS311", "a split the training set cannot hold", "check.py",
    """
    `split TRAIN/VAL` takes both parts from the training set: they must fit in it, and the
    training part must hold at least one image.
    """,
    _with_train(_RECIPE.replace("data cifar10", "data cifar10 split 48000/5000")),
    "needs 53000 images",
    """
    Make the parts add up to at most the training set (CIFAR-10: 50,000): `split 45000/5000`.
    """,
)  # fmt: skip
_code(
    "RDS312", "augmentation that does not fit the input", "check.py",
    """
    A crop must match the network's input size; a padding cannot be negative; a scale range
    must be increasing and positive.
    """,
    _with_train(_RECIPE + "augment pad 4 crop 28 flip\n"),
    "crop 28 does not match",
    """
    Crop to the network's input: `augment pad 4 crop 32 flip`.
    """,
)  # fmt: skip
_code(
    "RDS313", "normalization values that cannot work", "check.py",
    """
    `normalize mean ... std ...` needs one mean and one std per input channel, every std above 0.
    """,
    _with_train(_RECIPE + "normalize mean 0.5 0.5 std 0.2 0.2\n"),
    "one per input channel",
    """
    Give three of each for RGB input: `normalize mean 0.49 0.48 0.45 std 0.25 0.24 0.26`.
    """,
)  # fmt: skip
_code(
    "RDS314", "a batch or iteration count below 1", "check.py",
    """
    `batch` and `iterations` are counts of at least 1.
    """,
    _with_train(_RECIPE.replace("batch 128", "batch 0")),
    "batch 0 must be at least 1",
    """
    Use a positive count: `batch 128`.
    """,
)  # fmt: skip
_code(
    "RDS315", "optimizer values out of range", "check.py",
    """
    The learning rate must be above 0, momentum in [0, 1), weight decay not negative, and
    nesterov needs a momentum.
    """,
    _with_train(_RECIPE.replace("lr 0.1", "lr 0")),
    "lr 0 must be above 0",
    """
    Use a positive learning rate: `optimizer sgd lr 0.1 momentum 0.9`.
    """,
)  # fmt: skip
_code(
    "RDS316", "schedule milestones that cannot work", "check.py",
    """
    A step schedule needs milestones (`at`), strictly increasing, between 1 and the iteration
    count; other schedules take none.
    """,
    _with_train(_RECIPE + "schedule step at 48000, 32000 by 0.1\n"),
    "milestones must be strictly increasing",
    """
    Order them: `schedule step at 32000, 48000 by 0.1`.
    """,
)  # fmt: skip
_code(
    "RDS317", "schedule values out of range", "check.py",
    """
    The decay factor (`by`) is in (0, 1], `min_lr` in [0, lr), `patience` at least 1.
    """,
    _with_train(_RECIPE + "schedule step at 32000 by 10\n"),
    "the factor 10 must be in (0, 1]",
    """
    Divide the learning rate by 10 with `by 0.1`.
    """,
)  # fmt: skip
_code(
    "RDS318", "a warmup that cannot work", "check.py",
    """
    A linear warmup must be non-empty, end before the first milestone (or the run), and start
    below the learning rate; an error-driven warmup needs a positive lr and a threshold in
    (0%, 100%).
    """,
    _with_train(_RECIPE + "schedule step at 32000 by 0.1\nwarmup linear 40000\n"),
    "must end before the first milestone",
    """
    Shorten the warmup: `warmup linear 400`.
    """,
)  # fmt: skip

# ---------------------------------------------------------------- RDS4xx: targets and tools

_code(
    "RDS401", "unknown target", "emit.py",
    """
    `resdsl.emit(net, target)` was given a target that is not registered (the CLI's `--target`
    offers only registered ones: torch and tf).
    """,
    _CIFAR,
    "unknown target 'onnx'",
    """
    Use a registered target: torch or tf.
    """,
    command=("api:emit", "{spec}", "target=onnx"),
)  # fmt: skip
_code(
    "RDS403", "cannot write the generated files", "emit.py",
    """
    `resdsl compile -o DIR` needs a folder it can create or write: DIR, or a folder above it,
    is a file or is not writable. Nothing is written, and no temporary file is left behind.
    """,
    _CIFAR,
    "cannot write to",
    """
    Choose another output folder, or remove the file that stands in its way.
    """,
    command=("compile", "{spec}", "--target", "torch", "-o", "{dir}/taken/out"),
    files={"taken": "a file, not a folder\n"},
)  # fmt: skip


_code(
    "RDS410", "cannot draw the graph", "graph.py",
    """
    `resdsl graph` writes .dot, .svg or .png; the latter two need Graphviz's `dot` program, and
    fail where it is missing or fails.
    """,
    _CIFAR,
    "choose a .dot, .svg or .png file",
    """
    Write to a .dot file, or install Graphviz for .svg and .png.
    """,
    command=("graph", "{spec}", "-o", "{dir}/graph.txt"),
)  # fmt: skip
_code(
    "RDS420", "plotting needs matplotlib", "cli.py",
    """
    `resdsl plot` draws with matplotlib, an optional extra.
    """,
    _CIFAR,
    "needs matplotlib",
    """
    Install it: `pip install 'resdsl[plot]'`.
    """,
    command=("plot", "{dir}", "-o", "{dir}/plot.png"),
)  # fmt: skip
_code(
    "RDS421", "not a training run", "plot.py",
    """
    `resdsl plot` reads the folders that a generated train.py writes (`--out`): metrics.jsonl,
    config.json and, for `--responses`, responses.json. A folder lacks them or holds something
    else.
    """,
    _CIFAR,
    "has no metrics.jsonl",
    """
    Pass the `--out` folders of train.py runs.
    """,
    command=("plot", "{dir}", "-o", "{dir}/plot.png"),
)  # fmt: skip

CODES: dict[str, Code] = {c.code: c for c in _CODES}

# ---------------------------------------------------------------- pages


def normalize(code: str) -> str:
    """``rds201``, ``201`` or ``RDS201`` -> ``RDS201``."""
    code = code.strip().upper()
    return code if code.startswith("RDS") else f"RDS{code.zfill(3)}"


def explain(code: str) -> str:
    """The page `resdsl explain CODE` prints; KeyError for an unknown code."""
    entry = CODES[normalize(code)]
    command = " ".join(entry.command).replace("{spec}", "example.rds").replace("{dir}", ".")
    lines = [
        f"{entry.code}: {entry.title}",
        "",
        entry.explanation.rstrip(),
        "",
        "Example (example.rds):",
        "",
        textwrap.indent(entry.example, "    ").rstrip(),
        "",
    ]
    if not command.startswith("api:"):
        lines += [f"`resdsl {command}` reports it.", ""]
    lines += ["How to fix it:", "", entry.fix.rstrip(), "", f"(raised in resdsl/{entry.module})"]
    return "\n".join(lines) + "\n"


def listing() -> str:
    """One line per code, for `resdsl explain --list`."""
    return "".join(f"{c.code}  {c.title}\n" for c in _CODES)


# ---------------------------------------------------------------- JSON diagnostics


def flatten(error: ResdslError) -> list[ResdslError]:
    """The errors an error stands for: itself, or the members of an ErrorGroup."""
    return list(getattr(error, "errors", None) or [error])


def _range(span: Span) -> dict:
    return {
        "start": {"line": span.line, "column": span.column},
        "end": {"line": span.end_line, "column": span.end_column},
    }


def diagnostic(error: ResdslError, file: str | None = None) -> dict:
    """One error as a JSON object of the `check --format json` format.

    Lines and columns count from 1; the end column is just past the span.
    """
    span = error.span
    return {
        "file": span.source.name if span else file,
        "range": _range(span) if span else None,
        "severity": error.kind,
        "code": error.code,
        "message": error.message,
        "hints": [error.hint] if error.hint else [],
        "related": [
            {"file": r.span.source.name, "range": _range(r.span), "message": r.message}
            for r in error.related
        ],
    }


def report(files: list[dict], errors: list[tuple[str, ResdslError]]) -> dict:
    """The one JSON object of `resdsl check --format json`.

    ``files`` holds each checked file's result (``{"file", "ok", "networks"}``); ``errors``
    pairs each failed file's path with its error.
    """
    diagnostics = [diagnostic(e, path) for path, error in errors for e in flatten(error)]
    return {
        "version": FORMAT_VERSION,
        "ok": not diagnostics,
        "files": files,
        "diagnostics": diagnostics,
    }


def schema(name: str) -> dict:
    """A JSON Schema shipped in the package: ``diagnostics`` or ``summary``."""
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
