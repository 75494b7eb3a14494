"""The zoo: each spec of specs/zoo/ reproduces the models it is named after, exactly.

The references are torchvision's and timm's models, built with random weights (timm's with
``pretrained=False``; nothing is downloaded). A reference counts as reproduced when all three
hold for the PyTorch target's model:

- its trainable parameter count equals the reference's (and the IR's);
- it loads the reference's state_dict with ``strict=True`` and no key mapping;
- its logits equal the reference's in eval mode, with BN statistics randomised.

CI checks a few models (the deep stem, ResNet-D, ResNeXt); ``RESDSL_ZOO=1`` checks them all
(the closing notes record the figures).
"""

from __future__ import annotations

import os

import pytest

import resdsl
from resdsl.emit import emit

from helpers import ROOT, SPECS, module_from

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

ZOO = SPECS / "zoo"
ALL = os.environ.get("RESDSL_ZOO") == "1"
SIZE = 64  # every reference is fully convolutional before its global pool; 224 is only slower

# spec (and model) name -> the libraries whose model of that name it reproduces
REFERENCES = {
    "resnet18": ("torchvision", "timm"),
    "resnet26": ("timm",),
    "resnet34": ("torchvision", "timm"),
    "resnet50": ("torchvision", "timm"),
    "resnet101": ("torchvision", "timm"),
    "resnet152": ("torchvision", "timm"),
    "resnet200": ("timm",),
    "resnet18d": ("timm",),
    "resnet26d": ("timm",),
    "resnet34d": ("timm",),
    "resnet50d": ("timm",),
    "resnet101d": ("timm",),
    "resnet10t": ("timm",),
    "resnet14t": ("timm",),
    "resnet50t": ("timm",),
    "resnet50c": ("timm",),
    "resnet50s": ("timm",),
    "resnet152s": ("timm",),
    "resnetaa50": ("timm",),
    "seresnet50": ("timm",),
    "resnetrs50": ("timm",),
    "resnet50_gn": ("timm",),
    "ecaresnet50d": ("timm",),
    "resnetblur50": ("timm",),
    "seresnext50_32x4d": ("timm",),
    "resnext50_32x4d": ("torchvision", "timm"),
    "resnext101_32x8d": ("torchvision", "timm"),
    "resnext101_64x4d": ("torchvision",),
    "wide_resnet50_2": ("torchvision", "timm"),
    "wide_resnet101_2": ("torchvision", "timm"),
}
IN_CI = {
    ("resnet18d", "timm"),
    ("resnet10t", "timm"),
    ("resnext50_32x4d", "torchvision"),
    ("seresnet50", "timm"),
}
CASES = [(spec, lib) for spec, libs in REFERENCES.items() for lib in libs]


def reference(lib: str, name: str):
    if lib == "timm":
        return timm.create_model(name, pretrained=False)
    return getattr(torchvision.models, name)(weights=None)


def randomise(model) -> None:
    """Random BN affine terms and statistics: nothing starts at zero or one."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_every_zoo_spec_has_its_references():
    """Each model spec of specs/zoo/ is listed here, and each listed one exists."""
    specs = {p.stem for p in ZOO.glob("*.rds")} - {"families"}
    assert specs == set(REFERENCES)


@pytest.mark.parametrize("spec, lib", CASES, ids=[f"{lib}-{spec}" for spec, lib in CASES])
def test_the_zoo_reproduces_its_reference(spec, lib):
    if not ALL and (spec, lib) not in IN_CI:
        pytest.skip("RESDSL_ZOO=1 checks every model")
    reproduces(resdsl.load(ZOO / f"{spec}.rds"), lib, spec)


def test_the_readme_writes_resnet50d_in_a_few_lines():
    """The README's ResNet-50-D, as a user copies it, is timm's resnet50d."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- zoo: resnet50d -->\n```\n", 1)[1].split("```", 1)[0]
    assert len(block.strip().splitlines()) <= 25
    reproduces(resdsl.check(resdsl.build(resdsl.link(resdsl.parse(block)))), "timm", "resnet50d")


def reproduces(net, lib: str, name: str) -> None:
    """Equal trainable parameters, a strict load of the reference's state_dict, equal logits."""
    torch.manual_seed(0)
    ref = reference(lib, name).eval()
    randomise(ref)
    spec = net.name
    model = module_from(emit(net, "torch")["model.py"], f"zoo_{spec}").build_model().eval()
    assert trainable(model) == trainable(ref) == resdsl.summary(net)["params"]
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        expected, got = ref(x), model(x)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), (got - expected).abs().max()
