/* examples/fs/file_reader.c -- seed 002 §6: an asynchronous manager for
 * file operations.
 *
 *   @asynccontextmanager
 *   async def async_file_reader(filename):   -> a generator-style manager
 *   async with aiofiles.open(...) as file:   -> aw_file(...) (awith/file.h)
 *
 * The file data.txt is written first (atomically) in a temporary
 * directory, then read both ways, then removed. */
#include <awith.h>
#include <awith/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../net/net_demo.h"

/* async def async_file_reader(filename) */
static int async_file_reader(aw_gencm_t *g, void *filename) {
    aw_file_t file;
    if (aw_file_open(&file, filename, O_RDONLY, 0) < 0) /* file = await aiofiles.open(...) */
        return aw_status();
    int rc = aw_gencm_yield(g, &file);                   /* yield file */
    aw_file_close(&file);                                /* finally: await file.close() */
    return rc;
}

/* content = await file.read(); print(content) */
static int print_content(aw_file_t *file) {
    char buf[4096];
    ssize_t n;
    while ((n = aw_file_read(file, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    return n < 0 ? (int)n : 0;
}

int example_file_reader(void *arg) {
    char dir[] = "/tmp/awith-example-XXXXXX", path[64];
    if (!mkdtemp(dir))
        return -errno;
    snprintf(path, sizeof path, "%s/data.txt", dir);
    aw_with (aw_file_t *f, aw_file_atomic(path, 0644)) {
        const char text[] = "строка 1\nстрока 2\n";
        aw_file_write(f, text, sizeof text - 1);
    }
    if (aw_status() == 0) {
        puts("-- async_file_reader (a generator-style manager):");
        aw_with (aw_file_t *file, aw_gencm(async_file_reader, path))
            print_content(file);
    }
    if (aw_status() == 0) {
        puts("-- aw_file (the built-in manager, like aiofiles.open):");
        aw_with (aw_file_t *file, aw_file(path, O_RDONLY, 0))
            print_content(file);
    }
    unlink(path);
    rmdir(dir);
    return aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_file_reader, NULL) < 0; }
#endif
