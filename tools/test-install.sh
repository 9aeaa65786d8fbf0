#!/usr/bin/env bash
# `meson install` check: configures a build with prefix /opt/awith, installs
# it into a temporary DESTDIR, then compiles and runs a small program
# against the installed headers and pkg-config file, linked once with the
# shared library and once with the static one. Also checks that every
# public header compiles on its own, that every public macro expands
# without warnings under -Wall -Wextra, and that the shared library exports
# aw_* symbols only.
# Then what README.md ("Using awith from your own program") tells a user to
# do, command for command: its hello.c (taken from the README) built with
# pkg-config, the static line, a C++ program, a Meson parent project using
# awith through pkg-config and as a subproject; and a core-only build
# (every layer disabled, with LTO) installed into a prefix, which must link
# no resource library and link fully statically.
# Fails loudly (and says what is missing); ends with "install: ok" or
# "install: FAILED".
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
prefix=/opt/awith
dest=$tmp/root
fail() { echo "install: FAILED: $*" >&2; exit 1; }
# A check greps a command's output kept in a string, not through a pipe:
# under pipefail, `ldd x | grep -q y` fails when grep, done at its first
# match, closes the pipe while ldd still writes (SIGPIPE), so it failed
# now and then on a loaded machine although the line was there.

meson setup "$tmp/build" --prefix="$prefix" --buildtype=release >"$tmp/setup.log" 2>&1 ||
  { cat "$tmp/setup.log"; fail "meson setup"; }
# only what is installed needs building: the libraries
installed_targets() {
  meson introspect --targets "$1" | python3 -c '
import json, os, sys
b = sys.argv[1]
for t in json.load(sys.stdin):
    if t.get("installed"):
        for f in t["filename"]:
            print(os.path.relpath(f, b))' "$1"
}
targets=$(installed_targets "$tmp/build")
[ -n "$targets" ] || fail "meson lists nothing to install"
ninja -C "$tmp/build" $targets >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log"; fail "building the library"; }
DESTDIR="$dest" meson install -C "$tmp/build" --no-rebuild >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "meson install"; }

root=$dest$prefix
pc=$(find "$root" -name awith.pc | head -1)
[ -n "$pc" ] || fail "no awith.pc installed under $prefix"
# man pages: one per public function (section 3), one per header (7)
mandir=$(find "$root" -type d -name man3 -path '*man*' | head -1)
[ -n "$mandir" ] && [ -f "$mandir/aw_with.3" ] && [ -f "$mandir/../man7/awith-with.7" ] ||
  fail "man pages not installed (aw_with.3, awith-with.7)"
if command -v man >/dev/null; then # man-db is not on every machine
  grep -q 'aw_with' <<<"$(MANPATH=$(dirname "$mandir") man -P cat aw_with 2>/dev/null)" ||
    fail "man aw_with does not show the page"
fi
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

# every public macro expands warning-free in a user's -Wall -Wextra build
cat >"$tmp/macros.c" <<'C'
/* Every public macro, compiled as a user would with -Wall -Wextra. */
#include <awith.h>
#include <fcntl.h>

static int gfn(aw_gen_t *g, void *arg) { (void)g; (void)arg; return 0; }
static int gcm(aw_gencm_t *g, void *arg) { return aw_gencm_yield(g, arg); }
static void rep(const aw_timing_t *t, aw_ns_t ns, const aw_err_t *e, void *arg) {
    (void)t; (void)ns; (void)e; (void)arg;
}
static int handler(aw_stream_t *s, void *arg) { (void)s; (void)arg; return 0; }
static int child(void *arg) { (void)arg; return 0; }

