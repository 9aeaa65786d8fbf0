#!/usr/bin/env bash
# Run every benchmark of the runtime core from build-bench (built by
# `make bench` with buildtype=release) and print their figures, one line
# each:   <figure> awith=<v> <peer>=<v> ... ratio_<peer>=<peer/awith>
# A ratio above 1 means awith is faster (or smaller) than that peer. Each
# value is the median of 5 measurements. The Python peers run with
# /usr/bin/python3 (Debian's, which has python3-uvloop).
# Usage: tools/bench.sh [switch spawn with timers idle net/bench-echo ...]
# (default: all, the resource layers' too)
# AW_BENCH_SCALE=0.1 shrinks every workload (a quick smoke run).
set -uo pipefail
cd "$(dirname "$0")/.."
dir=build-bench/bench
export AW_BENCH_PYTHON=${AW_BENCH_PYTHON:-/usr/bin/python3}
if [ ! -d "$dir" ]; then
  echo "no $dir: run 'make bench' (meson setup build-bench -Dbuildtype=release && ninja -C build-bench)" >&2
  exit 1
fi
[ -x "$AW_BENCH_PYTHON" ] || echo "note: $AW_BENCH_PYTHON missing: the Python peers show n/a" >&2
for p in switch_boost timers_uv; do
  [ -x "$dir/$p" ] || echo "note: peer $p not built: it shows n/a" >&2
done

echo "# awith $(git describe --always --dirty 2>/dev/null || echo '?'), $(nproc) CPU(s), $(uname -srm)"
echo "# figures: median of 5; ratio_<peer> = peer / awith (above 1: awith faster or smaller)"
rc=0
# Every benchmark program: the core's (bench/), then each resource layer's
# (bench/<layer>/). Meson's object folders (bench-*.p) are not programs.
all=""
for e in "$dir"/bench-* "$dir"/*/bench-*; do
  [ -f "$e" ] && [ -x "$e" ] || continue
  rel=${e#"$dir"/}
  case $rel in */*) all="$all $rel" ;; *) all="$all ${rel#bench-}" ;; esac
done
for b in ${@:-$all}; do
  case $b in */*) exe="$dir/$b" ;; *) exe="$dir/bench-$b" ;; esac
  if [ ! -x "$exe" ]; then
    echo "bench-$b: not built" >&2; rc=1; continue
  fi
  start=$(date +%s)
  "$exe" || { echo "bench-$b: exited with status $?" >&2; rc=1; }
  echo "# bench-$b: $(( $(date +%s) - start )) s"
done
exit $rc
