/* examples/nested.c -- seed 002, section 7: several managers in one
 * statement, and nested managers.
 *
 *   async with resource_a() as a, resource_b() as b:   # stacked aw_with lines
 *       print(f"Using {a} and {b}")
 *   async with resource_a() as a:                      # nested blocks
 *       async with resource_b() as b:
 *           print(f"Nested: {a}, {b}")
 *
 * Both forms enter A then B and exit B then A. The seed writes the
 * managers as generators; here they are class-style (one type, two
 * instances). */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

typedef struct { const char *name; } resource;

static int resource_enter(void *self, void **out) {
    resource *r = self;
    printf("Acquiring resource %s\n", r->name);
    *out = (void *)r->name; /* `yield "A"`: the `as` target is the name */
    return 0;
}

static int resource_exit(void *self, const aw_err_t *err) {
    resource *r = self;
    printf("Releasing resource %s\n", r->name);
    return 0;
}

static const aw_cm_type_t resource_type = {
    .name = "resource", .enter = resource_enter, .exit = resource_exit};
#define resource_a() aw_cm_temp(&resource_type, (resource){"A"})
#define resource_b() aw_cm_temp(&resource_type, (resource){"B"})

int example_nested(void *arg) {
    /* several managers: one per line, entered in order, exited in reverse */
    aw_with (const char *a, resource_a())
    aw_with (const char *b, resource_b()) {
        printf("Using %s and %s\n", a, b);
    }

    /* nested: the same thing, spelled with blocks */
    aw_with (const char *a, resource_a()) {
        aw_with (const char *b, resource_b()) {
            printf("Nested: %s, %s\n", a, b);
        }
    }
    return aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_nested, NULL) < 0; }
#endif