static int body(void *arg) {
    (void)arg;
    aw_lock_t l = AW_LOCK_INIT("l");
    aw_cond_t c = AW_COND_INIT(&l);
    aw_event_t e = AW_EVENT_INIT;
    aw_sem_t s = AW_SEM_INIT("s", 1, 1);
    aw_gen_t g = AW_GEN_INIT(gfn, NULL);
    aw_gencm_t gc = AW_GENCM_INIT(gcm, NULL);
    aw_timing_t t = AW_TIMING_INIT("t", rep, NULL);
    (void)c; (void)e; (void)g; (void)gc;
    aw_with (aw_gencm(gcm, NULL)) {}
    aw_for (void *v, aw_gen(gfn, NULL)) { (void)v; }
    aw_with (aw_timed(&t)) {}
    aw_with (aw_locked(&l)) {}
    aw_with (aw_sem_held(&s)) {}
    aw_with (aw_exitstack_t *st, aw_exitstack()) { (void)st; }
    aw_with (aw_group_t *gr, aw_group()) { aw_spawn(gr, child, NULL, NULL); }
    aw_with (aw_fail_after(AW_MS(1))) {}
    aw_with (aw_move_on_after(AW_MS(1))) {}
    aw_with (aw_shield(AW_MS(1))) {}
    aw_with (aw_cancel_scope()) {}
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(":memory:")) {
        aw_with (aw_sqlite_tx(db)) {}
        aw_for (aw_sqlite_res_t *r, aw_sqlite_rows(db, "SELECT ?",
                aw_sqlite_args(aw_sqlite_int(1), aw_sqlite_text("x"), aw_sqlite_null(),
                               aw_sqlite_double(1.0), aw_sqlite_blob("a", 1)))) { (void)r; }
    }
    aw_with (aw_pg_t *pc, aw_pg_connect("postgresql://x")) {
        aw_with (aw_pg_tx(pc, .readonly = true)) {}
        aw_for (aw_pg_res_t *r, aw_pg_rows(pc, "SELECT $1", aw_pg_args(aw_pg_int(1)))) { (void)r; }
        aw_for (aw_pg_res_t *r, aw_pg_rows(pc, "SELECT 1", aw_pg_noargs)) { (void)r; }
    }
    aw_with (aw_stream_t *st, aw_tcp_client("127.0.0.1", 1)) { (void)st; }
    aw_with (aw_stream_t *st, aw_tcp_client_opts("127.0.0.1", 1, &(aw_tcp_connect_opts_t){.attempt_delay = AW_MS(100)})) { (void)st; }
    aw_with (aw_stream_t *st, aw_unix_client("/nonexistent")) { (void)st; }
    aw_with (aw_listener_t *li, aw_tcp_listener("127.0.0.1", 0, NULL))
        aw_with (aw_server_t *sv, aw_server(li, handler, NULL)) { (void)sv; }
    aw_with (aw_file_t *fl, aw_file("/nonexistent", O_RDONLY, 0)) { (void)fl; }
    aw_for (aw_line_t *ln, aw_file_lines("/nonexistent")) { (void)ln; }
    aw_with (aw_http_session_t *hs, aw_http_session(.base_url = "http://127.0.0.1:1")) {
        aw_with (aw_http_response_t *r, aw_http_get(hs, "/")) {
            aw_for (aw_http_chunk_t *ch, aw_http_chunks(r)) { (void)ch; }
        }
    }
    aw_err_clear();
    return 0;
}

int main(void) { return aw_main(body, NULL) < 0; }
C
"$cc" -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -c $cflags "$tmp/macros.c" -o "$tmp/macros.o" ||
  fail "a public macro gives warnings under -Wall -Wextra (see above)"

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
grep -q "$libdir/libawith.so" <<<"$(LD_LIBRARY_PATH="$libdir" ldd "$tmp/prog-shared")" ||
  fail "the shared program does not load the installed libawith.so"
LD_LIBRARY_PATH="$libdir" "$tmp/prog-shared" || fail "the shared program failed"

# static: the archive, its own private flags and the libraries it needs
# (linked shared: Debian ships libpq and friends without static archives)
req=$(pkg-config --print-requires-private awith | awk '{print $1}' | tr '\n' ' ')
libs="$(sed -n 's/^Libs.private: //p' "$pc") ${req:+$(pkg-config --libs $req)}"

"$cc" -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter "$tmp/prog.c" -o "$tmp/prog-static" \
  $(pkg-config --cflags awith) "$libdir/libawith.a" $libs || fail "compiling against the static library"
