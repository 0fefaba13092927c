#!/usr/bin/env bash
# deb_test.sh BUILD_DIR: cpack makes the .deb, which holds the programs, the library, the
# header, the .pc, the unit, the configuration file (as a conffile) and the README, and
# nothing of the tests, benchmarks or fuzzers; Depends is filled in (dpkg-shlibdeps);
# the extracted tree names /usr and /etc; the maintainer scripts create the user
# 'uringest' and start and enable nothing (run with stand-ins for adduser, getent and
# systemctl that log their arguments).
source "$(dirname "$0")/common.sh"
cpack --config "$BUILD_DIR/CPackConfig.cmake" -B "$WORK/pkg" >"$WORK/cpack.log" 2>&1 ||
  { cat "$WORK/cpack.log"; fail "cpack"; }
debs=("$WORK"/pkg/*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "not one .deb: ${debs[*]}"
deb=${debs[0]}
echo "$(basename "$deb"): $(du -k "$deb" | cut -f1) KiB"

contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
for path in ./usr/bin/uringestd ./usr/bin/uringest-cat ./usr/bin/uringest-stat \
  ./usr/bin/uringest-load ./usr/bin/uringest-record ./usr/bin/uringest-push \
  './usr/lib/(.*/)?liburingest-ring\.so\.0(\.1\.0)?' './usr/lib/(.*/)?liburingest-ring\.so' \
  ./usr/include/uringest_ring.h './usr/lib/(.*/)?pkgconfig/uringest-ring\.pc' \
  ./lib/systemd/system/uringestd.service ./etc/uringest/uringestd.conf \
  ./usr/share/doc/uringest/README.md; do
  grep -Eq "^$path\$" <<<"$contents" || fail "the .deb lacks $path"
done
if grep -E '_test|test_|bench|fuzz|/perf/' <<<"$contents"; then
  fail "the .deb holds tests, benchmarks or fuzzers (above)"
fi
echo "dpkg-deb -c: $(grep -vc '/$' <<<"$contents") files, the expected ones among them"

depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for package in libc6 'libstdc\+\+6' liburing2 'libabsl[0-9]+' adduser procps; do
  grep -Eq "(^|, )$package( |,|$)" <<<"$depends" || fail "Depends lacks $package"
done

dpkg-deb -e "$deb" "$WORK/control"
grep -qx /etc/uringest/uringestd.conf "$WORK/control/conffiles" || fail "no conffile"
grep -qx "activate-noawait ldconfig" "$WORK/control/triggers" || fail "no ldconfig trigger"
dpkg-deb -x "$deb" "$WORK/root"
grep -qx "ExecStart=/usr/bin/uringestd --config /etc/uringest/uringestd.conf" \
  "$WORK/root/lib/systemd/system/uringestd.service" || fail "the unit's ExecStart"
grep -qx "prefix=/usr" "$(find_one "$WORK/root" uringest-ring.pc)" || fail "the .pc's prefix"
"$WORK/root/usr/bin/uringestd" --help >/dev/null || fail "the packaged uringestd does not run"

# The maintainer scripts, with stand-ins that log how they are called.
mkdir "$WORK/stubs"
# A fresh machine: getent finds no user or group, dpkg-statoverride no override.
for cmd in adduser addgroup getent systemctl deb-systemd-invoke deb-systemd-helper \
  dpkg-statoverride; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\ncase "%s $1" in getent*|*--list) exit 2 ;; esac\n' \
    "$cmd" "$WORK/calls" "$cmd" >"$WORK/stubs/$cmd"
  chmod +x "$WORK/stubs/$cmd"
done
for script in postinst prerm postrm; do
  [ -x "$WORK/control/$script" ] || fail "no executable $script"
  sh -n "$WORK/control/$script" || fail "$script: syntax"
done
PATH=$WORK/stubs:$PATH sh -e "$WORK/control/postinst" configure || fail "postinst configure"
grep -q "^adduser --system .*--group .* uringest$" "$WORK/calls" ||
  fail "postinst did not create the user: $(cat "$WORK/calls")"
grep -qx "dpkg-statoverride --update --add root uringest 0640 /etc/uringest/uringestd.conf" \
  "$WORK/calls" || fail "postinst did not make the configuration 0640 root:uringest"
# What ran, and (for a machine that runs systemd, where it would call systemctl) what
# the script says outside its comments.
starts='(^| )(start|restart|try-restart|reload-or-restart|enable|--now)( |$)|deb-systemd-invoke'
if grep -Eq "$starts" "$WORK/calls" ||
  grep -v '^ *#' "$WORK/control/postinst" | grep -Eq "$starts"; then
  fail "postinst starts or enables something"
fi
echo "postinst configure ran: $(tr '\n' ';' <"$WORK/calls")"
echo "PASS"
