"""Hostile input to the compiler: any file, any bytes, any path, any flag, and never a traceback.

Each case is a file or a flag a person (or a fuzzer) could give; each must end in a message with a
code and, where the problem is in a file, the line and column at fault, and must take no longer
than a real spec takes.
"""

from __future__ import annotations

import os
import textwrap
import zipfile

import numpy as np
import pytest

import resdsl

from helpers import GENERATED, SPECS, errors_of, npz_bomb, run

CIFAR = SPECS / "cifar.rds"


def only_error(result, code: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    first = result.stderr.splitlines()[0]
    assert f"error[{code}]" in first, result.stderr
    return result.stderr


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "spec.rds"
    os.mkfifo(fifo)
    assert "not a regular file" in only_error(run("check", fifo), "RDS005")


@pytest.mark.parametrize("command", ["check", "fmt", "summary"])
def test_dev_zero_is_refused_not_read(command):
    assert "not a regular file" in only_error(run(command, "/dev/zero"), "RDS005")


def test_a_file_larger_than_any_spec(tmp_path):
    spec = tmp_path / "big.rds"
    spec.write_text("# padding\n" * 200_000)
    assert "more than a spec's" in only_error(run("check", spec), "RDS005")


def test_invalid_utf8_is_reported_at_its_first_bad_byte(tmp_path):
    spec = tmp_path / "latin1.rds"
    spec.write_bytes(b"network n {\n    input 3x8x8  # caf\xe9\n}\n")
    text = only_error(run("check", spec), "RDS005")
    assert text.startswith(f"{spec}:2:23: error[RDS005]: cannot read this file as UTF-8")


@pytest.mark.parametrize(
    ("value", "code", "column"),
    [
        ("1" + "0" * 5000, "RDS006", 13),  # beyond Python's int-to-string limit
        ("+".join(["1"] * 500), "RDS006", 13),  # deeper than the transformer's recursion
        ("99999999 * 99999999", "RDS143", 13),  # arithmetic that runs away
    ],
)
def test_numbers_beyond_the_limits(value, code, column, tmp_path):
    spec = tmp_path / "n.rds"
    spec.write_text(f"network n {{\n    input 3x8x8\n    classes {value}\n}}\n")
    text = only_error(run("check", spec), code)
    assert text.startswith(f"{spec}:3:{column}:")


def test_a_runaway_repeat_count_points_at_the_argument_and_returns_at_once(tmp_path):
    spec = tmp_path / "big.rds"
    spec.write_text(f'import "{CIFAR}"\nnetwork big = cifar_resnet(n = 999999999999999)\n')
    text = only_error(run("check", spec), "RDS129")
    assert text.startswith(f"{spec}:2:32: error[RDS129]: a repeat count of 999,999,999,999,999")
    assert f"{CIFAR.relative_to(SPECS.parent)}:9:24: note: repeated here" in text or (
        f"{CIFAR}:9:24: note: repeated here" in text
    )
    assert text.count("error[") == 1  # one error, not one per stage


def test_a_repeat_count_that_passes_the_op_limit_only_by_its_size(tmp_path):
    spec = tmp_path / "wide.rds"
    spec.write_text(
        "network n {\n    input 3x8x8\n    classes 10\n"
        "    stage { basic 16 x 20000 }\n    head { avgpool; fc }\n}\n"
    )
    text = only_error(run("check", spec), "RDS129")
    assert text.startswith(f"{spec}:4:24: error[RDS129]: `x 20,000` of 9 ops each")


def test_what_the_old_limit_let_through_is_refused_before_it_is_built(tmp_path):
    """`basic 16 x 100000` is 900,000 ops, which took over a minute to build under a limit of
    1,000,000: the limit is now what about 4 s of work builds, so it is refused at once."""
    spec = tmp_path / "wide.rds"
    spec.write_text(
        "network n {\n    input 3x8x8\n    classes 10\n"
        "    stage { basic 16 x 100000 }\n    head { avgpool; fc }\n}\n"
    )
    text = only_error(run("check", spec), "RDS129")
    assert "larger than 100,000 ops" in text


def test_a_train_section_is_checked_before_the_network_is_built(tmp_path):
    """A recipe's mistake is reported without building the network first (here one that
    would have been refused only after 30,000 blocks had been built)."""
    spec = tmp_path / "big.rds"
    spec.write_text(
        f'import "{CIFAR}"\nnetwork big = cifar_resnet(n = 5000)\n'
        "train big {\n    schedule step at 90000 by 0.1\n    iterations 64000\n}\n"
    )
    text = only_error(run("check", spec), "RDS316")
    assert text.startswith(f"{spec}:4:19: error[RDS316]: milestones must lie between 1 and")


def test_a_number_where_a_block_kind_goes_is_one_error_at_the_argument(tmp_path):
    spec = tmp_path / "r.rds"
    spec.write_text(
        f'import "{SPECS / "imagenet.rds"}"\nnetwork r = imagenet_resnet(3, 3, 4, 6, 3)\n'
    )
    text = only_error(run("check", spec), "RDS101")
    assert text.startswith(f"{spec}:2:29: error[RDS101]: `kind` is 3, not a layer or block")
    assert text.count("error[") == 1


@pytest.mark.parametrize(
    "path",
    ["loop.rds", "x" * 5000 + ".rds", "nowhere.rds"],
    ids=["symlink-loop", "name-too-long", "missing"],
)
def test_imports_that_cannot_be_read(path, tmp_path):
    (tmp_path / "loop.rds").symlink_to(tmp_path / "loop2.rds")
    (tmp_path / "loop2.rds").symlink_to(tmp_path / "loop.rds")
    spec = tmp_path / "s.rds"
    spec.write_text(f'import "{path}"\n')
    text = only_error(run("check", spec), "RDS107")
    assert text.startswith(f"{spec}:1:8: error[RDS107]: cannot import")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize(
    "path, told",
    [
        ("/dev/zero", "/dev/zero is not a regular file"),
        ("pipe.rds", "pipe.rds is not a regular file"),
        (".", "is a folder, not a spec"),
        ("", "an empty path names no file"),
    ],
)
def test_an_import_that_is_no_spec_file_says_what_it_is(path, told, tmp_path):
    os.mkfifo(tmp_path / "pipe.rds")
    spec = tmp_path / "s.rds"
    spec.write_text(f'import "{path}"\n')
    text = only_error(run("check", spec), "RDS107")
    assert f'{spec}:1:8: error[RDS107]: cannot import "{path}": ' in text and told in text


def test_imports_that_nest_without_end(tmp_path):
    for i in range(40):
        (tmp_path / f"f{i}.rds").write_text(f'import "f{i + 1}.rds"\n')
    (tmp_path / "f40.rds").write_text("")
    text = only_error(run("check", tmp_path / "f0.rds"), "RDS107")
    assert "imports nest more than 32 files deep" in text


def test_a_redefinition_is_reported_once_where_it_is_made(tmp_path):
    (tmp_path / "lib.rds").write_text("block twice(w) { conv w 3x3 }\n")
    spec = tmp_path / "s.rds"
    spec.write_text('import "lib.rds"\nblock twice(w) { conv w 1x1 }\n')
    (error,) = errors_of(spec.read_text(), str(spec))
    assert (error.span.source.name, error.span.line, error.span.column) == (str(spec), 2, 7)
    assert error.related[0].span.source.name.endswith("lib.rds")


def test_a_block_whose_add_joins_its_own_input_is_checked_not_asserted():
    text = """
        block twice(width) { add }
        network n {
            input 3x8x8
            classes 10
            shortcut B
            stem { conv 4 3x3 }
            stage { twice 4 }
            head { avgpool; fc }
        }
    """
    net = resdsl.check(resdsl.build(resdsl.link(resdsl.parse(textwrap.dedent(text), "t.rds"))))
    assert [n.op for n in net.nodes() if n.block == "layer1.0"] == ["add"]


def test_non_finite_values_are_refused_by_check(tmp_path):
    spec = tmp_path / "s.rds"
    spec.write_text(
        f'import "{CIFAR}"\nnetwork r = cifar_resnet(1)\n'
        "train r {\n    optimizer sgd lr 1e400\n}\n"
    )
    text = only_error(run("check", spec), "RDS315")
    assert text.startswith(f"{spec}:4:19: error[RDS315]: lr inf is not a finite number")


def test_a_tensor_no_framework_allocates(tmp_path):
    spec = tmp_path / "s.rds"
    spec.write_text(
        "network n {\n    input 3x8x8\n    classes 10\n"
        "    stem { conv 60000 1x1; conv 60000 1x1 }\n    head { avgpool; fc }\n}\n"
    )
    assert "more than the 2,147,483,647" in only_error(run("check", spec), "RDS208")


# ---------------------------------------------------------------- compile -o


@pytest.mark.parametrize("out", ["file", "file/below", ""], ids=["a-file", "under-a-file", "empty"])
def test_compile_output_is_checked_before_anything_is_written(out, tmp_path):
    (tmp_path / "file").write_text("keep me\n")
    target = str(tmp_path / out) if out else ""
    result = run("compile", SPECS / "resnet20.rds", "--target", "torch", "-o", target)
    if out == "file":  # click's own check of a folder option: a usage error
        assert result.exit_code == 2 and "is a file" in result.stderr
    else:
        only_error(result, "RDS403")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing left behind
    assert (tmp_path / "file").read_text() == "keep me\n"


def test_generated_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        result = run("compile", SPECS / "resnet20.rds", "--target", "torch", "-o", tmp_path / "o")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    for name in GENERATED:
        assert (tmp_path / "o" / name).stat().st_mode & 0o777 == 0o640
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".")]


