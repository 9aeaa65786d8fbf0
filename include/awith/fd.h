/* awith/fd.h: waiting for a file descriptor to become ready. The fd must be
 * non-blocking; wait after EAGAIN. */
#ifndef AWITH_FD_H
#define AWITH_FD_H

#include <awith/base.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { AW_READ = 1, AW_WRITE = 4 };  /* EPOLLIN, EPOLLOUT */

/* Suspend until fd is readable (AW_READ) or writable (AW_WRITE), or hung
 * up. One direction per call (each has its own waiter slot): given both,
 * it waits for AW_READ; two tasks may wait for the two directions. A cancellation point. Returns 0, -ECANCELED, -EBADF (forgotten while
 * waiting), -EBUSY (another task already waits for the same direction). */
AW_API int aw_fd_wait(int fd, int events);

/* Tell the loop fd is about to be closed: waiters get -EBADF. Call it
 * before close(2). Never suspends. */
AW_API void aw_fd_forget(int fd);

#ifdef __cplusplus
}
#endif

#endif
