#!/usr/bin/env bash
# consumer_test.sh BUILD_DIR CC [SANITIZE]: installs the build into a temporary prefix and
# builds ring_consumer.c against it as a user would, with pkg-config uringest-ring (and
# -fsanitize=SANITIZE in a sanitizer build, whose library needs its runtime). Checks that
# liburingest-ring.so.0 exports the C API and nothing else, then runs the consumer against
# a ring that does not exist (the API's -ENOENT) and against the installed uringestd,
# started with the installed configuration file and 2 shards.
source "$(dirname "$0")/common.sh"
CC=$2
SANITIZE=${3:-}
PREFIX=$WORK/prefix
install_tree "$PREFIX"

PKG_CONFIG_PATH=$(dirname "$(find_one "$PREFIX" uringest-ring.pc)")
export PKG_CONFIG_PATH
LIBDIR=$(pkg-config --variable=libdir uringest-ring)
[ "$LIBDIR" = "$(dirname "$(find_one "$PREFIX" liburingest-ring.so.0)")" ] ||
  fail "the .pc's libdir $LIBDIR is not where liburingest-ring.so.0 is"
flags=$(pkg-config --cflags --libs uringest-ring)
echo "pkg-config --cflags --libs uringest-ring: $flags"
[ -z "$SANITIZE" ] || flags+=" -fsanitize=$SANITIZE"
# shellcheck disable=SC2086  # the flags are words
"$CC" -std=c11 -Wall -Wextra -Werror "$TEST_DIR/ring_consumer.c" $flags -o "$WORK/ring_consumer"

lib=$LIBDIR/liburingest-ring.so.0
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = liburingest-ring.so.0 ] || fail "SONAME '$soname'"
exported=$(nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sed 's/@.*//' | sort)
declared=$(sed -n 's/^URINGEST_RING_API .* \**\(uringest_ring_[a-z_]*\)(.*/\1/p' \
  "$(find_one "$PREFIX" uringest_ring.h)" | sort)
[ -n "$declared" ] || fail "no URINGEST_RING_API function in the installed header"
[ "$exported" = "$declared" ] ||
  fail "$lib exports other than the header's functions: $(diff <(echo "$declared") <(echo "$exported") || true)"
echo "$lib: SONAME $soname, exports the $(wc -l <<<"$exported") functions of uringest_ring.h"

export LD_LIBRARY_PATH=$LIBDIR
ring=uringest-install-test-$$-$RANDOM
out=$("$WORK/ring_consumer" open "$ring") && fail "opened a ring nobody serves: $out"
echo "ring_consumer open $ring: $out"
[[ $out == "error -2 "* ]] || fail "expected -ENOENT, got '$out'"

# The installed server with the installed configuration (ring-group = uringest, which
# this machine may lack: the command line's --ring-group wins over the file).
conf=$(find_one "$PREFIX" uringestd.conf)
"$PREFIX/bin/uringestd" --config "$conf" --ring-group "$(id -g)" --listen 127.0.0.1:0 \
  --ring "$ring" --shards 2 --ring-size 1MiB --recv-buffers 16 \
  >"$WORK/server.out" 2>"$WORK/server.log" &
server=$!
PIDS+=("$server")
for _ in $(seq 100); do
  grep -qs listening "$WORK/server.out" && break
  kill -0 "$server" 2>/dev/null || { cat "$WORK/server.log"; fail "uringestd exited"; }
  sleep 0.1
done
grep -q "listening on 127.0.0.1:" "$WORK/server.out" || { cat "$WORK/server.log"; fail "uringestd did not start"; }
cat "$WORK/server.out"
out=$("$WORK/ring_consumer" wait "$ring") || fail "ring_consumer wait $ring: $out"
echo "ring_consumer wait $ring: $out"
[ "$out" = "shards 2 streams 0" ] || fail "expected 'shards 2 streams 0', got '$out'"

kill -TERM "$server"
code=0
wait "$server" || code=$?
[ "$code" -eq 0 ] || { cat "$WORK/server.log"; fail "uringestd exited $code after SIGTERM"; }
if compgen -G "/dev/shm/$ring.*" >/dev/null; then fail "/dev/shm/$ring.* left behind"; fi
echo "PASS"