def test_graph_and_plot_paths_that_cannot_be_written(tmp_path):
    only_error(run("graph", SPECS / "resnet20.rds", "-o", tmp_path / "no" / "g.dot"), "RDS410")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("[1, 2]\n")
    only_error(run("plot", run_dir, "-o", tmp_path / "p.png"), "RDS421")
    (run_dir / "metrics.jsonl").write_text('{"kind": "train", "iter": 1}\n')
    (run_dir / "config.json").write_text("{not json")
    only_error(run("plot", run_dir, "-o", tmp_path / "p.png"), "RDS421")


UNDERSCORED = {
    "a stem label": ("stem { __x: conv 8 3x3 }", "__x", "a layer or block"),
    "a block's label": ("stage { odd 8 }", "_p", "a layer or block"),
    "a gate's path": ("stage { gated 8 }", "__se", "a layer or block"),
    "a group": ("stem { group __g { conv 8 3x3 } }", "__g", "a group"),
    "a group member": ("stem { group g { __init__: conv 8 3x3 } }", "__init__", "a layer or block"),
    "a shortcut's layer": (
        "shortcut hidden\n    stage { plain 8; plain 16 }",
        "_q",
        "a layer or block",
    ),
}


@pytest.mark.parametrize("case", sorted(UNDERSCORED))
def test_a_name_starting_with_an_underscore_is_refused_where_it_is_written(case):
    """Python keeps such attributes private (``self.__g`` is stored as ``_Net__g``), so no target's
    keys would be the IR's: refused at the name, in the resolver, never an assertion in the lint."""
    sections, name, what = UNDERSCORED[case]
    text = (
        textwrap.dedent(
            """\
        block gate(c) { avgpool; conv c 1x1 bias=1; sigmoid }
        block odd(w) { conv w 3x3; _p: bn; relu }
        block gated(w) { conv w 3x3; bn; mul { __se: gate w }; add }
        block plain(w) { conv w 3x3; bn; add; relu }
        shortcut hidden { change { _q: conv out 1x1 stride=stride; bn } }
        """
        )
        + f"network n {{\n    input 3x16x16\n    classes 4\n    {sections}\n"
        + "    head { avgpool; fc }\n}\n"
    )
    (error,) = errors_of(text, "n.rds")
    assert error.code == "RDS117"
    assert (
        error.message
        == f"`{name}` cannot name {what}: a name starting with `_` is private in Python"
    )
    line = text.splitlines()[error.span.line - 1]
    assert line[error.span.column - 1 :].startswith(name)


