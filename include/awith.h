/* awith: Python's async context managers, in C. */
#ifndef AWITH_H
#define AWITH_H

#include <awith/base.h>
#include <awith/err.h>
#include <awith/loop.h>
#include <awith/cm.h>
#include <awith/scope.h>
#include <awith/task.h>
#include <awith/group.h>
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
#include <awith/fd.h>
#include <awith/trace.h>
#include <awith/timing.h>
#include <awith/testing.h>

/* resources */
#include <awith/stream.h>
#include <awith/listener.h>
#include <awith/tcp.h>
#include <awith/unix.h>
#include <awith/server.h>
#include <awith/tls.h>
#include <awith/file.h>
#include <awith/pool.h>
#include <awith/pg.h>
#include <awith/sqlite.h>
#include <awith/http.h>

#endif
