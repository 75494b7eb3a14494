"""Exact parameters and MACs against every row of ../shared/REFERENCE.md's table."""

import pytest

from helpers import SPECS, summary_json

# spec, --shortcut (None: the spec's own policy), params, MACs (None where the row gives none)
REFERENCE = [
    ("resnet18", None, 11_689_512, 1_814_073_344),
    ("resnet34", None, 21_797_672, 3_663_761_408),
    ("resnet34", "A", 21_623_848, None),
    ("resnet34", "C", 22_716_840, None),
    ("resnet50_v1_5", None, 25_557_032, 4_089_184_256),
    ("resnet50", None, 25_557_032, 3_857_973_248),
    # beyond the paper: torchvision's resnext50_32x4d and wide_resnet50_2
    ("resnext50_32x4d", None, 25_028_904, 4_230_479_872),
    ("wide_resnet50_2", None, 68_883_240, 11_398_021_120),
    ("resnet101", None, 44_549_160, 7_570_194_432),
    ("resnet152", None, 60_192_808, 11_282_415_616),
    ("resnet20", None, 269_722, 40_551_040),
    ("resnet32", None, 464_154, 68_862_592),
    ("resnet44", None, 658_586, 97_174_144),
    ("resnet56", None, 853_018, 125_485_696),
    ("resnet110", None, 1_727_962, 252_887_680),
    ("resnet1202", None, 19_421_274, 2_829_238_912),
    ("resnet20", "B", 272_474, None),
    ("resnet110", "B", 1_730_714, None),
]


@pytest.mark.parametrize(
    ("spec", "shortcut", "params", "macs"),
    REFERENCE,
    ids=[f"{r[0]}-{r[1] or 'default'}" for r in REFERENCE],
)
def test_reference_row(spec, shortcut, params, macs):
    flags = ["--shortcut", shortcut] if shortcut else []
    info = summary_json(SPECS / f"{spec}.rds", *flags)
    assert info["params"] == params
    if macs is not None:
        assert info["macs"] == macs
    # totals are the sums of the per-layer figures
    assert sum(layer["params"] for layer in info["layers"]) == params
    assert sum(layer["macs"] for layer in info["layers"]) == info["macs"]


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_plain_nets_match_option_a(depth):
    """Option A adds no parameters, so a plain net and its ResNet count the same (section 4.2)."""
    plain = summary_json(SPECS / f"plain{depth}.rds")
    resnet = summary_json(SPECS / f"resnet{depth}.rds")
    assert plain["params"] == resnet["params"]
    assert plain["macs"] == resnet["macs"]
    assert not any(layer["op"] == "add" for layer in plain["layers"])
    assert sum(layer["op"] == "add" for layer in resnet["layers"]) == (depth - 2) // 2


def test_plain34_matches_resnet34_with_option_a():
    assert summary_json(SPECS / "plain34.rds")["params"] == 21_623_848


def test_cifar_depth_is_6n_plus_2():
    """Weighted layers (conv and fc) in the main path count 6n + 2 (section 4.2)."""
    for depth in (20, 32, 44, 56, 110, 1202):
        info = summary_json(SPECS / f"resnet{depth}.rds")
        weighted = [
            layer
            for layer in info["layers"]
            if layer["op"] in ("conv", "fc") and ".downsample." not in layer["name"]
        ]
        assert len(weighted) == depth


def test_bottleneck_stride_placement_changes_only_macs():
    paper = summary_json(SPECS / "resnet50.rds")
    v15 = summary_json(SPECS / "resnet50_v1_5.rds")
    assert paper["params"] == v15["params"]
    by_name = {layer["name"]: layer for layer in paper["layers"]}
    v15_by_name = {layer["name"]: layer for layer in v15["layers"]}
    # first block of stage 2: the paper strides the first 1x1, v1.5 the 3x3
    assert by_name["layer2.0.conv1"]["shape"] == [128, 28, 28]
    assert v15_by_name["layer2.0.conv1"]["shape"] == [128, 56, 56]
    assert by_name["layer2.0.conv2"]["shape"] == v15_by_name["layer2.0.conv2"]["shape"]
