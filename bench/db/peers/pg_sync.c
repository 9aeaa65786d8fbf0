/* pg_sync.c: the plain libpq peer of bench-pg (pgbench -S style): THREADS
 * threads, each with its own connection, run N/THREADS prepared
 * `SELECT $1::int` synchronously (PQexecPrepared). Prints ns=<wall ns per
 * query> cpu=<the process's CPU ns per query, every thread>.
 *   pg_sync DSN N THREADS */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *dsn;
static long per;
static pthread_barrier_t ready;

static double cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *client(void *arg) {
    PGconn *c = PQconnectdb(dsn);
    long bad = 0;
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg_sync: %s", PQerrorMessage(c));
        exit(1);
    }
    PQclear(PQprepare(c, "s", "SELECT $1::int", 1, NULL));
    pthread_barrier_wait(&ready);
    for (long i = 0; i < per; i++) {
        char buf[24];
        snprintf(buf, sizeof buf, "%ld", i);
        const char *v[1] = {buf};
        PGresult *r = PQexecPrepared(c, "s", 1, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || atol(PQgetvalue(r, 0, 0)) != i)
            bad++;
        PQclear(r);
    }
    PQfinish(c);
    return (void *)bad;
}

int main(int argc, char **argv) {
    if (argc < 4)
        return 2;
    dsn = argv[1];
    long n = atol(argv[2]);
    int threads = atoi(argv[3]);
    per = n / threads;
    pthread_t t[256];
    pthread_barrier_init(&ready, NULL, threads + 1);
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, client, NULL);
    pthread_barrier_wait(&ready);
    double t0 = now(), c0 = cpu();
    long bad = 0;
    for (int i = 0; i < threads; i++) {
        void *b;
        pthread_join(t[i], &b);
        bad += (long)b;
    }
    double dt = now() - t0, dc = cpu() - c0;
    if (bad)
        return 1;
    printf("ns=%.1f cpu=%.1f\n", dt / (double)(per * threads), dc / (double)(per * threads));
    return 0;
}