! grep -q libawith <<<"$(ldd "$tmp/prog-static" 2>&1)" || fail "the static program still needs libawith.so"
"$tmp/prog-static" || fail "the static program failed"

# ---- README.md, "Using awith from your own program" ----
version=$(pkg-config --modversion awith)
mkdir -p "$tmp/readme"
# the block after the "hello.c:" marker
awk '/<!-- hello.c:/ {m = 1; next} m && /^```c/ {p = 1; next} p && /^```/ {exit} p' \
  "$src/README.md" >"$tmp/readme/hello.c"
grep -q 'aw_main' "$tmp/readme/hello.c" || fail "no hello.c block found in README.md"
# run_hello EXE: runs and prints what the README's program prints last
run_hello() {
  local out
  out=$("$@") || fail "$1 exited with $?"
  [ "$(tail -1 <<<"$out")" = "done, awith $version" ] || fail "$1 printed: $out"
}
(cd "$tmp/readme" &&
  cc -o hello hello.c $(pkg-config --cflags --libs awith)) || fail "README: cc ... pkg-config --cflags --libs awith"
LD_LIBRARY_PATH="$libdir" run_hello "$tmp/readme/hello"

# README's static line for a build with the resource layers
(cd "$tmp/readme" &&
  cc -o hello-static hello.c $(pkg-config --cflags awith) \
    -Wl,-Bstatic $(pkg-config --libs awith) -Wl,-Bdynamic \
    $(pkg-config --libs $(pkg-config --print-requires-private awith)) -pthread) ||
  fail "README: the static line (-Wl,-Bstatic ... --print-requires-private)"
! grep -q libawith <<<"$(ldd "$tmp/readme/hello-static" 2>&1)" || fail "README's static line still loads libawith.so"
run_hello "$tmp/readme/hello-static"

# a C++ program: the headers' extern "C", the functions, the C++-safe macros
cat >"$tmp/readme/hello.cc" <<'CXX'
#include <awith.h>
#include <cstdio>
#include <cstring>

static aw_lock_t lock = AW_LOCK_INIT("cxx");

static int child(void *arg) { return aw_sleep(AW_MS(1)) ? -1 : (++*static_cast<int *>(arg), 0); }

static int run(void *) {
    int n = 0;
    aw_group_t g{};
    aw_with (aw_cm(&aw_group_type, &g)) {
        aw_spawn(&g, child, &n, nullptr);
        aw_spawn(&g, child, &n, nullptr);
    }
    aw_with (aw_locked(&lock)) {}
    if (n != 2 || std::strcmp(aw_version_string(), AW_VERSION_STRING) != 0)
        return aw_raise(-EIO, "n = %d", n);
    std::printf("done, awith %s\n", aw_version_string());
    return aw_status();
}

int main() { return aw_main(run, nullptr) < 0; }
CXX
(cd "$tmp/readme" && g++ -std=c++17 -Wall -Wextra -Wno-missing-field-initializers -Werror \
  -o hello-cxx hello.cc $(pkg-config --cflags --libs awith)) || fail "a C++ program against the install"
LD_LIBRARY_PATH="$libdir" run_hello "$tmp/readme/hello-cxx"

# a Meson parent project: README's meson.build, first finding the installed
# awith through pkg-config, then awith as its subproject
mkdir -p "$tmp/parent"
cp "$tmp/readme/hello.c" "$tmp/parent/"
cat >"$tmp/parent/meson.build" <<'M'
project('parent', 'c')
awith_dep = dependency('awith', fallback : 'awith',
  default_options : ['pg=disabled', 'http=disabled'])
executable('hello', 'hello.c', dependencies : awith_dep)
M
meson setup "$tmp/parent-pc" "$tmp/parent" >"$tmp/parent-pc.log" 2>&1 &&
  grep -q 'Run-time dependency awith found: YES' "$tmp/parent-pc.log" &&
  ninja -C "$tmp/parent-pc" >>"$tmp/parent-pc.log" 2>&1 ||
  { cat "$tmp/parent-pc.log"; fail "a Meson project using the installed awith (pkg-config)"; }
