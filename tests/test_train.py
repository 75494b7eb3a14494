"""The train section: what the paper's specs say, and values the checker refuses."""

import pytest

import resdsl

from helpers import SPECS, errors_of

NET = """
import "{cifar}"
network r = cifar_resnet(n = 1)
train r {{
{body}
}}
"""


def recipe(body: str):
    return NET.format(cifar=SPECS / "cifar.rds", body=body)


def test_resnet110_carries_the_paper_recipe_and_warmup():
    cfg = resdsl.load(SPECS / "resnet110.rds").train
    assert (cfg.data.name, cfg.data.split) == ("cifar10", (45000, 5000))
    assert (cfg.augment.pad, cfg.augment.crop, cfg.augment.flip) == (4, 32, True)
    assert cfg.normalize.kind == "pixel_mean"
    assert cfg.batch == 128
    opt = cfg.optimizer
    assert (opt.name, opt.lr, opt.momentum, opt.weight_decay) == ("sgd", 0.1, 0.9, 1e-4)
    assert (cfg.schedule.kind, cfg.schedule.milestones) == ("step", (32000, 48000))
    assert cfg.schedule.factor == 0.1
    assert cfg.iterations == 64000
    assert (cfg.warmup.kind, cfg.warmup.lr, cfg.warmup.threshold) == ("error", 0.01, 80.0)


def test_shallower_nets_have_no_warmup():
    assert resdsl.load(SPECS / "resnet20.rds").train.warmup is None
    assert resdsl.load(SPECS / "resnet1202.rds").train.warmup.lr == 0.01


def test_imagenet_recipe():
    cfg = resdsl.load(SPECS / "resnet50.rds").train
    assert cfg.augment.scale == (256, 480) and cfg.augment.crop == 224
    assert cfg.augment.color and cfg.augment.flip
    assert (cfg.batch, cfg.iterations, cfg.schedule.kind) == (256, 600000, "plateau")


def test_instance_settings_override_the_family_line_by_line():
    net = resdsl.check(
        resdsl.build(
            resdsl.link(
                resdsl.parse(
                    recipe(
                        "  schedule cosine\n  warmup linear 500 from 0.01\n"
                        "  optimizer sgd lr 0.05 nesterov momentum 0.9"
                    ),
                    str(SPECS / "r.rds"),
                )
            )
        )
    )
    cfg = net.train
    assert cfg.schedule.kind == "cosine" and cfg.schedule.milestones == ()
    assert (cfg.warmup.kind, cfg.warmup.iterations, cfg.warmup.start_lr) == ("linear", 500, 0.01)
    assert cfg.optimizer.nesterov and cfg.optimizer.lr == 0.05
    assert cfg.optimizer.weight_decay == 0.0  # the whole optimizer line was replaced
    assert cfg.batch == 128  # inherited


def test_mean_std_normalisation():
    text = recipe("  normalize mean 0.49 0.48 0.45 std 0.25 0.24 0.26")
    cfg = resdsl.check(resdsl.build(resdsl.link(resdsl.parse(text, str(SPECS / "r.rds"))))).train
    assert cfg.normalize.mean == (0.49, 0.48, 0.45)
    assert cfg.normalize.std == (0.25, 0.24, 0.26)