def test_a_labelled_block_in_a_group_keeps_its_label_in_every_target(tmp_path):
    """``group stem { c: cbr 16 }``: the block is ``stem.c``, in the IR and in PyTorch's and
    ONNX's keys alike (it was a traceback: a group's blocks were taken to be numbered)."""
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    text = textwrap.dedent(
        """\
        block cbr(out) { conv out 3x3; bn; relu }
        network n {
            input 3x16x16
            classes 4
            stem { group stem { conv 8 3x3; c: cbr 16 } }
            head { avgpool; fc }
        }
        """
    )
    net = resdsl.check(resdsl.build(resdsl.link(resdsl.parse(text, "n.rds"))))
    from resdsl.emit import emit
    from resdsl.targets.weights import tensors

    from helpers import module_from

    wanted = list(tensors(net))
    assert "stem.c.conv1.weight" in wanted
    model = module_from(emit(net, "torch")["model.py"], "labelled_group").build_model()
    assert [k for k in model.state_dict() if not k.endswith("num_batches_tracked")] == wanted
    graph = onnx.load_from_string(emit(net, "onnx")["model.onnx"]).graph
    assert [t.name for t in graph.initializer] == wanted
    assert torch.is_tensor(model(torch.zeros(1, 3, 16, 16)))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_weights_file_is_held_to_the_network_before_it_is_read(tmp_path):
    """`compile --target onnx --weights`: a FIFO is refused, not waited on; an array whose
    header claims 40 GB is refused by its header, before a byte of its data is read."""
    from resdsl.targets.weights import fresh

    os.mkfifo(tmp_path / "pipe.npz")
    spec = SPECS / "resnet20.rds"
    npz_bomb(tmp_path / "bomb.npz", others=fresh(resdsl.load(spec), 0))
    out = tmp_path / "out"
    fifo = only_error(
        run("compile", spec, "--target", "onnx", "--weights", tmp_path / "pipe.npz", "-o", out),
        "RDS404",
    )
    assert "pipe.npz: not a regular file" in fifo
    bomb = only_error(
        run("compile", spec, "--target", "onnx", "--weights", tmp_path / "bomb.npz", "-o", out),
        "RDS405",
    )
    assert "fc.weight has shape (100000, 100000); network `resnet20` expects (10, 64)" in bomb
    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as archive:  # np.load gives it as bytes
        archive.writestr("fc.weight", b"\x93NUMPY")
    raw = only_error(
        run("compile", spec, "--target", "onnx", "--weights", tmp_path / "raw.npz", "-o", out),
        "RDS404",
    )
    assert "'fc.weight' is not an .npy array" in raw
    assert not out.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("target, framework", [("torch", "torch"), ("tf", "tensorflow")])
