# The two commands. Each sets up what it needs on a fresh Debian 12
# machine (Debian packages via tools/deps.sh), builds and runs.
.PHONY: all demo test bench build clean fuzz

all: build

build:
	@tools/deps.sh demo
	@if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
	@ninja -C build

demo: build
	@./build/examples/awith-demo

test:
	@tools/deps.sh test
	@tools/test.sh

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

bench:
	@tools/deps.sh bench
	@[ -d build-bench ] || meson setup build-bench -Dbuildtype=release >/dev/null
	@ninja -C build-bench
	@tools/bench.sh

clean:
	rm -rf build build-asan build-bench build-a64