LD_LIBRARY_PATH="$libdir" run_hello "$tmp/parent-pc/hello"
mkdir -p "$tmp/parent/subprojects"
ln -s "$src" "$tmp/parent/subprojects/awith"
(unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
 meson setup "$tmp/parent-sub" "$tmp/parent" --wrap-mode=forcefallback >"$tmp/parent-sub.log" 2>&1 &&
   ninja -C "$tmp/parent-sub" >>"$tmp/parent-sub.log" 2>&1) ||
  { cat "$tmp/parent-sub.log"; fail "a Meson project with awith as a subproject"; }
run_hello "$tmp/parent-sub/hello"
[ "$(meson introspect --tests "$tmp/parent-sub")" = "[]" ] ||
  fail "awith as a subproject added tests to its parent"
extra=$(meson introspect --targets "$tmp/parent-sub" |
  python3 -c 'import json,sys; print(" ".join(t["name"] for t in json.load(sys.stdin) if t["name"] not in ("hello", "awith")))')
[ -z "$extra" ] || fail "awith as a subproject added targets to its parent: $extra"

# ---- a core-only build (every resource layer disabled), with LTO, installed
# into a prefix as README says for \$HOME/.local ----
local=$tmp/local
unset PKG_CONFIG_SYSROOT_DIR
meson setup "$tmp/core" --prefix="$local" --buildtype=release -Db_lto=true \
  -Dtls=disabled -Dpg=disabled -Dsqlite=disabled -Dhttp=disabled \
  -Dtests=enabled -Dexamples=disabled -Dbench=disabled >"$tmp/core.log" 2>&1 ||
  { cat "$tmp/core.log"; fail "core-only meson setup"; }
# the library, and the coroutine test: it calls aw__coro_switch_fn from
# assembly only, which LTO once dropped
ninja -C "$tmp/core" $(installed_targets "$tmp/core") tests/test-coro-coro >>"$tmp/core.log" 2>&1 ||
  { cat "$tmp/core.log"; fail "core-only LTO build (library, tests/test-coro-coro)"; }
"$tmp/core/tests/test-coro-coro" --jobs=1 >>"$tmp/core.log" 2>&1 ||
  { cat "$tmp/core.log"; fail "test-coro-coro built with LTO"; }
meson install -C "$tmp/core" >>"$tmp/core.log" 2>&1 || { cat "$tmp/core.log"; fail "core-only meson install"; }
corepc=$(find "$local" -name awith.pc | head -1)
[ -n "$corepc" ] || fail "core-only: no awith.pc under the prefix"
corelib=$(dirname "$(dirname "$corepc")")
export PKG_CONFIG_PATH="$corelib/pkgconfig" LD_LIBRARY_PATH="$corelib"
resource='libssl|libcrypto|libpq|libsqlite3|libcurl'
! grep -Eq "$resource" <<<"$(ldd "$corelib/libawith.so")" ||
  fail "core-only libawith.so links a resource library: $(ldd "$corelib/libawith.so" | grep -E "$resource")"
for h in tls pg sqlite http; do
  [ ! -e "$local/include/awith/$h.h" ] || fail "core-only: awith/$h.h installed"
  grep -q "define AW_HAVE_${h^^} 0" "$local/include/awith/config.h" || fail "core-only: config.h says $h is built"
done
[ -z "$(pkg-config --print-requires-private awith)" ] || fail "core-only awith.pc requires $(pkg-config --print-requires-private awith)"
(cd "$tmp/readme" && cc -o hello-core hello.c $(pkg-config --cflags --libs awith)) ||
  fail "core-only: README's cc line"
grep -q "$corelib/libawith.so" <<<"$(ldd "$tmp/readme/hello-core")" || fail "core-only: hello does not load the prefix's libawith.so"
run_hello "$tmp/readme/hello-core"
(cd "$tmp/readme" && cc -static -o hello-core-static hello.c $(pkg-config --static --cflags --libs awith) \
  2>"$tmp/static.log") || { cat "$tmp/static.log"; fail "core-only: README's -static line"; }
grep -q 'statically linked' <<<"$(file "$tmp/readme/hello-core-static")" || fail "core-only: hello-core-static is not static"
run_hello "$tmp/readme/hello-core-static"
echo "install: ok"