@pytest.mark.parametrize(
    ("body", "message", "column"),
    [
        ("  optimizer sgd lr 0", "lr 0 must be above 0", 17),
        ("  optimizer sgd lr 0.1 momentum 1.5", "momentum 1.5 must be in [0, 1)", 24),
        ("  optimizer adam lr 0.1", "`optimizer` needs one of sgd; got `adam`", 13),
        ("  optimizer sgd lr 0.1 nesterov", "nesterov needs a momentum above 0", 24),
        ("  schedule step at 100, 100 by 0.1", "strictly increasing", 17),
        ("  schedule step at 0 by 0.1", "between 1 and the iteration count", 17),
        ("  schedule step at 1000 by 2", "factor 2 must be in (0, 1]", 25),
        ("  schedule cosine at 1000", "only apply to a step schedule", 19),
        ("  batch 0", "batch 0 must be at least 1", 3),
        ("  batch 1.5", "`batch` takes integers, got float `1.5`", 9),
        ("  iterations 0", "iterations 0 must be at least 1", 3),
        ("  data cifar10 split 50000/1", "needs 50001 images", 16),
        ("  data imagenet", "imagenet has 1000 classes, but network `r` has 10", 3),
        ("  data cifar100", "`data` needs one of", 8),
        ("  augment crop 28", "crop 28 does not match the network's input 32x32", 11),
        ("  warmup lr 0.01 until train_error < 100%", "between 0% and 100%", 18),
        ("  warmup lr 0.01 until loss < 80%", "until train_error < 80%", 18),
        ("  warmup linear 40000", "must end before the first milestone (32000)", 10),
        ("  warmup lr 0.01", "a warmup is `warmup lr 0.01 until", 3),
        ("  normalize mean 0.5 std 0.2", "need 3 values each", 3),
        ("  batch 64\n  batch 32", "`batch` is given twice", 3),
        ("  momentum 0.9", "unknown train setting `momentum`", 3),
    ],
)
def test_refused_values(body, message, column):
    errors = errors_of(recipe(body), str(SPECS / "r.rds"))
    hits = [e for e in errors if message in e.message]
    assert hits, [e.message for e in errors]
    assert hits[0].span.source.name.endswith("r.rds")
    assert hits[0].span.column == column


@pytest.mark.parametrize(
    ("body", "message", "hint", "column"),
    [
        # the `at` left out: the values are marked, and the one option they fit is offered
        (
            "  schedule step 32000, 48000 by 0.1",
            "`schedule step` takes no values itself",
            "did you mean `schedule step at 32000, 48000`?",
            17,
        ),
        # values that fit several options: the options, not a guess
        ("  schedule cosine 5", "`schedule cosine` takes no values", "options: at, by", 19),
        # a number written as people say it
        ("  iterations 64k", "`64k` is not a number", "write it out: `iterations 64000`", 14),
        ("  batch 1K", "`1K` is not a number", "write it out: `batch 1000`", 9),
    ],
)
def test_messages_for_what_people_write(body, message, hint, column):
    (error,) = errors_of(recipe(body), str(SPECS / "r.rds"))
    assert message in error.message and error.code == "RDS304"
    assert error.hint.startswith(hint)
    assert (error.span.line, error.span.column) == (5, column)


def test_a_missing_family_argument_is_marked_at_the_call():
    text = f'import "{SPECS / "cifar.rds"}"\nnetwork r = cifar_resnet()\n'
    (error,) = errors_of(text, str(SPECS / "r.rds"))
    assert error.message == "`cifar_resnet` needs a value for `n`"
    assert (error.span.line, error.span.column) == (2, 13)
    assert error.hint == "e.g. `network NAME = cifar_resnet(n = VALUE)`"  # the language's syntax


@pytest.mark.parametrize(
    "spec", ["resnet110", "resnet50", "preact_resnet164", "resnet20", "resnet1202"]
)
def test_each_setting_is_spelled_as_the_statement_that_writes_it(spec, tmp_path):
    """What the language server's hover shows for a train setting: written back as a train
    section, the statements give the same recipe."""
    import dataclasses

    from resdsl import recipe

    net = resdsl.load(SPECS / f"{spec}.rds")
    cfg = net.train or recipe.DEFAULT_RECIPE
    heads = [f.name for f in dataclasses.fields(cfg) if f.name not in ("name", "span", "spans")]
    lines = [recipe.spell(h, getattr(cfg, h)) for h in heads if getattr(cfg, h) is not None]
    text = (SPECS / f"{spec}.rds").read_text().split("\ntrain ")[0]
    (tmp_path / "r.rds").write_text(
        text.replace('import "', f'import "{(SPECS / spec).parent}/')
        + f"\ntrain {net.name} {{\n"
        + "".join(f"    {line}\n" for line in lines)
        + "}\n"
    )
    again = resdsl.load(tmp_path / "r.rds", network=net.name).train
    for head in heads:
        assert getattr(again, head) == getattr(cfg, head), (head, lines)
