/* alloc.h: the library's heap allocations, through the allocator table
 * (awith/alloc.h). Every malloc, calloc, realloc, strdup and free of the
 * library goes through these, so a program that replaced the allocator
 * (aw_allocator_set) sees all of them. Memory from libc's own allocating
 * calls (getaddrinfo, open_memstream, stdio) and from the resource
 * libraries (libpq, SQLite, libcurl, OpenSSL) is not the table's: it is
 * freed with its own function, never aw__free. */
#ifndef AW_CORO_ALLOC_H
#define AW_CORO_ALLOC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

void *aw__malloc(size_t n);
void *aw__calloc(size_t n, size_t size);
void *aw__realloc(void *p, size_t n);
void aw__free(void *p);
char *aw__strdup(const char *s);
char *aw__strndup(const char *s, size_t n);
/* vasprintf into the table's memory: the length, or -1 (no memory). */
int aw__vasprintf(char **out, const char *fmt, va_list ap);

/* Install the four functions (all non-NULL) or, with all NULL, libc's.
 * 0, or -EBUSY once the table is fixed (the first allocation through it,
 * or aw__alloc_freeze). Any thread. */
int aw__alloc_replace(void *(*m)(size_t), void *(*r)(void *, size_t),
                      void *(*c)(size_t, size_t), void (*f)(void *));
/* Fix the table: a loop is being created (SEMANTICS: set before any). */
void aw__alloc_freeze(void);

#endif
