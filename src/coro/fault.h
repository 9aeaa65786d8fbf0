/* fault.h: fault injection, for tests only (tests/fault). Declared and
 * defined only in a build configured with -Dfault_injection=true, where
 * libawith.so is linked with -Wl,--wrap for the calls listed in fault.c.
 * Not installed: it is no part of the API users build against.
 *
 * Every wrapped call libawith itself makes is counted in its class (calls
 * made by libcurl, libpq, SQLite or the program are not: the wrap applies
 * to libawith.so's own objects). aw_fault_set(cls, n, err, persistent)
 * makes the n-th counted call of the class fail with `err` (n counted from
 * the set; persistent: every call from the n-th on). Thread-safe: counters
 * are atomic, so calls from the thread pool count too. */
#ifndef AW_CORO_FAULT_H
#define AW_CORO_FAULT_H

#include <awith/base.h>

enum aw_fault_class {
    AW_FAULT_ALLOC,  /* malloc, calloc, realloc, strdup, mmap: NULL/MAP_FAILED, ENOMEM */
    AW_FAULT_FD,     /* socket, accept4, epoll_create1, eventfd, open, mkostemp, pipe2, fopen: EMFILE */
    AW_FAULT_THREAD, /* pthread_create: EAGAIN */
    AW_FAULT_IO,     /* read, write, send, recv, pread, preadv2, pwritev2, connect: EIO */
    AW_FAULT_NCLASS
};

/* Arm class `cls`: its n-th call from now fails with errno `err` (0: the
 * class's default above); persistent: every later call fails too. n == 0
 * disarms. Resets the class's call and fired counts. Never fails. */
AW_API void aw_fault_set(int cls, long n, int err, bool persistent);

/* Calls of class `cls` counted since its last aw_fault_set (or the start). */
AW_API long aw_fault_count(int cls);

/* Calls of class `cls` made to fail since its last aw_fault_set. */
AW_API long aw_fault_fired(int cls);

/* Name of the function whose call was made to fail first ("malloc"), or
 * NULL if none was. Static string. */
AW_API const char *aw_fault_what(int cls);

/* Name of a class ("alloc", "fd", "thread", "io"), or NULL. */
AW_API const char *aw_fault_class_name(int cls);

#endif
