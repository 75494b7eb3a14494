"""Graphviz pictures of the IR: one box per block, or with --expand one node per op.

DOT needs nothing external; SVG and PNG run Graphviz's `dot`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .costs import costs
from .errors import ResdslError
from .ir import Network
from .ops import OPS, fmt


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(net: Network, expand: bool = False) -> str:
    """The network as DOT text, each node labelled with its output shape; collapsed, each
    block with its parameters too, and each stage a cluster around its blocks."""
    lines = [
        f"digraph {_quote(net.name)} {{",
        "  rankdir=TB;",
        '  graph [fontname="Helvetica", fontsize=11];',
        '  node [shape=box, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    if expand:
        for node in net.nodes():
            label = f"{node.name}\n{node.op} {fmt(node.shape)}"
            shape = ", shape=ellipse" if OPS[node.op].inputs != 1 else ""  # inputs and joins
            lines.append(f"  {_quote(node.name)} [label={_quote(label)}{shape}];")
        for node in net.nodes():
            for source in node.inputs:
                joins = OPS[node.op].inputs == 2 and source == node.inputs[-1]
                style = ""
                if node.role == "shortcut" or node.role == "add" and joins:
                    style = " [style=dashed]"
                elif node.name in net.aside or joins and source in net.aside:  # a gate, aside
                    style = " [style=dotted, class=side]"
                lines.append(f"  {_quote(source)} -> {_quote(node.name)}{style};")
        return "\n".join(lines + ["}"]) + "\n"

    blocks = {b.name: b for b in net.blocks}
    top = {}  # block name -> the outermost block that contains it
    for name in blocks:
        outer = name
        while blocks[outer].parent is not None:
            outer = blocks[outer].parent
        top[name] = outer
    table = costs(net)
    units: list[tuple[str, str]] = []  # (unit id, label), in order
    params: dict[str, int] = {}  # unit id -> its parameters
    stages: dict[int, list[str]] = {}  # stage number -> its units
    for node in net.nodes():
        unit = node.name if node.block is None else top[node.block]
        if unit not in params:
            if node.block is None:
                label = f"{node.name}\n{node.op} {fmt(node.shape)}"
            else:
                block = blocks[unit]
                label = f"{unit}\n{block.kind} {fmt(net.node(block.output).shape)}"
            units.append((unit, label))
            params[unit] = 0
            if node.stage is not None:
                stages.setdefault(node.stage, []).append(unit)
        params[unit] += table[node.name].params
    for unit, label in units:
        extra = ", shape=ellipse" if unit == "input" else ""
        label += f"\n{params[unit]:,} params" if params[unit] else ""
        lines.append(f"  {_quote(unit)} [label={_quote(label)}{extra}];")
    containers = {s.stage: s.container for s in net.sections if s.kind == "stage"}
    for number, members in stages.items():  # each stage drawn as a box around its blocks
        name = containers.get(number) or f"stage {number}"
        total = sum(params[m] for m in members)
        lines.append(f"  subgraph {_quote(f'cluster_{number}')} {{")
        lines.append(f"    label={_quote(f'{name}: {total:,} params')}; style=rounded;")
        lines += [f"    {_quote(member)};" for member in members]
        lines.append("  }")
    for (before, _), (after, _) in zip(units, units[1:], strict=False):
        lines.append(f"  {_quote(before)} -> {_quote(after)};")
        block = blocks.get(after)
        if block is not None and block.shortcut.residual:
            label = _shortcut_label(net, block.shortcut)
            lines.append(
                f"  {_quote(before)} -> {_quote(after)} "
                f"[style=dashed, label={_quote(label)}, tailport=e, headport=e, class=shortcut];"
            )
    return "\n".join(lines + ["}"]) + "\n"


def _shortcut_label(net: Network, shortcut) -> str:
    """What a dashed edge says: ``identity``, or the definition and its ops (``B: conv + bn``)."""
    if shortcut.kind != "path":
        return "identity"
    ops = " + ".join(op.op for op in net.shortcuts[shortcut.path].ops)
    return f"{shortcut.policy}: {ops}"


def render(dot: str, path: str | Path) -> Path:
    """Write DOT, or SVG/PNG through Graphviz's `dot`, by the file's suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".dot", ".gv", ".svg", ".png"):
        raise ResdslError(f"cannot write {path}: choose a .dot, .svg or .png file", code="RDS410")
    if suffix in (".dot", ".gv"):
        try:
            path.write_text(dot)
        except OSError as exc:
            raise ResdslError(
                f"cannot write {path}: {exc.strerror or exc}", code="RDS410"
            ) from None
        return path
    program = shutil.which("dot")
    if program is None:
        raise ResdslError(
            f"writing {suffix[1:].upper()} needs Graphviz's `dot`, which is not installed",
            hint="install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew "
            "install graphviz), or write a .dot file",
            code="RDS410",
        )
    result = subprocess.run(
        [program, f"-T{suffix[1:]}", "-o", str(path)], input=dot, text=True, capture_output=True
    )
    if result.returncode != 0:
        raise ResdslError(f"dot failed: {result.stderr.strip()}", code="RDS410")
    return path
