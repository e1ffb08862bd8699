#!/usr/bin/env bash
# test_deb.sh BUILD_DIR [CPACK [FERRY_MAN]] - the Debian package end to end.
#
# Builds the .deb from BUILD_DIR (cpack -G DEB, output in a temp directory),
# installs it with dpkg -i, checks the installed config names data =
# /var/lib/ferry and the copyright file and changelogs are there, runs the
# INSTALLED programs: --version, ferryd on
# 127.0.0.1:0 with a temp --data, the installed /etc/ferry/ferryd.conf, TLS
# (a self-signed certificate), a token file and /metrics; GET /readyz; a
# file sent with `ferry send` and received with `ferry recv` over TLS
# (byte-identical); SIGHUP with a changed token file (the new token gets in,
# the old is refused, ferryd keeps running);
# `ferry check` on the data, `ferry demo` (finds ../sbin/ferryd), then
# `systemd-analyze verify` on the installed unit (and its WatchdogSec=), stops ferryd by its PID and
# purges the package, checking every file is gone.  ferryd runs as a plain
# process: no systemd is running here.
#
# Needs root for dpkg; exits 77 (ctest: skipped) when not root, or when a
# ferry package or files at its paths are already on the machine (the test
# would replace and then purge them).  A lock serialises concurrent runs
# (two build directories' ctest); the trap purges and cleans up on failure.
set -euo pipefail

build=${1:?usage: test_deb.sh BUILD_DIR [CPACK [FERRY_MAN]]}
cpack=${2:-cpack}
man=${3:-ON}
start=$(date +%s.%N)

