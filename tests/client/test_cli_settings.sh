#!/usr/bin/env bash
# test_cli_settings.sh BIN - where ferry finds its relay and how every Ferry
# program speaks:
#  - precedence: --server over $FERRY_SERVER over the settings file
#    ($XDG_CONFIG_HOME/ferry/config, else ~/.config/ferry/config,
#    $FERRY_CONFIG) over the default; token-file and TLS keys in the file;
#    a bad key is a usage error (64);
#  - the dialect: -h/--help exit 0 on stdout, -V/--version, -v, -q,
#    --log-level, in ferry (and its commands), ferryd, ferry-trace, ferry-swarm;
#    the query commands (ls, info, get, rm, retain) the same as send/recv:
#    the settings file's server and token, -q, --json error records;
#  - --json: JSON Lines with "type" file/total, and an "error" record when
#    the run fails or is interrupted;
#  - bash and zsh completion of every command and every flag --help names.
set -euo pipefail
BIN=$1
. "$(dirname "$0")/cli_lib.sh"
unset FERRY_SERVER FERRY_TOKEN FERRY_CONFIG XDG_CONFIG_HOME
export HOME="$T/home"
mkdir -p "$HOME"
head -c 100000 /dev/urandom >"$T/a.bin"

printf 'sekrit publish *\nsekrit subscribe *\n' >"$T/auth"
start_relay r --listen 127.0.0.1:0 --auth "$T/auth"
GOOD=$ADDR
BAD=127.0.0.1:1 # nothing listens on port 1: "cannot connect", exit 2
printf 'sekrit\n' >"$T/token"

# ---- the settings file alone (HOME's), with its token-file
mkdir -p "$HOME/.config/ferry"
printf '# ferry client settings\nserver = %s\ntoken-file = %s\n' "$GOOD" "$T/token" \
    >"$HOME/.config/ferry/config"
expect_exit 0 "$BIN/ferry" send --channel p "$T/a.bin"
# ---- $XDG_CONFIG_HOME's file instead of HOME's
mkdir -p "$T/xdg/ferry"
printf 'server = %s\ntoken-file = %s\n' "$BAD" "$T/token" >"$T/xdg/ferry/config"
XDG_CONFIG_HOME="$T/xdg" expect_exit 2 "$BIN/ferry" send --channel p "$T/a.bin"
expect_in "$T/last.err" "server=$BAD"
# ---- the environment over the file, the flag over the environment
XDG_CONFIG_HOME="$T/xdg" FERRY_SERVER=$GOOD expect_exit 0 "$BIN/ferry" send --channel p "$T/a.bin"
FERRY_SERVER=$BAD expect_exit 0 "$BIN/ferry" send --server "$GOOD" --channel p "$T/a.bin"
FERRY_SERVER=$BAD expect_exit 2 "$BIN/ferry" send --channel p "$T/a.bin"
# ---- FERRY_TOKEN over the file's token-file; --token over FERRY_TOKEN
FERRY_TOKEN=wrong expect_exit 3 "$BIN/ferry" send --no-retry --channel p "$T/a.bin"
FERRY_TOKEN=wrong expect_exit 0 "$BIN/ferry" send --token sekrit --channel p "$T/a.bin"
# ---- $FERRY_CONFIG names the file; TLS keys in it
printf 'server = %s\ntls = yes\nca = %s\n' "$GOOD" "$T/no-such-ca.pem" >"$T/tls.conf"
FERRY_CONFIG="$T/tls.conf" expect_exit 64 "$BIN/ferry" send --channel p "$T/a.bin"
expect_in "$T/last.err" "cannot set up TLS"
# ---- a file that does not parse: exit 64, the line named
printf 'server = %s\nsrever = x\n' "$GOOD" >"$T/bad.conf"
FERRY_CONFIG="$T/bad.conf" expect_exit 64 "$BIN/ferry" send --channel p "$T/a.bin"
expect_in "$T/last.err" "bad.conf:2: unknown key 'srever'"
# ---- the query commands read the same settings: server and token-file
printf 'server = %s\ntoken-file = %s\n' "$GOOD" "$T/token" >"$HOME/.config/ferry/config"
expect_exit 0 "$BIN/ferry" ls
expect_in "$T/last.out" "type=channel channel=p "
expect_exit 0 "$BIN/ferry" ls p -q
expect_in "$T/last.out" "type=file channel=p name=a.bin "
expect_exit 0 "$BIN/ferry" get p a.bin --out "$T/got" -q
cmp "$T/a.bin" "$T/got/a.bin" || fail "ferry get with the settings file: wrong copy"
expect_exit 0 "$BIN/ferry" info p --log-level error
XDG_CONFIG_HOME="$T/xdg" expect_exit 2 "$BIN/ferry" ls
expect_in "$T/last.err" "server=$BAD"
FERRY_TOKEN=wrong expect_exit 3 "$BIN/ferry" ls p
FERRY_CONFIG="$T/bad.conf" expect_exit 64 "$BIN/ferry" ls
expect_in "$T/last.err" "bad.conf:2: unknown key 'srever'"
# --help and --version whatever the settings file holds
FERRY_CONFIG="$T/bad.conf" expect_exit 0 "$BIN/ferry" ls --help
FERRY_CONFIG="$T/bad.conf" expect_exit 0 "$BIN/ferry" send -V
# --json: an error record on failure, for the query commands too
expect_exit 3 "$BIN/ferry" ls dcos --json
expect_in "$T/last.out" '{"type":"error","exit":3,"error":"refused by the relay",'
expect_exit 3 "$BIN/ferry" get p nope.bin --json --out "$T/got"
expect_in "$T/last.out" '{"type":"error","exit":3,'
expect_exit 64 "$BIN/ferry" retain p --json
expect_in "$T/last.out" '{"type":"error","exit":64,"error":"usage error",'
expect_exit 64 "$BIN/ferry" rm --quiet --progress p
expect_exit 64 "$BIN/ferry" ls --log-level loud
expect_exit 64 "$BIN/ferry" info -r p
expect_in "$T/last.err" "option not valid for this command"

