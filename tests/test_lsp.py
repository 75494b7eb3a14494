"""`resdsl lsp` end to end: pytest-lsp starts the real server over stdio and drives it as an
editor would. Expected shapes and costs come from the layer formulas, not from resdsl."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp", reason="the lsp tests need the test extra")

from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

from resdsl.resources import PACKAGE  # noqa: E402

from helpers import QUIET, SPECS  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "resdsl", "lsp"], server_env=QUIET
    ),
)
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A workspace with the CIFAR family beside the documents that import it."""
    root = tmp_path_factory.mktemp("workspace")
    shutil.copy(SPECS / "cifar.rds", root / "cifar.rds")
    return root


VERSIONS: dict[str, int] = {}


async def open_doc(client: LanguageClient, path: Path, text: str) -> str:
    """Write ``text`` to ``path``, open it in the server, wait for its diagnostics."""
    text = textwrap.dedent(text)
    path.write_text(text)
    uri = path.as_uri()
    client.diagnostics.pop(uri, None)
    VERSIONS[uri] = 1
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri=uri, language_id="resdsl", version=1, text=text)
        )
    )
    await wait_for_diagnostics(client, uri)
    return uri


async def change_doc(client: LanguageClient, uri: str, text: str) -> None:
    VERSIONS[uri] += 1
    client.diagnostics.pop(uri, None)
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(uri=uri, version=VERSIONS[uri]),
            [lsp.TextDocumentContentChangeWholeDocument(textwrap.dedent(text))],
        )
    )
    await wait_for_diagnostics(client, uri)


async def wait_for_diagnostics(client: LanguageClient, uri: str) -> None:
    while uri not in client.diagnostics:
        await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)


async def hover_text(client: LanguageClient, uri: str, line: int, character: int) -> str:
    result = await client.text_document_hover_async(
        lsp.HoverParams(lsp.TextDocumentIdentifier(uri), lsp.Position(line, character))
    )
    assert result is not None, f"no hover at {line}:{character}"
    return result.contents.value


SMALL = textwrap.dedent("""\
    import "cifar.rds"

    network small = cifar_resnet(n = 3)
""")

OWN = textwrap.dedent("""\
    network tiny {
        input 3x32x32
        classes 10
        stem  { conv 16 3x3; bn; relu }
        stage { basic 16 x 3 }
        head  { avgpool; fc }
    }
""")

# ---------------------------------------------------------------- diagnostics


async def test_diagnostics_on_open_with_range_and_code(client, folder):
    uri = await open_doc(
        client, folder / "bad.rds", "network n {\n    stem { conv 16 3x3 @ 2 }\n}\n"
    )
    (diag,) = client.diagnostics[uri]
    assert diag.code == "RDS001"
    assert diag.source == "resdsl"
    assert diag.severity == lsp.DiagnosticSeverity.Error
    assert diag.range.start == lsp.Position(1, "    stem { conv 16 3x3 @".index("@"))
    assert diag.message.startswith("unexpected character '@'")


async def test_diagnostics_on_change(client, folder):
    uri = await open_doc(client, folder / "edit.rds", OWN)
    assert list(client.diagnostics[uri]) == []
    await change_doc(client, uri, OWN.replace("bn; relu }", "bn; rleu }"))
    (diag,) = client.diagnostics[uri]
    assert "unknown layer or block `rleu`" in diag.message
    assert "did you mean `relu`?" in diag.message
    assert diag.range.start.line == 3
    assert diag.range.start.character == OWN.splitlines()[3].index("relu")
    await change_doc(client, uri, OWN.replace("classes 10", "classes 10 }"))
    (diag,) = client.diagnostics[uri]
    assert diag.code == "RDS002" and diag.range.start.line == 3  # `stem`, after the `}`
    assert diag.message.startswith("unexpected `stem`")
    await change_doc(client, uri, OWN)
    assert list(client.diagnostics[uri]) == []


async def test_errors_in_an_imported_file_show_on_the_import(client, folder):
    (folder / "broken_family.rds").write_text("block b(w) {\n    convv w 3x3\n}\n")
    uri = await open_doc(
        client,
        folder / "imports_broken.rds",
        'import "broken_family.rds"\nnetwork m {\n  input 3x8x8\n  classes 2\n'
        "  stage { b 4 }\n  head { avgpool; fc }\n}\n",
    )
    (diag,) = client.diagnostics[uri]
    assert diag.range.start.line == 0  # the import
    assert "broken_family.rds:2:5" in diag.message and "convv" in diag.message
    (related,) = diag.related_information
    assert related.location.uri == (folder / "broken_family.rds").as_uri()
    assert related.location.range.start == lsp.Position(1, 4)


