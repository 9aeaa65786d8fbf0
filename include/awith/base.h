/* awith/base.h: what every awith header shares: the export macro, time units.
 *
 * Times are signed 64-bit nanoseconds on CLOCK_MONOTONIC. A deadline is an
 * absolute time; AW_NEVER means "no deadline". */
#ifndef AWITH_BASE_H
#define AWITH_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(AW_BUILDING) && defined(__GNUC__)
#define AW_API __attribute__((visibility("default")))
#else
#define AW_API
#endif

typedef int64_t aw_ns_t;                 /* nanoseconds */
#define AW_NEVER INT64_MAX               /* a deadline that never comes */
#define AW_MS(x) ((aw_ns_t)(x) * 1000000)
#define AW_US(x) ((aw_ns_t)(x) * 1000)
#define AW_SEC(x) ((aw_ns_t)(x) * 1000000000)

/* Monotonic time in nanoseconds. Never suspends; ~20 ns (vDSO). */
AW_API aw_ns_t aw_now(void);

#define AW__CAT2(a, b) a##b
#define AW__CAT(a, b) AW__CAT2(a, b)
#define AW__U(name) AW__CAT(aw__##name##_, __LINE__)

#ifdef __cplusplus
}
#endif

#endif
