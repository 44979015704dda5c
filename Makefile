# Thin wrapper over CMake. `make` builds into build/; `make test` runs unit tests;
# `make asan` builds build-asan/ with ASan+UBSan and runs the unit tests there.
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all test asan tsan fuzz install deb clean format format-check check-layers

all:
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

test: all
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

asan:
	@cmake -S . -B build-asan -DMS_ASAN=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(JOBS)

tsan:
	@cmake -S . -B build-tsan -DMS_TSAN=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-tsan -j$(JOBS)

# Only the fuzz targets: they link the pure library, not the daemon.
FUZZ_TARGETS := $(basename $(notdir $(wildcard fuzz/fuzz_*.c)))
fuzz:
	@CC=clang cmake -S . -B build-fuzz -DMS_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target $(FUZZ_TARGETS)

install: all
	cmake --install $(BUILD)

# Debian package mediaserver_<version>_<arch>.deb in $(BUILD)/ (docs/install.md)
deb:
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target mediaserver
	@scripts/build-deb.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

# No file includes a header of a higher layer (docs/architecture.md "Layers").
check-layers:
	scripts/check-layers.sh

clean:
	rm -rf build build-asan build-tsan build-fuzz
