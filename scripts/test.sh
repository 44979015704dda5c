#!/usr/bin/env bash
# The whole test suite, as CI runs it (as root, no sudo):
#   setup     scripts/setup.sh (Debian packages; idempotent)
#   build     release build with -Werror into $BUILD_DIR (build/)
#   format    clang-format check (make format-check) and the layer check
#             (scripts/check-layers.sh: no include of a higher layer)
#   asan      ASan+UBSan build into $ASAN_BUILD_DIR (build-asan/) + ctest (unit tests)
#   fuzz      libFuzzer build into $FUZZ_BUILD_DIR (build-fuzz/), each fuzz/fuzz_*.c
#             target for $FUZZ_SECONDS seconds on its corpus (fuzz/corpus/<name>/)
#   npm       tests/integration/web dependencies (hls.js, playwright-core and the
#             OpenAPI validator, pinned in its package-lock.json) via npm ci; the
#             web panel's (cpanel/package-lock.json), copied into $BUILD_DIR/cpanel
#   openapi   docs/openapi.yaml is a valid OpenAPI 3 document (validate-api of
#             @seriousme/openapi-schema-validator; needs the npm phase)
#   pytest    integration tests (tests/integration) against $BUILD_DIR/mediaserver
# Every phase runs even when an earlier one failed (unless the build or setup
# failed: then nothing can be tested). Ends with one line "N passed, M failed"
# (phases) and exits non-zero on any failure.
#
# Environment (all optional):
#   BUILD_DIR, ASAN_BUILD_DIR, FUZZ_BUILD_DIR   build directories
#   JOBS            parallel build jobs (default: nproc)
#   FUZZ_SECONDS    seconds per fuzz target (default 10)
#   PHASES          subset to run, e.g. "build pytest" (default: all)
#   PYTEST_ARGS     extra pytest arguments, e.g. "-k llhls -x"
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

BUILD_DIR=${BUILD_DIR:-build}
ASAN_BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
PHASES=${PHASES:-setup build format asan fuzz npm openapi pytest}
PYTEST_ARGS=${PYTEST_ARGS:-}