say()  { echo "test_deb: $*"; }
skip() { say "SKIP: $*"; exit 77; }
fail() { say "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root to dpkg -i / dpkg --purge (CI runs as root)"
for tool in dpkg dpkg-deb systemd-analyze flock cmp; do
  command -v "$tool" >/dev/null || fail "'$tool' not found: run .ci/deps (systemd, dpkg-dev)"
done
[ -f "$build/CPackConfig.cmake" ] || fail "$build/CPackConfig.cmake missing: configure first"

exec 9>/run/lock/ferry-test-deb.lock
flock -w 240 9 || fail "another test_deb run holds /run/lock/ferry-test-deb.lock"

# Never touch an operator's ferry: a package of that name (installed, or
# removed with its conffile kept) or files at the package's paths.
if dpkg-query -W -f='${Status}' ferry 2>/dev/null | grep -Eq 'installed|config-files|unpacked'; then
  skip "a 'ferry' package is on this machine already; this test would replace and purge it" \
       "(dpkg --purge ferry, then run again)"
fi
files=(/usr/sbin/ferryd /usr/bin/ferry /usr/bin/ferry-trace /usr/bin/ferry-swarm
       /etc/ferry/ferryd.conf /lib/systemd/system/ferryd.service
       /usr/share/doc/ferry/copyright /usr/share/doc/ferry/changelog.gz
       /usr/share/doc/ferry/changelog.Debian.gz
       /usr/share/bash-completion/completions/ferry /usr/share/zsh/vendor-completions/_ferry)
pages=(/usr/share/man/man8/ferryd.8.gz /usr/share/man/man1/ferry.1.gz
       /usr/share/man/man1/ferry-trace.1.gz /usr/share/man/man1/ferry-swarm.1.gz)
[ "$man" = OFF ] || files+=("${pages[@]}")
files+=(/usr/share/ferry/ferry-dashboard.json /usr/share/ferry/ferry-alerts.yml) # monitoring kit
for f in "${files[@]}"; do
  [ ! -e "$f" ] || skip "$f exists (not from a ferry package); this test would overwrite and remove it"
done

tmp=$(mktemp -d /tmp/ferry-test-deb-XXXXXX)
pid=""
installed=0
cleanup() {
  local rc=$?
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [ "$installed" = 1 ]; then
    say "cleanup: dpkg --purge ferry"
    dpkg --purge ferry >/dev/null 2>&1 || true
  fi
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    for log in "$tmp"/*.log; do
      [ -f "$log" ] && { echo "--- $log"; tail -n 30 "$log"; }
    done
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build and inspect the package ------------------------------------------------
say "cpack -G DEB"
timeout 120 "$cpack" --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/deb" >"$tmp/cpack.log" 2>&1 ||
  fail "cpack failed"
debs=("$tmp"/deb/ferry_*.deb)
[ "${#debs[@]}" -eq 1 ] && [ -f "${debs[0]}" ] || fail "expected one ferry_*.deb in $tmp/deb"
deb=${debs[0]}
version=$(dpkg-deb -f "$deb" Version)
depends=$(dpkg-deb -f "$deb" Depends)
say "package $(basename "$deb") version=$version depends=\"$depends\""
for dep in libc6 libssl3 libisal2; do
  grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep: $depends"
done
[ -n "$(dpkg-deb -f "$deb" Maintainer)" ] || fail "no Maintainer"
dpkg-deb -I "$deb" conffiles | grep -qx /etc/ferry/ferryd.conf || fail "/etc/ferry/ferryd.conf is not a conffile"

# ---- install ----------------------------------------------------------------------
say "dpkg -i"
installed=1
dpkg -i --force-confdef --force-confold "$deb" </dev/null >"$tmp/dpkg.log" 2>&1 || fail "dpkg -i failed"
for f in "${files[@]}"; do
  [ -e "$f" ] || fail "$f not installed"
done
for prog in /usr/sbin/ferryd /usr/bin/ferry /usr/bin/ferry-trace /usr/bin/ferry-swarm; do
  v=$("$prog" --version)
  [[ "$v" == "$(basename "$prog") $version"* ]] || fail "$prog --version said '$v', want '$(basename "$prog") $version'"
done
say "installed; ferryd --version: $(/usr/sbin/ferryd --version)"

# The installed config names the unit's data directory, so ferryd run by hand
# with it uses /var/lib/ferry; the other lines stay commented (defaults).
grep -qx 'data = /var/lib/ferry' /etc/ferry/ferryd.conf ||
  fail "/etc/ferry/ferryd.conf has no 'data = /var/lib/ferry' line"
set_lines=$(grep -Ev '^[[:space:]]*(#|$)' /etc/ferry/ferryd.conf)
[ "$set_lines" = "data = /var/lib/ferry" ] || fail "/etc/ferry/ferryd.conf sets more than data: $set_lines"
# The copyright file (machine-readable format) and both changelogs.
head -n1 /usr/share/doc/ferry/copyright |
  grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' ||
  fail "/usr/share/doc/ferry/copyright is not in the machine-readable format"
grep -q '^License: Expat$' /usr/share/doc/ferry/copyright || fail "copyright names no Expat (MIT) license"
zcat /usr/share/doc/ferry/changelog.Debian.gz | head -n1 | grep -q "^ferry ($version) " ||
  fail "changelog.Debian.gz does not start with version $version"
zcat /usr/share/doc/ferry/changelog.gz | head -n1 | grep -qx '# Changelog' ||
  fail "changelog.gz is not CHANGELOG.md"
say "config data = /var/lib/ferry; copyright and changelogs installed"

# ---- the installed ferryd over TLS, with tokens and /readyz --------------------------
# A self-signed certificate for 127.0.0.1, a token file, and the metrics address.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 \
  -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$tmp/openssl.log" 2>&1 ||
  fail "openssl could not make a test certificate"
echo "alice both *" >"$tmp/tokens"
: >"$tmp/ferryd.log" # exists before the background shell opens it: the loop below reads it
env -u NOTIFY_SOCKET /usr/sbin/ferryd --config /etc/ferry/ferryd.conf --listen 127.0.0.1:0 \
  --data "$tmp/data" --threads 2 --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" \
  --auth "$tmp/tokens" --metrics 127.0.0.1:0 2>"$tmp/ferryd.log" &
pid=$!
addr="" maddr=""
for _ in $(seq 200); do
  addr=$(sed -n 's/^listening=//p' "$tmp/ferryd.log" || true)
  maddr=$(sed -n 's/^metrics=//p' "$tmp/ferryd.log" || true)
  [ -n "$addr" ] && [ -n "$maddr" ] && break
  kill -0 "$pid" 2>/dev/null || fail "ferryd exited before listening"
  sleep 0.05
done
[ -n "$addr" ] && [ -n "$maddr" ] || fail "ferryd did not print listening= and metrics= within 10 s"
say "ferryd pid=$pid listening=$addr metrics=$maddr (TLS, tokens)"
status=$(python3 -c 'import sys, urllib.request
print(urllib.request.urlopen("http://%s/readyz" % sys.argv[1], timeout=10).status)' "$maddr") ||
  fail "GET /readyz failed"
[ "$status" = 200 ] || fail "GET /readyz answered $status, want 200"
say "GET /readyz: 200"

mkdir -p "$tmp/in"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$tmp/in/payload.bin"
tls=(--ca "$tmp/cert.pem")
timeout 60 /usr/bin/ferry send --server "$addr" "${tls[@]}" --token alice --channel pkgtest \
  "$tmp/in/payload.bin" >"$tmp/send.log" 2>&1 || fail "ferry send over TLS failed"
timeout 60 /usr/bin/ferry recv --server "$addr" "${tls[@]}" --token alice --channel pkgtest \
  --out "$tmp/out" --from-start --count 1 >"$tmp/recv.log" 2>&1 || fail "ferry recv over TLS failed"
cmp "$tmp/in/payload.bin" "$tmp/out/payload.bin" || fail "received copy differs from the sent file"
say "transfer over TLS ok: $(stat -c %s "$tmp/out/payload.bin") bytes identical"

# SIGHUP with a changed token file: the new token gets in, the old one does
# not, and the daemon keeps running.
echo "bob both *" >"$tmp/tokens"
kill -HUP "$pid"
for _ in $(seq 200); do
  grep -q 'msg="reload done"' "$tmp/ferryd.log" && break
  sleep 0.05
done
grep -q 'msg="reload done"' "$tmp/ferryd.log" || fail "no 'reload done' within 10 s of SIGHUP"
kill -0 "$pid" 2>/dev/null || fail "ferryd exited on SIGHUP"
timeout 60 /usr/bin/ferry send --server "$addr" "${tls[@]}" --token bob --no-retry \
  --channel pkgtest2 "$tmp/in/payload.bin" >"$tmp/send-bob.log" 2>&1 ||
  fail "the token added by SIGHUP was refused"
rc=0
timeout 60 /usr/bin/ferry send --server "$addr" "${tls[@]}" --token alice --no-retry \
  --channel pkgtest3 "$tmp/in/payload.bin" >"$tmp/send-alice.log" 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "the token removed by SIGHUP: exit $rc, want 3 (refused)"
say "SIGHUP reload: new token in, old token refused (exit 3), ferryd still running"

# ---- the installed unit -----------------------------------------------------------
mandoc=--man=no
command -v man >/dev/null && mandoc=--man=yes
(cd / && systemd-analyze verify "$mandoc" /lib/systemd/system/ferryd.service) >"$tmp/verify.log" 2>&1 ||
  fail "systemd-analyze verify /lib/systemd/system/ferryd.service failed"
grep -qx 'WatchdogSec=30' /lib/systemd/system/ferryd.service || fail "the unit sets no WatchdogSec=30"
say "systemd-analyze verify ($mandoc): ok"

# ---- stop by PID, then the offline tools ------------------------------------------
kill -TERM "$pid"
for _ in $(seq 200); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -0 "$pid" 2>/dev/null && fail "ferryd still running 10 s after SIGTERM"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || fail "ferryd exited $rc after SIGTERM"
timeout 60 /usr/bin/ferry check --data "$tmp/data" >"$tmp/check.log" 2>&1 || fail "ferry check failed"
(cd "$tmp" && TMPDIR="$tmp" timeout 60 /usr/bin/ferry demo --size 1M --receivers 1) >"$tmp/demo.log" 2>&1 ||
  fail "ferry demo (installed, ferryd from ../sbin) failed"
say "ferryd stopped (exit 0); ferry check and ferry demo ok"

# ---- purge ------------------------------------------------------------------------
dpkg --purge ferry >"$tmp/purge.log" 2>&1 || fail "dpkg --purge failed"
installed=0
for f in "${files[@]}" /etc/ferry /usr/share/doc/ferry; do
  [ ! -e "$f" ] || fail "$f still there after dpkg --purge"
done
! dpkg-query -W -f='${Status}' ferry 2>/dev/null | grep -q installed || fail "dpkg still lists ferry"
say "purged: every file gone; $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}') s"
