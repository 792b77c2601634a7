#!/usr/bin/env bash
# The GPU half of the kernel checks, for a machine with a CUDA GPU (e.g. a lent H200).
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh [all|test|bench]
#
# Stages (each under its own time limit; logs go to $OUT, default ./gpu_check_out):
#   machine    nvidia-smi, nvcc and torch versions
#   build      JIT-build the CUDA extension (for this GPU's architecture)
#   tests      pytest tests/test_kernels_cuda.py -m cuda  (numerics against the reference)
#   sanitizer  compute-sanitizer memcheck over a short run of every cluster size
#   bench      benchmarks/wavenet_speed.py --device cuda  (reference vs kernel, batch 1/16/256)
#   sweep      benchmarks/cuda_cluster_sweep.py  (cluster size / block size / streams)
# `test` runs machine+build+tests+sanitizer, `bench` machine+build+bench+sweep, `all` both
# (about 8-10 minutes on an H200 with 16 CPU cores; split it if one command must be shorter).
#
# Needs python3 with a CUDA build of torch, pytest, ninja and nvcc - nothing else of the
# project's environment (no hydra, soundfile, librosa).
set -u -o pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
export WAVEGEN_KERNEL_CACHE=${WAVEGEN_KERNEL_CACHE:-/tmp/wavegen-kernel-cache}
STATUS=0

stage() {  # stage NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s)"
  local start=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "   exit $rc after $((SECONDS - start)) s; last lines of $name.log:"
  tail -n 30 "$OUT/$name.log" | sed 's/^/   /'
  [ "$rc" -eq 0 ] || STATUS=1
  return "$rc"
}

stage machine 60 bash -c "nvidia-smi; nvcc --version; $PY -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))'"
stage build 300 "$PY" -c "
from wavegen.kernels import build
r = build.load('cuda', verbose=True)
print('built' if r.ok else 'FAILED', round(r.seconds, 1), 's', r.library or r.error)
raise SystemExit(0 if r.ok else 1)" || { echo "the CUDA extension did not build; see $OUT/build.log"; exit 1; }

if [ "$MODE" = all ] || [ "$MODE" = test ]; then
  stage tests 300 "$PY" -m pytest tests/test_kernels_cuda.py -m cuda -q -p no:cacheprovider --durations=10
  if command -v compute-sanitizer >/dev/null; then
    stage sanitizer 200 compute-sanitizer --tool memcheck --error-exitcode 3 "$PY" benchmarks/gpu_smoke.py
  else
    echo "== sanitizer skipped (compute-sanitizer not found)"
  fi
fi
if [ "$MODE" = all ] || [ "$MODE" = bench ]; then
  stage bench 240 "$PY" benchmarks/wavenet_speed.py --device cuda --json "$OUT/bench.json"
  stage sweep 180 "$PY" benchmarks/cuda_cluster_sweep.py
fi
echo "== done: $([ $STATUS -eq 0 ] && echo all stages passed || echo SOME STAGES FAILED) (logs in $OUT)"
exit $STATUS
