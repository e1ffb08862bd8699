#!/usr/bin/env bash
# test_cli_bar.sh BIN - the progress bar as a person sees it: `ferry recv`
# drawn in a real terminal (tmux, captured with capture-pane) at 40, 80 and
# 160 columns.  Checks: no line wider than the terminal; a name longer than
# its column is cut with an ellipsis; the percentage (and the bar, when
# there is room) starts at the same column for every file and the total
# line; a finished file shows the time it took, never "ETA"; a total line
# ends the run; a receiver waiting on a quiet channel says so.
# Needs tmux (Debian package tmux); skipped (77) without it.
set -euo pipefail
BIN=$1
command -v tmux >/dev/null || { echo "SKIP: tmux not installed (apt-get install tmux)" >&2; exit 77; }
. "$(dirname "$0")/cli_lib.sh"
export LANG=C.UTF-8 LC_ALL=C.UTF-8
SOCK="$T/tmux.sock"
tmx() { tmux -u -S "$SOCK" -f /dev/null "$@"; }
stop_tmux() { tmx kill-server 2>/dev/null || true; }
trap 'stop_tmux; cleanup' EXIT

start_relay r --listen 127.0.0.1:0
LONG=a-file-name-much-longer-than-any-name-column-allows-even-at-160-columns-wide.bin
mkdir -p "$T/src"
for f in a.bin "$LONG" mid_name.dat; do head -c 1500000 /dev/urandom >"$T/src/$f"; done
expect_exit 0 "$BIN/ferry" send --server "$ADDR" --channel bar "$T/src/a.bin" "$T/src/$LONG" \
    "$T/src/mid_name.dat"

# run_in_tmux W NAME CMD: run CMD in a detached W x 20 terminal; wait (at
# most 30 s) for its "EXIT=" line; the screen into $T/NAME.screen.
run_in_tmux() {
    local w=$1 name=$2; shift 2
    tmx new-session -d -s "$name" -x "$w" -y 20 "$*; echo EXIT=\$?; sleep 60"
    for _ in $(seq 300); do
        tmx capture-pane -p -t "$name" >"$T/$name.screen" 2>/dev/null || true
        grep -q '^EXIT=' "$T/$name.screen" && break
        sleep 0.1
    done
    tmx kill-session -t "$name" 2>/dev/null || true
    grep -q '^EXIT=0' "$T/$name.screen" || { cat "$T/$name.screen"; fail "$name: no EXIT=0"; }
}

for w in 40 80 160; do
    run_in_tmux "$w" "w$w" "'$BIN/ferry' recv --server $ADDR --channel bar --out '$T/o$w' --from-start --count 3 --rate 3M"
    python3 - "$T/w$w.screen" "$w" <<'PY' || { cat "$T/w$w.screen"; fail "bar at $w columns"; }
import sys
path, w = sys.argv[1], int(sys.argv[2])
lines = [l.rstrip() for l in open(path, encoding="utf-8").read().split("\n")]
bars = [l for l in lines if "%" in l]
files = [l for l in bars if not l.startswith("total")]
total = [l for l in bars if l.startswith("total")]
def check(ok, what):
    if not ok:
        print(f"{w} columns: {what}", file=sys.stderr)
        sys.exit(1)
check(len(files) == 3, f"want 3 file lines, got {files}")
check(len(total) == 1, "want one total line")
check(all(len(l) < w for l in lines), "a line is as wide as the terminal")
check(any("\u2026" in l for l in files), "the long name is not cut with an ellipsis")
check(all("ETA" not in l for l in bars), "a finished file still shows an ETA")
check(all(" in " in l for l in bars) or w < 60, "no time taken on a finished line")
check(len({l.index("%") for l in bars}) == 1, "the percentages are not aligned")
if w >= 80:
    check(len({l.index("[") for l in bars}) == 1, "the bars are not aligned")
    check(all("MiB/s" in l for l in files), "the rate's unit is not shown")
PY
    for f in a.bin "$LONG" mid_name.dat; do cmp "$T/src/$f" "$T/o$w/$f" || fail "$f differs"; done
done

# a receiver on a quiet channel: "waiting for the next file" (or, the channel not
# there yet, "no channel ... waiting for it")
tmx new-session -d -s wait -x 80 -y 10 "'$BIN/ferry' recv --server $ADDR --channel quiet --out '$T/ow'; sleep 60"
ok=""
for _ in $(seq 100); do
    tmx capture-pane -p -J -t wait >"$T/wait.screen" 2>/dev/null || true
    if grep -qE "waiting for the next file|on the relay; waiting for it" "$T/wait.screen"; then ok=1; break; fi
    sleep 0.1
done
[ -n "$ok" ] || { cat "$T/wait.screen"; fail "no 'waiting for the next file'"; }
echo "ok: the bar at 40, 80 and 160 columns; the waiting line"
