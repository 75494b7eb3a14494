"""The VS Code extension's TextMate grammar, run by vscode-textmate and vscode-oniguruma (the
engine VS Code uses) over the real specs, with the scopes of chosen tokens checked."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from helpers import ROOT, SPECS

EXTENSION = ROOT / "editors" / "vscode"


@pytest.fixture(scope="module")
def tokenize():
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed: the TextMate grammar is tested with Node")
    wanted = ("vscode-textmate", "vscode-languageclient", "@vscode/vsce")
    if not all((EXTENSION / "node_modules" / name).is_dir() for name in wanted):
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=EXTENSION,
            check=True,
            timeout=600,
        )

    def run(*paths) -> dict:
        result = subprocess.run(
            [node, "test/tokenize.mjs", *map(str, paths)],
            cwd=EXTENSION,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return json.loads(result.stdout)

    return run


def scopes_of(tokens: dict, path, line: int, text: str, nth: int = 0) -> list[str]:
    """The scopes of the ``nth`` token spelled ``text`` on ``line`` of ``path``."""
    (row,) = [r for number, r in tokens[str(path)] if number == line]
    found = [t[1:] for t in row if t[0] == text]
    assert len(found) > nth, f"no token {text!r} on line {line}: {[t[0] for t in row]}"
    return found[nth]


def line_of(path, fragment: str) -> int:
    return next(i for i, t in enumerate(path.read_text().splitlines(), 1) if fragment in t)


def test_every_spec_tokenises(tokenize):
    paths = sorted(SPECS.glob("*.rds"))
    tokens = tokenize(*paths)
    for path in paths:
        rows = tokens[str(path)]
        assert len(rows) == len(path.read_text().split("\n"))
        for _, row in rows:
            assert all(t[1] == "source.resdsl" for t in row)


def test_scopes_in_the_cifar_family(tokenize):
    cifar = SPECS / "cifar.rds"
    tokens = tokenize(cifar)
    header = line_of(cifar, "network cifar_resnet")

    def scope(fragment, text, nth=0):
        return scopes_of(tokens, cifar, line_of(cifar, fragment), text, nth)[-1]

    assert scopes_of(tokens, cifar, header, "network")[-1] == "keyword.control.network.resdsl"
    assert scopes_of(tokens, cifar, header, "cifar_resnet")[-1] == "entity.name.type.network.resdsl"
    assert scope("input 3x32x32", "input") == "keyword.other.setting.resdsl"
    assert scope("input 3x32x32", "3x32x32") == "constant.numeric.size.resdsl"
    assert scope("shortcut A", "A") == "constant.language.policy.resdsl"
    assert scope("stem", "stem") == "keyword.other.section.resdsl"
    assert scope("stem", "conv") == "support.function.layer.resdsl"
    assert scope("stem", "3x3") == "constant.numeric.size.resdsl"
    assert scope("stem", "16") == "constant.numeric.integer.resdsl"
    assert scope("basic 16 x n", "basic") == "support.class.block.resdsl"
    assert scope("basic 16 x n", "x") == "keyword.operator.repeat.resdsl"
    # a comment's text stays a comment, sizes and all
    comment = scopes_of(tokens, cifar, line_of(cifar, "# 32x32 maps"), " 32x32 maps")
    assert comment[-1] == "comment.line.number-sign.resdsl"
    assert scope("split 45000/5000", "45000/5000") == "constant.numeric.ratio.resdsl"
    assert scope("split 45000/5000", "data") == "support.type.setting.resdsl"
    assert scope("weight_decay", "1e-4") == "constant.numeric.float.resdsl"
    assert scope("weight_decay", "0.1") == "constant.numeric.float.resdsl"
    assert "meta.train.resdsl" in scopes_of(tokens, cifar, line_of(cifar, "batch 128"), "128")


def test_scopes_of_imports_instances_warmups_and_arguments(tokenize):
    resnet, imagenet = SPECS / "resnet1202.rds", SPECS / "imagenet.rds"
    tokens = tokenize(resnet, imagenet)
    line = line_of(resnet, "import")
    assert scopes_of(tokens, resnet, line, "import")[-1] == "keyword.control.import.resdsl"
    assert scopes_of(tokens, resnet, line, '"cifar.rds"')[-1] == "string.quoted.double.resdsl"
    line = line_of(resnet, "network resnet1202")
    assert scopes_of(tokens, resnet, line, "n")[-1] == "variable.parameter.resdsl"
    assert scopes_of(tokens, resnet, line, "200")[-1] == "constant.numeric.integer.resdsl"
    family = scopes_of(tokens, resnet, line, "cifar_resnet")
    assert family[-1] == "entity.name.function.family.resdsl"
    line = line_of(resnet, "warmup lr")
    assert scopes_of(tokens, resnet, line, "80%")[-1] == "constant.numeric.percent.resdsl"
    assert scopes_of(tokens, resnet, line, "until")[-1] == "keyword.control.until.resdsl"
    assert scopes_of(tokens, resnet, line, "warmup")[-1] == "support.type.setting.resdsl"
    line = line_of(imagenet, "maxpool")
    assert scopes_of(tokens, imagenet, line, "stride")[-1] == "variable.parameter.resdsl"
    assert scopes_of(tokens, imagenet, line, "maxpool")[-1] == "support.function.layer.resdsl"
    assert scopes_of(tokens, imagenet, line, "7x7")[-1] == "constant.numeric.size.resdsl"
    line = line_of(imagenet, "shortcut B")
    assert scopes_of(tokens, imagenet, line, "B")[-1] == "constant.language.policy.resdsl"


def test_scopes_of_shortcut_definitions_cases_and_groups(tokenize):
    families = SPECS / "zoo" / "families.rds"
    tokens = tokenize(families, SPECS / "zoo" / "resnet50d.rds")
    line = line_of(families, "shortcut D {")
    assert scopes_of(tokens, families, line, "shortcut")[-1] == "keyword.control.shortcut.resdsl"
    assert scopes_of(tokens, families, line, "D")[-1] == "entity.name.type.shortcut.resdsl"
    line = line_of(families, "change {")
    assert scopes_of(tokens, families, line, "change")[-1] == "keyword.control.case.resdsl"
    assert scopes_of(tokens, families, line, "avgpool")[-1] == "support.function.layer.resdsl"
    line = line_of(families, "group conv1")
    assert scopes_of(tokens, families, line, "group")[-1] == "keyword.other.group.resdsl"
    assert scopes_of(tokens, families, line, "conv1")[-1] == "entity.name.tag.group.resdsl"
    resnet50d = SPECS / "zoo" / "resnet50d.rds"
    line = line_of(resnet50d, "shortcut D")
    assert scopes_of(tokens, resnet50d, line, "D")[-1] == "constant.language.policy.resdsl"


def test_scopes_of_unnamed_groups_stage_names_and_a_labelled_add(tokenize):
    mobile, regnets = SPECS / "zoo" / "mobile.rds", SPECS / "zoo" / "regnets.rds"
    tokens = tokenize(mobile, SPECS / "zoo" / "mobilenet_v2.rds")
    line = line_of(mobile, "group { conv in*expand 1x1")
    assert scopes_of(tokens, mobile, line, "group")[-1] == "keyword.other.group.resdsl"
    assert scopes_of(tokens, mobile, line, "conv")[-1] == "support.function.layer.resdsl"
    tokens = tokenize(regnets, SPECS / "zoo" / "regnet_y_400mf.rds")
    line = line_of(regnets, 'names "block1-"')
    assert scopes_of(tokens, regnets, line, "names")[-1] == "keyword.other.setting.resdsl"
    line = line_of(regnets, "proj: add")
    assert scopes_of(tokens, regnets, line, "add")[-1] == "keyword.other.add.resdsl"


def test_the_grammar_knows_every_layer_of_the_op_table():
    """The layer names the editor colours are the op table's, no more and no fewer."""
    from resdsl import ops

    grammar = json.loads((EXTENSION / "syntaxes" / "resdsl.tmLanguage.json").read_text())
    match = grammar["repository"]["layer"]["match"]
    listed = set(match.split("(", 1)[1].split(")", 1)[0].split("|"))
    assert listed == {name for name, op in ops.OPS.items() if op.user}


