"""The generated TensorFlow code's speed, measured side by side in one run.

1. The generated custom training step (tf.function, PyTorch's SGD conventions) against
   `model.fit` with Keras' SGD on the same model and data, in images per second, each with and
   without XLA (jit_compile).
2. Images per second of both targets' train.py on the same spec (ResNet-20 on synthetic data).

    python benchmarks/tf_step.py
    python benchmarks/tf_step.py --iters 40 --batch 64
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import resdsl  # noqa: E402
from resdsl.emit import emit, write  # noqa: E402

SPECS = Path(__file__).resolve().parent.parent / "specs"


def load(folder: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def custom_step_rate(model_module, train_module, x, y, iters, xla) -> float:
    model = model_module.build_model()
    opt = train_module.TorchSGD(model.trainable_variables, momentum=0.9, weight_decay=1e-4)

    @tf.function(jit_compile=xla)
    def step(xb, yb, lr):
        with tf.GradientTape() as tape:
            logits = model(xb, training=True)
            losses = keras.losses.sparse_categorical_crossentropy(yb, logits, from_logits=True)
            loss = tf.reduce_mean(losses)
        opt.apply(tape.gradient(loss, model.trainable_variables), lr)
        return loss

    lr = tf.constant(0.1)
    step(x, y, lr)  # trace and compile
    start = time.perf_counter()
    for _ in range(iters):
        loss = step(x, y, lr)
    float(loss)
    return iters * len(x) / (time.perf_counter() - start)


def fit_rate(model_module, x, y, iters, xla) -> float:
    model = model_module.build_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=xla,
    )
    data = tf.data.Dataset.from_tensors((x, y)).repeat(iters + 1)
    model.fit(data.take(1), verbose=0, shuffle=False)  # trace and compile
    start = time.perf_counter()
    model.fit(data.take(iters), verbose=0, shuffle=False)
    return iters * len(x) / (time.perf_counter() - start)


def train_py_rate(folder: Path, iters: int, batch: int, run: Path) -> float:
    subprocess.run(
        [
            sys.executable,
            "train.py",
            "--data",
            "synthetic",
            "--iters",
            str(iters),
            "--batch-size",
            str(batch),
            "--out",
            str(run),
            "--eval-every",
            str(10**6),
            "--log-every",
            str(iters),
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    return [r for r in records if r["kind"] == "train"][-1]["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    net = resdsl.load(SPECS / "resnet20.rds")
    with tempfile.TemporaryDirectory() as tmp:
        tf_dir, torch_dir = Path(tmp) / "tf", Path(tmp) / "torch"
        write(emit(net, "tf"), tf_dir)
        write(emit(net, "torch"), torch_dir)
        sys.path.insert(0, str(tf_dir))
        model_module, train_module = load(tf_dir, "model"), load(tf_dir, "train")
        rng = np.random.default_rng(0)
        x = rng.standard_normal((args.batch, 32, 32, 3)).astype(np.float32)
        y = rng.integers(0, 10, args.batch).astype(np.int32)
        print(
            f"tensorflow {tf.__version__}, keras {keras.__version__}, CPU; ResNet-20, "
            f"batch {args.batch}"
        )
        print(f"{'':<22}{'images/s':>10}{'xla images/s':>14}")
        rates = {}
        for label, measure in (
            (
                "custom step",
                lambda xla: custom_step_rate(model_module, train_module, x, y, args.iters, xla),
            ),
            ("model.fit", lambda xla: fit_rate(model_module, x, y, args.iters, xla)),
        ):
            rates[label] = (measure(False), measure(True))
            print(f"{label:<22}{rates[label][0]:>10.0f}{rates[label][1]:>14.0f}")
        print(
            f"custom step / model.fit: {rates['custom step'][0] / rates['model.fit'][0]:.2f} "
            f"(xla: {rates['custom step'][1] / rates['model.fit'][1]:.2f})"
        )
        tf_rate = train_py_rate(tf_dir, args.iters, args.batch, Path(tmp) / "run-tf")
        torch_rate = train_py_rate(torch_dir, args.iters, args.batch, Path(tmp) / "run-torch")
        print(
            f"\ntrain.py --data synthetic, same spec: tf {tf_rate:.0f} images/s, "
            f"torch {torch_rate:.0f} images/s (tf / torch {tf_rate / torch_rate:.2f})"
        )


if __name__ == "__main__":
    main()
