// switch_boost.cpp: the boost.context peer of bench/switch.c and
// bench/spawn.c. Prints `key=value` tokens; one measurement per run (the
// caller repeats and takes the median).
//
//   switch_boost switch N   ping-pong N round trips between the main
//                           context and a fiber: switch_ns = time / (2N)
//   switch_boost spawn N    N times: create a fiber on a pooled 128 KiB
//                           stack (the analogue of awith's stack cache),
//                           run it to completion, destroy it:
//                           spawn_ns = time / N
#include <boost/context/fiber.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <utility>

namespace ctx = boost::context;

static double now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static volatile long sink;

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s switch|spawn N\n", argv[0]);
        return 2;
    }
    long n = std::atol(argv[2]);
    if (!std::strcmp(argv[1], "switch")) {
        ctx::fiber f{[](ctx::fiber &&m) {
            for (;;)
                m = std::move(m).resume();
            return std::move(m);
        }};
        for (long i = 0; i < 1000; i++) // warm up
            f = std::move(f).resume();
        double t0 = now_ns();
        for (long i = 0; i < n; i++)
            f = std::move(f).resume();
        double t1 = now_ns();
        std::printf("switch_ns=%.4f\n", (t1 - t0) / (2.0 * n));
        // f is suspended inside its loop: unwound by its destructor
        return 0;
    }
    if (!std::strcmp(argv[1], "spawn")) {
        ctx::pooled_fixedsize_stack salloc(128 * 1024);
        auto once = [&salloc](long i) {
            ctx::fiber f{std::allocator_arg, salloc, [i](ctx::fiber &&m) {
                             sink = i;
                             return std::move(m);
                         }};
            f = std::move(f).resume(); // runs to completion; f is empty
        };
        for (long i = 0; i < 1000; i++) // warm the pool
            once(i);
        double t0 = now_ns();
        for (long i = 0; i < n; i++)
            once(i);
        double t1 = now_ns();
        std::printf("spawn_ns=%.4f\n", (t1 - t0) / n);
        return 0;
    }
    std::fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
