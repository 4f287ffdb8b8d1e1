#!/usr/bin/env bash
# PyTorch and uhop on every CPU backend, side by side on the same machine in one run: for each
# thread count, for each workload, PyTorch, then uhop on each backend (interleaved, so that the
# sides of a row see about the same machine load), then the tables (bench/table.ts).
#
#   bench/side_by_side.sh                                   # torch, wasm, tensorflow; 1 and 2 threads
#   BACKENDS=wasm THREADS="1" STEPS=5 bench/side_by_side.sh
#   OUT=bench/results/side-by-side bench/side_by_side.sh
#
# Environment: BACKENDS (uhop backends, default "wasm tensorflow"; a backend that does not load
# is reported and left out), THREADS (thread counts, default "1 2": PyTorch --threads, wasm's
# pool via --threads, tensorflow's TF_NUM_INTRAOP/INTEROP_THREADS via --threads), STEPS
# (default 20), WARMUP (default 3), R1_STEPS (default STEPS), WORKLOADS (default all), EXTRA
# (more flags for bench/run.ts, e.g. "--memory"), PYTHON (an interpreter with torch, default
# /usr/bin/python3), OUT (folder for the JSON files, default bench/results/side-by-side).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKENDS=${BACKENDS:-wasm tensorflow}
THREADS=${THREADS:-1 2}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-3}
R1_STEPS=${R1_STEPS:-$STEPS}
WORKLOADS=${WORKLOADS:-all}
EXTRA=${EXTRA:-}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${OUT:-bench/results/side-by-side}
mkdir -p "$OUT"

if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  echo "side_by_side: $PYTHON has no torch; on Debian: apt-get install python3-torch (and libopenblas0-pthread for a fast BLAS), or set PYTHON" >&2
  exit 1
fi

# Leave out a backend that cannot load here (tensorflow needs tfjs-node), and say so.
RUN_BACKENDS=()
for B in $BACKENDS; do
  if npx --no-install tsx -e "import('./src/node/backend.js').then((m) => m.initBackend('$B'))" >/dev/null 2>"$OUT/.probe-$B.err"; then
    RUN_BACKENDS+=("$B")
  else
    echo "side_by_side: backend $B does not load here, left out: $(grep -m1 initBackend "$OUT/.probe-$B.err" || tail -1 "$OUT/.probe-$B.err")" >&2
  fi
  rm -f "$OUT/.probe-$B.err"
done

if [ "$WORKLOADS" = all ]; then LIST="T1 T2 T3 T4 R1"; else LIST=${WORKLOADS//,/ }; fi
echo "side_by_side: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg), backends ${RUN_BACKENDS[*]}, threads $THREADS"
FILES=()
for T in $THREADS; do
  for W in $LIST; do
    echo "== $W, $T thread(s): PyTorch ($PYTHON)"
    "$PYTHON" bench/torch_reference.py --threads "$T" --workload "$W" --steps "$STEPS" \
      --warmup "$WARMUP" --r1-steps "$R1_STEPS" --json "$OUT/torch-t$T-$W.json"
    FILES+=("$OUT/torch-t$T-$W.json")
    for B in "${RUN_BACKENDS[@]}"; do
      echo "== $W, $T thread(s): uhop ($B)"
      # shellcheck disable=SC2086
      npx --no-install tsx bench/run.ts --backend "$B" --threads "$T" --workload "$W" --steps "$STEPS" \
        --warmup "$WARMUP" --r1-steps "$R1_STEPS" --json "$OUT/uhop-$B-t$T-$W.json" $EXTRA
      FILES+=("$OUT/uhop-$B-t$T-$W.json")
    done
  done
done
echo "side_by_side: done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"

echo
npx --no-install tsx bench/table.ts "${FILES[@]}"
