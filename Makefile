# The two commands. Each sets up what it needs on a fresh Debian 12
# machine (Debian packages via tools/deps.sh), builds and runs.
.PHONY: all demo test faults bench build clean

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

# Every benchmark against its peers; writes build-bench/bench.jsonl (one
# JSON line per figure), bench-report.md and bench-ratios.svg.
bench:
	@tools/deps.sh bench
	@$(call setup,build-bench,-Dbuildtype=release -Dbench=enabled -Dtests=disabled)
	@ninja -C build-bench
	@tools/bench.sh

clean:
	rm -rf build build-demo build-asan build-bench build-a64 build-tsan
