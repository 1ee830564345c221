#!/usr/bin/env bash
# The GPU measurement of #14 as one script, run by the device tool from the repository root
# with carry [".whl", ".devdata"] (bench/prepare_gpu.sh fills both, here):
#
#   bash bench/gpu_session.sh --fold1-floor 0.84 --minutes 6 --deadline-s 330
#
# It installs the carried wheels the way the device's notes say, then runs
# bench/bench_gpu.py with the options given (JAX backend), going on from the run in
# .devdata/run*.tar.gz when an earlier call left one (copy that call's $OUT/run.tar.gz and
# $OUT/run_tests.tar.gz into .devdata/ before the next call). When the CV is finished and
# at least OVERHEAD_S seconds (default 150) of LIMIT_S (default 540, the call's timeout)
# are left, it measures the framework's overhead over a bare model.fit
# (bench/bench_train.py) into $OUT/overhead.json. Everything printed also goes to
# $OUT/log.txt.
set -uo pipefail
: "${OUT:?the device tool sets OUT, the folder whose files come back}"
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site KERAS_BACKEND=jax PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 \
  | tee -a "$OUT/log.txt"
resume=()
[ -f .devdata/run.tar.gz ] && resume=(--resume .devdata)
python3 bench/bench_gpu.py --npz .devdata/tgs.npz --out "$OUT" "${resume[@]}" "$@" 2>&1 \
  | tee -a "$OUT/log.txt"
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || exit "$status"
if grep -q '"submission"' "$OUT/summary.json" \
    && [ $((${LIMIT_S:-540} - SECONDS)) -ge "${OVERHEAD_S:-150}" ]; then
  python3 bench/bench_train.py --data /tmp/kagglesalt-bench/data --model unet_deep \
    --images 2560 --valid 640 --epochs 4 --json "$OUT/overhead.json" 2>&1 \
    | tee -a "$OUT/log.txt"
fi
