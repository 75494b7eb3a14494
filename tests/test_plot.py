"""resdsl plot: Fig. 6-style error curves and Fig. 7-style responses from run folders."""

import json

import pytest

from resdsl.plot import error_curves, response_curves

from helpers import run

pytest.importorskip("matplotlib")


def make_run(folder, network, errors, responses=None):
    """A run folder as train.py writes it: config.json and metrics.jsonl."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"network": network}))
    lines = []
    for i, error in enumerate(errors, start=1):
        lines.append(
            {
                "kind": "train",
                "iter": i * 10,
                "lr": 0.1,
                "loss": 1.0,
                "error": error,
                "images_per_s": 100.0,
            }
        )
        if i % 2 == 0:
            lines.append(
                {"kind": "eval", "iter": i * 10, "split": "test", "loss": 1.0, "error": error + 3}
            )
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    if responses:
        layers = [{"name": f"layer{i}", "std": s} for i, s in enumerate(responses)]
        (folder / "responses.json").write_text(json.dumps({"layers": layers}))
    return folder


def test_error_curves_hold_a_dashed_and_a_bold_line_per_run(tmp_path):
    a = make_run(tmp_path / "a", "plain20", [60, 40, 30, 25])
    b = make_run(tmp_path / "b", "resnet20", [50, 30, 20, 10])
    figure = error_curves([a, b])
    (axes,) = figure.axes
    lines = axes.get_lines()
    assert len(lines) == 4
    train_a, test_a, train_b, test_b = lines
    assert train_a.get_linestyle() == "--" and test_a.get_linestyle() == "-"
    assert test_a.get_linewidth() > train_a.get_linewidth()
    assert list(train_a.get_ydata()) == [60, 40, 30, 25]
    assert list(test_b.get_xdata()) == [20, 40] and list(test_b.get_ydata()) == [33, 13]
    assert train_a.get_color() == test_a.get_color() != train_b.get_color()
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["plain20", "resnet20"]
    assert axes.get_ylabel() == "error (%)"


def test_same_network_twice_is_told_apart(tmp_path):
    a = make_run(tmp_path / "A", "resnet20", [50, 40])
    b = make_run(tmp_path / "B", "resnet20", [50, 30])
    legend = error_curves([a, b]).axes[0].get_legend().get_texts()
    assert [t.get_text() for t in legend] == ["resnet20 (A)", "resnet20 (B)"]


def test_responses_in_layer_order_and_sorted(tmp_path):
    a = make_run(tmp_path / "a", "plain20", [50], responses=[1.0, 3.0, 2.0])
    by_layer, by_size = response_curves([a]).axes
    assert list(by_layer.get_lines()[0].get_ydata()) == [1.0, 3.0, 2.0]
    assert list(by_size.get_lines()[0].get_ydata()) == [3.0, 2.0, 1.0]


def test_cli_writes_a_png(tmp_path):
    a = make_run(tmp_path / "a", "plain20", [60, 40, 30, 25], responses=[1.0, 2.0])
    result = run("plot", a, "-o", tmp_path / "f.png", "--label", "mine")
    assert result.exit_code == 0
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = run("plot", a, "-o", tmp_path / "r.png", "--responses")
    assert result.exit_code == 0 and (tmp_path / "r.png").stat().st_size > 1000


def test_a_folder_without_metrics_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("plot", tmp_path / "empty", "-o", tmp_path / "f.png")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error[RDS421]: {tmp_path / 'empty'} has no metrics.jsonl")
    assert "Traceback" not in result.stderr
    no_responses = make_run(tmp_path / "a", "plain20", [50])
    result = run("plot", no_responses, "-o", tmp_path / "r.png", "--responses")
    assert result.exit_code == 1 and "has no responses.json" in result.stderr
