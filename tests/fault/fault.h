/* tests/fault/fault.h: the fault sweep's scenarios, shared by the driver
 * (driver.c) and the scenarios (scenarios.c). */
#ifndef AW_TEST_FAULT_H
#define AW_TEST_FAULT_H

#include <awith/loop.h>

#include "../../src/coro/fault.h"

/* What the scenarios may use, set by the driver before each run. */
typedef struct fault_env {
    const char *dir;      /* a scratch directory of this run (removed after) */
    const char *http_url; /* nginx's base URL, or NULL when it could not start */
    const char *pg_dsn;   /* PostgreSQL (tests/db/with-postgres.sh), or NULL */
} fault_env_t;
extern fault_env_t fault_env;

enum { FAULT_NEEDS_PG = 1 };

typedef struct fault_scenario {
    const char *name;
    aw_task_fn fn;
    int needs;
} fault_scenario_t;
extern const fault_scenario_t fault_scenarios[]; /* ends with a NULL name */

#endif
