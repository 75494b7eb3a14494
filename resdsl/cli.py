"""The `resdsl` command: thin click commands over the pipeline. It owns no logic."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from pathlib import Path

import click

from . import diagnostics, load, summary
from .api import check_spec
from .costs import units
from .emit import check_output, emit, options_of, targets, write, write_text
from .errors import ResdslError


class Targets(click.Choice):
    """The registered targets, looked up when a command needs them: importing the targets'
    modules is work that `check` and `fmt` never need."""

    def __init__(self):
        super().__init__([])

    @property
    def choices(self):
        return targets()

    @choices.setter
    def choices(self, value):
        pass


spec_arg = click.argument("spec", type=click.Path(exists=True, dir_okay=False))
shortcut_opt = click.option(
    "--shortcut",
    metavar="NAME",
    help="Override every shortcut policy in the spec: A, B, C, none or a shortcut it defines.",
)
network_opt = click.option(
    "--network", metavar="NAME", help="The network to use where the spec defines several."
)


def reports_errors(command):
    """Print a ResdslError as a compiler does and exit 1; never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ResdslError as exc:
            click.echo(exc.render(), err=True)
            sys.exit(1)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="resdsl")
def main():
    """resdsl: check residual networks written in the .rds language, and compile them."""


def spec_files(specs, json_output: bool) -> list[str]:
    """The files to check: each file as given, each folder's .rds files (recursively, sorted).

    A missing path is a usage error, except in JSON, where it is the file's own diagnostic.
    """
    out = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*.rds"))
            if not found:
                raise click.UsageError(f"no .rds files in {spec}")
            out += found
        elif path.exists() or json_output:
            out.append(spec)
        else:
            raise click.UsageError(f"Invalid value for 'SPECS...': Path '{spec}' does not exist.")
    return out


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path())
@shortcut_opt
@network_opt
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object of diagnostics on stdout (schema: resdsl/schemas/).",
)
@click.option("--deny-warnings", is_flag=True, help="Make warnings errors (exit 1), as CI wants.")
def check(specs, shortcut, network, output, deny_warnings):
    """Check each SPEC's network (a folder: every .rds in it): names, shapes, additions and
    train section, and every definition, used or not. Warnings are shown; with
    --deny-warnings they are errors."""
    specs = spec_files(specs, output == "json")
    files, problems, failed = [], [], 0
    for path in specs:
        warned, error, families = [], None, []
        try:
            nets = check_spec(
                path, network=network, shortcut=shortcut, warnings=warned, defaults=families
            )
        except ResdslError as exc:
            nets, error = [], exc
        for warning in warned if deny_warnings else ():
            warning.kind = "error"
        found = [*warned, *(diagnostics.flatten(error) if error else [])]
        ok = not any(problem.kind == "error" for problem in found)
        failed += not ok
        files.append({"file": path, "ok": ok, "networks": [net.name for net in nets]})
        problems += [(path, problem) for problem in found]
        if output == "json":
            continue
        for warning in warned:
            click.echo(warning.render(), err=True)
        if error is not None:  # as one report: the explain line once, at the end
            click.echo(error.render(), err=True)
        if error is not None or not ok:
            continue
        if not nets:
            click.echo(f"{path}: ok: definitions only")
        for net in nets:
            info = summary(net)
            at = " at its defaults" if net.name in families else ""
            click.echo(
                f"{path}: ok: {net.name}{at}, {len(info['layers'])} ops, "
                f"{info['params']:,} params, {info['macs']:,} MACs"
            )
    if output == "json":
        click.echo(json.dumps(diagnostics.report(files, problems), indent=2))
    if failed:
        sys.exit(1)


