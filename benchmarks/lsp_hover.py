"""How fast `resdsl lsp` answers a hover on ResNet-1202 right after an edit.

A client (pygls) starts the real server over stdio, opens specs/resnet1202.rds and hovers once to
warm up. Then, R times for each kind of edit, it sends ``textDocument/didChange`` and at once a
``textDocument/hover`` on the network's name, and times from sending the change to receiving the
hover's answer:

* layout: a comment line is added or removed above the network (its meaning is kept: the server
  moves the built network's positions instead of building it again);
* meaning: ``n = 200`` becomes ``n = 201`` and back (the server parses, builds, checks and costs
  ResNet-1202 again: 4,209 ops).

The server waits up to 80 ms for the new analysis; past that it answers from the last one and
says so (a provisional answer). The table gives, for each kind of edit, the median and worst time
to the answer, how many answers were provisional, and the median time until the hover shows the
edited text's figures. Run::

    python benchmarks/lsp_hover.py              # 10 edits of each kind
    python benchmarks/lsp_hover.py --repeat 30
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

SPEC = Path(__file__).resolve().parent.parent / "specs" / "resnet1202.rds"
TARGET_MS = 200.0
STALE = "figures from before the last edit"


async def main(repeat: int) -> None:
    client = LanguageClient("lsp-hover-benchmark", "1")
    published = asyncio.Event()

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        published.set()

    await client.start_io(sys.executable, "-m", "resdsl", "lsp")
    await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    client.initialized(lsp.InitializedParams())
    uri = SPEC.as_uri()
    text = SPEC.read_text()
    line = next(i for i, t in enumerate(text.splitlines()) if t.startswith("network resnet1202"))
    version = 1
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri=uri, language_id="resdsl", version=version, text=text)
        )
    )

    async def hover(at_line: int) -> str:
        result = await client.text_document_hover_async(
            lsp.HoverParams(lsp.TextDocumentIdentifier(uri), lsp.Position(at_line, 10))
        )
        assert result is not None and "network resnet1202" in result.contents.value, result
        return result.contents.value

    start = time.perf_counter()
    await published.wait()  # as an editor does: the file is analysed once it opens
    first = await hover(line)
    cold = (time.perf_counter() - start) * 1000
    assert "parameters: 19,421,274" in first  # ResNet-1202's 19.4M (He et al. 2015, Table 6)

    async def edit(new_text: str, at_line: int) -> tuple[float, bool, float]:
        """Milliseconds to the first answer, whether it was provisional, and milliseconds
        until an answer with the new text's figures."""
        nonlocal version
        version += 1
        start = time.perf_counter()
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [lsp.TextDocumentContentChangeWholeDocument(new_text)],
            )
        )
        answer = await hover(at_line)
        first = (time.perf_counter() - start) * 1000
        stale = STALE in answer
        while STALE in answer:
            await asyncio.sleep(0.02)
            answer = await hover(at_line)
        return first, stale, (time.perf_counter() - start) * 1000

    layout, meaning = [], []
    commented = "# an edit\n" + text
    deeper = text.replace("n = 200", "n = 201")
    for _ in range(repeat):
        layout.append(await edit(commented, line + 1))
        layout.append(await edit(text, line))
    for _ in range(repeat):
        meaning.append(await edit(deeper, line))
        meaning.append(await edit(text, line))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()

    print(f"hover on resnet1202 after an edit ({2 * repeat} edits of each kind)")
    print(f"first hover after opening (build included): {cold:.0f} ms")
    print(
        f"{'edit':<27}{'answer ms':>10}{'worst':>8}{'/target':>9}{'provisional':>13}"
        f"{'fresh ms':>10}"
    )
    for name, runs in (("layout (comment line)", layout), ("meaning (n = 200 <-> 201)", meaning)):
        answers = [r[0] for r in runs]
        median = statistics.median(answers)
        provisional = sum(r[1] for r in runs)
        fresh = statistics.median(r[2] for r in runs)
        print(
            f"{name:<27}{median:>10.1f}{max(answers):>8.1f}{median / TARGET_MS:>9.2f}"
            f"{f'{provisional}/{len(runs)}':>13}{fresh:>10.1f}"
        )
    print(f"target: {TARGET_MS:.0f} ms; fresh: until the hover shows the edited text's figures")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="edits of each kind (x2)")
    asyncio.run(main(parser.parse_args().repeat))
