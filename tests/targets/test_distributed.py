"""Beyond one process, on one machine: two torchrun "nodes" (c10d rendezvous on localhost), two
TensorFlow workers (TF_CONFIG on localhost ports, MultiWorkerMirroredStrategy) and TF's virtual
devices, each training ResNet-8 on digits; and the faults between processes: SIGTERM to any one
process, a non-finite loss on one rank. Every process must stop at the same iteration, one finite
checkpoint must remain, and no process may be left waiting in a collective: a watchdog fails the
test on a hang.

The reference is the single-process run with the same global batch: the same initial weights
and batches, so the first loss agrees within 1% (BN statistics are per process, so the runs
drift apart slightly, as the README says) and every loss within 10%.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import QUIET, compile_to, family_spec, records, train

TINY = "data digits\nbatch 16"
WATCHDOG = 300  # seconds: a run that takes longer has hung
FLAGS = ["--data", "digits", "--batch-size", "32", "--log-every", "1"]

FAULTY = '''
"""train.py, but the process of rank 1 feeds NaN images at its third step: a test's fault."""
import json
import os

import train

if "TF_CONFIG" in os.environ:
    RANK = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
else:
    RANK = int(os.environ.get("RANK", "0"))
step, calls = train.Trainer.step, []


def faulty(self, x, y, lr):
    calls.append(1)
    return step(self, x * float("nan") if RANK == 1 and len(calls) == 3 else x, y, lr)


