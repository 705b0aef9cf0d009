# handoff: two commands do everything on a fresh Debian machine.
#   make demo   install missing packages, build, run the main scenario (Python, then C++)
#   make test   install missing packages, build, run every test
#   make install [PREFIX=/usr/local] [DESTDIR=...]   binaries, config, systemd unit, sysusers.d
#   make chaos [CUTS=300] [CHAOS_SECONDS=1800]   the long fault-injection runs (root, FUSE, netns)
# Other targets: deps, build, sanitize (ASan+UBSan build and tests), fuzz (each libFuzzer
# target for FUZZ_SECONDS, default 300), fuzz-check (each for 20 s: what CI runs), clean.

# Sub-makes (CMake's) print no "Entering directory" lines.
MAKEFLAGS += --no-print-directory

BUILD_DIR  ?= build
# make install: where (PREFIX) and under which staging root (DESTDIR, for packagers).
PREFIX     ?= /usr/local
DESTDIR    ?=
BUILD_TYPE ?= Release
JOBS       ?= 2
CMAKE_ARGS ?=

# Everything the build, the tests and the demo need, by Debian package name.
DEB_PACKAGES := cmake g++ make pkg-config \
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev liblmdb-dev libspdlog-dev doctest-dev \
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libsodium-dev libbenchmark-dev \
  libcpp-httplib-dev libsystemd-dev libfuse3-dev \
  python3 python3-zmq python3-msgpack python3-pytest python3-venv python3-setuptools

# The fuzz targets also need clang and its libFuzzer runtime.
FUZZ_PACKAGES := clang-14 libclang-rt-14-dev
FUZZ_SECONDS ?= 300
# The side-by-side comparison with Redis (make compare) needs a Redis server and hiredis.
BENCH_PACKAGES := redis-server libhiredis-dev
ROUNDS ?= 3
# Round trips of each 256-in-flight run of `make compare` (longer runs are steadier).
COUNT ?= 20000
FUZZ_DIR ?= build-fuzz

.PHONY: bench-deps compare chaos install all deps fuzz-deps install-packages build test demo sanitize fuzz-build fuzz fuzz-check clean

all: build

# Installs only what is missing; silent when everything is there.
deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEB_PACKAGES)"

fuzz-deps: deps
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(FUZZ_PACKAGES)"

bench-deps: deps
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(BENCH_PACKAGES)"

install-packages:
	@missing=""; \
	for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j$(JOBS)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS)

# The long runs of tests/chaos (docs/reliability.md), each with its checker and JSON report in
# $(BUILD_DIR): CUTS power cuts of a loaded handoffd on cutfs, then CHAOS_SECONDS of a nemesis
# against three nodes in network namespaces. Needs root, FUSE and ip netns.
CUTS ?= 300
CHAOS_SECONDS ?= 1800
chaos: build
	@/usr/bin/python3 tests/chaos/powercut.py --bin $(BUILD_DIR)/daemons --cutfs $(BUILD_DIR)/tests/cutfs \
	  --cuts $(CUTS) --report $(BUILD_DIR)/powercut-report.json
	@/usr/bin/python3 tests/chaos/cluster.py --bin $(BUILD_DIR)/daemons --seconds $(CHAOS_SECONDS) \
	  --report $(BUILD_DIR)/cluster-report.json

# handoff-bench and handoff-redis-bench, interleaved ROUNDS times, medians and the ratios of the
# performance targets (docs/performance.md). Figures, not a test: run it on a quiet machine.
compare: bench-deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j$(JOBS)
	@/usr/bin/python3 tests/bench/compare_redis.py --bin $(BUILD_DIR)/daemons --rounds $(ROUNDS) \
	  --count $(COUNT) --json $(BUILD_DIR)/compare-redis.json

# Configures with the prefix (the systemd unit names the installed paths), builds, installs.
install: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j$(JOBS)
	@DESTDIR="$(DESTDIR)" cmake --install $(BUILD_DIR)

demo: build
	@./examples/python_demo.sh $(BUILD_DIR)
	@./examples/demo.sh $(BUILD_DIR)

# AddressSanitizer + UndefinedBehaviorSanitizer build; runs the unit tests and the fast
# integration tests under it.
sanitize: deps
	@cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DHANDOFF_SANITIZE=ON >/dev/null
	@cmake --build build-sanitize -j$(JOBS)
	@cd build-sanitize && ctest --output-on-failure -j$(JOBS) -L sanitize

# libFuzzer targets (tests/fuzz), built by clang with ASan and UBSan. New inputs they find go
# to $(FUZZ_DIR)/tests/fuzz/work/<target>/found; a crash's input to .../artifacts.
fuzz-build: fuzz-deps
	@CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=Debug \
	  -DHANDOFF_FUZZ=ON -DHANDOFF_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	@cmake --build $(FUZZ_DIR) -j$(JOBS) --target fuzzers

fuzz: fuzz-build
	@cd $(FUZZ_DIR) && ctest --output-on-failure -j$(JOBS) -L fuzz

fuzz-check:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

clean:
	rm -rf $(BUILD_DIR) build-sanitize $(FUZZ_DIR)
