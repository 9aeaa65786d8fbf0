/* examples/net/net_demo.c: aw_example_net_demo, the net and fs examples
 * in turn, each as the main task of its own loop. */
#include <awith.h>
#include <stdio.h>

#include "net_demo.h"

int aw_example_net_demo(void) {
    int rc = aw_main(example_tcp_connection, NULL);
    fflush(stdout);
    if (rc == 0)
        rc = aw_main(example_file_reader, NULL);
    fflush(stdout);
    return rc;
}
