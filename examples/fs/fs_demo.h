/* examples/fs/fs_demo.h: the fs examples' step functions for awith-demo
 * (example_file_reader is declared in ../net/net_demo.h). Each is a task
 * to run with aw_main(). */
#ifndef AWITH_FS_DEMO_H
#define AWITH_FS_DEMO_H

/* seed 003 on real files: aw_file, a class-style and a generator log
 * manager, errors propagated or suppressed, copies with several managers,
 * an atomic write. arg: a scratch directory (left empty), or NULL for a
 * new one under /tmp (removed). */
int example_file_handling(void *arg);

#endif
