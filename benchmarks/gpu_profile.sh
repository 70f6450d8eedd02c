#!/usr/bin/env bash
# The hard-hat comparison at GPU scale (benchmarks/configs/hardhat_gpu.yaml: imgsz 640, 5 seeds side by
# side, random / uncertainty / coreset, 3 cycles), its report written to OUTDIR:
#   results.csv report.md summary.csv map_vs_boxes.png map_vs_frames.png selections.png config.yaml
#   run.json (wall time, machine) machine.txt (nvidia-smi, torch, elapsed) log.txt
#
#   benchmarks/gpu_profile.sh OUTDIR [--set key=value ...]
#
# Environment:
#   ALOD_HARDHAT_ROOT  hard-hat dataset root, images/{train,val,test} + labels/ (default ../shared/data/hardhat);
#                      the pool is every train image there, the test split every test image
#   ALOD_WEIGHTS       base weights (default ../shared/weights/yolo11n-coco.pt)
#   ALOD_RUNS_DIR      the resumable cache of models and scores (default benchmarks/runs; rerunning resumes)
#   PYTHON             interpreter (default .venv/bin/python when present, else python3)
#   GPU_PROFILE_QUICK=1  a proof that the script works: 2 seeds in 2 processes, 1 cycle, imgsz 160, 1 epoch, a few images
#   GPU_PROFILE_PACK=FILE  also pack OUTDIR into FILE (.tgz): one file to bring back
# Needs torch, ultralytics, pandas, scipy, matplotlib, pyyaml, pyarrow; not mlflow, dvc or Label Studio.
set -euo pipefail
usage="usage: $0 OUTDIR"
out=$(realpath -m "${1:?$usage}")
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
mkdir -p "$out"

hardhat=$(realpath -m "${ALOD_HARDHAT_ROOT:-../shared/data/hardhat}")
weights=$(realpath -m "${ALOD_WEIGHTS:-../shared/weights/yolo11n-coco.pt}")
runs=$(realpath -m "${ALOD_RUNS_DIR:-benchmarks/runs}")
[ -d "$hardhat/images/train" ] || { echo "no hard-hat images under $hardhat (set ALOD_HARDHAT_ROOT)" >&2; exit 2; }
[ -f "$weights" ] || { echo "no weights at $weights (set ALOD_WEIGHTS)" >&2; exit 2; }
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# params.yaml overrides by environment (ALOD__<SECTION>__<KEY>), see core/settings.py
export ALOD__DATASETS__HARDHAT__ROOT="$hardhat" ALOD__MODEL__BASE_WEIGHTS="$weights"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false

name=hardhat_gpu
sets=(--set "out_dir=$runs" --set "report_dir=$out" --set log_mlflow=false)
if [ "${GPU_PROFILE_QUICK:-0}" = 1 ]; then
    name=hardhat_gpu_quick
    sets+=(--set "seeds=[0, 1]" --set cycles=1 --set imgsz=160 --set epochs=1 --set batch=4 --set initial_frames=4
           --set "budget={frames: 4}" --set score_subset=12 --set pool_limit=40 --set test_limit=8
           --set val_limit=4 --set parallel_seeds=2)
fi
sets+=(--set "name=$name")
sets+=("${@:2}")  # more --set key=value from the caller

{
    echo "# machine"
    uname -a
    nproc | sed 's/^/cpus: /'
    nvidia-smi 2>/dev/null || echo "nvidia-smi: not available (no NVIDIA GPU)"
    "$PYTHON" - <<'EOF'
import platform
import torch
print(f"python {platform.python_version()}, torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print("gpu:", torch.cuda.get_device_name(0))
EOF
    echo "dataset: $hardhat ($(ls "$hardhat/images/train" | wc -l) train, $(ls "$hardhat/images/test" | wc -l) test images)"
} > "$out/machine.txt" 2>&1

start=$(date +%s)
set +e
"$PYTHON" -m pipelines.cli benchmark --config benchmarks/configs/hardhat_gpu.yaml "${sets[@]}" 2>&1 | tee "$out/log.txt"
status=${PIPESTATUS[0]}
set -e
echo "elapsed: $(( $(date +%s) - start )) s, exit status $status" | tee -a "$out/machine.txt"
if [ -n "${GPU_PROFILE_PACK:-}" ]; then
    tar -czf "$GPU_PROFILE_PACK" -C "$(dirname "$out")" "$(basename "$out")"
fi
exit "$status"
