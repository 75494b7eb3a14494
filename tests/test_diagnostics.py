"""Error codes: every error carries one, every code has its page (resdsl/error_codes/), every
page's example prints exactly the output the page shows; `check --format json` and `summary
--json` follow the JSON Schemas shipped in the package.

After a change to a message, `RESDSL_BLESS=1 python -m pytest tests/test_diagnostics.py -k output`
rewrites the outputs the pages show (as rustc's `--bless`); review the diff before committing.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

import resdsl
from resdsl import diagnostics
from resdsl.cli import main

from helpers import BROKEN, SPECS

PACKAGE = Path(resdsl.__file__).resolve().parent
PAGES = sorted((PACKAGE / diagnostics.PAGES).glob("*.md"))
PAGES = [p for p in PAGES if p.name != diagnostics.README]

# Modules whose raise sites do not pass `code=` yet: the elaborator, linker, checker, recipe
# reader, emitter and targets are being rewritten, and their codes are registered in
# resdsl/error_codes/ already. Empty this set as each one gains its codes.
PENDING_CODES: set[str] = set()  # every module raises its errors with their codes


def pending(module: str) -> bool:
    return module in PENDING_CODES or any(
        p.endswith("/") and module.startswith(p) for p in PENDING_CODES
    )


def run(*args, **kw):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kw)


# ---------------------------------------------------------------- every raise site has a code


def _error_classes(trees: dict[str, ast.Module]) -> set[str]:
    """ResdslError and every class that derives from it anywhere in the package, and OpProblem
    (the shape problem the checker turns into an error)."""
    names = {"ResdslError", "OpProblem"}
    grew = True
    while grew:
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names:
                    bases = {getattr(b, "id", getattr(b, "attr", None)) for b in node.bases}
                    if bases & names:
                        names.add(node.name)
                        grew = True
    return names - {"ErrorGroup"}  # a group holds errors that carry their own codes


def _constructions(tree: ast.Module, classes: set[str]):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in classes or name == "unknown":
                yield node, {k.arg for k in node.keywords}


def _package_trees() -> dict[str, ast.Module]:
    return {
        path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_every_error_construction_passes_a_code():
    """Scan the package: each `...Error(...)`, `OpProblem(...)` and `unknown(...)` passes code=,
    except in the modules still pending (PENDING_CODES)."""
    trees = _package_trees()
    classes = _error_classes(trees)
    assert {"ParseError", "SpecError", "ShapeError", "TrainError", "TargetError"} <= classes
    missing, checked = [], 0
    for module, tree in trees.items():
        if pending(module) or module == "errors.py":  # errors.py defines them; unknown() passes
            continue
        for node, keywords in _constructions(tree, classes):
            checked += 1
            if "code" not in keywords:
                missing.append(f"resdsl/{module}:{node.lineno}")
    assert checked >= 15, checked  # the scan sees the parser's, the CLI's and the ops' errors
    assert not missing, "errors raised without code=: " + ", ".join(missing)


def test_the_scan_catches_an_error_without_a_code():
    tree = ast.parse("def f():\n    raise SpecError('no code', span)\n")
    classes = _error_classes({"x.py": tree, **_package_trees()})
    found = list(_constructions(tree, classes))
    assert len(found) == 1 and "code" not in found[0][1]


def test_unknown_passes_its_code_on():
    error = resdsl.errors.unknown("unknown thing `x`", None, "x", ["y"], "things", code="RDS101")
    assert error.code == "RDS101" and error.hint == "things: y"


def _code_literals(tree: ast.Module) -> set[str]:
    """Every string constant in a module that is a code: `code="RDS101"`, tables of codes."""
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"RDS\d{3}", node.value)
    }


def test_every_code_used_in_the_source_is_registered():
    used = set().union(*map(_code_literals, _package_trees().values()))
    assert len(used) >= 50, used  # the scan sees the codes of every stage
    assert used <= set(diagnostics.codes()), used - set(diagnostics.codes())


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_each_page_names_the_module_that_raises_its_code(path):
    """`Raised by:` names modules (or folders) whose source holds the code as a string, so a
    page whose code moves to another module fails here until the page follows it."""
    entry = diagnostics.page(path.stem)
    assert entry.code[3] in "012345", entry.code  # syntax, names, shapes, recipes, tools, warnings
    trees = _package_trees()
    for module in entry.modules:
        sources = [m for m in trees if m == module or module.endswith("/") and m.startswith(module)]
        assert sources, f"{path.name}: Raised by `resdsl/{module}`, which does not exist"
        holders = [m for m in sources if entry.code in _code_literals(trees[m])]
        users = [f"resdsl/{m}" for m, tree in trees.items() if entry.code in _code_literals(tree)]
        assert holders, f"{path.name}: `resdsl/{module}` never uses {entry.code}; it is in {users}"


@pytest.fixture
def origins(monkeypatch):
    """Record, for each ResdslError made, the package module whose code made it."""
    made: dict[int, str] = {}
    original = resdsl.ResdslError.__init__

    def init(self, *args, **kwargs):
        frame = sys._getframe(1)
        while frame is not None and (
            frame.f_code.co_name == "__init__" or Path(frame.f_code.co_filename).name == "errors.py"
        ):
            frame = frame.f_back
        path = Path(frame.f_code.co_filename).resolve()
        made[id(self)] = (
            path.relative_to(PACKAGE).as_posix() if path.is_relative_to(PACKAGE) else str(path)
        )
        original(self, *args, **kwargs)

    monkeypatch.setattr(resdsl.ResdslError, "__init__", init)
    return made


@pytest.mark.parametrize("path", sorted(BROKEN.glob("*.rds")), ids=lambda p: p.stem)
def test_every_reported_error_has_a_code(path, origins):
    """What `check` reports for the broken specs carries a code, unless a pending module made
    it."""
    with pytest.raises(resdsl.ResdslError) as info:
        resdsl.check_spec(path)
    errors = diagnostics.flatten(info.value)
    assert errors
    for error in errors:
        if error.code is None:
            assert pending(origins[id(error)]), f"{origins[id(error)]}: {error} has no code"
        else:
            assert error.code in diagnostics.codes()
            assert f"error[{error.code}]: " in error.render()


# ---------------------------------------------------------------- the pages and explain


def test_every_page_parses_and_every_file_is_a_page():
    codes = diagnostics.codes()
    assert list(codes) == [p.stem for p in PAGES] and len(codes) >= 60
    for code, entry in codes.items():
        assert entry.code == code and entry.files and entry.output.strip(), code
        assert entry.page == (PACKAGE / diagnostics.PAGES / f"{code}.md").read_text("utf-8")


GOOD = """\
# RDS499: a code for the tests

