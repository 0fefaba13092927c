#!/usr/bin/env bash
# unit_test.sh BUILD_DIR: `systemd-analyze verify` accepts uringestd.service as installed
# into a temporary prefix (its ExecStart is that prefix's uringestd, which verify wants to
# exist), and rejects copies with a misspelt directive and a misspelt section, so that
# the check has teeth. verify exits 0 after a warning such as "Unknown key 'X' in section
# [Service], ignoring", so any line it prints about our unit fails; a line about another
# unit (a container's own) is shown and ignored. Also: every name in the installed
# configuration file, commented or not, is a flag of uringestd.
source "$(dirname "$0")/common.sh"
PREFIX=$WORK/prefix
install_tree "$PREFIX"
unit=$(find_one "$PREFIX" uringestd.service)
conf=$(find_one "$PREFIX" uringestd.conf)

# verify_unit UNIT: true if systemd-analyze verify exits 0 and says nothing of UNIT.
verify_unit() {
  local out code=0
  out=$(systemd-analyze verify "$1" 2>&1) || code=$?
  echo "systemd-analyze verify $1: exit $code${out:+, printed:}"
  [ -z "$out" ] || sed 's/^/  /' <<<"$out"
  [ "$code" -eq 0 ] && ! grep -q "uringestd" <<<"$out"
}

verify_unit "$unit" || fail "systemd-analyze verify rejects $unit"
grep -qx "ExecStart=$PREFIX/bin/uringestd --config $conf" "$unit" ||
  fail "ExecStart is not the installed uringestd with the installed configuration"

mkdir "$WORK/bad"
sed 's/^ProtectSystem=/ProtectSytem=/' "$unit" >"$WORK/bad/uringestd.service"
! verify_unit "$WORK/bad/uringestd.service" || fail "a misspelt directive passes the check"
sed 's/^\[Service\]/[Servce]/' "$unit" >"$WORK/bad/uringestd.service"
! verify_unit "$WORK/bad/uringestd.service" || fail "a misspelt section passes the check"

help=$("$PREFIX/bin/uringestd" --help)
names=$(sed -n 's/^#\{0,1\} *\([a-z][a-z0-9-]*\) = .*/\1/p' "$conf")
[ -n "$names" ] || fail "no 'name = value' line in $conf"
for name in $names; do
  grep -Eq -- "--$name([ =,]|$)" <<<"$help" || fail "$conf names '$name', which is no flag of uringestd"
done
echo "$conf: $(wc -w <<<"$names") names, each a flag of uringestd"
echo "PASS"
