#!/usr/bin/env bash
# uringest.sh: the two Quick start commands. Each installs whatever Debian 12 packages
# are missing (as root), builds, and then either starts uringestd or runs every test.
#
#   ./uringest.sh start [uringestd flags...]   build, then run uringestd in the foreground
#   ./uringest.sh test                         build, then run the whole test suite:
#                                              -Werror build + every test, ASan/UBSan
#                                              build + every test, TSan build + ring and
#                                              engine tests, each fuzz target for 30 s
#   ./uringest.sh build                        install and build only (build/bin/)
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential cmake pkg-config liburing-dev libmimalloc-dev libabsl-dev
          libgtest-dev libgmock-dev libbenchmark-dev libssl-dev libspdlog-dev libcli11-dev
          libcurl4-openssl-dev nlohmann-json3-dev ffmpeg clang libclang-rt-14-dev debootstrap
          nginx libnginx-mod-rtmp openssl)
JOBS=$(nproc)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "uringest: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "uringest: run as root (or with sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# build DIR [cmake args...]; TARGET (environment) builds that target only.
build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS" ${TARGET:+--target "$TARGET"}
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
  ctest --test-dir build --output-on-failure -j"$JOBS" --timeout 600
  echo "uringest: every test under AddressSanitizer + UndefinedBehaviorSanitizer"
  build build-asan -DURINGEST_WERROR=ON -DURINGEST_SANITIZE=address,undefined \
    -DURINGEST_BUILD_BENCHMARKS=OFF
  ctest --test-dir build-asan --output-on-failure -j"$JOBS" --timeout 900
  echo "uringest: in-process ring and engine tests under ThreadSanitizer"
  TARGET=uringest_tsan_tests build build-tsan -DURINGEST_WERROR=ON -DURINGEST_SANITIZE=thread \
    -DURINGEST_BUILD_BENCHMARKS=OFF
  ctest --test-dir build-tsan --output-on-failure -j"$JOBS" -L tsan --timeout 900
  echo "uringest: libFuzzer targets (clang), 30 s each; fuzz/run.sh runs them longer"
  JOBS=$JOBS fuzz/run.sh 30
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  start)
    install_missing
    build build
    exec build/bin/uringestd "$@"
    ;;
  test)
    install_missing
    run_tests
    ;;
  build)
    install_missing
    build build
    ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
