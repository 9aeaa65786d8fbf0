#!/usr/bin/env bash
# ThreadSanitizer check of the core: builds libawith with
# -Db_sanitize=thread (build-tsan/) and runs the tests that involve other
# threads (the thread pool, aw_to_thread, posts from other threads) plus
# the coroutine, reactor, error and sync tests, whose switches carry TSan's
# fiber annotations. Criterion cannot run under TSan (its BoxFort arena
# fails to map: Snaipe/Criterion#274), so the same test sources are built
# against tests/tsan/criterion/criterion.h, a stand-in that forks one child
# per test and prints Criterion's "Synthesis" line. Ends with one line:
# "tsan: N passed, N failed"; exits non-zero on any failure or race.
# Not included: tests that need minutes of CPU under TSan
# (core/task: 10,000 tasks).
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${TSAN_BUILD:-build-tsan}
cc=${CC:-cc}
tests=${TSAN_TESTS:-"loop/workers loop/post core/thread core/loops core/fd core/err core/scope core/group loop/timer coro/coro coro/stack
  core/with sync/lock sync/sem sync/event sync/cond"}
if [ ! -d "$dir" ]; then
  meson setup "$dir" -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debug >/dev/null ||
    { echo "tsan: meson setup failed"; echo "tsan: 0 passed, 1 failed"; exit 1; }
fi
ninja -C "$dir" libawith.a >"$dir/tsan-build.log" 2>&1 ||
  { cat "$dir/tsan-build.log"; echo "tsan: 0 passed, 1 failed"; exit 1; }
export TSAN_OPTIONS=${TSAN_OPTIONS:-"halt_on_error=1 exitcode=66 second_deadlock_stack=1"}
# TSan needs the classic address-space layout; some kernels randomise mmap
# too much for it ("unexpected memory mapping"): then run without ASLR.
run() {
  local out
  out=$("$@" 2>&1)
  if grep -q 'unexpected memory mapping' <<<"$out"; then
    out=$(setarch "$(uname -m)" -R "$@" 2>&1)
  fi
  printf '%s\n' "$out"
}
# compile each, run up to $par binaries at once (the tests mostly sleep)
par=${TSAN_JOBS:-3}
passed=0; failed=0; ran=""
for t in $tests; do
  exe="$dir/tsan-${t//\//-}"
  if ! "$cc" -std=gnu11 -g -O1 -fsanitize=thread -D_GNU_SOURCE -Wall -Wno-unused-parameter \
       -Wno-missing-field-initializers -Iinclude -Itests/tsan -Itests "tests/$t.c" \
       "$dir/libawith.a" -lpthread -lm -o "$exe" 2>"$exe.cc.log"; then
    cat "$exe.cc.log"; echo "  $t: does not compile"; failed=$((failed + 1)); continue
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$par" ]; do wait -n; done
  run "$exe" >"$exe.out" 2>&1 &
  ran="$ran $t"
done
wait
for t in $ran; do
  out=$(cat "$dir/tsan-${t//\//-}.out")
  syn=$(grep 'Synthesis' <<<"$out" | tail -1)
  p=$(grep -o 'Passing: [0-9]*' <<<"$syn" | awk '{print $2}')
  f=$(grep -oE '(Failing|Crashing): [0-9]*' <<<"$syn" | awk '{s+=$2} END {print s+0}')
  if [ -z "$syn" ]; then p=0; f=1; fi
  passed=$((passed + ${p:-0})); failed=$((failed + f))
  echo "  $t: ${p:-0} passed, $f failed"
  if [ "$f" -ne 0 ] || grep -q 'WARNING: ThreadSanitizer' <<<"$out"; then
    grep -E -A30 'WARNING: ThreadSanitizer|FAIL|Assertion' <<<"$out" | head -80
    [ "$f" -eq 0 ] && failed=$((failed + 1))
  fi
done
echo "tsan: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
