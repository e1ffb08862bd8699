#!/usr/bin/env bash
# test_cli_hostnames.sh BIN - host names and IPv6 everywhere an address is
# taken, with a private /etc/hosts (bind-mounted inside `unshare -m`, so the
# machine's own stays as it is): ferryrelay.test -> 127.0.0.1 and
# ferry6.test -> ::1.  Through each: ferryd --listen/--metrics/--upstream,
# ferry send/recv --server, ferry-swarm --server; TLS checks the name given
# (a certificate for ferryrelay.test passes by name, fails by IP).  An
# unknown name: a clear error, exit 2.  Also the failures a wrong address
# or directory gives: the metrics port is "not a Ferry relay" (exit 2, at
# once), a read-only --out fails at start (exit 5).
# Needs root (mount namespace); skipped (77) otherwise.
set -euo pipefail
BIN=$1
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root for unshare -m and bind mounts" >&2; exit 77; }
command -v unshare >/dev/null || { echo "SKIP: no unshare (util-linux)" >&2; exit 77; }
if [ -z "${FY_IN_NS:-}" ]; then
    exec unshare -m --propagation private env FY_IN_NS=1 bash "$0" "$@"
fi
. "$(dirname "$0")/cli_lib.sh"

printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.0.1 ferryrelay.test\n::1 ferry6.test\n' >"$T/hosts"
printf 'hosts: files\n' >"$T/nsswitch.conf" # no DNS: an unknown name fails at once
mount --bind "$T/hosts" /etc/hosts
mount --bind "$T/nsswitch.conf" /etc/nsswitch.conf
getent hosts ferry6.test | grep -q '::1' || fail "the private /etc/hosts is not in effect"

head -c 300000 /dev/urandom >"$T/a.bin"

# ---- a name for IPv4: listen, metrics, send, recv
start_relay v4 --listen ferryrelay.test:0 --metrics ferryrelay.test:0
P4=$(port_of "$ADDR")
M4=$METRICS
[ "$ADDR" = "127.0.0.1:$P4" ] || fail "listen on ferryrelay.test gave $ADDR"
expect_exit 0 "$BIN/ferry" send --server "ferryrelay.test:$P4" --channel names "$T/a.bin"
expect_exit 0 "$BIN/ferry" recv --server "ferryrelay.test:$P4" --channel names --out "$T/r4" \
    --from-start --count 1
cmp "$T/a.bin" "$T/r4/a.bin" || fail "received copy differs (v4 name)"

# ---- a name for IPv6, and the [::1] literal
start_relay v6 --listen ferry6.test:0
P6=$(port_of "$ADDR")
[ "$ADDR" = "[::1]:$P6" ] || fail "listen on ferry6.test gave $ADDR"
expect_exit 0 "$BIN/ferry" send --server "ferry6.test:$P6" --channel six "$T/a.bin"
expect_exit 0 "$BIN/ferry" recv --server "[::1]:$P6" --channel six --out "$T/r6" --from-start --count 1
cmp "$T/a.bin" "$T/r6/a.bin" || fail "received copy differs (v6)"

# ---- FERRY_SERVER with a name
FERRY_SERVER="ferry6.test:$P6" expect_exit 0 "$BIN/ferry" recv --channel six --out "$T/r6e" \
    --from-start --count 1
cmp "$T/a.bin" "$T/r6e/a.bin" || fail "received copy differs (FERRY_SERVER)"

# ---- ferry-swarm --server NAME
if [ -x "$BIN/ferry-swarm" ]; then
    expect_exit 0 "$BIN/ferry-swarm" --server "ferry6.test:$P6" --size 64K --timeout 20
    expect_in "$T/last.out" "server=ferry6.test:$P6"
    expect_in "$T/last.out" "target=ferry6.test:$P6"
    expect_in "$T/last.out" "chunk=65536"
fi

