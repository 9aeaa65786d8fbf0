/* awith: Python's async context managers, in C. */
#ifndef AWITH_H
#define AWITH_H

/* awith/config.h says which optional layers this awith was built with
 * (AW_HAVE_TLS, AW_HAVE_PG, AW_HAVE_SQLITE, AW_HAVE_HTTP); meson
 * generates and installs it. Compiled against the bare source tree (no
 * build directory on the include path) every layer is declared. */
#if defined(__has_include)
#if __has_include(<awith/config.h>)
#include <awith/config.h>
#endif
#endif
#ifndef AWITH_CONFIG_H
#define AW_HAVE_TLS 1
#define AW_HAVE_PG 1
#define AW_HAVE_SQLITE 1
#define AW_HAVE_HTTP 1
#endif

#include <awith/base.h>
#include <awith/version.h>
#include <awith/alloc.h>
#include <awith/err.h>
#include <awith/loop.h>
#include <awith/log.h>
#include <awith/cm.h>
#include <awith/scope.h>
#include <awith/task.h>
#include <awith/group.h>
#include <awith/gather.h>
#include <awith/with.h>
#include <awith/gencm.h>
#include <awith/exitstack.h>
#include <awith/gen.h>
#include <awith/lock.h>
#include <awith/sem.h>
#include <awith/event.h>
#include <awith/cond.h>
#include <awith/introspect.h>
#include <awith/thread.h>
#include <awith/loops.h>
#include <awith/fd.h>
#include <awith/track.h>
/* <awith/signal.h> is left out: it needs <signal.h>, whose names (and on
 * glibc <unistd.h>'s) a program may not want; include it where used. */
#include <awith/trace.h>
#include <awith/timing.h>
#include <awith/testing.h>

/* resources: streams, TCP, Unix sockets, files and the pool are core */
#include <awith/stream.h>
#include <awith/listener.h>
#include <awith/tcp.h>
#include <awith/unix.h>
#include <awith/server.h>
#include <awith/reuseport.h>
#include <awith/process.h>
#include <awith/file.h>
#include <awith/pool.h>
#if AW_HAVE_TLS
#include <awith/tls.h>
#endif
#if AW_HAVE_PG
#include <awith/pg.h>
#endif
#if AW_HAVE_SQLITE
#include <awith/sqlite.h>
#endif
#if AW_HAVE_HTTP
#include <awith/http.h>
#endif

#endif
