# bash completion for ferry (installed as
# /usr/share/bash-completion/completions/ferry).  Static lists: a new
# command or flag in src/prog/ferry.c, src/cli/qcmd.c or src/cli/opts.c is
# added here too (tests/client/test_cli_settings.sh checks every flag that
# a command's --help names).
_ferry_cmds="send recv ls info get rm retain check demo"
_ferry_common="-h --help -V --version -v --verbose -q --quiet --log-level"
_ferry_reach="--server --token --token-file --connect-timeout --tls --ca --tls-name --tls-cert
 --tls-key --client-name --json"
_ferry_conn="$_ferry_reach --retry --no-retry --retries --progress"

_ferry_flags() {
    case $1 in
    send) echo "$_ferry_common $_ferry_conn --channel --name --chunk -r --recursive --no-perms
                --force" ;;
    recv) echo "$_ferry_common $_ferry_conn --channel --out --from-start --resume --from-seq
                --count --rate --skip-damaged --stored --on-conflict --no-perms --no-wait" ;;
    ls|info|rm) echo "$_ferry_common $_ferry_reach" ;;
    get) echo "$_ferry_common $_ferry_conn --out --seq" ;;
    retain) echo "$_ferry_common $_ferry_reach --bytes --age" ;;
    check) echo "$_ferry_common --data --max-payload" ;;
    demo) echo "$_ferry_common --size --receivers --keep" ;;
    esac
}

_ferry() {
    local cur prev cmd="" i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac
    done
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$_ferry_cmds -h --help -V --version" -- "$cur"))
        return
    fi
    case $prev in
    --out|--data) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --token-file|--ca|--tls-cert|--tls-key) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --log-level) COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")); return ;;
    --on-conflict) COMPREPLY=($(compgen -W "rename keep replace" -- "$cur")); return ;;
    --server|--token|--channel|--name|--chunk|--connect-timeout|--retries|--tls-name|\
    --from-seq|--count|--rate|--max-payload|--size|--receivers|--client-name|--seq|--bytes|\
    --age) return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_ferry_flags "$cmd")" -- "$cur"))
    elif [[ $cmd == send ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F _ferry ferry
