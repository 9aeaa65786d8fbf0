#!/usr/bin/env bash
# The whole test suite: the Criterion tests in a normal build, again under
# AddressSanitizer + UndefinedBehaviorSanitizer, a fault-injection sweep
# (tools/faults.sh), the core tests under
# Valgrind and ThreadSanitizer, an install check, and the coroutine switch
# on aarch64 under qemu. Ends with one
# line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0; failed=0
log=$(mktemp -d)
# what failed, said again just above the last line: CI keeps only the tail
recap() { echo "$*" >>"$log/recap"; }

# Count Criterion's per-binary synthesis lines in a meson test log.
count() {
  local p f
  p=$(grep -ho 'Passing: [0-9]*' "$1" | awk '{s+=$2} END {print s+0}')
  f=$(grep -ho -E '(Failing|Crashing): [0-9]*' "$1" | awk '{s+=$2} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
  # a binary that died before its synthesis (or timed out) is a failure too
  local bad
  # (meson prints each such line twice: as it runs and in its summary)
  bad=$(grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT)' "$2" | sort -u | wc -l)
  [ "$f" -eq 0 ] && [ "$bad" -gt 0 ] && failed=$((failed + bad))
  echo "  $3: $p passed, $f failed"
}

suite() { # name builddir meson-setup-args...
  local name=$1 dir=$2; shift 2
  # reconfigure an existing dir: a layer's meson.build may have appeared
  if [ -d "$dir" ]; then set -- --reconfigure "$@"; fi
  meson setup "$dir" "$@" >/dev/null || { echo "setup $name failed"; failed=$((failed+1)); return; }
  ninja -C "$dir" >"$log/$name.build" 2>&1 || { cat "$log/$name.build"; echo "build $name failed"; failed=$((failed+1)); return; }
  meson test -C "$dir" --num-processes 2 --print-errorlogs >"$log/$name.out" 2>&1
  count "$dir/meson-logs/testlog.txt" "$log/$name.out" "$name"
  grep -E 'FAIL|TIMEOUT' "$log/$name.out" | head -20
  grep -E 'FAIL|TIMEOUT' "$log/$name.out" | head -8 | sed "s/^/$name: /" >>"$log/recap"
  grep -hE '^\[FAIL\]|Assertion Failed' "$dir/meson-logs/testlog.txt" | head -8 | sed "s/^/$name: /" >>"$log/recap"
  # what went wrong, from the tests' own output
  grep -E -A3 'Assertion Failed|runtime error|Unexpected signal|ERROR: (Address|Leak)Sanitizer' \
    "$dir/meson-logs/testlog.txt" | head -60
  # a sanitizer report fails the run even when the test itself passed:
  # LeakSanitizer speaks at the test process's exit, after Criterion has
  # counted the test as passing
  local san
  san=$(grep -cE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$dir/meson-logs/testlog.txt" || true)
  if [ "$san" -gt 0 ]; then
    failed=$((failed + san)); echo "  $3: $san sanitizer report(s), counted as failures"
    recap "$3: $san sanitizer report(s)"
  fi
}

# every layer and the tests, or a failed setup: nothing drops out silently
full="-Dtests=enabled -Dtls=enabled -Dpg=enabled -Dsqlite=enabled -Dhttp=enabled"
echo "== tests (debugoptimized)"
suite normal build $full
echo "== layers (nothing below includes or calls anything above)"
if python3 tools/check-layers.py build >"$log/layers.out" 2>&1; then
  passed=$((passed + 1)); tail -1 "$log/layers.out"
else
  failed=$((failed + 1)); recap "layers check failed"; cat "$log/layers.out"
fi
echo "== man pages (every public name has a contract comment to make its page from)"
if python3 tools/mkman.py --check include >"$log/man.out" 2>&1; then
  passed=$((passed + 1)); tail -1 "$log/man.out"
else
  failed=$((failed + 1)); recap "man check failed"; cat "$log/man.out"
fi
echo "== examples (every header and doc example compiles and links against the library)"
if python3 tools/check-examples.py build >"$log/examples.out" 2>&1; then
  passed=$((passed + 1)); tail -1 "$log/examples.out"
else
  failed=$((failed + 1)); recap "examples check failed"; cat "$log/examples.out" | head -80
fi
echo "== tests (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  suite asan build-asan $full -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug -Dfault_injection=true
echo "== fault sweep (ASan, a sample of every class; make faults runs all of it)"
if tools/faults.sh quick >"$log/faults.out" 2>&1; then
  passed=$((passed + 1)); grep -E '^(total|clean errors)' "$log/faults.out"
else
  failed=$((failed + 1)); recap "fault sweep failed"; echo "  faults: FAILED"; sed -n '/^total/,$p' "$log/faults.out" | head -60
fi
echo "== composition fuzzer (ASan, 60 s; make fuzz runs it longer)"
# seeds 1-60,000 at most (the same programs each time, as many as a
# minute allows: about 50 s of CPU under ASan), without real sleeps and
# deadlines, whose outcome moves with the load (make fuzz runs them, and
# the seeds past these: see tests/fuzz/README.md, Findings)
if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
   build-asan/tests/fuzz/fuzz --seed 1 --count 60000 --seconds 60 \
   --features default,-sleep,-realtime \
   >"$log/fuzz.out" 2>&1; then
  passed=$((passed + 1)); echo "  $(tail -1 "$log/fuzz.out")"
else
  failed=$((failed + 1)); recap "fuzzer failed: $(tail -1 "$log/fuzz.out")"; echo "  fuzzer: FAILED"; tail -80 "$log/fuzz.out"
fi
echo "== core tests under valgrind"
# Criterion re-executes the binary per test: trace the children, and judge
# by their valgrind logs (a worker's errors do not fail its test). The
# compose suite is here for the state that crosses coroutines when the
# pieces are combined (generators inside generators, groups in exits).
for t in build/tests/test-coro-coro build/tests/test-core-task build/tests/test-core-main build/tests/test-loop-timer \
         build/tests/test-core-with build/tests/test-cm-gencm build/tests/test-core-thread \
         build/tests/test-core-fd build/tests/test-loop-workers build/tests/test-loop-post \
         build/tests/test-core-compose; do
  [ -x "$t" ] || continue
  rm -f "$log"/vg.*
  if valgrind -q --trace-children=yes --leak-check=full --log-file="$log/vg.%p" "$t" --jobs=1 --timeout=120 >"$log/vg.out" 2>&1 \
     && ! grep -v 'syscall: 441\|You may be able\|README_MISSING\|Nevertheless we consider\|it at http://valgrind' "$log"/vg.[0-9]* 2>/dev/null | grep -qs '^==[0-9]*=='; then
    passed=$((passed + 1)); echo "  valgrind $(basename "$t"): clean"
  else
    failed=$((failed + 1)); recap "valgrind $(basename "$t") failed"; echo "  valgrind $(basename "$t"): FAILED"; grep -v -e "^--" "$log/vg.out" | tail -30
    cat "$log"/vg.[0-9]* 2>/dev/null | grep -v -e "^--" | head -60
  fi
done
# ThreadSanitizer (threads of the pool, posts from other threads, fiber
# annotations), and `meson install` with a program built against it.
for step in tsan install; do
  echo "== $step"
  if tools/test-$step.sh >"$log/$step.out" 2>&1; then
    passed=$((passed + 1)); tail -1 "$log/$step.out"
  else
    failed=$((failed + 1)); recap "$step failed"; echo "  $step: FAILED"; tail -30 "$log/$step.out"
  fi
done
if [ -x tools/test-aarch64.sh ]; then
  echo "== coroutine switch on aarch64 (qemu)"
  if tools/test-aarch64.sh >"$log/a64.out" 2>&1; then
    passed=$((passed + 1)); tail -1 "$log/a64.out"
  else
    failed=$((failed + 1)); recap "aarch64 failed"; echo "  aarch64: FAILED"; tail -20 "$log/a64.out"
  fi
fi
if [ -s "$log/recap" ]; then echo "== what failed"; awk '!seen[$0]++' "$log/recap" | head -30; fi
rm -rf "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
