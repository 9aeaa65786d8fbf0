#!/usr/bin/env bash
# The fault sweep (tests/fault/driver.c) under AddressSanitizer +
# UndefinedBehaviorSanitizer: every seed scenario and the mixed one, the
# N-th call of each class (allocation, fd creation, thread creation, I/O)
# made to fail, once and persistently, each run in a forked child.
#   tools/faults.sh          all of it (make faults)
#   tools/faults.sh quick    a sample of each class (make test's budget)
# Exit status 1 if any run crashed, corrupted memory, leaked, hung or
# left an fd open. PostgreSQL joins when it is installed (with-postgres.sh).
#
# A scenario whose server cannot accept must still end: the server's
# accept loop backs off and retries for as long as accept4 fails with
# EMFILE/ENFILE/ENOBUFS/ENOMEM (as asyncio and Trio do: fds come back when
# connections close) and logs it once per episode. So under a persistent
# accept4 fault the client's connection sits in the backlog unanswered,
# and the client ends the run with its own deadline (tcp_connection: 5 s,
# aw_fail_after, in examples/net/tcp_connection.c): a clean -ETIMEDOUT
# error, not a hang. The deadline belongs to the client, not to the
# driver: a deadline around a whole scenario would turn a real hang
# (a lost wakeup) into an "error" too.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${AW_FAULT_BUILD:-build-asan}
args=(--jobs 2)
[ "${1:-}" = quick ] && args+=(--samples 6)

# With the option off (every other build), the library has no hook at all.
for lib in build/libawith.so.*.*.*; do
    [ -f "$lib" ] || continue
    # the output in a string, not a pipe: under pipefail, grep -q leaving
    # at its first match can kill nm with SIGPIPE and turn a hit into a miss
    if grep -qE '__wrap_|__real_|aw_fault_' <<<"$(nm "$lib")"; then
        echo "faults: $lib has fault hooks although fault_injection is off"; exit 1
    fi
done

if [ -d "$dir" ]; then set -- --reconfigure; else set --; fi
meson setup "$dir" "$@" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
    -Dfault_injection=true >/dev/null || { echo "faults: setup failed"; exit 1; }
ninja -C "$dir" tests/fault/aw-fault >"$dir/faults-build.log" 2>&1 ||
    { cat "$dir/faults-build.log"; echo "faults: build failed"; exit 1; }

export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
tests/db/with-postgres.sh "$dir/tests/fault/aw-fault" "${args[@]}"
rc=$?
if [ "$rc" = 77 ]; then # no PostgreSQL: the rest still runs
    "$dir/tests/fault/aw-fault" "${args[@]}"
    rc=$?
fi
exit "$rc"
