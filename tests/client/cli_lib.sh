# cli_lib.sh - shared by the client's shell tests (test_cli_*.sh,
# test_doc_examples.sh): a temp dir removed at exit, ferryd started on a
# free loopback port and stopped by its PID, bounded waits, and `fail`.
# Source it after setting BIN (the directory holding ferry and ferryd).

BIN=$(cd "$BIN" && pwd) # absolute: tests cd, and an installed ferry must never be the one run
T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-clitest.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    [ -n "${FERRY_TEST_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }

# start_relay TAG ARGS...: ferryd with ARGS (add --listen), data in
# $T/TAG.data, log in $T/TAG.log; sets ADDR (listening=) and METRICS
# (metrics=, if asked for), RELAY_PID.  Waits at most 10 s.
start_relay() {
    local tag=$1; shift
    "$BIN/ferryd" --data "$T/$tag.data" "$@" 2>"$T/$tag.log" &
    RELAY_PID=$!
    PIDS+=("$RELAY_PID")
    ADDR=""
    for _ in $(seq 100); do
        ADDR=$(sed -n 's/^listening=//p' "$T/$tag.log")
        [ -n "$ADDR" ] && break
        kill -0 "$RELAY_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$ADDR" ] || { cat "$T/$tag.log" >&2; fail "ferryd $* did not start"; }
    METRICS=$(sed -n 's/^metrics=//p' "$T/$tag.log")
}

# port_of HOST:PORT or [v6]:PORT -> PORT
port_of() { echo "${1##*:}"; }

# expect_exit CODE CMD...: run CMD (bounded by timeout 30), check its exit.
expect_exit() {
    local want=$1 got=0; shift
    timeout 30 "$@" >"$T/last.out" 2>"$T/last.err" || got=$?
    if [ "$got" != "$want" ]; then
        cat "$T/last.err" >&2
        fail "exit $got (want $want): $*"
    fi
}

# expect_in FILE TEXT: FILE contains TEXT (fixed string)
expect_in() { grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "'$2' not in $1"; }; }
