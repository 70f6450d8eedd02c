#!/usr/bin/env bash
# The GPU numbers of docs/runtime.md in one run (under 7 minutes on one NVIDIA GPU; DEVICE_CHECK_BUDGET_S, default
# 400, is what its sections share): see benchmarks/device_check.py.
#   benchmarks/device_check.sh OUTDIR
#   ALOD_WEIGHTS=/data/yolo11n-coco.pt ALOD_IMAGES=/data/coco128/images/train2017 benchmarks/device_check.sh OUTDIR
#   DEVICE_CHECK_QUICK=1 benchmarks/device_check.sh OUTDIR     # tiny CPU run: proves the script works
set -euo pipefail
if [ $# -ne 1 ]; then echo "usage: $0 OUTDIR" >&2; exit 2; fi
cd "$(dirname "$0")/.."
mkdir -p "$1"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
{ nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"; lscpu 2>/dev/null | head -20; nproc; } > "$1/machine.txt"
exec "$PYTHON" benchmarks/device_check.py "$1" 2>&1 | tee "$1/device_check.log"
