#!/usr/bin/env bash
# Runs the PyTorch anchor and uhop on the same machine, one after the other, and prints the
# side-by-side table (uhop ms / PyTorch ms per workload, T2/T1 and T4/T3 for both).
#
#   bench/side_by_side.sh                          # wasm vs torch with 1 thread, 20 steps
#   BACKEND=cpu STEPS=5 bench/side_by_side.sh
#   THREADS=2 OUT=bench/results/2threads bench/side_by_side.sh
#
# Environment: BACKEND (uhop backend, default wasm), THREADS (torch.set_num_threads, default 1:
# tfjs-wasm in Node runs on one thread), STEPS (default 20), WARMUP (default 3),
# R1_STEPS (default STEPS), WORKLOADS (default all), EXTRA (more flags for bench/run.ts, e.g.
# "--memory --profile"), PYTHON (an interpreter with torch, default /usr/bin/python3),
# OUT (folder for the JSON files, default bench/results).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND=${BACKEND:-wasm}
THREADS=${THREADS:-1}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-3}
R1_STEPS=${R1_STEPS:-$STEPS}
WORKLOADS=${WORKLOADS:-all}
EXTRA=${EXTRA:-}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${OUT:-bench/results}
mkdir -p "$OUT"

if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  echo "side_by_side: $PYTHON has no torch; on Debian: apt-get install python3-torch (and libopenblas0-pthread for a fast BLAS), or set PYTHON" >&2
  exit 1
fi

# Interleaved per workload (PyTorch, then uhop), so that both sides of a row see about the same
# machine load: this machine is shared and its load drifts over minutes.
if [ "$WORKLOADS" = all ]; then LIST="T1 T2 T3 T4 R1"; else LIST=${WORKLOADS//,/ }; fi
FILES=()
for W in $LIST; do
  echo "== $W: PyTorch ($PYTHON, $THREADS thread(s))"
  "$PYTHON" bench/torch_reference.py --threads "$THREADS" --workload "$W" --steps "$STEPS" \
    --warmup "$WARMUP" --r1-steps "$R1_STEPS" --json "$OUT/torch-t$THREADS-$W.json"
  echo "== $W: uhop ($BACKEND)"
  # shellcheck disable=SC2086
  npx --no-install tsx bench/run.ts --backend "$BACKEND" --workload "$W" --steps "$STEPS" \
    --warmup "$WARMUP" --r1-steps "$R1_STEPS" --json "$OUT/uhop-$BACKEND-$W.json" $EXTRA
  FILES+=("$OUT/torch-t$THREADS-$W.json" "$OUT/uhop-$BACKEND-$W.json")
done

echo
npx --no-install tsx bench/table.ts "${FILES[@]}"