# ---- the default when nothing says otherwise
rm -f "$HOME/.config/ferry/config"
expect_exit 0 "$BIN/ferry" send --help
expect_in "$T/last.out" "FERRY_SERVER"

# ---- one dialect
for prog in ferry ferryd ferry-trace ferry-swarm; do
    [ -x "$BIN/$prog" ] || continue
    for h in -h --help; do
        expect_exit 0 "$BIN/$prog" $h
        [ -s "$T/last.out" ] || fail "$prog $h printed nothing on stdout"
    done
    for v in -V --version; do
        expect_exit 0 "$BIN/$prog" $v
        expect_in "$T/last.out" "$prog "
    done
done
CMDS="send recv ls info get rm retain check demo"
for cmd in $CMDS; do
    for h in -h --help; do
        expect_exit 0 "$BIN/ferry" $cmd $h
        expect_in "$T/last.out" "Usage: ferry $cmd"
    done
    for v in -V --version; do
        expect_exit 0 "$BIN/ferry" $cmd $v
        expect_in "$T/last.out" "ferry "
    done
    expect_exit 64 "$BIN/ferry" $cmd --bogus
    expect_in "$T/last.err" "hint=\"ferry $cmd --help\""
done
expect_exit 64 "$BIN/ferry" recv --log-level loud --channel p --out "$T/o"
expect_in "$T/last.err" "exit=64"
# -v: debug lines; -q: no info lines
expect_exit 0 "$BIN/ferry" send -q --server "$GOOD" --token sekrit --channel p "$T/a.bin"
grep -q "level=info" "$T/last.err" && fail "-q still logs info lines"
expect_exit 0 "$BIN/ferryd" -q -v --help

# ---- --json: typed records, and an error record on failure and on interrupt
expect_exit 0 "$BIN/ferry" send --json --server "$GOOD" --token sekrit --channel j "$T/a.bin" "$T/a.bin"
[ "$(grep -c '^{"type":"file",' "$T/last.out")" = 2 ] || { cat "$T/last.out"; fail "want 2 file records"; }
[ "$(grep -c '^{"type":"total",' "$T/last.out")" = 1 ] || fail "want 1 total record"
expect_exit 3 "$BIN/ferry" send --json --no-retry --server "$GOOD" --token nope --channel j "$T/a.bin"
expect_in "$T/last.out" '{"type":"error","exit":3,"error":"refused by the relay","message":"refused by relay"}'
"$BIN/ferry" recv --json --server "$GOOD" --token sekrit --channel quiet --out "$T/q" \
    >"$T/int.out" 2>"$T/int.err" &
rp=$!
PIDS+=("$rp")
sleep 1 # connected and waiting (nothing is sent on this channel)
kill -INT "$rp"
rc=0
for _ in $(seq 100); do kill -0 "$rp" 2>/dev/null || break; sleep 0.1; done
wait "$rp" || rc=$?
[ "$rc" = 130 ] || { cat "$T/int.err"; fail "interrupted recv exit $rc"; }
expect_in "$T/int.out" '{"type":"error","exit":130,"error":"interrupted"'
# ---- bash completion (packaging/completion): commands, and every flag --help names
COMP=$(dirname "$0")/../../packaging/completion
. "$COMP/ferry.bash"
COMP_WORDS=(ferry rec); COMP_CWORD=1; _ferry
[ "${COMPREPLY[*]}" = recv ] || fail "completion of 'rec': ${COMPREPLY[*]}"
for cmd in $CMDS; do
    COMP_WORDS=(ferry "$cmd" --); COMP_CWORD=2; _ferry
    flags=$("$BIN/ferry" "$cmd" --help | grep -oE '^ {1,4}(-[a-zA-Z], )?--[a-z-]+( |$)' |
            grep -oE -- '--[a-z-]+')
    [ -n "$flags" ] || fail "no flags found in 'ferry $cmd --help'"
    for f in $flags --log-level; do
        [[ " ${COMPREPLY[*]} " == *" $f "* ]] || fail "bash completion of 'ferry $cmd' lacks $f"
        # zsh: the flag spelled as an _arguments spec ('--flag[...]' or {-x,--flag})
        grep -qE -- "['{,]$f(\\[|\\})" "$COMP/_ferry" || fail "zsh completion lacks $f"
    done
    COMP_WORDS=(ferry ""); COMP_CWORD=1; _ferry
    [[ " ${COMPREPLY[*]} " == *" $cmd "* ]] || fail "bash completion lacks the command $cmd"
    grep -qE "^    '$cmd:" "$COMP/_ferry" || fail "zsh completion lacks the command $cmd"
    grep -qE "^$cmd\)" "$COMP/_ferry" || fail "zsh completion has no branch for $cmd"
done
if command -v zsh >/dev/null; then zsh -n "$COMP/_ferry" || fail "_ferry does not parse"; fi
echo "ok: settings precedence, one dialect, --json records, completion"