@main.command("summary")
@spec_arg
@shortcut_opt
@network_opt
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Rows down to this depth: 1 stem, stages and head; 2 their blocks and ops; 3 the "
    "blocks' ops (and nested blocks); and so on.",
)
@reports_errors
def summary_cmd(spec, shortcut, network, as_json, depth):
    """SPEC's network as torchinfo shows a model: stem, stages, blocks and ops down to --depth,
    each with its input and output shapes, parameters and MACs; then the totals (trainable and
    not) and the memory of parameters and of one image's activations."""
    info = summary(load(spec, network=network, shortcut=shortcut))
    if as_json:
        click.echo(json.dumps(info))
        return
    rows = []

    def walk(items, level):
        for item in items:
            rows.append(
                (
                    "  " * (level - 1) + item["name"],
                    item["kind"],
                    "x".join(map(str, item["input"])),
                    "x".join(map(str, item["shape"])),
                    f"{item['params']:,}",
                    f"{item['macs']:,}",
                )
            )
            if level < depth:
                walk(item["children"], level + 1)

    walk(info["groups"], 1)
    header = ("layer", "kind", "input", "output", "params", "MACs")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(6)]

    def line(row):
        left = [row[i].ljust(widths[i]) for i in range(4)]
        right = [row[i].rjust(widths[i]) for i in range(4, 6)]
        return "  ".join(left + right).rstrip()

    rule = "  ".join("-" * w for w in widths)
    input_shape = "x".join(map(str, info["input"]))
    click.echo(f"network {info['network']}  (input {input_shape})")
    click.echo(line(header))
    click.echo(rule)
    for row in rows:
        click.echo(line(row))
    click.echo(rule)
    total = info["params"] + info["non_trainable"]
    for label, value in (
        ("trainable params", info["params"]),
        ("non-trainable params", info["non_trainable"]),
        ("total params", total),
        ("MACs", info["macs"]),
    ):
        click.echo(f"{label + ':':<22}{value:>16,}  ({units(value)})")
    click.echo(f"{'params size:':<22}{units(info['param_bytes']) + 'B':>16}  (float32)")
    click.echo(f"{'activations:':<22}{units(info['activation_bytes']) + 'B':>16}  (per image)")


@main.command("compile")
@spec_arg
@click.option(
    "--target",
    type=Targets(),
    required=True,
    help="The framework to generate for, or onnx.",
)
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(file_okay=False),
    help="Output folder (default: build/<network>-<target>/).",
)
@click.option(
    "--weights",
    metavar="W.npz",
    type=click.Path(dir_okay=False),
    help="onnx: the weights to put in model.onnx, as either target's save_npz writes them "
    "(default: fresh, as the PyTorch target's build_model() draws them).",
)
@shortcut_opt
@network_opt
@reports_errors
def compile_cmd(spec, target, out, weights, shortcut, network):
    """Write SPEC's network for TARGET: model.py and train.py, standalone (torch, tf), or
    model.onnx with its weights (onnx)."""
    given = {"weights": weights} if weights is not None else {}
    refused = sorted(set(given) - set(options_of(target)))
    if refused:
        takes = [t for t in targets() if refused[0] in options_of(t)]
        raise click.UsageError(f"--{refused[0]} is for --target {' or '.join(takes)}, not {target}")
    if out is not None:
        check_output(out)
    net = load(spec, network=network, shortcut=shortcut)
    files = emit(net, target, **given)
    for path in write(files, out or f"build/{net.name}-{target}"):
        click.echo(f"wrote {path}")


@main.command()
@spec_arg
@click.option(
    "-o", "--out", required=True, type=click.Path(dir_okay=False), help="FILE.dot, .svg or .png"
)
@click.option("--expand", is_flag=True, help="One node per op instead of one box per block.")
@shortcut_opt
@network_opt
@reports_errors
def graph(spec, out, expand, shortcut, network):
    """Draw SPEC's network with Graphviz: blocks, shortcuts and output shapes."""
    from .graph import render, to_dot

    net = load(spec, network=network, shortcut=shortcut)
    click.echo(f"wrote {render(to_dot(net, expand=expand), out)}")


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="FILE.png")
@click.option("--responses", is_flag=True, help="Plot responses.json (Fig. 7) instead.")
@click.option("--label", "labels", multiple=True, help="A legend label per run, in order.")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True)
@reports_errors
def plot(runs, out, responses, labels, split):
    """Plot training runs as the paper's Fig. 6 (error curves) or Fig. 7 (--responses)."""
    try:
        import matplotlib  # noqa: F401

        from . import plot as plots
    except ImportError:
        raise ResdslError(
            "resdsl plot needs matplotlib", hint="pip install 'resdsl[plot]'", code="RDS420"
        ) from None
    if responses:
        figure = plots.response_curves(runs, labels or None)
    else:
        figure = plots.error_curves(runs, labels or None, split=split)
    click.echo(f"wrote {plots.save(figure, out)}")