Raised by: `resdsl/cli.py`

What it means.

Over two paragraphs.

## Example

`example.rds`:

```rds
network n {
}
```

`other.rds`, encoded in latin-1:

```text
# café
```

`resdsl check example.rds --network n` reports:

```text
example.rds:1:1: error[RDS499]: a message
```

## How to fix it

Do something else.
"""


def test_the_reader_reads_every_part():
    entry = diagnostics.parse_page("RDS499.md", GOOD)
    assert (entry.code, entry.title) == ("RDS499", "a code for the tests")
    assert entry.modules == ("cli.py",)
    assert entry.explanation == "What it means.\n\nOver two paragraphs.\n"
    (example, other) = entry.files
    assert (example.name, example.text) == ("example.rds", "network n {\n}\n")
    assert (other.name, other.encoding, other.data) == ("other.rds", "latin-1", b"# caf\xe9\n")
    assert entry.argv == ["check", "example.rds", "--network", "n"] and not entry.is_call
    assert entry.output == "example.rds:1:1: error[RDS499]: a message\n"
    assert entry.fix == "Do something else.\n" and entry.page == GOOD
    shell = "`resdsl check example.rds --network n` reports:"
    call = GOOD.replace(shell, '`resdsl.build(resdsl.parse("network n {}"))` raises:')
    entry = diagnostics.parse_page("RDS499.md", call)
    assert entry.is_call and entry.command.startswith("resdsl.build(")


@pytest.mark.parametrize(
    "old, new, line, says",
    [
        ("# RDS499: a code", "# RDS498: a code", 1, "must be named RDS498.md"),
        ("# RDS499: a code", "RDS499: a code", 1, "expected the title"),
        ("Raised by: `resdsl/cli.py`", "Raised in cli.py", 3, "expected `Raised by:"),
        ("\n\nOver two", "\n\n\nOver two", 5, "at most one blank line"),
        ("What it means.", "## What it means", 5, "the explanation is prose"),
        ("\n## Example\n", "\n## Examples\n", 9, "the explanation is prose"),
        ("`example.rds`:", "example.rds:", 11, "expected a file of the example"),
        ("latin-1:", "latin-9000:", 18, "unknown encoding 'latin-9000'"),
        ("`other.rds`", "`example.rds`", 18, "`example.rds` is shown twice"),
        ("# café", "# caf€", 18, "`other.rds` cannot be written in latin-1"),
        ("# RDS499: a code for the tests", "# RDS499: a code for the tests ", 1, "the title"),
        ("a message\n```\n", "a message\n", 26, "the ``` block is not closed"),
        (" reports:", " prints:", 24, "expected the command"),
        ("check example.rds", "check 'example.rds'", 24, "expected the command"),
        ("```text\nexample.rds:1:1", "```\nexample.rds:1:1", 26, "the output is a ```text block"),
        ("## How to fix it", "## Fix", 30, "expected '## How to fix it'"),
        ("Do something else.", "Do something else.  ", 32, "trailing spaces"),
        ("Do something else.\n", "Do something else.\n\n", 33, "exactly one newline"),
        ("What it means.\n", "What it means.\r\n", 1, "line endings"),
    ],
)
def test_the_reader_refuses_a_malformed_page(old, new, line, says):
    assert GOOD.count(old) == 1
    with pytest.raises(diagnostics.PageError) as info:
        diagnostics.parse_page("RDS499.md", GOOD.replace(old, new))
    assert str(info.value).startswith(f"RDS499.md:{line}: "), str(info.value)
    assert says in str(info.value)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A copy of the pages, read in place of the package's."""
    shutil.copytree(PACKAGE / diagnostics.PAGES, tmp_path / "pages")
    monkeypatch.setattr(diagnostics, "_folder", lambda: tmp_path / "pages")
    diagnostics.codes.cache_clear()
    yield tmp_path / "pages"
    diagnostics.codes.cache_clear()


