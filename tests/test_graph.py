"""resdsl graph: DOT of the IR, one box per block or one node per op."""

import re
import shutil

import pytest

import resdsl
from resdsl.graph import to_dot

from helpers import SPECS, run


def nodes_and_edges(dot: str):
    nodes = re.findall(r'^  "([^"]+)" \[label=', dot, re.M)
    edges = re.findall(r'^  "([^"]+)" -> "([^"]+)"(.*);$', dot, re.M)
    return nodes, edges


def test_resnet20_has_a_box_per_block_and_a_labelled_shortcut_each(tmp_path):
    result = run("graph", SPECS / "resnet20.rds", "-o", tmp_path / "g.dot")
    assert result.exit_code == 0 and result.stdout == f"wrote {tmp_path / 'g.dot'}\n"
    dot = (tmp_path / "g.dot").read_text()
    nodes, edges = nodes_and_edges(dot)
    blocks = [n for n in nodes if n.startswith("layer")]
    assert len(blocks) == 9  # 3 stages of n = 3 basic blocks
    assert nodes == ["input", "conv1", "bn1", "relu", *blocks, "avgpool", "fc"]
    shortcuts = [e for e in edges if "class=shortcut" in e[2]]
    assert len(shortcuts) == 9
    labels = [re.search(r'label="([^"]+)"', e[2]).group(1) for e in shortcuts]
    assert labels.count("A: subsample + zeropad") == 2  # where stages 2 and 3 begin
    assert labels.count("identity") == 7
    # the output shape and the parameters: 3x3 convs 16->32 and 32->32, two BNs of 32
    params = 3 * 3 * 16 * 32 + 3 * 3 * 32 * 32 + 2 * 2 * 32
    assert f'"layer2.0" [label="layer2.0\\nbasic 32x16x16\\n{params:,} params"]' in dot
    clusters = re.findall(r'subgraph "cluster_(\d)" \{\n    label="([^"]+)"', dot)

    def basic(c_in, c):  # two 3x3 convs and two BNs (gamma, beta) of c
        return 9 * c_in * c + 9 * c * c + 4 * c

    assert [name for _, name in clusters] == [
        f"layer1: {3 * basic(16, 16):,} params",
        f"layer2: {basic(16, 32) + 2 * basic(32, 32):,} params",
        f"layer3: {basic(32, 64) + 2 * basic(64, 64):,} params",
    ]
    assert '    "layer3.2";' in dot


def test_plain_nets_draw_no_shortcut():
    _, edges = nodes_and_edges(to_dot(resdsl.load(SPECS / "plain20.rds")))
    assert not [e for e in edges if "class=shortcut" in e[2]]


def test_projection_labels_follow_the_policy():
    for policy, expected in (("B", {"B: conv + bn", "identity"}), ("C", {"C: conv + bn"})):
        dot = to_dot(resdsl.load(SPECS / "resnet18.rds", shortcut=policy))
        assert set(re.findall(r'label="([^"]+)", tailport', dot)) == expected


def test_expand_draws_every_op():
    net = resdsl.load(SPECS / "resnet20.rds")
    nodes, edges = nodes_and_edges(to_dot(net, expand=True))
    assert nodes == [n.name for n in net.nodes()]
    assert len(edges) == net.graph.number_of_edges()


def test_svg_and_png_need_graphviz(tmp_path, monkeypatch):
    if shutil.which("dot"):
        result = run("graph", SPECS / "resnet20.rds", "-o", tmp_path / "g.svg")
        assert result.exit_code == 0
        assert (tmp_path / "g.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
        result = run("graph", SPECS / "resnet20.rds", "-o", tmp_path / "g.png", "--expand")
        assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = run("graph", SPECS / "resnet20.rds", "-o", tmp_path / "h.png")
    assert result.exit_code == 1
    assert "needs Graphviz's `dot`" in result.stderr
    assert "apt-get install graphviz" in result.stderr


@pytest.mark.parametrize("name", ["g.pdf", "g"])
def test_unknown_format(tmp_path, name):
    result = run("graph", SPECS / "resnet20.rds", "-o", tmp_path / name)
    assert result.exit_code == 1 and "choose a .dot, .svg or .png file" in result.stderr


def test_a_gate_is_drawn_as_a_side_path():
    net = resdsl.load(SPECS / "zoo" / "seresnet50.rds")
    dot = to_dot(net, expand=True)
    side = [line.strip() for line in dot.splitlines() if "class=side" in line]
    # per block: bn3 -> se.avgpool, the four steps inside the SE block, se.sigmoid -> mul
    assert '"layer1.0.bn3" -> "layer1.0.se.avgpool" [style=dotted, class=side];' in side
    assert '"layer1.0.se.sigmoid" -> "layer1.0.mul" [style=dotted, class=side];' in side
    assert '"layer1.0.bn3" -> "layer1.0.mul";' in dot  # the main path stays solid
    assert len(side) == 16 * 6
