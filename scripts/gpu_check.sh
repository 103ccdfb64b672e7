#!/usr/bin/env bash
# One-call GPU check for a lent CUDA machine:
#   1. the `gpu`-marked tests of the whole suite (SegFace on CUDA vs CPU, mixed-precision training,
#      the confusion matrix on CUDA, the speed harness);
#   2. scripts/bench_segface.py on CUDA: SegFace fast path vs literal formulation vs BiSeNet-ResNet18;
#   3. scripts/bench_metrics.py on CUDA: metric throughput next to the numpy per-image baseline;
#   4. the speed harness (lt-faceparse speed) in bf16 for every SegFace backbone at 224 and 512 px
#      (batch 1 and 8), the SegFace Swin-B resolution sweep of the paper's Table 2b in fp32 and bf16
#      at batch 1, torch.compile for MobileNetV3, and the baselines (FCN, SegFormer head, BiSeNet) at
#      512 px; then one table of every measurement.
# Every step has its own time limit (STEP_TIMEOUT seconds, default 150) and, with BUDGET seconds set,
# no step runs past BUDGET - 30 s after the start (later steps are skipped and say so), so that the
# summary is always written inside a lease. Outputs (at most 7 files, so that all come back):
#   $OUT/env.txt, gpu_tests.txt, bench_log.txt, speed_log.txt, speed_records.json, speed.md, speed.csv
# Usage: OUT=/tmp/gpu scripts/gpu_check.sh     (OUT defaults to ./gpu_check_out)
#        DEVICE=cpu RUNS=2 QUICK=1 scripts/gpu_check.sh   (a plumbing check of this script without a GPU)
# Exit status: non-zero when a GPU test, a benchmark or a measurement fails.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_out}"
DEVICE="${DEVICE:-cuda}"
RUNS="${RUNS:-50}"
STEP_TIMEOUT="${STEP_TIMEOUT:-150}"
QUICK="${QUICK:-}"
BUDGET="${BUDGET:-0}"
mkdir -p "$OUT"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 COLUMNS=200
RECORDS="$(mktemp -d)"
status=0
step() {  # step LOG COMMAND...: run with the step limit, append to LOG, remember failures
  local log="$1"; shift
  echo "== $*" >> "$log"
  local start=$SECONDS limit=$STEP_TIMEOUT
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
  nvidia-smi || true
  "$PYTHON" -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
} > "$OUT/env.txt" 2>&1

if [ "$DEVICE" = cuda ]; then
  step "$OUT/gpu_tests.txt" "$PYTHON" -m pytest -m gpu -q -rs -p no:cacheprovider tests
fi

if [ -n "$QUICK" ]; then
  step "$OUT/bench_log.txt" "$PYTHON" scripts/bench_segface.py --devices "$DEVICE" --backbones mobilenet \
    --resolutions 64 --runs 2 --rounds 1
else
  step "$OUT/bench_log.txt" "$PYTHON" scripts/bench_segface.py --devices "$DEVICE" --backbones mobilenet swin_base \
    --resolutions 224 512 --runs 20
fi
step "$OUT/bench_log.txt" "$PYTHON" scripts/bench_metrics.py --device "$DEVICE"

speed() {  # speed ARGS...: one lt-faceparse speed call
  step "$OUT/speed_log.txt" "$PYTHON" -m lt_faceparse speed "$@" --device "$DEVICE" --warmup 10 --runs "$RUNS" \
    --out "$RECORDS"
}
if [ -n "$QUICK" ]; then
  speed --model segface --backbone mobilenet --res 64 --batch 1 --dtype bf16
  speed --model bisenet --res 64 --batch 1 --dtype fp32
else
  for backbone in mobilenet resnet101 efficientnet swin_base swinv2_base convnext_base; do
    speed --model segface --backbone "$backbone" --res 224,512 --batch 1,8 --dtype bf16
  done
  speed --model segface --backbone swin_base --res 64,96,128,192,224,256,448,512 --batch 1 --dtype fp32
  speed --model segface --backbone swin_base --res 64,96,128,192,224,256,448,512 --batch 1 --dtype bf16
  speed --model segface --backbone mobilenet --res 512 --batch 1 --dtype bf16 --compile
  speed --model fcn --backbone swin_base --res 512 --batch 1,8 --dtype bf16
  speed --model segformer --backbone swin_base --res 512 --batch 1,8 --dtype bf16
  speed --model bisenet --res 512 --batch 1,8 --dtype bf16
fi

"$PYTHON" - "$RECORDS" "$OUT" <<'PY' || status=1
import json, sys
from pathlib import Path
from lt_faceparse.reporting.report import speed_table
from lt_faceparse.reporting.tables import to_csv, to_markdown
from lt_faceparse.speed import find_speed_records

records = find_speed_records(sys.argv[1])
out = Path(sys.argv[2])
(out / "speed_records.json").write_text(json.dumps(records, indent=1))
table = speed_table(records)
(out / "speed.md").write_text(to_markdown(table))
(out / "speed.csv").write_text(to_csv(table))
print(f"{len(records)} speed records -> {out}")
PY
rm -rf "$RECORDS"
echo "gpu_check: status $status (details in $OUT)"
exit $status
