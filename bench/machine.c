/* machine.c -> machine_cost: what the machine charges for the two things
 * most figures here are made of, so that a reader (and a later run) can
 * tell a slow machine from a slow library. tools/bench.sh runs it before
 * and after the benchmarks and writes both into every JSON line.
 *
 *   syscall_ns      getpid(2) through syscall(), the floor of any system
 *                   call (median of 5 x 100,000)
 *   page_fault_ns   a first-touch page fault in a fresh mapping
 *                   (bench_fault_ns; median of 5 x 1024 pages)
 *   mmap_ns         mmap + mprotect (guard page) + munmap of a 132 KiB
 *                   NORESERVE mapping, as a coroutine stack is made
 *   load1           the 1-minute load average when it ran
 *
 * Prints one line:  machine syscall_ns=<v> page_fault_ns=<v> mmap_ns=<v> load1=<v> cpus=<n> */
#include "bench.h"

#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    double sys[BENCH_REPS], pf[BENCH_REPS], mm[BENCH_REPS];
    for (int r = 0; r < BENCH_REPS; r++) {
        double t0 = bench_now();
        for (int i = 0; i < 100000; i++)
            syscall(SYS_getpid);
        sys[r] = (bench_now() - t0) / 100000;
        pf[r] = bench_fault_ns();
        t0 = bench_now();
        for (int i = 0; i < 1000; i++) {
            char *m = mmap(NULL, 132 * 1024, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (m == MAP_FAILED)
                return 1;
            mprotect(m, 4096, PROT_NONE);
            munmap(m, 132 * 1024);
        }
        mm[r] = (bench_now() - t0) / 1000;
    }
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = -1;
        fclose(f);
    }
    printf("machine syscall_ns=%.4g page_fault_ns=%.4g mmap_ns=%.4g load1=%.2f cpus=%ld\n",
           bench_median(sys, BENCH_REPS), bench_median(pf, BENCH_REPS), bench_median(mm, BENCH_REPS),
           load, sysconf(_SC_NPROCESSORS_ONLN));
    return 0;
}