@main.command("fmt")
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 with a diff if a file would.")
def fmt_cmd(files, check):
    """Rewrite each FILE (.rds; folders: every .rds in them; -: stdin to stdout) in the
    canonical layout, keeping every comment."""
    from .fmt import diff, format_paths, format_text

    changed = failed = 0
    for path, text in format_paths(files):
        if isinstance(text, ResdslError):
            click.echo(text.render(), err=True)
            failed += 1
            continue
        if path == "-":
            with click.open_file("-", encoding="utf-8") as stdin:
                text = stdin.read()
        old = text
        try:
            new = format_text(old, "<stdin>" if path == "-" else path)
        except ResdslError as exc:
            click.echo(exc.render(), err=True)
            failed += 1
            continue
        if path == "-" and not check:
            click.echo(new, nl=False)
        elif new != old:
            changed += 1
            if check:
                click.echo(diff(old, new, path), nl=False)
            else:
                try:
                    write_text(path, new)
                except ResdslError as exc:
                    click.echo(exc.render(), err=True)
                    failed += 1
                    continue
                click.echo(f"formatted {path}", err=True)
    if failed or check and changed:
        sys.exit(1)


@main.command()
@click.argument("code", required=False)
@click.option("--list", "list_all", is_flag=True, help="List every code with its title.")
def explain(code, list_all):
    """Explain an error CODE (e.g. RDS201): what it means, an example and the fix."""
    if list_all or code is None:
        click.echo(diagnostics.listing(), nl=False)
        return
    try:
        click.echo(diagnostics.explain(code), nl=False)
    except KeyError:
        raise click.UsageError(
            f"no error code {code!r}; `resdsl explain --list` lists them"
        ) from None


@contextlib.contextmanager
def user_output_to_stderr():
    """What a source's own code prints (a module as it is imported, a factory, a forward pass)
    goes to stderr, from Python and from C alike: stdout holds the spec alone."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no file descriptor 1 to move: Python's own stream is still redirected
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


CHECKPOINT = click.option(
    "--checkpoint",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Trained weights for a PyTorch source: safetensors, or a state_dict file read with "
    "torch.load(weights_only=True) (never unpickled).",
)


@main.command("import")
@click.argument("source")
@click.option(
    "-o", "--out", type=click.Path(dir_okay=False), help="Write the spec here, not to stdout."
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Load the source's state_dict into the spec's PyTorch model and compare logits.",
)
@click.option(
    "--weights",
    metavar="W.npz",
    type=click.Path(dir_okay=False),
    help="Also write the source's weights here, as either target's save_npz writes them.",
)
@CHECKPOINT
@reports_errors
def import_cmd(source, out, verify, weights, checkpoint):
    """Write SOURCE as a spec: torchvision:NAME, timm:NAME, module:PACKAGE.MODULE:FACTORY,
    FILE.onnx, keras:NAME, keras:PACKAGE.MODULE:FACTORY or FILE.keras. Nothing is downloaded; the
    proof's result goes to stderr."""
    from .importer import import_source

    if weights and not verify:
        raise click.UsageError("--weights needs the proof: leave out --no-verify")
    with user_output_to_stderr():
        result = import_source(source, verify=verify, checkpoint=checkpoint)
    if weights:
        from .targets.weights import npz

        write({Path(weights).name: npz(result.net, result.weights())}, Path(weights).parent)
    if out:
        write_text(out, result.text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(result.text, nl=False)
    if weights:
        click.echo(f"wrote {weights}", err=True)
    click.echo(result.report, err=True)


@main.command()
@click.argument("source")
@click.option("--target", type=Targets(), required=True, help="The framework to port to.")
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="The folder for the spec, weights.npz and the target's files.",
)
@CHECKPOINT
@reports_errors
def port(source, target, out, checkpoint):
    """Carry SOURCE, with its weights, to another framework: the spec, weights.npz and the
    target's files, proved by the target's own logits against the source's (within 1e-4)."""
    from .port import port as port_source

    check_output(out)
    with user_output_to_stderr():
        ported = port_source(source, target, checkpoint=checkpoint)
    for path in write(ported.files, out):
        click.echo(f"wrote {path}", err=True)
    click.echo(ported.report, err=True)


@main.command()
def lsp():
    """Run the language server over stdio (needs the lsp extra: pip install 'resdsl[lsp]')."""
    try:
        from .lsp import serve
    except ImportError as exc:
        raise click.UsageError(
            f"resdsl lsp needs pygls and lsprotocol ({exc.name} is missing): "
            "pip install 'resdsl[lsp]'"
        ) from None
    serve()