async def test_a_library_file_and_unused_blocks_get_diagnostics(client, folder):
    """A file of families only, and a block that nothing calls, are resolved all the same."""
    family = (SPECS / "cifar.rds").read_text().replace("basic 32 x n", "basci 32 x n")
    family += "\nblock unused(width) {\n    conv width 3x3; bn; rleu\n}\n"
    uri = await open_doc(client, folder / "library.rds", family)
    first, second = sorted(client.diagnostics[uri], key=lambda d: d.range.start.line)
    lines = family.splitlines()
    row = next(i for i, line in enumerate(lines) if "basci" in line)
    assert first.code == "RDS101" and "`basci`" in first.message
    assert first.range.start == lsp.Position(row, lines[row].index("basci"))
    assert "did you mean `basic`?" in first.message
    assert second.code == "RDS101" and "`rleu`" in second.message
    assert second.range.start == lsp.Position(len(lines) - 2, lines[-2].index("rleu"))


async def test_a_library_shows_the_shapes_of_the_instances_beside_it(tmp_path_factory):
    """A file of families only has no network of its own: its hovers use the networks that the
    files beside it build from it (here ResNet-8: cifar_resnet(n = 1))."""
    root = tmp_path_factory.mktemp("library")
    shutil.copy(SPECS / "cifar.rds", root / "cifar.rds")
    (root / "eight.rds").write_text('import "cifar.rds"\nnetwork eight = cifar_resnet(n = 1)\n')
    (root / "other.rds").write_text("network unrelated {\n    input 3x8x8\n    classes 2\n}\n")
    from resdsl import lsp as server

    text = (root / "cifar.rds").read_text()
    analysis = server.analyse(text, str(root / "cifar.rds"))
    assert list(analysis.networks) == ["eight"]
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines, 1) if "basic 32 x n" in line)
    shown = server.hover(analysis, row, lines[row - 1].index("basic") + 1)
    # the one block of stage 2: 3x3 convs 16->32 and 32->32, two BNs of 32
    assert "**basic** in `eight`: 1 block instance(s)" in shown
    assert f"| layer2.0 | stage 2 | 32x16x16 | {9 * 16 * 32 + 9 * 32 * 32 + 4 * 32:,} |" in shown
    edited = server.analyse(text + "\n", str(root / "cifar.rds"))  # unsaved: not as on disk
    assert edited.networks == {}


async def test_a_library_gets_the_errors_its_instances_find(tmp_path_factory):
    """A family's mistake that only values reveal: the files beside the library build it
    (w = 16 on 32x32 maps), and the 40x40 window is reported in the library, with a note at
    the instance; a family with every default is built at its defaults, with a note saying so."""
    root = tmp_path_factory.mktemp("instances")
    family = textwrap.dedent("""\
        network fam(w) {
            input 3x32x32
            classes 10
            stem  { conv w 3x3; bn; relu }
            stage { basic w; maxpool 40x40 pad=0 }
            head  { avgpool; fc }
        }
    """)
    (root / "fam.rds").write_text(family)
    (root / "use.rds").write_text('import "fam.rds"\nnetwork mine = fam(w = 16)\n')
    from resdsl import lsp as server

    analysis = server.analyse(family, str(root / "fam.rds"))
    (error,) = [e for e in analysis.errors if e.kind == "error"]
    column = family.splitlines()[4].index("maxpool") + 1
    assert error.code == "RDS203" and (error.span.line, error.span.column) == (5, column)
    diagnostic = server.to_diagnostic(error, analysis)
    (note,) = diagnostic.related_information
    assert note.location.uri == (root / "use.rds").as_uri()
    assert note.location.range.start == lsp.Position(1, 0)
    assert "`mine`" in note.message

    defaulted = family.replace("fam(w)", "fam(w = 8)")
    (root / "fam.rds").write_text(defaulted)
    (root / "use.rds").unlink()
    analysis = server.analyse(defaulted, str(root / "fam.rds"))
    (error,) = [e for e in analysis.errors if e.kind == "error"]
    assert error.code == "RDS203"
    assert [r.message for r in error.related] == ["`fam` checked at its defaults: w = 8"]
    sound = defaulted.replace("; maxpool 40x40 pad=0", "")
    (root / "fam.rds").write_text(sound)
    analysis = server.analyse(sound, str(root / "fam.rds"))
    assert analysis.errors == [] and list(analysis.networks) == ["fam"]
    shown = server.hover(analysis, 5, 13)  # `basic w` at w = 8: two 3x3 convs 8->8, two BNs
    assert f"| {2 * 9 * 8 * 8 + 2 * 16:,} |" in shown, shown


