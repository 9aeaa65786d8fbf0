/* examples/net/net_demo.h: the net and fs examples, for awith-demo.
 * Each example_* is a task to run with aw_main(); aw_example_net_demo
 * runs them in turn (each in its own loop) and returns 0 or -errno. */
#ifndef AWITH_NET_DEMO_H
#define AWITH_NET_DEMO_H

int example_tcp_connection(void *arg); /* seed 001: AsyncConnection over a real TCP server */
int example_timing(void *arg);         /* seeds 003 + 002 §9: the timing manager, deadlines, real requests */
int example_file_reader(void *arg);    /* seed 002 §6: async_file_reader, aiofiles.open */
int aw_example_net_demo(void);

#endif
