"""Hovers: a layer or block line shows each op's (or each block instance's) output shape,
parameters and MACs; a network name its totals; a `train` setting its value after inheritance."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import ops, recipe
from .. import syntax as ast
from ..costs import summary
from ..errors import Span
from ..linker import concrete
from .analysis import SHOWN, Analysis, Built, _contains, _key

# ---------------------------------------------------------------- hover


def _fmt(shape) -> str:
    return "x".join(map(str, shape)) if shape else "?"


def _cost_of(built: Built, names) -> tuple[int, int]:
    costs = [built.costs[n] for n in names]
    return sum(c.params for c in costs), sum(c.macs for c in costs)


def _item_at(module: ast.Module, line: int, column: int):
    return next((i for i in module.items if _contains(i.span, line, column)), None)


def _statement_at(body, line: int, column: int):
    for stmt in body:
        if _contains(stmt.span, line, column):
            if isinstance(stmt, ast.Section | ast.Group | ast.Case | ast.Join):
                return _statement_at(stmt.body or (), line, column) or stmt
            return stmt
    return None


def hover(analysis: Analysis, line: int, column: int) -> str | None:
    """Markdown for the 1-based position, or None where there is nothing to say."""
    if analysis.module is None:
        return None
    item = _item_at(analysis.module, line, column)
    if item is None:
        return None
    if isinstance(item, ast.Import):
        target = Path(analysis.path).parent / item.path
        return f"import `{target}`" + ("" if target.is_file() else " (no such file)")
    if isinstance(item, ast.NetworkInst) or (
        isinstance(item, ast.NetworkDef) and line == item.span.line
    ):
        return _network_hover(analysis, item.name)
    if isinstance(item, ast.TrainDef):
        return _train_hover(analysis, item, line, column)
    if isinstance(item, ast.ShortcutDef):
        stmt = _statement_at(item.cases, line, column)
        if isinstance(stmt, ast.Call):
            return _call_hover(analysis, stmt)
        return _shortcut_hover(analysis, item.name)
    body = item.body
    stmt = _statement_at(body, line, column)
    if isinstance(stmt, ast.Call):
        return _call_hover(analysis, stmt)
    if isinstance(item, ast.NetworkDef) and isinstance(stmt, ast.Section | ast.Setting):
        return _section_hover(analysis, item, stmt)
    if isinstance(stmt, ast.Add) and isinstance(item, ast.BlockDef):
        return _add_hover(analysis, item.name)
    if isinstance(item, ast.BlockDef) and line == item.span.line:
        instances = [
            (name, b)
            for name, built in analysis.networks.items()
            for b in built.net.blocks
            if b.kind == item.name
        ]
        counts = {}
        for name, _ in instances:
            counts[name] = counts.get(name, 0) + 1
        used = ", ".join(f"{n} ({c}x)" for n, c in counts.items()) or "no network of this file"
        return f"block `{item.name}`: used by {used}"
    return None


def _built_for(analysis: Analysis, item: ast.NetworkDef | ast.TrainDef) -> Built | None:
    """The network a definition (or its train section) makes: itself, or the first instance
    of it in this file."""
    if item.name in analysis.networks:
        return analysis.networks[item.name]
    return next(
        (
            analysis.networks[i.name]
            for i in analysis.module.items
            if isinstance(i, ast.NetworkInst)
            and i.family == item.name
            and i.name in analysis.networks
        ),
        None,
    )


def _section_hover(analysis: Analysis, item: ast.NetworkDef, stmt) -> str | None:
    """A section (`stage`, `stem`, `head`) or a setting (`input`, `classes`, `shortcut`, a
    stage's `stride`): what it made in the network, as `summary` groups it."""
    if isinstance(stmt, ast.Setting) and stmt.key == "shortcut":
        return _shortcut_hover(analysis, stmt.value)
    word = stmt.key if isinstance(stmt, ast.Setting) else stmt.kind
    built = _built_for(analysis, item)
    if built is None:
        return f"`{word}`: no network of this file is built from `{item.name}`"
    net = built.net
    if word == "input":
        c, h, w = net.input_shape
        return f"**input** of `{net.name}`: {c} channels of {h}x{w} (NCHW; TensorFlow: NHWC)"
    if word == "classes":
        return f"**classes** of `{net.name}`: {net.classes}, the logits its last layer gives"
    sections = [s for s in item.body if isinstance(s, ast.Section)]
    section = stmt if isinstance(stmt, ast.Section) else None
    section = section or next((s for s in sections if stmt in s.body), None)
    groups = summary(net)["groups"]
    if section is None or sections.index(section) >= len(groups):
        return None
    group = groups[sections.index(section)]
    blocks = [c for c in group["children"] if c["children"]]
    kinds = ", ".join(dict.fromkeys(b["kind"] for b in blocks))
    made = f"{len(blocks)} blocks ({kinds})" if blocks else f"{len(group['children'])} ops"
    rows = [
        f"**{group['kind']} `{group['name']}`** of `{net.name}`: {made}",
        f"{_fmt(group['input'])} → {_fmt(group['shape'])}, {group['params']:,} params, "
        f"{group['macs']:,} MACs",
    ]
    if word == "stride" and blocks:
        first = blocks[0]
        moves = f"{_fmt(first['input'])} → {_fmt(first['shape'])}"
        rows.insert(0, f"**stride**: the stage's first block, `{first['name']}`, strides: {moves}")
    return "\n\n".join(rows)


def _add_hover(analysis: Analysis, block: str) -> str:
    """Where the block's shortcut joins its branch, and what the shortcuts were."""
    seen: dict[str, int] = {}
    for built in analysis.networks.values():
        for instance in built.net.blocks:
            if instance.kind == block:
                plan = instance.shortcut
                plain = plan.kind in ("identity", "none", "plain")
                label = plan.kind if plain else f"{plan.policy} ({plan.case})"
                seen[label] = seen.get(label, 0) + 1
    head = f"**add**: `{block}`'s shortcut joins its branch here"
    if not seen:
        return f"{head}; no network of this file uses `{block}`"
    return f"{head}. In this file: " + ", ".join(f"{k} ×{n}" for k, n in seen.items())


def _shortcut_hover(analysis: Analysis, name: str) -> str:
    """Where a shortcut definition joins, by the case that applied, in the built networks."""
    counts: dict[tuple[str, str], int] = {}
    for net_name, built in analysis.networks.items():
        for b in built.net.blocks:
            if b.shortcut.policy == name:
                case = b.shortcut.case or "identity"
                counts[net_name, case] = counts.get((net_name, case), 0) + 1
    used = ", ".join(f"{n}: {c} {case}" for (n, case), c in counts.items())
    return f"shortcut `{name}`: " + (used or "no block of this file's networks uses it")


def _network_hover(analysis: Analysis, name: str) -> str | None:
    built = analysis.networks.get(name)
    if built is None and analysis.stale:
        return f"network `{name}`: being built"
    if built is None:
        return (
            f"network `{name}`: not built (see its errors)"
            if name in concrete(analysis.module)
            else f"network family `{name}`: instantiate it to see shapes and costs"
        )
    net = built.net
    params = sum(c.params for c in built.costs.values())
    macs = sum(c.macs for c in built.costs.values())
    ops_count = sum(1 for n in net.nodes() if ops.OPS[n.op].inputs)  # all but the input
    convs = sum(1 for n in net.nodes() if ops.OPS[n.op].layer and n.role != "shortcut")
    return "\n".join(
        [
            f"**network {net.name}**",
            "",
            f"- input {_fmt(net.input_shape)} → output {_fmt(net.output.shape)}",
            f"- parameters: {params:,}",
            f"- MACs: {macs:,}",
            f"- {ops_count:,} ops, {convs} weighted layers, {len(net.blocks):,} blocks",
            f"- shortcut policy {net.policy}",
        ]
    )


def _call_hover(analysis: Analysis, call: ast.Call) -> str | None:
    rows = []
    key = _key(call.span)
    for name, built in analysis.networks.items():
        instances = [b for b in built.net.blocks if _moved_key(built, b.span) == key]
        if instances:
            rows.append(f"**{call.name}** in `{name}`: {len(instances)} block instance(s)")
            rows.append("")
            rows += _instance_rows(built, instances)
            continue
        nodes = built.by_span.get(key, [])
        if nodes:
            rows.append(f"**{call.name}** in `{name}`")
            rows.append("")
            rows += _node_rows(built, nodes)
    return "\n".join(rows) if rows else None


def _moved_key(built: Built, span: Span) -> tuple:
    moved = built.moved.get(_key(span))
    return _key(moved) if moved is not None else _key(span)


def _instance_rows(built: Built, instances) -> list[str]:
    """One table row per instance; runs of identical instances in one row."""
    entries = []
    for inst in instances:
        names = [n.name for n in built.net.nodes() if n.block and _inside(n.block, inst.name)]
        params, macs = _cost_of(built, names)
        out = built.net.node(inst.output).shape
        stage = f"stage {inst.stage}" if inst.stage else "—"
        entries.append((inst.name, stage, _fmt(out), params, macs))
    rows = ["| block | stage | output | params | MACs |", "|---|---|---|---:|---:|"]
    i = 0
    while i < len(entries):
        j = i
        while j + 1 < len(entries) and entries[j + 1][1:] == entries[i][1:]:
            j += 1
        name, stage, out, params, macs = entries[i]
        label = name if i == j else f"{name} … {entries[j][0]} ({j - i + 1}x)"
        rows.append(f"| {label} | {stage} | {out} | {params:,} | {macs:,} |")
        i = j + 1
    total_p = sum(e[3] for e in entries)
    total_m = sum(e[4] for e in entries)
    rows.append(f"| **all {len(entries)}** | | | {total_p:,} | {total_m:,} |")
    return rows


def _inside(block: str, instance: str) -> bool:
    return block == instance or block.startswith(instance + ".")


def _node_rows(built: Built, nodes) -> list[str]:
    rows = ["| op | output | params | MACs |", "|---|---|---:|---:|"]
    shown = nodes if len(nodes) <= SHOWN else nodes[: SHOWN - 1]
    for node in shown:
        cost = built.costs[node.name]
        rows.append(f"| {node.name} | {_fmt(node.shape)} | {cost.params:,} | {cost.macs:,} |")
    if len(nodes) > len(shown):
        params, macs = _cost_of(built, [n.name for n in nodes[len(shown) :]])
        rows.append(f"| … {len(nodes) - len(shown)} more | | {params:,} | {macs:,} |")
    if len(nodes) > 1:
        params, macs = _cost_of(built, [n.name for n in nodes])
        rows.append(f"| **all {len(nodes)}** | | {params:,} | {macs:,} |")
    return rows


def _train_hover(analysis: Analysis, item: ast.TrainDef, line: int, column: int) -> str | None:
    built = _built_for(analysis, item)  # a family's section: an instance that inherits it
    if built is None or built.net.train is None:
        return f"train `{item.name}`: no network of this file uses it"
    cfg = built.net.train
    setting = next(
        (s for s in item.settings if s and _contains(_setting_span(s), line, column)), None
    )
    heads = (
        [setting[0].name]
        if setting
        else [f.name for f in dataclasses.fields(cfg) if f.name not in ("name", "span", "spans")]
    )
    rows = [f"**train {built.net.name}** (resolved)", ""]
    for head in heads:
        value = getattr(cfg, head, None)
        origin = cfg.spans.get(head)
        origin = built.moved.get(_key(origin), origin) if origin else None
        where = f" — from {Path(origin.source.name).name}:{origin.line}" if origin else " — default"
        rows.append(f"- `{recipe.spell(head, value)}`{where}")
    return "\n".join(rows)


def _setting_span(setting) -> Span:
    first, last = setting[0].span, setting[-1].span
    return Span(first.source, first.line, 1, last.end_line, last.end_column)
