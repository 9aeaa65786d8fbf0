/* examples/gencm_errors.c -- seed 002, section 4: error handling in a
 * generator-style manager.
 *
 *   @asynccontextmanager
 *   async def async_resource_safe():
 *       print("Setting up resource")
 *       try:
 *           yield "resource_value"
 *       except ValueError as e:
 *           print(f"Caught ValueError: {e}")      # suppressed
 *       except Exception as e:
 *           print(f"Caught other exception: {e}")
 *           raise
 *       finally:
 *           print("Cleaning up resource")
 *
 * aw_gencm_yield returns the code of the error the block left with
 * (ValueError is -EINVAL here) and aw_gencm_error() its record. Returning
 * 0 suppresses it (so the seed's `except ValueError` after the block never
 * runs: the error is gone); returning the code re-raises it. A cancel is
 * never swallowed, whatever the function returns. The second block shows
 * the re-raise. */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

static int async_resource_safe(aw_gencm_t *g, void *arg) {
    puts("Setting up resource");
    int rc = aw_gencm_yield(g, "resource_value");
    if (rc == -EINVAL) { /* except ValueError as e: */
        printf("Caught ValueError: %s\n", aw_gencm_error(g)->msg);
        rc = 0; /* suppressed */
    } else if (rc < 0) { /* except Exception as e: ... raise */
        printf("Caught other exception: %s: %s\n", aw_err_name(rc), aw_gencm_error(g)->msg);
    }
    puts("Cleaning up resource"); /* finally: */
    return rc;
}

int example_gencm_errors(void *arg) {
    aw_with (const char *res, aw_gencm(async_resource_safe, NULL)) {
        printf("Using: %s\n", res);
        aw_fail(-EINVAL, "Test error"); /* raise ValueError("Test error") */
    }
    if (aw_status() == -EINVAL) { /* except ValueError: -- not reached: suppressed */
        puts("Outside context: ValueError was handled");
        aw_err_clear();
    }
    if (aw_status() < 0)
        return aw_status(); /* a cancel, for one */

    aw_with (const char *res, aw_gencm(async_resource_safe, NULL)) {
        printf("Using: %s\n", res);
        aw_fail(-EIO, "Disk on fire"); /* any other error */
    }
    if (aw_status() == -EIO) {
        puts("Outside context: the EIO propagated");
        aw_err_clear();
    }
    return aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_gencm_errors, NULL) < 0; }
#endif