def test_load_npz_holds_a_file_to_the_model_before_reading_it(target, framework, tmp_path):
    """model.py's load_npz (which train.py --init-weights calls), in both targets: a FIFO is
    refused, not waited on; an array whose header claims 40 GB, or strings, is refused by its
    header, before its data is read; a name the model does not hold is named."""
    from resdsl.emit import emit
    from resdsl.targets.weights import fresh

    from helpers import module_from

    pytest.importorskip(framework)
    source = emit(resdsl.load(SPECS / "resnet20.rds"), target)["model.py"]
    model = module_from(source, f"{target}_npz_bomb")
    net = model.build_model()
    os.mkfifo(tmp_path / "pipe.npz")
    with pytest.raises(model.WeightsMismatch, match="pipe.npz is not a regular file"):
        model.load_npz(net, str(tmp_path / "pipe.npz"))
    bomb = npz_bomb(tmp_path / "bomb.npz")
    with pytest.raises(model.WeightsMismatch, match=r"fc.weight holds float32 of shape \(100000"):
        model.load_npz(net, str(bomb))
    other = tmp_path / "other.npz"
    np.savez(other, **{"fc.kernel": np.zeros((10, 64), np.float32)})
    with pytest.raises(model.WeightsMismatch, match=r"unexpected \['fc.kernel'\]"):
        model.load_npz(net, str(other))
    strings = npz_bomb(tmp_path / "strings.npz", "fc.bias", (10,))
    with zipfile.ZipFile(strings, "a") as archive, archive.open("fc.weight.npy", "w") as f:
        np.lib.format.write_array(f, np.array(["x"] * 640).reshape(10, 64))
    with pytest.raises(model.WeightsMismatch, match="fc.weight holds <U1 of shape"):
        model.load_npz(net, str(strings))
    # a member that is no .npy (np.load would give its bytes), and weights that are not finite
    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as archive:
        archive.writestr("fc.weight", b"\x93NUMPY")
    with pytest.raises(model.WeightsMismatch, match="'fc.weight' is not an .npy array"):
        model.load_npz(net, str(tmp_path / "raw.npz"))
    weights = fresh(resdsl.load(SPECS / "resnet20.rds"), 0)
    weights["layer3.2.bn2.bias"][5] = np.inf
    np.savez(tmp_path / "inf.npz", **weights)
    with pytest.raises(model.WeightsMismatch, match="layer3.2.bn2.bias holds NaN or infinity"):
        model.load_npz(net, str(tmp_path / "inf.npz"))
