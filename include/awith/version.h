/* awith/version.h: which awith a program was compiled against (macros)
 * and which one it runs with (functions).
 *
 * The ABI policy (README, "ABI"): the shared library's soname is
 * libawith.so.MAJOR; within one soname, exports are only added (version
 * node AWITH_0 in src/awith.map), never removed or changed. A program
 * that needs a function added in a minor release can check
 * aw_version() >= AW_VERSION_NUMBER at start-up. */
#ifndef AWITH_VERSION_H
#define AWITH_VERSION_H

#include <awith/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kept equal to meson.build's project version (meson setup checks). */
#define AW_VERSION_MAJOR 0
#define AW_VERSION_MINOR 2
#define AW_VERSION_PATCH 0
#define AW_VERSION_STRING "0.2.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH: 0.1.0 is 100, 1.2.3 is 10203. */
#define AW_VERSION_NUMBER (AW_VERSION_MAJOR * 10000 + AW_VERSION_MINOR * 100 + AW_VERSION_PATCH)

/* The version of the library linked at run time, as AW_VERSION_NUMBER
 * counts it (it may be newer than the headers a program was built with).
 * Never fails, never suspends, any thread, no loop needed. */
AW_API int aw_version(void);

/* The same as a string, "MAJOR.MINOR.PATCH" (static storage; do not
 * free). Never fails, never suspends, any thread. */
AW_API const char *aw_version_string(void);

#ifdef __cplusplus
}
#endif

#endif