train.Trainer.step = faulty
train.main()
'''


@pytest.fixture(scope="module", params=["torch", "tf"])
def tiny(request, tmp_path_factory):
    pytest.importorskip("torch" if request.param == "torch" else "tensorflow")
    folder = tmp_path_factory.mktemp(f"dist-{request.param}")
    spec = family_spec(folder / "tiny.rds", "tiny", "cifar_resnet(n = 1)", TINY)
    code = compile_to(spec, folder / "code", request.param)
    (code / "faulty.py").write_text(FAULTY)
    return code, request.param


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


class Processes:
    """The processes of one distributed run, each logging to its own file, under a watchdog."""

    def __init__(self, code: Path, folder: Path, commands: list[tuple[list, dict]]):
        folder.mkdir(parents=True, exist_ok=True)
        self.logs = [folder / f"process-{i}.log" for i in range(len(commands))]
        self.procs = []
        for (command, env), log in zip(commands, self.logs, strict=True):
            with open(log, "w") as out:
                self.procs.append(
                    subprocess.Popen(
                        [str(c) for c in command],
                        cwd=code,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env={**QUIET, **env},
                        start_new_session=True,
                    )
                )

    def wait(self) -> list[int]:
        deadline = time.time() + WATCHDOG
        for proc in self.procs:
            try:
                proc.wait(timeout=max(1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                for other in self.procs:
                    with contextlib.suppress(ProcessLookupError):  # one that has exited
                        os.killpg(other.pid, signal.SIGKILL)
                pytest.fail(f"hung: no exit within {WATCHDOG} s\n{self.text()[-3000:]}")
        return [proc.returncode for proc in self.procs]

    def text(self) -> str:
        return "\n".join(log.read_text() for log in self.logs)


def launch(code: Path, target: str, runs: list[Path], flags: list, script: str = "train.py"):
    """Two processes of one run: torchrun nodes (one process each) or TF workers; process i
    writes into runs[i], as on two machines."""
    port, commands = free_port(), []
    if target == "torch":
        rendezvous = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"localhost:{port}"]
        for out in runs:
            torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
            torchrun += ["--nproc_per_node", "1", *rendezvous, "--rdzv-id", "test"]
            commands.append(([*torchrun, script, *flags, "--device", "cpu", "--out", out], {}))
    else:
        workers = [f"localhost:{port}", f"localhost:{free_port()}"]
        for i, out in enumerate(runs):
            config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
            command = [sys.executable, script, *flags, "--distribute", "--out", out]
            commands.append((command, {"TF_CONFIG": json.dumps(config)}))
    return Processes(code, runs[0].parent / "logs", commands)


def writer(runs: list[Path]) -> Path:
    """The one run folder that rank 0 wrote; the other process wrote nothing."""
    written = [out for out in runs if (out / "metrics.jsonl").exists()]
    assert len(written) == 1, [sorted(p.name for p in out.iterdir()) for out in runs]
    (other,) = [out for out in runs if out != written[0]]
    assert not list(other.iterdir()), sorted(p.name for p in other.iterdir())
    return written[0]


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def stopped_at(text: str) -> list[int]:
    """The iteration each process said it stopped after."""
    return [int(n) for n in re.findall(r"stopped by SIGTERM at (\d+); continue with", text)]


def test_two_processes_equal_one(tiny, tmp_path):
    """Two torchrun nodes, or two TF workers, against one process with the same global batch."""
    code, target = tiny
    flags = [*FLAGS, "--iters", "5"]
    train(code, *flags, "--out", tmp_path / "one")
    runs = [tmp_path / "a", tmp_path / "b"]
    processes = launch(code, target, runs, flags)
    assert processes.wait() == [0, 0], processes.text()[-3000:]
    out = writer(runs)
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    one = [r["loss"] for r in records(tmp_path / "one", "train")]
    two = [r["loss"] for r in records(out, "train")]
    assert [r["iter"] for r in records(out, "train")] == [1, 2, 3, 4, 5]
    assert abs(one[0] - two[0]) / one[0] < 0.01
    assert max(abs(a - b) / a for a, b in zip(one, two, strict=True)) < 0.1
    (stop,) = [r for r in records(out, "event") if r["event"] == "stop"]
    first, second = stop["weight_sums"]  # the replicas agree
    assert first == second
    assert [p.name for p in out.glob("ckpt-*")] == [
        f"ckpt-000000005{'.pt' if target == 'torch' else '.npz'}"
    ]


def finite_checkpoints(out: Path, target: str) -> list[int]:
    """The iterations of the checkpoints in a run folder, each checked to be all finite."""
    found = []
    for path in sorted(out.glob("ckpt-*")):
        if target == "torch":
            import torch

            ckpt = torch.load(path, weights_only=True)
            arrays = [v.numpy() for v in ckpt["model"].values() if v.is_floating_point()]
        else:
            with np.load(path) as ckpt:
                arrays = [ckpt[k] for k in ckpt.files if k.startswith(("model/", "momentum/"))]
        assert all(np.isfinite(a).all() for a in arrays), path.name
        found.append(int(path.name.split("-")[1].split(".")[0]))
    return found


@pytest.mark.parametrize("victim", [0, 1])
def test_sigterm_to_one_process_stops_every_process_at_one_iteration(tiny, tmp_path, victim):
    """SIGTERM to one process (a torchrun worker, or a TF worker) of a long run: every process
    stops after the same iteration, with one checkpoint of it, and exits 143."""
    code, target = tiny
    runs = [tmp_path / "a", tmp_path / "b"]
    processes = launch(code, target, runs, [*FLAGS, "--iters", "100000"])
    deadline = time.time() + WATCHDOG
    while not any(
        len(records(out, "train")) >= 3 for out in runs if (out / "metrics.jsonl").exists()
    ):
        assert time.time() < deadline, processes.text()[-3000:]
        assert all(p.poll() is None for p in processes.procs), processes.text()[-3000:]
        time.sleep(0.2)
    launcher = processes.procs[victim].pid
    worker = children(launcher) if target == "torch" else [launcher]
    assert len(worker) == 1, worker
    os.kill(worker[0], signal.SIGTERM)
    codes = processes.wait()
    text = processes.text()
    if target == "tf":
        assert codes == [143, 143], text[-3000:]
    else:  # torchrun reports its worker's status as a failure: 1
        # Known teardown race (left for its own fix): now and then a worker that has stopped
        # (its "stopped by" line is required below) is aborted by gloo in
        # destroy_process_group as its peer exits (exitcode -6), or its agent loses the
        # rendezvous store first; every worker still stops after the same iteration, saved.
        statuses = text.count("exitcode  : 143") + text.count("exitcode  : -6")
        statuses += text.count("RendezvousConnectionError")
        assert codes == [1, 1] and text.count("exitcode  : 143") >= 1, text[-3000:]
        assert statuses >= 2, text[-3000:]
    at = stopped_at(text)
    assert len(at) == 2 and at[0] == at[1], text[-3000:]
    out = writer(runs)
    (stop,) = [r for r in records(out, "event") if r["event"] == "stop"]
    assert stop["reason"] == "SIGTERM" and stop["iter"] == at[0]
    first, second = stop["weight_sums"]
    assert first == second
    assert finite_checkpoints(out, target)[-1] == at[0]


def test_a_nonfinite_loss_on_one_process_stops_every_process(tiny, tmp_path):
    """Rank 1 alone meets NaN images at its third step: the loss is the whole batch's, so every
    process stops at iteration 2 with status 1, and only finite checkpoints remain."""
    code, target = tiny
    runs = [tmp_path / "a", tmp_path / "b"]
    flags = [*FLAGS, "--iters", "10", "--ckpt-every", "1"]
    processes = launch(code, target, runs, flags, script="faulty.py")
    codes = processes.wait()
    text = processes.text()
    assert codes == [1, 1], text[-3000:]
    assert text.count("error: the loss became nan at iteration 2; stopping.") == 2, text[-3000:]
    out = writer(runs)
    (stop,) = [r for r in records(out, "event") if r["event"] == "stop"]
    assert stop == {"kind": "event", "iter": 2, "event": "stop", "reason": "non-finite loss"}
    assert finite_checkpoints(out, target) == [1, 2]


def test_virtual_devices_stop_together_under_sigterm(tmp_path):
    """TF's MirroredStrategy on two virtual CPUs: SIGTERM stops both replicas after one
    iteration, equal, with its checkpoint."""
    pytest.importorskip("tensorflow")
    spec = family_spec(tmp_path / "tiny.rds", "tiny", "cifar_resnet(n = 1)", TINY)
    code = compile_to(spec, tmp_path / "code", "tf")
    out = tmp_path / "run"
    flags = [*FLAGS, "--iters", "100000", "--distribute", "--virtual-cpus", "2", "--out", out]
    processes = Processes(code, tmp_path / "logs", [([sys.executable, "train.py", *flags], {})])
    deadline = time.time() + WATCHDOG
    while not (out / "metrics.jsonl").exists() or len(records(out, "train")) < 3:
        assert time.time() < deadline and processes.procs[0].poll() is None, processes.text()
        time.sleep(0.2)
    os.kill(processes.procs[0].pid, signal.SIGTERM)
    assert processes.wait() == [143], processes.text()[-3000:]
    (stop,) = [r for r in records(out, "event") if r["event"] == "stop"]
    first, second = stop["weight_sums"]
    assert stop["reason"] == "SIGTERM" and first == second and math.isfinite(first)
    assert finite_checkpoints(out, "tf") == [stop["iter"]]