async def test_warnings_are_published_as_warnings(client, folder):
    text = OWN.replace("basic 16 x 3", "basic 16 stride=2 x 3") + "block spare(w) {\n    relu\n}\n"
    uri = await open_doc(client, folder / "warned.rds", text)
    found = sorted(client.diagnostics[uri], key=lambda d: d.range.start.line)
    assert [(d.code, d.severity) for d in found] == [
        ("RDS502", lsp.DiagnosticSeverity.Warning),
        ("RDS501", lsp.DiagnosticSeverity.Warning),
    ]
    assert found[0].range.start == lsp.Position(4, text.splitlines()[4].index("stride=2"))


# ---------------------------------------------------------------- hover


async def test_hover_on_a_network_shows_its_totals(client, folder):
    uri = await open_doc(client, folder / "small.rds", SMALL)
    text = await hover_text(client, uri, 2, 10)
    assert "**network small**" in text
    assert "parameters: 269,722" in text  # ResNet-20's 0.27M (He et al. 2015, Table 6)
    assert "input 3x32x32 → output 10x1x1" in text


async def test_hover_on_a_layer_shows_shape_params_and_macs(client, folder):
    uri = await open_doc(client, folder / "own.rds", OWN)
    text = await hover_text(client, uri, 3, 13)  # `conv 16 3x3` on 3x32x32
    # 16 filters of 3x3x3: 432 weights; one MAC per weight per output pixel (32x32)
    assert "| conv1 | 16x32x32 | 432 | 442,368 |" in text
    text = await hover_text(client, uri, 5, OWN.splitlines()[5].index("fc"))  # 16 -> 10
    assert "| fc | 10x1x1 | 170 | 160 |" in text


async def test_hover_on_a_block_shows_every_instance_of_its_stage(client, folder):
    uri = await open_doc(client, folder / "own.rds", OWN)
    text = await hover_text(client, uri, 4, 13)  # `basic 16 x 3`
    # each basic block: two 3x3 convs 16 -> 16 (2 x 2,304 weights) and two BNs (2 x 32)
    per_block, macs = 2 * 16 * 16 * 9 + 2 * 2 * 16, 2 * 16 * 16 * 9 * 32 * 32
    assert "3 block instance(s)" in text
    assert f"| layer1.0 … layer1.2 (3x) | stage 1 | 16x32x32 | {per_block:,} | {macs:,} |" in text
    assert f"| **all 3** | | | {3 * per_block:,} | {3 * macs:,} |" in text


async def test_hover_in_a_family_file_uses_the_instances_of_the_file(client, folder):
    text = (SPECS / "cifar.rds").read_text() + "\nnetwork two = cifar_resnet(n = 2)\n"
    uri = await open_doc(client, folder / "family_and_instance.rds", text)
    line = next(i for i, t in enumerate(text.splitlines()) if "basic 32" in t)
    hover = await hover_text(client, uri, line, 12)
    # stage 2's first block halves the maps and widens 16 -> 32 (option A: no weights added)
    first = 16 * 32 * 9 + 32 * 32 * 9 + 2 * 2 * 32
    assert f"| layer2.0 | stage 2 | 32x16x16 | {first:,} |" in hover


