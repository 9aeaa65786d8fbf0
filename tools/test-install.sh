#!/usr/bin/env bash
# `meson install` check: configures a build with prefix /opt/awith, installs
# it into a temporary DESTDIR, then compiles and runs a small program
# against the installed headers and pkg-config file, linked once with the
# shared library and once with the static one. Also checks that every
# public header compiles on its own and that the shared library exports
# aw_* symbols only. Fails loudly (and says what is missing); ends with
# "install: ok" or "install: FAILED".
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
prefix=/opt/awith
dest=$tmp/root
fail() { echo "install: FAILED: $*" >&2; exit 1; }

meson setup "$tmp/build" --prefix="$prefix" --buildtype=release >"$tmp/setup.log" 2>&1 ||
  { cat "$tmp/setup.log"; fail "meson setup"; }
# only what is installed needs building: the libraries
targets=$(meson introspect --targets "$tmp/build" | python3 -c '
import json, os, sys
b = sys.argv[1]
for t in json.load(sys.stdin):
    if t.get("installed"):
        for f in t["filename"]:
            print(os.path.relpath(f, b))' "$tmp/build")
[ -n "$targets" ] || fail "meson lists nothing to install"
ninja -C "$tmp/build" $targets >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log"; fail "building the library"; }
DESTDIR="$dest" meson install -C "$tmp/build" --no-rebuild >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "meson install"; }

root=$dest$prefix
pc=$(find "$root" -name awith.pc | head -1)
[ -n "$pc" ] || fail "no awith.pc installed under $prefix"
libdir=$(dirname "$(dirname "$pc")")
for f in "$libdir/libawith.a" "$libdir/libawith.so" "$root/include/awith.h"; do
  [ -e "$f" ] || fail "missing ${f#"$dest"}"
done
for h in "$src"/include/awith/*.h; do
  [ -f "$root/include/awith/$(basename "$h")" ] || fail "header awith/$(basename "$h") not installed"
done

export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$dest"
[ "$(pkg-config --modversion awith)" = "$(meson introspect --projectinfo "$tmp/build" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')" ] ||
  fail "pkg-config version differs from the project's"
cflags=$(pkg-config --cflags awith)
case "$cflags" in *"$dest"*) ;; *) fail "pkg-config --cflags does not point into the install: $cflags" ;; esac

# every public header compiles on its own, from the install only
for h in "$root"/include/awith/*.h; do
  echo "#include <awith/$(basename "$h")>" >"$tmp/h.c"
  "$cc" -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -c $cflags -nostdinc -isystem \
    "$(dirname "$("$cc" -print-libgcc-file-name)")/include" -isystem /usr/include \
    -isystem "/usr/include/$("$cc" -dumpmachine)" "$tmp/h.c" -o "$tmp/h.o" ||
    fail "header awith/$(basename "$h") does not compile on its own"
done

# only aw_* symbols are exported
bad=$(nm -D --defined-only "$libdir/libawith.so" | awk '$2 ~ /[TDBRW]/ {print $3}' |
  grep -v '^aw_' | grep -v '^AWITH_' || true)
[ -z "$bad" ] || fail "libawith.so exports non-aw_ symbols: $bad"

cat >"$tmp/prog.c" <<'C'
#include <awith.h>
#include <stdio.h>
#include <string.h>

static void work(void *arg) { *(int *)arg *= 2; }
static aw_event_t ev = AW_EVENT_INIT;
static void posted(void *arg) { aw_event_set(&ev); }

static int child(void *arg) { return aw_sleep_ms(1); }

static int body(void *arg) {
    int v = 21;
    if (aw_to_thread(work, &v, NULL) != 0 || v != 42)
        return aw_raise(-EIO, "aw_to_thread gave %d", v);
    int rc = 0;
    aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(1))) {
        rc = aw_sleep(AW_SEC(60));
        if (!aw_scope_expired(s))
            return aw_raise(-EIO, "the deadline did not fire");
    }
    if (rc != -ECANCELED)
        return aw_raise(-EIO, "sleep returned %d", rc);
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, child, NULL, NULL);
        aw_spawn(g, child, NULL, NULL);
    }
    aw_loop_ref_t *r;
    if (aw_loop_ref(&r) || aw_loop_post(r, posted, NULL) || aw_event_wait(&ev))
        return aw_raise(-EIO, "post failed");
    aw_loop_unref(r);
    if (strcmp(aw_err_name(-ECANCELED), "ECANCELED") != 0)
        return -EIO;
    return aw_status();
}

int main(void) {
    int rc = aw_main(body, NULL);
    printf("awith installed: %s\n", rc == 0 ? "ok" : aw_strerror(rc));
    return rc != 0;
}
C

# shared
"$cc" -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter "$tmp/prog.c" -o "$tmp/prog-shared" \
  $(pkg-config --cflags --libs awith) || fail "compiling against the shared library"
LD_LIBRARY_PATH="$libdir" ldd "$tmp/prog-shared" | grep -q "$libdir/libawith.so" ||
  fail "the shared program does not load the installed libawith.so"
LD_LIBRARY_PATH="$libdir" "$tmp/prog-shared" || fail "the shared program failed"

# static: the archive, its own private flags and the libraries it needs
# (linked shared: Debian ships libpq and friends without static archives)
req=$(pkg-config --print-requires-private awith | awk '{print $1}' | tr '\n' ' ')
libs="$(sed -n 's/^Libs.private: //p' "$pc") ${req:+$(pkg-config --libs $req)}"

"$cc" -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter "$tmp/prog.c" -o "$tmp/prog-static" \
  $(pkg-config --cflags awith) "$libdir/libawith.a" $libs || fail "compiling against the static library"
! ldd "$tmp/prog-static" | grep -q libawith || fail "the static program still needs libawith.so"
"$tmp/prog-static" || fail "the static program failed"
echo "install: ok"
