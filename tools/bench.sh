#!/usr/bin/env bash
# Run every benchmark from build-bench (built by `make bench` with
# buildtype=release), print their figures, one line each:
#   <figure> awith=<v> <peer>=<v> ... ratio_<peer>=<v>
# and write the results (bench/report.py):
#   build-bench/bench.log         everything printed here
#   build-bench/bench.jsonl       one JSON line per figure (name, awith,
#                                 peers, ratios, the peers' config, the
#                                 machine's syscall and page-fault cost)
#   build-bench/bench-report.md   a short report, losses first
#   build-bench/bench-ratios.svg  a chart of the ratios (gnuplot)
# A ratio above 1 means awith is faster (or smaller) than that peer. Each
# value is a median (of 5 unless the benchmark's config line says else).
# The Python peers run with /usr/bin/python3 (Debian's, with uvloop).
#
# Pinning: the single-process benchmarks (their awith side and the peers
# they start, one after the other) run on one CPU (taskset -c
# $AW_BENCH_CPU, default the last one) so that a shared machine's
# migrations do not land on one side only; the client/server ones
# (threads, PostgreSQL, nginx, echo) need both CPUs and run unpinned.
# AW_BENCH_PIN=0 runs everything unpinned.
# Usage: tools/bench.sh [switch spawn with timers idle net/bench-echo ...]
# (default: all, the resource layers' too)
# AW_BENCH_SCALE=0.1 shrinks every workload (a quick smoke run).
set -uo pipefail
cd "$(dirname "$0")/.."
out=build-bench
dir=$out/bench
export AW_BENCH_PYTHON=${AW_BENCH_PYTHON:-/usr/bin/python3}
if [ ! -d "$dir" ]; then
  echo "no $dir: run 'make bench' (meson setup build-bench -Dbuildtype=release && ninja -C build-bench)" >&2
  exit 1
fi
[ -x "$AW_BENCH_PYTHON" ] || echo "note: $AW_BENCH_PYTHON missing: the Python peers show n/a" >&2
for p in switch_boost timers_uv; do
  [ -x "$dir/$p" ] || echo "note: peer $p not built: it shows n/a" >&2
done

cpu=${AW_BENCH_CPU:-$(( $(nproc) - 1 ))}
pin_ok=0
[ "${AW_BENCH_PIN:-1}" != 0 ] && command -v taskset >/dev/null && pin_ok=1
# The benchmarks that are one process at a time (their peers run after
# them, not beside them): these are pinned.
single=" switch spawn with timers idle gencm exitstack lock gen "

log=$out/bench.log
: > "$log"
say() { echo "$@" | tee -a "$log"; }
commit=$(git describe --always --dirty 2>/dev/null || echo '?')
say "# awith $commit, $(nproc) CPU(s), $(uname -srm)"
say "# run date=$(date -u +%Y-%m-%dT%H:%MZ) commit=$commit cpus=$(nproc)" \
    "pin=$([ $pin_ok = 1 ] && echo "single-process-benchmarks-on-cpu-$cpu" || echo none)" \
    "load1=$(cut -d' ' -f1 /proc/loadavg)"
say "# figures: medians; ratio_<peer> = peer / awith (above 1: awith faster or smaller)"
[ -x "$dir/machine_cost" ] && "$dir/machine_cost" | tee -a "$log"
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
  pin=none run=()
  if [ $pin_ok = 1 ] && [[ $single == *" $b "* ]]; then
    pin=$cpu run=(taskset -c "$cpu")
  fi
  say "# bench $b pin=$pin"
  start=$(date +%s)
  "${run[@]}" "$exe" | tee -a "$log"
  st=${PIPESTATUS[0]}
  [ "$st" = 0 ] || { echo "bench-$b: exited with status $st" | tee -a "$log" >&2; rc=1; }
  say "# bench-$b: $(( $(date +%s) - start )) s"
done
[ -x "$dir/machine_cost" ] && "$dir/machine_cost" | tee -a "$log"
python3 bench/report.py "$log" "$out" || rc=1
exit $rc
