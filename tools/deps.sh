#!/usr/bin/env bash
# Install the Debian packages a target needs, if any are missing.
# Usage: tools/deps.sh test|demo|bench
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail
# libawith links the resource libraries: libpq (PostgreSQL), SQLite,
# libcurl (HTTP) and OpenSSL (TLS); each is optional (meson -Dpg=disabled,
# ...), the demo and the tests use them all. The tests need Criterion and
# g++ (tests/cxx, a C++ consumer), strace (a test counts the system
# calls of a small-file read), libuv (examples/embed_libuv.c, awith
# embedded in a libuv program), and start real servers: PostgreSQL,
# nginx, and use openssl(1) to make their certificates.
base="meson ninja-build pkg-config gcc libc6-dev libpq-dev libsqlite3-dev libcurl4-openssl-dev zlib1g-dev libssl-dev"
servers="postgresql nginx-light openssl"
case "${1:-test}" in
  test)  pkgs="$base $servers libcriterion-dev g++ libuv1-dev strace valgrind gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" ;;
  demo)  pkgs="$base" ;;
  bench) pkgs="$base $servers g++ libuv1-dev liburing-dev libboost-context-dev python3 python3-uvloop python3-aiohttp python3-asyncpg python3-aiosqlite python3-aiofiles socat gnuplot-nox" ;;
  *) echo "usage: $0 test|demo|bench" >&2; exit 2 ;;
esac
missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "awith needs these Debian packages: ${missing[*]}" >&2
  echo "run as root:  apt-get update && $cmd" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
