#!/usr/bin/env bash
# GPU checks of the training code on one CUDA machine; the Python is benchmarks/gpu_check.py (see its docstring).
#   1. per backbone family (tiny, biomedclip, smolvlm, medsam; llava-med with LSS_WEIGHTS_LLAVA_MED=DIR): a
#      paper-sized bf16 training step (224 px, batch 8): images/s, peak memory, TFLOP/s
#   2. QLoRA: smolvlm in 4-bit NF4 + LoRA (its tiny random config when no weights are cached), one step, a resumed fit
#   3. the accelerate path: `accelerate launch --num_processes 1` of a tiny fit against the same fit without
#      accelerate; with two or more GPUs also `accelerate launch --multi_gpu` on all of them against one process
# Without CUDA it says so and exits 0 having measured nothing. Exit status 1 when a check failed.
#   benchmarks/gpu_check.sh            # env: PY (default .venv/bin/python), OUT (default a temporary directory)
#   GPU_CHECK_SMOKE=1 benchmarks/gpu_check.sh   # the same flow on the CPU at toy sizes: checks this script only
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ACCELERATE=${ACCELERATE:-$(dirname "$PY")/accelerate}
OUT=${OUT:-$(mktemp -d -t gpu_check.XXXXXX)}
LAUNCH=("$ACCELERATE" launch --num_machines 1 --mixed_precision no --dynamo_backend no)

SMOKE=()
if [ -n "${GPU_CHECK_SMOKE:-}" ]; then SMOKE=(--smoke); LAUNCH+=(--cpu)
else "$PY" benchmarks/gpu_check.py has-cuda || exit 0; fi
status=0
echo "== 1-2. training steps per family, QLoRA"
"$PY" benchmarks/gpu_check.py steps "${SMOKE[@]}" || status=1
echo "== 3. accelerate launch, one process, against plain fit (outputs in $OUT)"
"$PY" benchmarks/gpu_check.py fit "$OUT/plain" --plain "${SMOKE[@]}" || status=1
"${LAUNCH[@]}" --num_processes 1 benchmarks/gpu_check.py fit "$OUT/accelerate_1" "${SMOKE[@]}" || status=1
"$PY" benchmarks/gpu_check.py compare "$OUT/accelerate_1" "$OUT/plain" --tol 1e-6 || status=1
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
if [ "$NGPU" -ge 2 ]; then
  echo "== 3b. accelerate launch --multi_gpu on $NGPU GPUs against one process (same global batch)"
  "${LAUNCH[@]}" --multi_gpu --num_processes "$NGPU" benchmarks/gpu_check.py fit "$OUT/accelerate_$NGPU" || status=1
  "$PY" benchmarks/gpu_check.py compare "$OUT/accelerate_$NGPU" "$OUT/plain" --tol 1e-3 || status=1
fi
[ "$status" -eq 0 ] && echo "gpu_check: all checks passed" || echo "gpu_check: some checks FAILED (see above)"
exit $status
