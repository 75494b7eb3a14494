"""What every target promises: it reads only the IR, and no spec text reaches its code raw."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

import resdsl
from resdsl.emit import emit, targets

from helpers import GENERATED, ROOT, SPECS, run

EMITTERS = sorted((ROOT / "resdsl" / "targets").glob("*.py")) + [ROOT / "resdsl" / "emit.py"]
BEFORE_THE_IR = {"syntax", "parser", "linker", "elaborate"}
STDLIB = {"argparse", "concurrent", "importlib", "io", "json", "math", "os", "pathlib", "pickle"}
STDLIB |= {"shutil", "signal", "sys", "tarfile", "threading", "time", "zipfile", "zlib"}
FRAMEWORK = {"torch": {"torch"}, "tf": {"tensorflow", "keras"}}


@pytest.mark.parametrize("path", EMITTERS, ids=[p.name for p in EMITTERS])
def test_emitters_import_nothing_before_the_ir(path):
    """Targets read the IR: they import neither the syntax tree nor the stages that make it."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[-1])
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[-1] for alias in node.names}
    assert not imported & BEFORE_THE_IR, imported & BEFORE_THE_IR


@pytest.mark.parametrize("target", sorted(FRAMEWORK))
@pytest.mark.parametrize("spec", ["resnet20", "resnet50"])  # CIFAR-10 arrays; ImageNet files
def test_generated_files_import_only_their_framework_and_numpy(spec, target):
    """At module level, each generated file imports the standard library, numpy, its framework
    and the files generated beside it; nothing else (sklearn and Pillow only where they are used,
    inside the function that needs them)."""
    siblings = {name.removesuffix(".py") for name in GENERATED}
    files = emit(resdsl.load(SPECS / f"{spec}.rds"), target)
    assert list(files) == list(GENERATED)
    for name, text in files.items():
        top = set()
        for node in ast.parse(text).body:
            if isinstance(node, ast.Import):
                top |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                top.add(node.module.split(".")[0])
        extra = top - STDLIB - FRAMEWORK[target] - {"numpy"} - siblings
        assert not extra, (name, extra)
        assert top & FRAMEWORK[target], name


PAYLOAD = 'os.system("echo pwned")'
HOSTILE = f'''
# """; import os; {PAYLOAD} #
block evil(width, stride = 1) {{  # """; import os; {PAYLOAD} #
    conv width 3x3 stride=stride; bn; relu  # \'\'\'; __import__("os").system("pwned")
    conv width 3x3; bn
    add  # \\n import os
    relu
}}

network n {{  # """
    input 3x8x8
    classes 10
    stem {{ conv 4 3x3; bn; relu }}  # """
    stage {{ evil 4 x 2 }}
    stage {{ evil 8; stride 2 }}
    head {{ avgpool; fc }}
}}

train n {{  # """; import os
    data digits
    batch 16
    optimizer sgd lr 0.1 momentum 0.9 weight_decay 1e-4
    iterations 10
}}
'''


def smuggled(text: str) -> list[str]:
    """What in a generated file's AST could have come from the payload: names and calls."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Name) and node.id in ("__import__", "system", "pwned"):
            found.append(ast.unparse(node))
        if isinstance(node, ast.Attribute) and node.attr == "system":
            found.append(ast.unparse(node))
    return found


def structure(text: str) -> str:
    """The code's AST with every string literal blanked: what runs, not what it says."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.dump(tree)


@pytest.mark.parametrize("target", ["torch", "tf"])
def test_hostile_comments_and_file_names_never_reach_the_code(target, tmp_path):
    """A payload in comments and in the spec's file name changes no statement of the output."""
    plain = tmp_path / "plain.rds"
    plain.write_text(textwrap.dedent(HOSTILE).replace('"""', "").replace(PAYLOAD, ""))
    spec = tmp_path / 'evil"""\nimport os; os.system(1)\n#.rds'
    spec.write_text(textwrap.dedent(HOSTILE))
    benign, files = emit(resdsl.load(plain), target), emit(resdsl.load(spec), target)
    for file, text in files.items():
        assert smuggled(text) == [], file
        assert "pwned" not in text, file
        assert structure(text) == structure(benign[file]), file
    # the file name a person sees in comments keeps only safe characters, the rest as "?"
    assert "evil????import?os??os.system?1???.rds" in files["model.py"]


def test_emit_output_is_the_same_for_every_target_run_from_anywhere(tmp_path, monkeypatch):
    """Byte-identical output, whatever the working directory and however the path is spelled."""
    spec = tmp_path / "s.rds"
    spec.write_text(textwrap.dedent(HOSTILE))
    first = {t: emit(resdsl.load(spec), t) for t in targets()}
    monkeypatch.chdir(tmp_path)
    assert {t: emit(resdsl.load(Path("s.rds")), t) for t in targets()} == first


def test_compile_cli_with_hostile_names(tmp_path):
    spec = tmp_path / 'x"""y.rds'
    spec.write_text(textwrap.dedent(HOSTILE))
    result = run("compile", spec, "--target", "torch", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "pwned" not in (tmp_path / "out" / "model.py").read_text()