case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
case "$ASAN_BUILD_DIR" in /*) ;; *) ASAN_BUILD_DIR="$ROOT/$ASAN_BUILD_DIR" ;; esac
case "$FUZZ_BUILD_DIR" in /*) ;; *) FUZZ_BUILD_DIR="$ROOT/$FUZZ_BUILD_DIR" ;; esac

# Tools write state into $HOME (GStreamer registry, Chromium, npm): keep it
# inside the build directory, never in the real home.
mkdir -p "$BUILD_DIR"
export HOME="$BUILD_DIR/test-home"
export XDG_CACHE_HOME="$HOME/.cache" XDG_CONFIG_HOME="$HOME/.config" XDG_DATA_HOME="$HOME/.local/share"
export npm_config_cache="$BUILD_DIR/npm-cache"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
mkdir -p "$HOME" "$XDG_CACHE_HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"

passed=()
failed=()
skipped=()
pytest_line=""
cluster_line=""
fuzz_targets=0
fuzz_failed=0
T0=$(date +%s)

want() { [[ " $PHASES " == *" $1 "* ]]; }

# run_phase NAME FUNCTION: prints a header, times the phase, records the result.
run_phase() {
  local name=$1 fn=$2 t rc
  if ! want "$name"; then
    skipped+=("$name")
    return 0
  fi
  t=$(date +%s)
  printf '\n===== [%s] %s =====\n' "$name" "$(date -u +%H:%M:%S)"
  "$fn"
  rc=$?
  if [ $rc -eq 0 ]; then
    passed+=("$name")
    printf '===== [%s] ok (%ds)\n' "$name" $(($(date +%s) - t))
  else
    failed+=("$name")
    printf '===== [%s] FAILED (exit %d, %ds)\n' "$name" $rc $(($(date +%s) - t))
  fi
  return $rc
}

phase_setup() { bash scripts/setup.sh; }

phase_build() {
  cmake -S . -B "$BUILD_DIR" -DMS_WERROR=ON >/dev/null &&
    cmake --build "$BUILD_DIR" -j"$JOBS"
}

phase_format() {
  local rc=0
  make --no-print-directory format-check || rc=1
  scripts/check-layers.sh --self-test || rc=1
  scripts/check-layers.sh || rc=1
  return $rc
}

phase_asan() {
  cmake -S . -B "$ASAN_BUILD_DIR" -DMS_ASAN=ON -DMS_WERROR=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
    cmake --build "$ASAN_BUILD_DIR" -j"$JOBS" &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir "$ASAN_BUILD_DIR" --output-on-failure -j"$JOBS" 2>&1 | tee "$ASAN_BUILD_DIR/ctest.log"
  return "${PIPESTATUS[0]}"
}

phase_fuzz() {
  local src name bin seeds work rc=0 n=0 targets=()
  for src in fuzz/fuzz_*.c; do
    [ -e "$src" ] && targets+=("$(basename "$src" .c)")
  done
  if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz: no targets"
    return 0
  fi
  # Only the fuzz targets (they link the pure library, not the daemon).
  CC=clang cmake -S . -B "$FUZZ_BUILD_DIR" -DMS_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
    cmake --build "$FUZZ_BUILD_DIR" -j"$JOBS" --target "${targets[@]}" || return 1
  mkdir -p "$FUZZ_BUILD_DIR/artifacts"
  for src in fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    bin="$FUZZ_BUILD_DIR/$name"
    if [ ! -x "$bin" ]; then
      echo "fuzz: $name was not built"
      rc=1
      continue
    fi
    # New inputs go to a scratch corpus in the build dir; the committed
    # seed corpus is only read.
    work="$FUZZ_BUILD_DIR/corpus-run/$name"
    mkdir -p "$work"
    seeds=()
    for d in "fuzz/corpus/$name" "fuzz/corpus/${name#fuzz_}"; do
      [ -d "$d" ] && seeds+=("$d")
    done
    echo "--- $name (${FUZZ_SECONDS}s, seeds: ${seeds[*]:-none})"
    if ! "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$FUZZ_BUILD_DIR/artifacts/$name-" "$work" "${seeds[@]}" \
      >"$FUZZ_BUILD_DIR/$name.log" 2>&1; then
      echo "fuzz: $name FAILED; last lines of $FUZZ_BUILD_DIR/$name.log:"
      tail -n 40 "$FUZZ_BUILD_DIR/$name.log"
      fuzz_failed=$((fuzz_failed + 1))
      rc=1
    else
      grep -E '^stat::number_of_executed_units|^Done' "$FUZZ_BUILD_DIR/$name.log" | tr '\n' ' '
      echo
    fi
    n=$((n + 1))
  done
  fuzz_targets=$n
  echo "fuzz: $n targets run"
  return $rc
}

phase_npm() {
  (cd tests/integration/web && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; }) || return 1
  # The web panel's hls.js (cpanel/package-lock.json), then copied into
  # $BUILD_DIR/cpanel (the build ran before node_modules existed).
  (cd cpanel && npm ci --no-audit --no-fund --loglevel=error) || return 1
  cmake --build "$BUILD_DIR" --target cpanel >/dev/null
}

phase_openapi() {
  local v=tests/integration/web/node_modules/.bin/validate-api
  if [ ! -x "$v" ]; then
    echo "openapi: $v missing (run the npm phase first)"
    return 1
  fi
  # Prints {"valid": true} or the schema errors; exits non-zero on an invalid spec.
  node "$v" docs/openapi.yaml
}

phase_pytest() {
  local log="$BUILD_DIR/pytest.log" rc
  # shellcheck disable=SC2086
  MS_BIN="$BUILD_DIR/mediaserver" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    -o junit_family=xunit2 --junitxml="$BUILD_DIR/pytest-junit.xml" \
    tests/integration $PYTEST_ARGS 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  pytest_line=$(grep -E '(passed|failed|error|skipped|no tests ran)' "$log" | tail -n 1)
  return "$rc"
}

# "N passed" / "N failed" of a pytest summary line (0 when absent).
pyt_count() { printf '%s\n' "$1" | grep -oE "[0-9]+ $2" | head -n 1 | grep -oE '^[0-9]+' || echo 0; }

summary() {
  local tp=0 tf=0 n f t p
  printf '\n===== summary (%ds) =====\n' $(($(date +%s) - T0))
  [ ${#passed[@]} -gt 0 ] && echo "phases passed:  ${passed[*]}"
  [ ${#failed[@]} -gt 0 ] && echo "phases FAILED:  ${failed[*]}"
  [ ${#skipped[@]} -gt 0 ] && echo "phases skipped: ${skipped[*]}"
  # Test counts: unit tests (ctest), integration and cluster tests (pytest),
  # fuzz targets; a failed phase without counts of its own counts as one failure.
  if [ -f "$ASAN_BUILD_DIR/ctest.log" ] && want asan; then
    t=$(grep -oE 'tests failed out of [0-9]+' "$ASAN_BUILD_DIR/ctest.log" | tail -n 1 | grep -oE '[0-9]+$')
    f=$(grep -oE '[0-9]+ tests failed out of' "$ASAN_BUILD_DIR/ctest.log" | tail -n 1 | grep -oE '^[0-9]+')
    if [ -n "$t" ]; then
      echo "unit:           $((t - f)) passed, $f failed (ctest, ASan+UBSan)"
      tp=$((tp + t - f)); tf=$((tf + f))
    fi
  fi
  for line in "$pytest_line" "$cluster_line"; do
    [ -n "$line" ] || continue
    p=$(pyt_count "$line" passed); f=$(pyt_count "$line" failed); n=$(pyt_count "$line" error)
    tp=$((tp + p)); tf=$((tf + f + n))
  done
  [ -n "$pytest_line" ] && echo "integration:    $pytest_line"
  [ -n "$cluster_line" ] && echo "cluster:        $cluster_line"
  [ "$fuzz_targets" -gt 0 ] && echo "fuzz:           $fuzz_targets targets, $fuzz_failed failed"
  # the OpenAPI lint counts as one test (a failure counts below, as a failed phase)
  if [[ " ${passed[*]} " == *" openapi "* ]]; then
    echo "openapi:        docs/openapi.yaml valid"
    tp=$((tp + 1))
  fi
  tp=$((tp + fuzz_targets - fuzz_failed)); tf=$((tf + fuzz_failed))
  for n in "${failed[@]}"; do
    case $n in
      asan) [ -f "$ASAN_BUILD_DIR/ctest.log" ] && grep -q 'tests failed out of' "$ASAN_BUILD_DIR/ctest.log" || tf=$((tf + 1)) ;;
      pytest) [ -n "$pytest_line" ] || tf=$((tf + 1)) ;;
      cluster) [ -n "$cluster_line" ] || tf=$((tf + 1)) ;;
      fuzz) [ "$fuzz_failed" -gt 0 ] || tf=$((tf + 1)) ;;
      *) tf=$((tf + 1)) ;;
    esac
  done
  echo "$tp passed, $tf failed"
}

run_phase setup phase_setup || { summary; exit 1; }
run_phase build phase_build || { summary; exit 1; }
run_phase format phase_format
run_phase asan phase_asan
run_phase fuzz phase_fuzz
run_phase npm phase_npm
run_phase openapi phase_openapi
run_phase pytest phase_pytest
# cluster tests: multi-node Raft drills on loopback (cluster-tests/)
phase_cluster() {
  local rc
  MS_BIN="$BUILD_DIR/mediaserver" /usr/bin/python3 -m pytest -q -p no:cacheprovider cluster-tests \
    2>&1 | tee "$BUILD_DIR/cluster.log"
  rc=${PIPESTATUS[0]}
  cluster_line=$(grep -E '(passed|failed|error|skipped|no tests ran)' "$BUILD_DIR/cluster.log" | tail -n 1)
  return "$rc"
}
PHASES=${PHASES/pytest/pytest cluster}
run_phase cluster phase_cluster
summary
[ ${#failed[@]} -eq 0 ]
