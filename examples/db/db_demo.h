/* examples/db/db_demo.h: the seeds' database examples on real databases.
 *
 * dsn: "sqlite:PATH" (NULL or "": SQLite in a temporary file, the
 * default) or "postgresql://user:pass@host:port/db". */
#ifndef AWITH_EXAMPLE_DB_DEMO_H
#define AWITH_EXAMPLE_DB_DEMO_H

/* A task function (for aw_main): arg is the DSN (const char *) or NULL. */
int example_db(void *dsn);
/* Run it as the main task of its own loop; 0 or the failure's code. */
int aw_example_db_demo(const char *dsn);

#endif
