#!/usr/bin/env bash
# fuzz/run.sh: builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz and runs
# each for a while. Seeds come from tests/data/ (make_seeds); what a target learns is kept
# in build-fuzz/corpus/<target>/ for the next run, and crashing inputs land in
# build-fuzz/artifacts/<target>/. Exits 1 if any target found a crash, a hang or a leak.
#
#   fuzz/run.sh              # every target, 600 s each
#   fuzz/run.sh 20           # 20 s each (what ./uringest.sh test does)
#   fuzz/run.sh 3600 amf0    # one target, an hour
#   JOBS=4 fuzz/run.sh       # build with 4 jobs (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-600}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(handshake chunk_reader amf0 aggregate session ring_reader
  proxy_protocol)
BUILD=build-fuzz
JOBS=${JOBS:-$(nproc)}

CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DURINGEST_FUZZ=ON >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target fuzz_all
rm -rf "$BUILD/seeds"
"$BUILD/bin/make_seeds" "$BUILD/seeds"

failed=()
for t in "${TARGETS[@]}"; do
  mkdir -p "$BUILD/corpus/$t" "$BUILD/artifacts/$t"
  echo "fuzz: $t for ${SECONDS_PER_TARGET} s"
  # -timeout: one input may take 10 s (a spinning parser is a bug); -rss_limit_mb: memory
  # must stay bounded by the input. The last lines carry executions/s and coverage.
  if ! "$BUILD/bin/${t}_fuzz" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t/" \
      "$BUILD/corpus/$t" "$BUILD/seeds/$t" >"$BUILD/artifacts/$t.log" 2>&1; then
    failed+=("$t")
    echo "fuzz: $t FAILED; the input is in $BUILD/artifacts/$t/, the log in $BUILD/artifacts/$t.log"
    grep -E "invariant failed|ERROR:|SUMMARY:" "$BUILD/artifacts/$t.log" | head -5 || true
    continue
  fi
  grep -E "^#[0-9]+[[:space:]]+DONE" "$BUILD/artifacts/$t.log" || true
done
# ring_reader_fuzz's ring file (/dev/shm/uringest-fuzz-ring-PID) outlives a crashed run.
for f in /dev/shm/uringest-fuzz-ring-*; do
  [ -e "$f" ] && ! kill -0 "${f##*-}" 2>/dev/null && rm -f "$f"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: every target ran clean"