async def test_hover_on_a_shortcut_shows_where_it_joined(client, folder):
    text = textwrap.dedent("""\
        shortcut D {
            change { avgpool stride stride=stride; conv out 1x1; bn }
        }
        network d {
            input 3x16x16
            classes 10
            shortcut D
            stem  { conv 8 3x3 }
            stage { basic 8 x 2 }
            stage { basic 16; stride 2 }
            head  { avgpool; fc }
        }
        """)
    uri = await open_doc(client, folder / "d.rds", text)
    # two blocks keep their shape (the identity); the third halves the maps and widens 8 -> 16
    assert await hover_text(client, uri, 0, 10) == "shortcut `D`: d: 2 identity, d: 1 change"
    conv = await hover_text(client, uri, 1, text.splitlines()[1].index("conv"))
    # 8 -> 16 channels 1x1 on the pooled 8x8 map: 128 weights, 8,192 MACs
    assert "| layer2.0.downsample.1 | 16x8x8 | 128 | 8,192 |" in conv


async def test_hover_on_train_settings_shows_values_after_inheritance(client, folder):
    uri = await open_doc(
        client,
        folder / "warm.rds",
        SMALL + "\ntrain small {\n    batch 64\n    warmup lr 0.01 until train_error < 80%\n}\n",
    )
    text = await hover_text(client, uri, 5, 6)  # `batch 64`: this file overrides the family
    assert "`batch 64` — from warm.rds:6" in text
    text = await hover_text(client, uri, 6, 6)  # in spec syntax, not a Python repr
    assert "`warmup lr 0.01 until train_error < 80%` — from warm.rds:7" in text
    text = await hover_text(client, uri, 4, 2)  # the header: every setting, with its origin
    assert "`optimizer sgd lr 0.1 momentum 0.9 weight_decay 0.0001` — from cifar.rds:" in text
    assert "`schedule step at 32000, 48000 by 0.1` — from cifar.rds:" in text


async def test_hover_after_a_layout_change_follows_the_moved_lines(client, folder):
    uri = await open_doc(client, folder / "moving.rds", OWN)
    await change_doc(client, uri, "# a comment\n\n" + textwrap.dedent(OWN))
    text = await hover_text(client, uri, 5, 13)  # `conv 16 3x3`, two lines down
    assert "| conv1 | 16x32x32 | 432 | 442,368 |" in text


# ---------------------------------------------------------------- definition


async def definition(client, uri, line, character):
    result = await client.text_document_definition_async(
        lsp.DefinitionParams(lsp.TextDocumentIdentifier(uri), lsp.Position(line, character))
    )
    assert result is not None
    return result


async def test_definition_of_families_blocks_imports_and_parameters(client, folder):
    uri = await open_doc(client, folder / "small.rds", SMALL)
    family = await definition(client, uri, 2, 20)  # cifar_resnet
    assert family.uri == (folder / "cifar.rds").as_uri()
    line = (folder / "cifar.rds").read_text().splitlines()[family.range.start.line]
    assert line.startswith("network cifar_resnet(n)")
    imported = await definition(client, uri, 0, 10)  # "cifar.rds"
    assert imported.uri == (folder / "cifar.rds").as_uri()
    own = await open_doc(client, folder / "own.rds", OWN)
    block = await definition(client, own, 4, 13)  # basic, from the prelude
    assert block.uri == (PACKAGE / "prelude.rds").resolve().as_uri()
    prelude = (PACKAGE / "prelude.rds").read_text().splitlines()
    assert prelude[block.range.start.line].startswith("block basic(")
    fam = await open_doc(client, folder / "fam.rds", "network f(k) {\n  classes k\n}\n")
    param = await definition(client, fam, 1, 10)  # k
    assert param.uri == fam and param.range.start == lsp.Position(0, 10)


# ---------------------------------------------------------------- completion


async def labels(client, uri, line, character) -> set[str]:
    result = await client.text_document_completion_async(
        lsp.CompletionParams(lsp.TextDocumentIdentifier(uri), lsp.Position(line, character))
    )
    return {item.label for item in result.items}