def test_adding_a_code_is_adding_a_page(folder):
    (folder / "RDS499.md").write_text(GOOD, encoding="utf-8")
    assert "RDS499" in diagnostics.codes()
    assert "\nRDS499  a code for the tests\nRDS501  " in diagnostics.listing()
    assert run("explain", "rds499").stdout == GOOD


@pytest.mark.parametrize("name", ["RDS12.md", "rds101.md", "RDS101.txt", "notes.md"])
def test_a_stray_file_among_the_pages_is_an_error(folder, name):
    (folder / name).write_text(GOOD, encoding="utf-8")
    with pytest.raises(diagnostics.PageError, match=re.escape(name)):
        diagnostics.codes()


def test_a_page_that_is_not_utf8_is_an_error(folder):
    (folder / "RDS499.md").write_bytes(GOOD.replace("café", "caf\xe9").encode("latin-1"))
    with pytest.raises(diagnostics.PageError, match="RDS499.md: not UTF-8"):
        diagnostics.page("RDS499")


def test_explain_prints_each_page():
    for code, entry in diagnostics.codes().items():
        page = diagnostics.explain(code.lower().removeprefix("rds"))
        assert page == entry.page
        assert page.startswith(f"# {code}: {entry.title}\n\nRaised by: `resdsl/")
        assert entry.files[0].text in page and entry.output in page and entry.fix in page


def test_explain_command():
    result = run("explain", "RDS201")
    assert result.exit_code == 0
    assert result.stdout.startswith("# RDS201: the shortcut and the residual branch")
    assert "valid_conv 16" in result.stdout  # the example
    assert "error[RDS201]: stage 1 › block 1 › add: cannot add 16x32x32" in result.stdout
    listed = run("explain", "--list")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert len(lines) == len(diagnostics.codes())
    assert "RDS107  cannot import a file" in lines and lines == sorted(lines)
    unknown = run("explain", "RDS999")
    assert unknown.exit_code == 2 and "no error code 'RDS999'" in unknown.stderr
    assert run("explain", "../README").exit_code == 2


# ---------------------------------------------------------------- each page's example

# the examples that need a condition the page states in words: an optional extra missing
WITHOUT = {"RDS420": "matplotlib", "RDS406": "onnx", "RDS434": "timm"}


def portable(output: str, folder: Path) -> str:
    """The output as a page shows it: the folder the example ran in, as given or resolved, is
    written `$DIR` (the example's own paths are relative, so this only touches paths that
    resdsl made absolute, such as an import's)."""
    for path in sorted({str(folder), str(folder.resolve())}, key=len, reverse=True):
        output = output.replace(path, "$DIR")
    return output


def test_portable_replaces_the_folder(tmp_path):
    text = f"example.rds:1:8: error[RDS107]: no such file {tmp_path.resolve()}/missing.rds"
    assert (
        portable(text, tmp_path) == "example.rds:1:8: error[RDS107]: no such file $DIR/missing.rds"
    )


