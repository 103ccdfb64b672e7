#!/usr/bin/env bash
# One-call GPU check for a lent CUDA machine:
#   1. the `gpu`-marked tests of the whole suite;
#   2. the speed harness (lt-faceparse speed) on CUDA in bf16 for every SegFace backbone at 224 and
#      512 px (batch 1 and 8), the SegFace Swin-B resolution sweep of the paper's Table 2b in fp32 and
#      bf16 at batch 1, and the baselines (FCN, SegFormer head, BiSeNet) at 512 px;
#   3. one table of every measurement.
# Outputs (at most a handful of files, so that they all come back from a lent machine):
#   $OUT/env.txt, $OUT/gpu_tests.txt, $OUT/speed_records.json, $OUT/speed.{md,csv}, $OUT/speed_log.txt
# Usage: OUT=/tmp/gpu scripts/gpu_check.sh        (OUT defaults to ./gpu_check_out)
# Exit status: non-zero when the GPU tests fail or a measurement fails.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
RECORDS="$(mktemp -d)"
status=0

{
  date -u
  nvidia-smi || true
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
} > "$OUT/env.txt" 2>&1

"$PYTHON" -m pytest -m gpu -q -rs -p no:cacheprovider tests > "$OUT/gpu_tests.txt" 2>&1 || status=1

speed() {  # speed MODEL [BACKBONE] -- extra args
  echo "== speed $*" >> "$OUT/speed_log.txt"
  "$PYTHON" -m lt_faceparse speed "$@" --device cuda --warmup 10 --runs 50 --out "$RECORDS" \
    >> "$OUT/speed_log.txt" 2>&1 || { echo "FAILED: $*" >> "$OUT/speed_log.txt"; status=1; }
}

for backbone in mobilenet resnet101 efficientnet swin_base swinv2_base convnext_base; do
  speed --model segface --backbone "$backbone" --res 224,512 --batch 1,8 --dtype bf16
done
speed --model segface --backbone swin_base --res 64,96,128,192,224,256,448,512 --batch 1 --dtype fp32
speed --model segface --backbone swin_base --res 64,96,128,192,224,256,448,512 --batch 1 --dtype bf16
speed --model segface --backbone mobilenet --res 512 --batch 1 --dtype bf16 --compile
speed --model fcn --backbone swin_base --res 512 --batch 1,8 --dtype bf16
speed --model segformer --backbone swin_base --res 512 --batch 1,8 --dtype bf16
speed --model bisenet --res 512 --batch 1,8 --dtype bf16

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
