#!/usr/bin/env bash
# One-call GPU check for a lent CUDA machine, about 9.5 minutes (BUDGET=570 s, the default on CUDA):
#   1. scripts/bench_segface.py --devices cuda --train (issue 12's measurements, one process, in the order a, b, c):
#      (a) training step, default path vs literal formulation, MobileNetV3-L and Swin-B, bf16, batch 8, 512 px;
#      (b) inference vs literal eager: batch 16 bf16 (default path), batch 1 fp32 (with the compile option);
#      (c) one loader worker's time per image, the loader's rate, and `train` end to end on SynthFace-LT in
#          CelebAMask-HQ's proportions (1024 px JPEGs, 512 px masks) next to the model-only rate;
#      the first compilations on a fresh machine (Inductor, CUDA graphs) are paid here, untimed;
#   2. the `gpu`-marked tests of the whole suite (about 175 s on an H200, most of it compiling): SegFace's
#      formulations equal the literal one on CUDA (values, gradients), fused attention kernels, no host
#      synchronisation in a training step, compiled training and CUDA-graph parsing equal eager, the default
#      CUDA training path (compiled, fused AdamW, deferred reads, NaN skip), mixed precision, the confusion
#      matrix, the speed harness;
#   3. scripts/bench_segface.py --devices cuda (batch-1 table: default, literal, BiSeNet-ResNet18) and
#      scripts/bench_metrics.py;
#   4. with budget left: the speed harness (lt-faceparse speed) in bf16 for every SegFace backbone, the Swin-B
#      resolution sweep, the baselines; then one table of every measurement.
# The measurements come first: on 2026-11-28 the tests (then first) and the --train bench used a 570 s lease.
# Every step has its own time limit (STEP_TIMEOUT seconds, default 150; the --train bench 420, the tests 210) and, with
# BUDGET seconds set, no step runs past BUDGET - 30 s after the start (later steps are skipped and say so),
# so that the summary is always written inside a lease. Outputs (8 files, so that all come back):
#   $OUT/env.txt, gpu_tests.txt, bench_train.txt, bench_train.json, bench_log.txt, speed_log.txt, speed.md,
#   speed_records.json
# Usage: OUT=/tmp/gpu scripts/gpu_check.sh     (OUT defaults to ./gpu_check_out)
#        DEVICE=cpu QUICK=1 scripts/gpu_check.sh   (a plumbing check of this script without a GPU)
# Exit status: non-zero when a GPU test, a benchmark or a measurement fails.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_out}"
DEVICE="${DEVICE:-cuda}"
RUNS="${RUNS:-50}"
STEP_TIMEOUT="${STEP_TIMEOUT:-150}"
TRAIN_BENCH_TIMEOUT="${TRAIN_BENCH_TIMEOUT:-420}"
QUICK="${QUICK:-}"
if [ "$DEVICE" = cuda ]; then BUDGET="${BUDGET:-570}"; else BUDGET="${BUDGET:-0}"; fi
mkdir -p "$OUT"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 COLUMNS=200
RECORDS="$(mktemp -d)"
status=0
step() {  # step LIMIT LOG COMMAND...: run with the limit, append to LOG, remember failures
  local limit="$1" log="$2"; shift 2
  echo "== $*" >> "$log"
  local start=$SECONDS
  if [ "$BUDGET" -gt 0 ]; then
    local left=$((BUDGET - 30 - SECONDS))
    if [ "$left" -lt 10 ]; then echo "SKIPPED (budget of $BUDGET s spent): $*" >> "$log"; status=1; return; fi
    [ "$left" -lt "$limit" ] && limit=$left
  fi
  timeout "$limit" "$@" >> "$log" 2>&1 || { echo "FAILED (rc $?): $*" >> "$log"; status=1; }
  echo "   ($((SECONDS - start)) s)" >> "$log"
}

{
  date -u
  git log -1 --format='commit %H (%s)' 2>/dev/null || echo "commit: not a git checkout"
  nvidia-smi || true
  "$PYTHON" -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
  nproc
} > "$OUT/env.txt" 2>&1

if [ -n "$QUICK" ]; then
  step "$TRAIN_BENCH_TIMEOUT" "$OUT/bench_train.txt" "$PYTHON" scripts/bench_segface.py --devices "$DEVICE" --train \
    --train-resolution 64 --train-batch 2 --steps 1 --rounds 1 --resolutions 64 --e2e-images 16 \
    --json "$OUT/bench_train.json"
else
  step "$TRAIN_BENCH_TIMEOUT" "$OUT/bench_train.txt" "$PYTHON" scripts/bench_segface.py --devices "$DEVICE" --train \
    --json "$OUT/bench_train.json"
fi
if [ "$DEVICE" = cuda ]; then
  step 210 "$OUT/gpu_tests.txt" "$PYTHON" -m pytest -m gpu -q -rs -p no:cacheprovider tests
fi
if [ -n "$QUICK" ]; then
  step "$STEP_TIMEOUT" "$OUT/bench_log.txt" "$PYTHON" scripts/bench_segface.py --devices "$DEVICE" --backbones mobilenet \
    --resolutions 64 --runs 2 --rounds 1
else
  step "$STEP_TIMEOUT" "$OUT/bench_log.txt" "$PYTHON" scripts/bench_segface.py --devices "$DEVICE" \
    --backbones mobilenet swin_base --resolutions 512 --runs 50 --rounds 5
fi
step 60 "$OUT/bench_log.txt" "$PYTHON" scripts/bench_metrics.py --device "$DEVICE"

speed() {  # speed ARGS...: one lt-faceparse speed call
  step "$STEP_TIMEOUT" "$OUT/speed_log.txt" "$PYTHON" -m lt_faceparse speed "$@" --device "$DEVICE" --warmup 10 \
    --runs "$RUNS" --out "$RECORDS"
}
if [ -n "$QUICK" ]; then
  speed --model segface --backbone mobilenet --res 64 --batch 1 --dtype bf16
  speed --model bisenet --res 64 --batch 1 --dtype fp32
else
  for backbone in mobilenet swin_base resnet101 efficientnet swinv2_base convnext_base; do
    speed --model segface --backbone "$backbone" --res 512 --batch 1,8 --dtype bf16
  done
  speed --model segface --backbone swin_base --res 64,128,224,256,448,512 --batch 1 --dtype fp32
  speed --model fcn --backbone swin_base --res 512 --batch 1,8 --dtype bf16
  speed --model segformer --backbone swin_base --res 512 --batch 1,8 --dtype bf16
  speed --model bisenet --res 512 --batch 1,8 --dtype bf16
fi

"$PYTHON" - "$RECORDS" "$OUT" <<'PY' || status=1
import json, sys
from pathlib import Path
from lt_faceparse.reporting.sweep_tables import speed_table
from lt_faceparse.reporting.tables import to_markdown
from lt_faceparse.speed.harness import find_speed_records

records = find_speed_records(sys.argv[1])
out = Path(sys.argv[2])
(out / "speed_records.json").write_text(json.dumps(records, indent=1))
(out / "speed.md").write_text(to_markdown(speed_table(records)) if records else "no speed records (budget spent)\n")
print(f"{len(records)} speed records -> {out}")
PY
rm -rf "$RECORDS"
echo "gpu_check: status $status (details in $OUT)"
exit $status
