/* awith/event.h: a one-shot flag tasks can wait for (asyncio.Event). */
#ifndef AWITH_EVENT_H
#define AWITH_EVENT_H

#include <awith/task.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_event {         /* fields private */
    int set;
    aw_waitq_t waiters;
} aw_event_t;

#define AW_EVENT_INIT {0, {NULL, NULL}}

/* Wait until set. A cancellation point even when already set. 0, -ECANCELED. */
AW_API int aw_event_wait(aw_event_t *e);
/* Set it and wake every waiter. Never suspends. */
AW_API void aw_event_set(aw_event_t *e);
AW_API void aw_event_clear(aw_event_t *e);
AW_API bool aw_event_is_set(const aw_event_t *e);

#ifdef __cplusplus
}
#endif

#endif
