# common.sh: what the install tests share; sourced with the build directory as $1.
# Everything a test makes lives in $WORK, removed at exit with any server it started.
set -euo pipefail

BUILD_DIR=$1
TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_DIR=$(cd "$TEST_DIR/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/uringest-install-test.XXXXXX")
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# install_tree PREFIX: cmake --install of the build into PREFIX (its log on failure).
install_tree() {
  cmake --install "$BUILD_DIR" --prefix "$1" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log"; fail "cmake --install --prefix $1"; }
}

# find_one DIR NAME: the one file NAME under DIR.
find_one() {
  local found
  found=$(find "$1" -name "$2")
  [ -n "$found" ] && [ "$(wc -l <<<"$found")" -eq 1 ] || fail "not one $2 under $1: '$found'"
  echo "$found"
}
