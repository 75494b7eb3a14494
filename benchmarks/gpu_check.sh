#!/usr/bin/env bash
# The GPU check: images/s and peak memory of the generated PyTorch code on one CUDA device.
#
# ResNet-20 and ResNet-110 on CIFAR-shaped synthetic data (batch 128) and ResNet-50 at 224
# (batch 64), each with default settings and with --amp --channels-last --compile. Prints one
# table row per run. Run from the repository root on a machine with a GPU:
#
#     bash benchmarks/gpu_check.sh            # ITERS=200 by default
set -euo pipefail
cd "$(dirname "$0")/.."
ITERS=${ITERS:-200}
OUT=${OUT:-$(mktemp -d)}

python -m pip install -q -e . >/dev/null
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device: this check needs a GPU"
print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
PY

printf '%-10s %-28s %12s %14s\n' network flags "images/s" "peak MiB"
for spec in resnet20:128 resnet110:128 resnet50_v1_5:64; do
    name=${spec%:*}
    batch=${spec#*:}
    resdsl compile "specs/$name.rds" --target torch -o "$OUT/$name" >/dev/null
    for flags in "" "--amp --channels-last --compile"; do
        run="$OUT/$name-run-${flags// /}"
        # shellcheck disable=SC2086
        (cd "$OUT/$name" && python train.py --data synthetic --device cuda --iters "$ITERS" \
            --batch-size "$batch" --out "$run" --eval-every 1000000 --log-every "$ITERS" \
            $flags >/dev/null)
        python - "$run" "$name" "${flags:-default}" <<'PY'
import json, sys
run, name, flags = sys.argv[1:]
records = [json.loads(line) for line in open(f"{run}/metrics.jsonl")]
train = [r for r in records if r["kind"] == "train"][-1]
stop = [r for r in records if r.get("event") == "stop"][-1]
print(f"{name:<10} {flags:<28} {train['images_per_s']:>12.0f} {stop.get('peak_memory_mib', 0):>14.0f}")
PY
    done
done
