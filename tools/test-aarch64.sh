#!/usr/bin/env bash
# The context switch on aarch64: cross-compile tests/coro/a64_smoke.c with
# Debian's aarch64-linux-gnu-gcc against src/coro/switch_aarch64.S,
# the coroutine layer's sources and (when it links) the whole runtime, statically, and
# run it under qemu-aarch64. The same program is first built and run
# natively (x86_64) as a control. Needs: gcc-aarch64-linux-gnu
# libc6-dev-arm64-cross qemu-user. Output ends with one line:
# "aarch64: N checks passed (...)"; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-a64
mkdir -p "$out"

CFLAGS=(-std=gnu11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter
        -Wno-missing-field-initializers -Iinclude)
LIBFLAGS=(-DAW_BUILDING -fvisibility=hidden)
# the coroutine layer's C sources as meson.build lists them (fault.c is
# the fault-injection build's only)
mapfile -t CORO < <(grep -oE "'src/coro/[A-Za-z0-9_]+\.c'" meson.build | tr -d "'" | grep -v fault.c)
# the runtime's C sources outside src/coro, as meson.build lists them
mapfile -t RUNTIME < <(grep -oE "'src/[A-Za-z0-9_/]+\.c'" meson.build | tr -d "'" | grep -v '^src/coro/')

# build <cc> <switch.S> <exe> [extra flags...]: the runtime if it links,
# else the switch alone. Objects go to a per-run directory and the exe is
# renamed into place, so concurrent runs do not trip over each other.
build() {
  local cc=$1 sw=$2 exe=$3; shift 3
  local objdir="$exe.o.$$" tmp="$exe.tmp.$$"
  rm -rf "$objdir"; mkdir -p "$objdir"
  local objs=() f o
  for f in "$sw" "${CORO[@]}" "${RUNTIME[@]}"; do
    o="$objdir/$(echo "$f" | tr / _).o"
    "$cc" "${CFLAGS[@]}" "${LIBFLAGS[@]}" "$@" -c "$f" -o "$o"
    objs+=("$o")
  done
  if ! "$cc" "${CFLAGS[@]}" "$@" -DAW_SMOKE_RUNTIME -static tests/coro/a64_smoke.c "${objs[@]}" \
       -o "$tmp" -lm -lpthread 2>"$exe.link.log"; then
    echo "note: the runtime did not link statically (see $exe.link.log); testing the switch alone" >&2
    "$cc" "${CFLAGS[@]}" "$@" -static tests/coro/a64_smoke.c "${objs[@]:0:$((1 + ${#CORO[@]}))}" -o "$tmp" -lm
  fi
  mv -f "$tmp" "$exe"
  rm -rf "$objdir"
}

# Native control run (cheap, and tells a test bug from an aarch64 bug).
if [ "$(uname -m)" = x86_64 ] && command -v cc >/dev/null; then
  build cc src/coro/switch_x86_64.S "$out/smoke-x86_64"
  "$out/smoke-x86_64"
fi

command -v aarch64-linux-gnu-gcc >/dev/null || { echo "aarch64: aarch64-linux-gnu-gcc missing"; exit 1; }
command -v qemu-aarch64 >/dev/null || { echo "aarch64: qemu-aarch64 missing"; exit 1; }
build aarch64-linux-gnu-gcc src/coro/switch_aarch64.S "$out/smoke-aarch64"
if grep -q 'statically linked' <<<"$(file "$out/smoke-aarch64" 2>/dev/null)"; then
  exec qemu-aarch64 "$out/smoke-aarch64"
else
  exec qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/smoke-aarch64"
fi