async def test_completion(client, folder):
    lines = [
        "shortcut D {",
        "    change { conv out 1x1;  }",
        "    ",
        "}",
        "network c {",
        "    shortcut ",
        "    stage { ",
        "    stage { conv 16 3x3 ",
        "    stem { ",
        "}",
        "train c {",
        "    optimizer sgd ",
        "    ",
        "}",
    ]
    text = "\n".join(lines) + "\n"
    uri = await open_doc(client, folder / "complete.rds", text)
    # the prelude's shortcuts and the file's own
    assert await labels(client, uri, 5, len(lines[5])) == {"A", "B", "C", "none", "D"}
    in_case = await labels(client, uri, 1, len(lines[1]) - 2)
    assert {"conv", "bn", "avgpool", "subsample", "in", "out", "stride"} <= in_case
    assert "basic" not in in_case  # a shortcut is made of layers
    assert {"keep", "change", "always", "off"} <= await labels(client, uri, 2, 4)
    in_stage = await labels(client, uri, 6, len(lines[6]))
    assert {"conv", "bn", "relu", "fc", "basic", "bottleneck", "stride"} <= in_stage
    assert {"stride=", "pad=", "groups=", "bias="} <= await labels(client, uri, 7, len(lines[7]))
    assert {"group", "conv", "maxpool"} <= await labels(client, uri, 8, len(lines[8]))
    assert {"lr", "momentum", "weight_decay"} <= await labels(client, uri, 11, len(lines[11]))
    settings = await labels(client, uri, 12, 4)
    assert {"data", "batch", "optimizer", "schedule", "warmup"} <= settings


async def test_completion_offers_the_families_after_network_name_equals(client, folder):
    text = 'import "cifar.rds"\nnetwork mine(k) {\n    input 3x8x8\n    classes 2\n}\nnetwork x = '
    uri = await open_doc(client, folder / "families.rds", text)
    found = await labels(client, uri, 5, len("network x = "))
    assert {"cifar_resnet", "mine"} <= found and "basic" not in found and "x" not in found


async def test_hovers_on_sections_settings_and_add(client, folder):
    """`stage`, a stage's `stride`, `input` and `add` say what they made, in numbers that
    an independent count gives (ResNet-8: cifar_resnet(n = 1))."""
    family = (SPECS / "cifar.rds").read_text()
    text = family + "\nnetwork eight = cifar_resnet(n = 1)\n"
    uri = await open_doc(client, folder / "sections.rds", text)
    lines = text.splitlines()

    def at(word, nth=0):
        rows = [i for i, line in enumerate(lines) if line.strip().startswith(word)]
        return rows[nth], lines[rows[nth]].index(word) + 1

    stage = await hover_text(client, uri, *at("stage", 1))
    assert "**stage `layer2`** of `eight`: 1 blocks (basic)" in stage
    # a basic block 16 -> 32 at stride 2: 3x3x16x32 + 3x3x32x32 conv weights, two BNs of 32
    assert "16x32x32 → 32x16x16, 13,952 params" in stage
    row, _ = at("stage", 1)
    stride = await hover_text(client, uri, row, lines[row].index("stride") + 1)
    assert "the stage's first block, `layer2.0`, strides: 16x32x32 → 32x16x16" in stride
    assert "3 channels of 32x32" in await hover_text(client, uri, *at("input"))
    block = "block two(w) {\n    conv w 3x3; bn\n    add; relu\n}\n"
    uri = await open_doc(client, folder / "adds.rds", block + OWN.replace("basic 16", "two 16"))
    joined = await hover_text(client, uri, 2, 5)
    assert "**add**: `two`'s shortcut joins its branch here. In this file: identity ×3" in joined


# ---------------------------------------------------------------- formatting and symbols


async def test_formatting(client, folder):
    uri = await open_doc(client, folder / "messy.rds", "network  n = f( 1 )   # c\n")
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(
            lsp.TextDocumentIdentifier(uri), lsp.FormattingOptions(tab_size=4, insert_spaces=True)
        )
    )
    (edit,) = edits
    assert edit.new_text == "network n = f(1)  # c\n"
    assert edit.range.start == lsp.Position(0, 0)


async def test_document_symbols(client, folder):
    text = textwrap.dedent(OWN) + "\nblock twice(w) {\n    conv w 3x3\n}\n\ntrain tiny {\n}\n"
    uri = await open_doc(client, folder / "symbols.rds", text)
    result = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(lsp.TextDocumentIdentifier(uri))
    )
    names = [(s.name, s.kind) for s in result]
    assert names == [
        ("network tiny", lsp.SymbolKind.Class),
        ("block twice", lsp.SymbolKind.Function),
        ("train tiny", lsp.SymbolKind.Struct),
    ]
    children = [c.name for c in result[0].children]
    assert children == ["stem", "stage 1", "head"]
    assert result[0].range.start == lsp.Position(0, 0)
    assert result[0].range.end.line == 6
