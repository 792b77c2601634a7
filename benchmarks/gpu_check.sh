#!/usr/bin/env bash
# The GPU half of the kernel checks: ONE prepared call for a lent GPU machine (an H200), at most
# 6 minutes in all (GPU_CHECK_BUDGET seconds, default 345; every stage's limit is cut to what is
# left, and a stage with too little left is skipped with a line saying so).
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh [all|test|bench|sweep]
#
# Stages (logs and JSON go to $OUT, default ./gpu_check_out; a summary goes to stdout):
#   machine     nvidia-smi, nvcc, torch versions, whether TF32 is on
#   build       JIT-build the CUDA extension for this GPU (TORCH_CUDA_ARCH_LIST=9.0 unless set)
#   train       benchmarks/gpu_train_throughput.py: samples/s training base WaveNet (bf16) and base
#               vocoder (fp32) - runs on the GPU while the extension compiles on the CPUs
#   tests       pytest tests/test_kernels_cuda.py -m cuda (teacher-forced logits, draws, statistics,
#               opcheck, forced-plan refusal, training precision per family)
#   memcheck, racecheck, synccheck
#               compute-sanitizer on benchmarks/gpu_smoke.py (`debug` sizes, every cluster size),
#               only the WaveNet kernel instrumented; run beside the tests
#   bench       benchmarks/wavenet_speed.py --device cuda: base, batch 1/16/256, with the targets
#               (>= 64,000 samples/s per stream at batch 1, >= 4,000,000 summed at batch 256)
#   vocoder     benchmarks/gpu_vocoder_rtf.py: base vocoder RTF at 6 steps, 10 s clip, batch 1
#               (target < 0.002), TF32 state printed
#   sweep       benchmarks/cuda_cluster_sweep.py (only in `sweep` mode: a separate call)
# `all` (default) runs every stage but sweep; `test` machine+build+tests+sanitizers; `bench`
# machine+build+train+bench+vocoder.
#
# Needs python3 with a CUDA build of torch (torchaudio for the mel), numpy, pytest, ninja and
# the CUDA toolkit (nvcc, compute-sanitizer) - nothing else of the project's environment (no
# hydra, soundfile, librosa, wandb): everything run here imports with torch + numpy only.
set -u -o pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-345}
export PYTHONUNBUFFERED=1
export WAVEGEN_KERNEL_CACHE=${WAVEGEN_KERNEL_CACHE:-/tmp/wavegen-kernel-cache}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}  # H200: sm_90 only (PTX too would double the build)
export MAX_JOBS=${MAX_JOBS:-12}                          # leave cores for what runs beside the build
export WANDB_MODE=disabled
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDA_HOME=/usr/local/cuda; fi
[ -n "${CUDA_HOME:-}" ] && export PATH="$CUDA_HOME/bin:$PATH"
STATUS=0
wants() { case "$MODE" in all) return 0 ;; test) [[ " $* " == *" test "* ]] ;; bench) [[ " $* " == *" bench "* ]] ;; *) [[ " $* " == *" $MODE "* ]] ;; esac; }

# limit_for SECONDS: the stage's limit cut to the budget left (0: too little left to start it).
limit_for() {
  local left=$((BUDGET - SECONDS))
  local limit=$(($1 < left ? $1 : left))
  [ "$limit" -ge 10 ] && echo "$limit" || echo 0
}

# stage NAME SECONDS COMMAND...: run under the (cut) limit, log to $OUT/NAME.log, show its tail.
stage() {
  local name=$1 limit
  limit=$(limit_for "$2")
  shift 2
  if [ "$limit" -eq 0 ]; then
    echo "== $name SKIPPED: the ${BUDGET}s budget is spent"
    STATUS=1
    return 1
  fi
  local start=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  report "$name" "$rc" "$((SECONDS - start))" "$limit"
  return "$rc"
}

report() {  # report NAME RC SECONDS LIMIT
  local verdict=passed
  [ "$2" -eq 124 ] && verdict="TIMED OUT (limit $4 s)"
  [ "$2" -ne 0 ] && [ "$2" -ne 124 ] && verdict="FAILED (exit $2)"
  echo "== $1: $verdict after $3 s"
  tail -n "${TAIL:-14}" "$OUT/$1.log" | sed 's/^/   /'
  [ "$2" -eq 0 ] || STATUS=1
}

stage machine 30 bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; \
  (nvcc --version | tail -n 2) || echo 'nvcc: not found'; \
  $PY -c 'import torch; print(\"torch\", torch.__version__, \"CUDA\", torch.version.cuda, torch.cuda.get_device_name(0)); \
print(\"TF32 matmul\", torch.backends.cuda.matmul.allow_tf32, \"cuDNN\", torch.backends.cudnn.allow_tf32)'"

