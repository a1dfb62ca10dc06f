#!/usr/bin/env bash
# The GPU check, in under 5 minutes on one GPU: sampler speed at 1x28x28 (float32 and bfloat16,
# eager and torch.compile'd), then a short Fashion-MNIST fit of the NN-EFH with the library's
# defaults (the `cpu` preset's sampler on the GPU) and its sample-quality row. JSON files and
# sample grids land in the output folder (default results/gpu_check).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# Needs a CUDA build of torch. Fashion-MNIST is looked up where skefh's loader looks
# ($SKEFH_DATA, Debian's /usr/share/datasets/fashion-mnist, ...); the judge is read from
# results/judge/fashion-mnist.pt when present (else trained, about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/gpu_check}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device: this check is for a GPU machine"
print("torch", torch.__version__, "on", torch.cuda.get_device_name())
PY
# 1. Langevin steps per second, baseline against library, four ways (about a minute).
timeout 180 python3 benchmarks/bench_sampler.py --quick --device cuda --compile --out "$out/bench_sampler.json"
# 2. A short fit with the new defaults and its sample quality (about two minutes).
timeout 240 python3 benchmarks/sample_quality.py --dataset fashion-mnist --models nnefh --updates 500 \
    --set device=cuda --n-samples 1000 --name gpu --out-dir "$out"
echo "gpu check done: $out"