# ---- ferryd --upstream NAME: an edge mirrors the origin's channel
start_relay edge --listen 127.0.0.1:0 --upstream "ferryrelay.test:$P4"
expect_exit 0 "$BIN/ferry" recv --server "$ADDR" --channel names --out "$T/re" --from-start --count 1
cmp "$T/a.bin" "$T/re/a.bin" || fail "the edge's copy differs"

# ---- TLS: the certificate must carry the name given
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=ferryrelay.test -addext subjectAltName=DNS:ferryrelay.test \
    -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
start_relay tls --listen ferryrelay.test:0 --tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
PT=$(port_of "$ADDR")
expect_exit 0 "$BIN/ferry" send --ca "$T/cert.pem" --server "ferryrelay.test:$PT" --channel t "$T/a.bin"
expect_exit 6 "$BIN/ferry" send --ca "$T/cert.pem" --no-retry --server "127.0.0.1:$PT" --channel t "$T/a.bin"
expect_in "$T/last.err" "certificate verify failed"

# ---- an unknown name: exit 2, said plainly, everywhere
expect_exit 2 "$BIN/ferry" send --server nosuch.test:7420 --channel x "$T/a.bin"
expect_in "$T/last.err" "cannot resolve the relay's host name"
expect_in "$T/last.err" "exit=2"
expect_exit 2 "$BIN/ferry" recv --server nosuch.test:7420 --channel x --out "$T/rx"
expect_exit 1 "$BIN/ferryd" --data "$T/nd" --listen nosuch.test:0
expect_in "$T/last.err" "cannot resolve"
expect_exit 64 "$BIN/ferry" send --server 'bad host:1' --channel x "$T/a.bin"
expect_in "$T/last.err" "exit=64"

# ---- the metrics port is not a Ferry relay: exit 2 at once, no retries
t0=$(date +%s%N)
expect_exit 2 "$BIN/ferry" send --server "$M4" --channel x "$T/a.bin"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_in "$T/last.err" "not a Ferry relay"
expect_in "$T/last.err" 'answer="HTTP/1.'
grep -q reconnecting "$T/last.err" && fail "retried a peer that is not a relay"
[ "$ms" -lt 5000 ] || fail "not a Ferry relay took $ms ms"
expect_exit 2 "$BIN/ferry" recv --server "$M4" --channel x --out "$T/rm" --json
expect_in "$T/last.out" '{"type":"error","exit":2,'

# ---- a server that accepts and says nothing: named at once, not retried
python3 -c 'import socket,sys,time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
conns = []
end = time.time() + 30
while time.time() < end:
    s.settimeout(end - time.time())
    try: conns.append(s.accept()[0])
    except OSError: break' >"$T/silent.port" &
PIDS+=("$!")
for _ in $(seq 50); do [ -s "$T/silent.port" ] && break; sleep 0.1; done
SP=$(cat "$T/silent.port")
t0=$(date +%s%N)
expect_exit 2 "$BIN/ferry" send --connect-timeout 1 --server "127.0.0.1:$SP" --channel x "$T/a.bin"
expect_in "$T/last.err" "no answer to the hello: is this a Ferry relay?"
grep -q reconnecting "$T/last.err" && fail "retried a silent server"
expect_exit 2 "$BIN/ferry" recv --connect-timeout 1 --server "127.0.0.1:$SP" --channel x --out "$T/rs"
expect_in "$T/last.err" "no answer to the hello"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 6000 ] || fail "two silent hellos took $ms ms"

# ---- a read-only --out: exit 5 at start, before any file
mkdir -p "$T/ro"
mount --bind "$T/ro" "$T/ro"
mount -o remount,bind,ro "$T/ro"
expect_exit 5 "$BIN/ferry" recv --server "127.0.0.1:$P4" --channel names --out "$T/ro"
expect_in "$T/last.err" "the --out directory is not writable"
umount "$T/ro"
echo "ok: host names, IPv6, TLS names, unknown names, not a relay, read-only --out"
