"""Error codes: every error carries one, every code is explained, every example produces its code;
`check --format json` and `summary --json` follow the JSON Schemas shipped in the package."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

import resdsl
from resdsl import diagnostics
from resdsl.cli import main
from resdsl.diagnostics import CODES

from helpers import BROKEN, SPECS

PACKAGE = Path(resdsl.__file__).resolve().parent

# Modules whose raise sites do not pass `code=` yet: the elaborator, linker, checker, recipe
# reader, emitter and targets are being rewritten, and their codes are registered in
# resdsl/diagnostics.py already. Empty this set as each one gains its codes.
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


def test_every_code_used_in_the_source_is_registered():
    used = set()
    for path in PACKAGE.rglob("*.py"):
        used |= set(re.findall(r"code=\"(RDS\d{3})\"", path.read_text(encoding="utf-8")))
    assert used, "no code= found"
    assert used <= set(CODES), used - set(CODES)


def test_every_code_names_a_module_that_exists():
    for code in CODES.values():
        assert re.fullmatch(r"RDS\d{3}", code.code)
        assert (PACKAGE / code.module).exists(), (code.code, code.module)
        group = {"0": "parser", "1": "names", "2": "shapes", "3": "recipes", "4": "tools"}
        assert code.code[3] in group


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
            assert error.code in CODES
            assert f"error[{error.code}]: " in error.render()


# ---------------------------------------------------------------- explain and the examples


def test_explain_covers_every_code():
    for code in CODES.values():
        page = diagnostics.explain(code.code.lower())
        assert page.startswith(f"{code.code}: {code.title}\n")
        assert code.example.splitlines()[0] in page
        assert code.fix.splitlines()[0] in page
        assert f"resdsl/{code.module}" in page


def test_explain_command():
    result = run("explain", "RDS201")
    assert result.exit_code == 0
    assert "cannot add" in CODES["RDS201"].message
    assert result.stdout.startswith("RDS201: the shortcut and the residual branch")
    assert "valid_conv 16" in result.stdout  # the example
    listed = run("explain", "--list")
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == len(CODES)
    unknown = run("explain", "RDS999")
    assert unknown.exit_code == 2 and "no error code 'RDS999'" in unknown.stderr


def _produce(code, tmp_path, monkeypatch) -> list[tuple[str | None, str]]:
    """Run a code's example as its command says; the (code, message) of each error reported."""
    entry = CODES[code]
    spec = tmp_path / "example.rds"
    spec.write_text(entry.example)
    for name, text in entry.files.items():
        (tmp_path / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    args = [a.replace("{spec}", str(spec)).replace("{dir}", str(tmp_path)) for a in entry.command]
    if args[0].startswith("api:"):
        key, value = args[2].split("=")
        try:
            if args[0] == "api:build":
                resdsl.build(resdsl.parse_file(args[1]), **{key: value})
            else:
                resdsl.emit(resdsl.load(args[1]), value)
        except resdsl.ResdslError as exc:
            return [(e.code, e.message) for e in diagnostics.flatten(exc)]
        return []
    if code == "RDS420":
        monkeypatch.setitem(sys.modules, "matplotlib", None)
    if args[0] == "check":
        result = run(*args, "--format", "json")
        return [(d["code"], d["message"]) for d in json.loads(result.stdout)["diagnostics"]]
    result = run(*args)
    assert result.exit_code == 1, result.output
    found = re.findall(r"^\S*: error(?:\[(RDS\d{3})\])?: (.*)$", result.stderr, re.M)
    found += re.findall(r"^error(?:\[(RDS\d{3})\])?: (.*)$", result.stderr, re.M)
    return [(c or None, m) for c, m in found]


@pytest.mark.parametrize("code", sorted(CODES))
def test_each_example_produces_its_code(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    entry = CODES[code]
    reported = _produce(code, tmp_path, monkeypatch)
    assert reported, f"{code}'s example reports no error"
    if pending(entry.module):
        # its raise site gains its code with the rewrite; until then, the message shows it
        assert any(entry.message in m for _, m in reported), reported
        assert all(c is None or c in CODES for c, _ in reported)
    else:
        assert any(c == code and entry.message in m for c, m in reported), reported


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


@pytest.mark.parametrize("name", ["resnet20", "resnet50", "plain18"])
def test_summary_json_follows_its_schema(name):
    result = run("summary", "--json", SPECS / f"{name}.rds")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    jsonschema.validate(summary, diagnostics.schema("summary"))


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
