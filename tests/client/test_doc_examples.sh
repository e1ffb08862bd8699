#!/usr/bin/env bash
# test_doc_examples.sh BIN DOC - docs/client.md's examples, run as written.
#
# An example meant to be run is a fenced block whose info string is exactly
# `sh example`.  This starts ferryd on a free loopback port with a temp data
# directory, exports FERRY_SERVER=127.0.0.1:PORT (examples need no
# --server), makes a temp working directory holding report.pdf (300 KiB of
# random bytes) and photos/ (a.jpg, b/c.jpg: small random files), and runs
# every block in file order in ONE `bash -e` (a cd or a variable carries
# over to later blocks), each block within FERRY_DOC_BLOCK_SECONDS (default
# 60: a receiver in an example must be bounded: --count, --stored,
# `timeout 10`).  A failure names the block and its line in DOC and shows
# the commands run (set -x).  ctest: client_doc_examples.
set -euo pipefail
BIN=$(cd "$1" && pwd)
DOC=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
LIMIT=${FERRY_DOC_BLOCK_SECONDS:-60}
. "$(dirname "$0")/cli_lib.sh"
unset FERRY_TOKEN FERRY_CONFIG XDG_CONFIG_HOME
export HOME="$T/home" PATH="$BIN:$PATH"
mkdir -p "$HOME" "$T/work/photos/b"

start_relay doc --listen 127.0.0.1:0
export FERRY_SERVER=$ADDR
head -c 307200 /dev/urandom >"$T/work/report.pdf"
head -c 20000 /dev/urandom >"$T/work/photos/a.jpg"
head -c 30000 /dev/urandom >"$T/work/photos/b/c.jpg"

# The blocks, each preceded by a marker the watchdog reads.
awk -v status="$T/status" '
    /^```sh example[ \t]*$/ { inb = 1; n++; printf "__blk %d %d\n", n, NR + 1; next }
    inb && /^```/          { inb = 0; next }
    inb                    { print }
' "$DOC" >"$T/blocks.sh"
nblocks=$(grep -c '^__blk ' "$T/blocks.sh" || true)
[ "$nblocks" -gt 0 ] || fail "no \`sh example\` block in $DOC"
{
    echo "__blk() { echo \"\$1 \$2 \$(date +%s)\" >'$T/status'; echo \"--- example \$1 ($DOC:\$2)\" >&2; }"
    echo "set -x"
    cat "$T/blocks.sh"
    echo "set +x"
    echo "echo done >'$T/status'"
} >"$T/run.sh"

cd "$T/work"
setsid bash -e "$T/run.sh" >"$T/examples.out" 2>"$T/examples.err" &
RUN=$!
PIDS+=("$RUN")
rc=""
while :; do
    if ! kill -0 "$RUN" 2>/dev/null; then
        rc=0
        wait "$RUN" || rc=$?
        break
    fi
    read -r n line t0 2>/dev/null <"$T/status" || { sleep 0.2; continue; }
    if [ "$n" != done ] && [ $(( $(date +%s) - t0 )) -gt "$LIMIT" ]; then
        kill -TERM -- "-$RUN" 2>/dev/null || true
        sleep 1
        kill -KILL -- "-$RUN" 2>/dev/null || true
        tail -40 "$T/examples.err" >&2
        fail "example $n ($DOC:$line) ran longer than $LIMIT s (bound its receivers: --count, --stored, timeout)"
    fi
    sleep 0.2
done
kill -TERM -- "-$RUN" 2>/dev/null || true # what an example left running in the background
if [ "$rc" != 0 ] || [ "$(cat "$T/status")" != done ]; then
    read -r n line _ <"$T/status" || true
    tail -40 "$T/examples.err" >&2
    fail "example $n ($DOC:$line) failed (exit $rc)"
fi
echo "ok: $nblocks examples of $DOC ran"
