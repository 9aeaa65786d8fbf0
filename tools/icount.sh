#!/usr/bin/env bash
# Instructions per operation of a hot path (bench/ops.c), from callgrind:
# the difference of the instruction counts of two runs (n and 3n), over
# 2n, so that start-up and shut-down cancel out. Load-independent, unlike
# the timed benchmarks (issue 14).
# Usage: tools/icount.sh [builddir] path... (builddir: build-bench)
# Environment: AW_ICOUNT_N (default 20000).
set -euo pipefail
dir=build-bench
if [ $# -gt 0 ] && [ -d "$1" ]; then dir=$1; shift; fi
n=${AW_ICOUNT_N:-20000}
ir() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$dir/bench/bench-ops" "$1" "$2" 2>&1 >/dev/null |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
for p in "$@"; do
  a=$(ir "$p" "$n")
  b=$(ir "$p" $((3 * n)))
  echo "$p $(( (b - a) / (2 * n) ))"
done
