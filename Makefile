# The two commands. Each sets up what it needs on a fresh Debian 12
# machine (Debian packages via tools/deps.sh), builds and runs.
.PHONY: all demo test faults fuzz bench build clean

# setup DIR OPTIONS: configure DIR, or reconfigure it if it exists (a
# layer's meson.build may have appeared, an option changed).
setup = if [ -d $(1) ]; then meson setup --reconfigure $(1) $(2) >/dev/null; \
        else meson setup $(1) $(2) >/dev/null; fi

all: build

# Everything: the library, tests (when Criterion is there), examples, benchmarks.
build:
	@tools/deps.sh demo
	@$(call setup,build,)
	@ninja -C build

# The demo alone: its own build dir without tests and benchmarks, and of
# that only awith-demo (the library and the example files it links).
demo:
	@tools/deps.sh demo
	@$(call setup,build-demo,-Dtests=disabled -Dbench=disabled -Dexamples=enabled)
	@ninja -C build-demo examples/awith-demo
	@./build-demo/examples/awith-demo

test:
	@tools/deps.sh test
	@tools/test.sh

# The whole fault sweep (tools/faults.sh; make test runs a sample of it).
faults:
	@tools/deps.sh test
	@tools/faults.sh

# The composition fuzzer for as long as asked (tests/fuzz/README.md), under
# ASan: make fuzz FUZZ_SECONDS=3600 FUZZ_JOBS=2 FUZZ_SEED=1 FUZZ_FEATURES=all
FUZZ_SECONDS ?= 600
FUZZ_JOBS ?= 1
FUZZ_FEATURES ?= default
fuzz:
	@tools/deps.sh test
	@[ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug >/dev/null
	@ninja -C build-asan tests/fuzz/fuzz >/dev/null
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  build-asan/tests/fuzz/fuzz --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) \
	  --features $(FUZZ_FEATURES) --keep-going --verbose $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

# Every benchmark against its peers; writes build-bench/bench.jsonl (one
# JSON line per figure), bench-report.md and bench-ratios.svg.
bench:
	@tools/deps.sh bench
	@$(call setup,build-bench,-Dbuildtype=release -Dbench=enabled -Dtests=disabled)
	@ninja -C build-bench
	@tools/bench.sh

clean:
	rm -rf build build-demo build-asan build-bench build-a64 build-tsan