# The build runs on the CPUs while the training benchmark (which needs no extension) uses the GPU.
BUILD_START=$SECONDS
BUILD_LIMIT=$(limit_for 170)
[ "$BUILD_LIMIT" -gt 0 ] || BUILD_LIMIT=1  # (timeout 0 would mean no limit)
timeout "$BUILD_LIMIT" "$PY" -c "
from wavegen.kernels import build
r = build.load('cuda', verbose=True)
print('built' if r.ok else 'FAILED', round(r.seconds, 1), 's', r.library or r.error)
raise SystemExit(0 if r.ok else 1)" >"$OUT/build.log" 2>&1 &
BUILD_PID=$!
if wants bench; then
  TAIL=8 stage train 80 "$PY" benchmarks/gpu_train_throughput.py --json "$OUT/train.json"
fi
wait "$BUILD_PID"
BUILD_RC=$?
TAIL=3 report build "$BUILD_RC" "$((SECONDS - BUILD_START))" "$BUILD_LIMIT"
if [ "$BUILD_RC" -ne 0 ]; then
  echo "   the CUDA extension did not build (see $OUT/build.log): kernel stages are skipped;"
  echo "   the training-precision tests and the benchmarks without the extension still run."
fi

if wants test; then
  SANITIZER=$(command -v compute-sanitizer || true)
  if [ "$BUILD_RC" -ne 0 ]; then
    TESTS=(-k "training_precision or training_autocast")
  else
    TESTS=()
  fi
  # Tests and sanitizers check correctness, not speed: they share the GPU and run side by side.
  TESTS_LIMIT=$(limit_for 150)
  [ "$TESTS_LIMIT" -gt 0 ] || TESTS_LIMIT=1
  timeout "$TESTS_LIMIT" "$PY" -m pytest tests/test_kernels_cuda.py -m cuda -q -p no:cacheprovider -rfE \
    --durations=5 "${TESTS[@]}" >"$OUT/tests.log" 2>&1 &
  TESTS_PID=$!
  TESTS_START=$SECONDS
  if [ "$BUILD_RC" -ne 0 ]; then
    echo "== sanitizers SKIPPED: no CUDA extension"
  elif [ -z "$SANITIZER" ]; then
    echo "== sanitizers SKIPPED: compute-sanitizer not found (CUDA_HOME=${CUDA_HOME:-unset})"
    STATUS=1
  else
    # Instrument only the WaveNet kernel (torch's own kernels would cost minutes).
    if "$SANITIZER" --help 2>&1 | grep -q -- "--kernel-name"; then ONLY=(--kernel-name kns=wavenet_generate_kernel)
    else ONLY=(--filter kns=wavenet_generate_kernel); fi
    SAN=("$SANITIZER" --error-exitcode 3 "${ONLY[@]}")
    TAIL=10 stage memcheck 60 "${SAN[@]}" --tool memcheck "$PY" benchmarks/gpu_smoke.py --steps 16
    TAIL=10 stage racecheck 60 "${SAN[@]}" --tool racecheck --racecheck-report hazard "$PY" benchmarks/gpu_smoke.py \
      --steps 4 --clusters 1 2 16
    TAIL=10 stage synccheck 45 "${SAN[@]}" --tool synccheck "$PY" benchmarks/gpu_smoke.py --steps 4
  fi
  wait "$TESTS_PID"
  TAIL=20 report tests $? "$((SECONDS - TESTS_START))" "$TESTS_LIMIT"
fi

if wants bench && [ "$BUILD_RC" -eq 0 ]; then
  TAIL=16 stage bench 75 "$PY" benchmarks/wavenet_speed.py --device cuda --batches 1 16 256 --json "$OUT/bench.json"
fi
if wants bench; then
  PLAIN=(); [ "$BUILD_RC" -eq 0 ] || PLAIN=(--plain)  # no second build attempt inside the benchmark
  TAIL=4 stage vocoder 40 "$PY" benchmarks/gpu_vocoder_rtf.py --steps 6 --seconds 10 --json "$OUT/vocoder.json" \
    "${PLAIN[@]}"
fi
if [ "$MODE" = sweep ] && [ "$BUILD_RC" -eq 0 ]; then
  BUDGET=$((SECONDS + 300)) TAIL=60 stage sweep 300 "$PY" benchmarks/cuda_cluster_sweep.py
fi
echo "== done in $SECONDS s: $([ $STATUS -eq 0 ] && echo all stages passed || echo SOME STAGES FAILED OR WERE SKIPPED) (logs in $OUT)"
exit $STATUS