# ---------------------------------------------------------------- the extension


def test_the_extension_starts_the_language_server_and_packages_to_a_vsix(tokenize, tmp_path):
    """A vscode-languageclient client that runs `resdsl lsp` (a setting names the command),
    packaged by vsce with nothing it would warn about but bundling."""
    import zipfile

    manifest = json.loads((EXTENSION / "package.json").read_text())
    assert (
        manifest["main"] == "./extension.js" and "onLanguage:resdsl" in manifest["activationEvents"]
    )
    properties = manifest["contributes"]["configuration"]["properties"]
    assert properties["resdsl.server.command"]["default"] == "resdsl"
    assert properties["resdsl.server.args"]["default"] == ["lsp"]
    assert "vscode-languageclient" in manifest["dependencies"] and manifest["repository"]
    source = (EXTENSION / "extension.js").read_text()
    assert 'require("vscode-languageclient/node")' in source and "client.start()" in source
    vsix = tmp_path / "resdsl.vsix"
    result = subprocess.run(
        [shutil.which("npx"), "vsce", "package", "--out", str(vsix)],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,  # vsce asks on a terminal about what is missing: never here
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    warnings = [line for line in result.stdout.splitlines() if "WARNING" in line]
    assert all("bundle your extension" in line for line in warnings), warnings
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
    expected = {"extension/package.json", "extension/extension.js", "extension/LICENSE.txt"}
    assert expected | {"extension/syntaxes/resdsl.tmLanguage.json"} <= names
    assert "extension/node_modules/vscode-languageclient/package.json" in names
    assert not [
        n for n in names if n.startswith(("extension/test/", "extension/node_modules/@vscode"))
    ]


def test_calls_of_the_specs_own_blocks_are_scoped(tokenize, tmp_path):
    spec = tmp_path / "own.rds"
    spec.write_text(
        "block wide(width, stride = 1) {\n    conv width 3x3 stride=stride; bn; relu\n}\n"
        "network n {\n    input 3x32x32\n    classes 10\n    stem { conv 16 3x3; bn; relu }\n"
        "    stage { wide 16 x 2; basic 16 }\n    stage { wide 32; stride 2 }\n"
        "    head { avgpool; fc }\n}\n"
    )
    tokens = tokenize(spec)
    call = "entity.name.function.call.resdsl"
    assert scopes_of(tokens, spec, 8, "wide")[-1] == call  # after `{`
    assert scopes_of(tokens, spec, 9, "wide")[-1] == call
    assert scopes_of(tokens, spec, 8, "basic")[-1] == "support.class.block.resdsl"
    assert scopes_of(tokens, spec, 9, "stride")[-1] == "keyword.other.setting.resdsl"
    assert scopes_of(tokens, spec, 2, "conv")[-1] == "support.function.layer.resdsl"
    assert scopes_of(tokens, spec, 2, " width ")[-1] != call  # a value, not a call
    assert scopes_of(tokens, spec, 5, "input")[-1] == "keyword.other.setting.resdsl"
    imagenet = SPECS / "imagenet.rds"
    kinds = tokenize(imagenet)
    assert scopes_of(kinds, imagenet, line_of(imagenet, "kind 64 x n1"), "kind")[-1] == call


def test_the_call_rule_leaves_every_layer_to_the_layer_rule():
    import re

    from resdsl import ops

    grammar = json.loads((EXTENSION / "syntaxes" / "resdsl.tmLanguage.json").read_text())
    excluded = re.search(r"\(\?!\(\?:(.*?)\)\\b\)", grammar["repository"]["call"]["match"])
    words = set(excluded.group(1).split("|"))
    assert {name for name, op in ops.OPS.items() if op.user} <= words
    assert {"basic", "bottleneck", "bottleneck_v1_5", "stride", "input", "shortcut"} <= words