def produce(entry, folder: Path, monkeypatch) -> str:
    """Write the page's files into ``folder`` and run its command there: what it prints (a call:
    the error it raises, rendered as the CLI prints it)."""
    for file in entry.files:
        (folder / file.name).write_bytes(file.data)
    monkeypatch.chdir(folder)
    if entry.is_call:
        with pytest.raises(resdsl.ResdslError) as info:
            eval(entry.command, {"resdsl": resdsl})  # a call the page shows, from the package
        return info.value.render() + "\n"
    if entry.code in WITHOUT:
        monkeypatch.setitem(sys.modules, WITHOUT[entry.code], None)
    result = run(*entry.argv)
    warning = entry.code.startswith("RDS5")  # the warnings' group: shown, and exit 0
    assert result.exit_code == (0 if warning else 1), result.output
    return result.output


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_each_example_prints_the_output_its_page_shows(path, tmp_path, monkeypatch):
    entry = diagnostics.page(path.stem)
    output = portable(produce(entry, tmp_path, monkeypatch), tmp_path)
    if output != entry.output and os.environ.get("RESDSL_BLESS") == "1":
        old = f"```text\n{entry.output}```\n"
        assert entry.page.count(old) == 1, f"{path.name}: cannot find its output block"
        path.write_text(entry.page.replace(old, f"```text\n{output}```\n"), encoding="utf-8")
        return
    assert output == entry.output, f"{path.name} shows another output (RESDSL_BLESS=1 rewrites it)"
    reported = re.findall(r"\b(?:error|warning)\[(RDS\d{3})\]: ", output)
    assert set(reported) <= set(diagnostics.codes()), reported
    if not any(pending(m) for m in entry.modules):  # else its raise site gains it with the rewrite
        assert entry.code in reported, f"{path.name}'s example reports {reported}"


# ---------------------------------------------------------------- JSON and its schemas


def test_schemas_are_valid_json_schemas():
    for name in ("diagnostics", "summary"):
        jsonschema.Draft202012Validator.check_schema(diagnostics.schema(name))


@pytest.mark.parametrize(
    "paths",
    [
        [BROKEN / "milestone_past_end.rds", SPECS / "resnet20.rds"],
        [BROKEN / "syntax_missing_brace.rds", BROKEN / "duplicate_block.rds"],
        sorted(BROKEN.glob("*.rds")),
    ],
    ids=["two-files", "syntax", "all-broken"],
)
def test_check_json_follows_its_schema(paths):
    result = run("check", "--format", "json", *paths)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    jsonschema.validate(report, diagnostics.schema("diagnostics"))
    assert [f["file"] for f in report["files"]] == [str(p) for p in paths]
    assert not report["ok"] and report["diagnostics"]


def test_check_json_reports_ranges_codes_hints_and_related(tmp_path):
    spec = tmp_path / "open.rds"
    spec.write_text("network open {\n    input 3x32x32\n    stem { conv 16 3x3 }\n")
    report = json.loads(run("check", "--format", "json", spec).stdout)
    (diag,) = report["diagnostics"]
    assert diag["code"] == "RDS003" and diag["severity"] == "error"
    assert diag["file"] == str(spec)
    assert diag["range"]["start"] == {"line": 3, "column": 25}
    assert diag["message"] == "unexpected end of file"
    assert diag["hints"] and diag["hints"][0].startswith("expected")
    (related,) = diag["related"]
    assert related["range"]["start"] == {"line": 1, "column": 14}  # the `{` left open
    assert "not closed" in related["message"]


def test_check_json_of_sound_specs(tmp_path):
    result = run("check", "--format", "json", SPECS / "resnet20.rds", SPECS / "cifar.rds")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    jsonschema.validate(report, diagnostics.schema("diagnostics"))
    assert report == {
        "version": 1,
        "ok": True,
        "files": [
            {"file": str(SPECS / "resnet20.rds"), "ok": True, "networks": ["resnet20"]},
            {"file": str(SPECS / "cifar.rds"), "ok": True, "networks": []},
        ],
        "diagnostics": [],
    }


@pytest.mark.parametrize(
    "name",
    ["resnet20", "resnet50", "plain18", "zoo/seresnext50_32x4d", "zoo/resnetv2_50x1_bit"]
    + ["zoo/ecaresnet50d", "zoo/resnetblur50", "zoo/resnet50_gn", "zoo/keras_resnet50v2"],
)
def test_summary_json_follows_its_schema(name):
    result = run("summary", "--json", SPECS / f"{name}.rds")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    jsonschema.validate(summary, diagnostics.schema("summary"))


def test_the_summary_schema_names_every_op_of_the_op_table():
    from resdsl import ops

    named = diagnostics.schema("summary")["$defs"]["op"]["enum"]
    assert sorted(named) == sorted(name for name, op in ops.OPS.items() if op.inputs)


def test_the_summary_schema_refuses_what_it_should():
    bad = {"network": "n", "input": [3, 32], "params": 1, "macs": 1, "layers": []}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, diagnostics.schema("summary"))


def test_rendered_codes():
    with pytest.raises(resdsl.ParseError) as info:
        resdsl.parse("network n {\n  stem { conv 16 3x3 @ }\n}\n", "t.rds")
    assert str(info.value).startswith("t.rds:2:22: error[RDS001]: unexpected character '@'")
    error = resdsl.ParseError("m", code="RDS002")
    assert str(error) == "error[RDS002]: m"
