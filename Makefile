# The two commands. Each sets up what it needs on a fresh Debian 12
# machine (Debian packages via tools/deps.sh), builds and runs.
.PHONY: all demo test faults bench build clean

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

# The whole fault sweep (tools/faults.sh; make test runs a sample of it).
faults:
	@tools/deps.sh test
	@tools/faults.sh

bench:
	@tools/deps.sh bench
	@[ -d build-bench ] || meson setup build-bench -Dbuildtype=release >/dev/null
	@ninja -C build-bench
	@tools/bench.sh

clean:
	rm -rf build build-asan build-bench build-a64
