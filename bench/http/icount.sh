#!/usr/bin/env bash
# Instructions and system calls per GET, awith against the curl_multi
# peers, on one local nginx (bench-http serve): callgrind's count of the
# client process for N and 3N GETs, the difference over 2N (start-up,
# connecting and shut-down cancel out, as in tools/icount.sh), and the
# system calls the same way: by name from strace -c -f, and in all from
# perf's raw_syscalls tracepoint, which slows the client far less than
# strace (the loop batches more wake-ups when slowed). Load-independent
# but for how wake-ups batch.
# Usage: bench/http/icount.sh [builddir] [size] (build-bench, 1k)
# Environment: AW_ICOUNT_N (default 2000), AW_ICOUNT_C (default 50).
set -euo pipefail
dir=${1:-build-bench}
size=${2:-1k}
n=${AW_ICOUNT_N:-2000}
c=${AW_ICOUNT_C:-50}
bin=$dir/bench/http
tmp=$(mktemp -d)
mkfifo "$tmp/ctl"
"$bin/bench-http" serve <"$tmp/ctl" >"$tmp/url" &
srv=$!
exec 3>"$tmp/ctl"
trap 'exec 3>&-; wait $srv; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [ -s "$tmp/url" ] && break; sleep 0.1; done
url=$(cat "$tmp/url")
cmd() { # side count
  case $1 in
  awith) echo "$bin/bench-http get $url /$size.bin $2 $c" ;;
  curl_multi) echo "$bin/curl_multi $url/$size.bin $2 $c" ;;
  curl_multi_same) echo "$bin/curl_multi $url/$size.bin $2 $c same" ;;
  esac
}
ir() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null $(cmd "$1" "$2") 2>&1 >/dev/null |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
sys() { # total calls, and the calls by name "name=count ..."
  strace -c -f -o "$tmp/st" $(cmd "$1" "$2") >/dev/null
  awk '$NF != "syscall" && $1 ~ /^[0-9.]+$/ { c = NF == 6 ? $4 : $4; print $NF, c }' "$tmp/st"
}
for side in awith curl_multi curl_multi_same; do
  a=$(ir $side "$n")
  b=$(ir $side $((3 * n)))
  sys $side "$n" >"$tmp/s1"
  sys $side $((3 * n)) >"$tmp/s3"
  calls=$(join -a2 -e0 -o 0,1.2,2.2 <(sort "$tmp/s1") <(sort "$tmp/s3") |
    awk -v n="$n" '$1 != "total" { d = ($3 - $2) / (2 * n); if (d >= 0.05) printf " %s=%.2f", $1, d; t += $3 - $2 }
                   END { printf " total=%.2f", t / (2 * n) }')
  total=
  if perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
    p1=$(perf stat -x, -e raw_syscalls:sys_enter $(cmd $side "$n") 2>&1 >/dev/null | cut -d, -f1)
    p3=$(perf stat -x, -e raw_syscalls:sys_enter $(cmd $side $((3 * n))) 2>&1 >/dev/null | cut -d, -f1)
    total=" perf_total=$(awk -v a="$p1" -v b="$p3" -v n="$n" 'BEGIN { printf "%.2f", (b - a) / (2 * n) }')"
  fi
  echo "$size $side instr/GET=$(( (b - a) / (2 * n) )) syscalls/GET (strace):$calls$total"
done
