#!/usr/bin/env bash
# sid_ffmpeg.sh: a current ffmpeg for the Enhanced RTMP tests. Debian 12's ffmpeg (5.1)
# predates Enhanced RTMP; Debian's unstable suite (sid) has one that publishes and reads
# it. This builds a minimal sid chroot with ffmpeg in a cache folder outside the clone,
# once, and checks it every time; a chroot that is missing or broken is built anew. Only
# test tools come from there: the programs never link anything of it.
#
#   tests/sid_ffmpeg.sh            # build or check /var/cache/uringest/ffmpeg-sid
#   URINGEST_FFMPEG9_ROOT=DIR tests/sid_ffmpeg.sh
#
# Prints the chroot's ffmpeg version when it is ready (exit 0); otherwise one line saying
# why not (exit 1), which ./uringest.sh test hands to the tests that need it, so that they
# are skipped with that reason. Needs root (debootstrap, chroot) and the Debian mirror.
set -uo pipefail

ROOT=${URINGEST_FFMPEG9_ROOT:-/var/cache/uringest/ffmpeg-sid}
MIRROR=${URINGEST_SID_MIRROR:-http://deb.debian.org/debian}
READY=.uringest-ready  # in the chroot: the ffmpeg version line, written last
# What the tests encode with and read back; each must be in the chroot's ffmpeg.
ENCODERS=(libx265 libsvtav1 libvpx-vp9 libopus flac aac)

fail() {
  echo "sid ffmpeg unavailable: $*"
  exit 1
}

# True if DIR holds a working chroot: the stamp, an ffmpeg of 7 or later (the first
# with Enhanced RTMP), and every encoder the tests use.
check() {
  local dir=$1 version encoders
  [ -f "$dir/$READY" ] || return 1
  version=$(chroot "$dir" /usr/bin/ffmpeg -hide_banner -version 2>/dev/null | head -1) || return 1
  [[ $version =~ ^ffmpeg\ version\ ([0-9]+)\. ]] && [ "${BASH_REMATCH[1]}" -ge 7 ] || return 1
  encoders=$(chroot "$dir" /usr/bin/ffmpeg -hide_banner -encoders 2>/dev/null) || return 1
  for e in "${ENCODERS[@]}"; do
    grep -qE "^ [A-Z.]{6} $e " <<<"$encoders" || return 1
  done
  [ -x "$dir/usr/bin/ffprobe" ] || return 1
  echo "${version%% Copyright*}"
}

build() {
  local new=$1
  rm -rf "$new"
  command -v debootstrap >/dev/null || fail "debootstrap is not installed"
  timeout 900 debootstrap --variant=minbase sid "$new" "$MIRROR" >"$new.log" 2>&1 ||
    fail "debootstrap sid from $MIRROR failed (see $new.log)"
  # The suite's Release file may be stale on a mirror snapshot: don't let that stop it.
  timeout 300 chroot "$new" apt-get -o Acquire::Check-Valid-Until=false update >>"$new.log" 2>&1 ||
    fail "apt-get update in the sid chroot failed (see $new.log)"
  DEBIAN_FRONTEND=noninteractive timeout 900 chroot "$new" \
    apt-get -o Acquire::Check-Valid-Until=false install -y --no-install-recommends ffmpeg \
    >>"$new.log" 2>&1 || fail "installing ffmpeg in the sid chroot failed (see $new.log)"
  chroot "$new" apt-get clean >/dev/null 2>&1
  chroot "$new" /usr/bin/ffmpeg -hide_banner -version | head -1 >"$new/$READY"
}

[ "$(id -u)" -eq 0 ] || fail "building and entering the chroot needs root"
mkdir -p "$(dirname "$ROOT")" || fail "can't create $(dirname "$ROOT")"
exec 9>"$ROOT.lock" || fail "can't lock $ROOT.lock"
flock 9  # one build at a time; a second caller waits, then finds it ready
if version=$(check "$ROOT"); then
  echo "$version"
  exit 0
fi
[ -e "$ROOT" ] && echo "uringest: the sid chroot at $ROOT is incomplete or broken: building it anew" >&2
echo "uringest: building a Debian sid chroot with a current ffmpeg in $ROOT (a few minutes, once)" >&2
build "$ROOT.new"
version=$(check "$ROOT.new") || fail "the new sid chroot's ffmpeg lacks Enhanced RTMP or an encoder the tests use (${ENCODERS[*]})"
rm -rf "$ROOT"
mv "$ROOT.new" "$ROOT"
rm -f "$ROOT.new.log"
echo "$version"
