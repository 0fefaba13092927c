#!/usr/bin/env bash
# uringest.sh: the Quick start commands. Each installs whatever Debian 12 packages are
# missing (as root): start and package only what building the programs needs, test and
# build what the tests need too.
#
#   ./uringest.sh start [uringestd flags...]   build the programs, then run uringestd in
#                                              the foreground
#   ./uringest.sh test                         build, then run the whole test suite:
#                                              -Werror build + every test but the
#                                              integration ones, ASan/UBSan build + every
#                                              test, TSan build + ring and engine tests,
#                                              each fuzz target for 20 s
#   ./uringest.sh build                        install and build everything (build/bin/)
#   ./uringest.sh package                      build the .deb; prints its path
set -euo pipefail
cd "$(dirname "$0")"

# What building the programs needs, and what the tests need on top of it.
BUILD_PACKAGES=(build-essential cmake pkg-config liburing-dev libmimalloc-dev libabsl-dev
                libssl-dev libspdlog-dev libcli11-dev libcurl4-openssl-dev nlohmann-json3-dev
                libmicrohttpd-dev)
TEST_PACKAGES=("${BUILD_PACKAGES[@]}" libgtest-dev libgmock-dev libbenchmark-dev ffmpeg clang
               libclang-rt-14-dev debootstrap nginx libnginx-mod-rtmp openssl prometheus
               python3 systemd haproxy iproute2 curl)
PROGRAMS=(uringestd uringest-cat uringest-stat uringest-load uringest-record uringest-push)
JOBS=$(nproc)
# The programs alone are built with line tables only (-g1: backtraces and perf still
# name functions and lines), which compiles in three quarters of the time; the test
# builds keep full debug information for the debugger.
LINE_DEBUG_INFO="-O2 -g1 -DNDEBUG"
FULL_DEBUG_INFO="-O2 -g -DNDEBUG"

# install_missing PACKAGE...: apt-get installs those not installed yet.
install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -ne 0 ]; then
    echo "uringest: run as root (or with sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "uringest: installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --force-unsafe-io: dpkg does not fsync each file it unpacks (much of a fresh
  # machine's install time); an install that a crash interrupts is redone by apt-get.
  apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-unsafe-io \
    "${missing[@]}"
}

# build DIR [cmake args...]: configures and builds everything, tests and benchmarks
# included; TARGET (environment) builds that target only.
build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DURINGEST_BUILD_TESTS=ON \
    -DURINGEST_BUILD_BENCHMARKS=ON "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$FULL_DEBUG_INFO" \
    "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS" ${TARGET:+--target "$TARGET"}
}

# build_programs [TARGET...]: configures build/ without the tests and benchmarks (which
# need packages of their own, and most of the compiling), then builds the programs only
# or the TARGETs. The programs stay where the README has them, in build/bin/; a later
# `test` or `build` turns the tests back on in the same directory (test's -Werror then
# compiles everything once more, and start keeps it).
build_programs() {
  echo "uringest: configuring"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DURINGEST_BUILD_TESTS=OFF \
    -DURINGEST_BUILD_BENCHMARKS=OFF "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$LINE_DEBUG_INFO" \
    >/dev/null
  if [ $# -eq 0 ]; then
    echo "uringest: building the programs ($JOBS jobs)"
    cmake --build build -j"$JOBS" --target "${PROGRAMS[@]}"
  else
    echo "uringest: building $* ($JOBS jobs)"
    cmake --build build -j"$JOBS" --target "$@"
  fi
}

# The Enhanced RTMP tests publish with a current ffmpeg from Debian sid, in a chroot
# built once outside the clone (tests/sid_ffmpeg.sh). Where it can't be built, they are
# skipped with the reason it printed.
prepare_sid_ffmpeg() {
  local line
  if line=$(tests/sid_ffmpeg.sh); then
    echo "uringest: Enhanced RTMP tests use the sid chroot's $line"
  else
    echo "uringest: $line: the tests that need it will be skipped"
    export URINGEST_FFMPEG9_SKIP="$line"
  fi
}

run_tests() {
  prepare_sid_ffmpeg
  build build -DURINGEST_WERROR=ON
  # The integration tests (real uringestd, ffmpeg, nginx, mostly paced in real time) run
  # once, in the sanitizer build below, which checks more: here the rest.
  echo "uringest: unit, install and ring tests"
  ctest --test-dir build --output-on-failure -j"$JOBS" --timeout 600 -LE integration
  echo "uringest: every test under AddressSanitizer + UndefinedBehaviorSanitizer"
  build build-asan -DURINGEST_WERROR=ON -DURINGEST_SANITIZE=address,undefined \
    -DURINGEST_BUILD_BENCHMARKS=OFF
  ctest --test-dir build-asan --output-on-failure -j"$JOBS" --timeout 900
  echo "uringest: in-process ring and engine tests under ThreadSanitizer"
  TARGET=uringest_tsan_tests build build-tsan -DURINGEST_WERROR=ON -DURINGEST_SANITIZE=thread \
    -DURINGEST_BUILD_BENCHMARKS=OFF
  ctest --test-dir build-tsan --output-on-failure -j"$JOBS" -L tsan --timeout 900
  echo "uringest: libFuzzer targets (clang), 20 s each; fuzz/run.sh runs them longer"
  JOBS=$JOBS fuzz/run.sh 20
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  start)
    install_missing "${BUILD_PACKAGES[@]}"
    build_programs
    echo "uringest: starting uringestd"
    exec build/bin/uringestd "$@"
    ;;
  test)
    install_missing "${TEST_PACKAGES[@]}"
    run_tests
    ;;
  build)
    install_missing "${TEST_PACKAGES[@]}"
    build build
    ;;
  package)
    install_missing "${BUILD_PACKAGES[@]}"
    build_programs all
    echo "uringest: packaging"
    cpack --config build/CPackConfig.cmake -B build/package |
      sed -n 's/^CPack: - package: \(.*\) generated\.$/\1/p'
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
