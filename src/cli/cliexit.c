/*
 * cliexit.c - exit codes of the ferry client (see cliexit.h).
 *
 * Kept in one place so --help, docs/client.md and the code that decides
 * cannot drift apart: the help block below is printed verbatim.
 */
#include "cli/cliexit.h"

#include <errno.h>

#include "ferry/err.h"

int fy_cli_exit_for(int err)
{
    if (err >= 0)
        return FY_CLI_EXIT_OK;
    switch (-err) {
    case EINTR:
        return FY_CLI_EXIT_INTR;
    case EINVAL:
        return FY_CLI_EXIT_USAGE;
    case FY_ESHUTDOWN: /* the relay is going away: like a lost connection */
    case FY_ENOSPACE:  /* the relay's disk is full: try again once it has room */
    case FY_ESTORAGE:  /* the relay's disk failed a write or sync: try again later */
    case FY_ETIMEOUT:  /* the relay cut us for idling: like a lost connection */
    case FY_ENOTLEADER: /* no reachable leader (yet): like a lost connection */
        return FY_CLI_EXIT_NET;
    case FY_ECRC:
    case FY_EHDRCHECK:
    case FY_EDIGEST:
    case FY_ESIZE:
        return FY_CLI_EXIT_CHECKSUM;
    case FY_ETLS:
    case FY_ETLSREQ:
        return FY_CLI_EXIT_TLS;
    case ENOSPC:
    case EDQUOT:
    case EROFS:
    case EIO:
        return FY_CLI_EXIT_IO;
    default:
        break;
    }
    /* Every other FY_E* is the relay refusing us or breaking the protocol;
     * every other errno is the network (refused, reset, EOF, timeout). */
    return -err >= 1000 ? FY_CLI_EXIT_REFUSED : FY_CLI_EXIT_NET;
}

const char *fy_cli_exit_text(int code)
{
    switch (code) {
    case FY_CLI_EXIT_OK:
        return "ok";
    case FY_CLI_EXIT_USAGE:
        return "usage error";
    case FY_CLI_EXIT_NET:
        return "server unreachable or connection lost";
    case FY_CLI_EXIT_REFUSED:
        return "refused by the relay";
    case FY_CLI_EXIT_CHECKSUM:
        return "checksum or size mismatch";
    case FY_CLI_EXIT_IO:
        return "local I/O error";
    case FY_CLI_EXIT_TLS:
        return "TLS failed";
    case FY_CLI_EXIT_INTR:
        return "interrupted";
    default:
        return "unknown";
    }
}

const char *fy_cli_exit_help(void)
{
    return "Exit codes:\n"
           "  0    ok\n"
           "  1    `ferry check`: damage found\n"
           "  2    server unreachable, or the connection was lost; the relay is\n"
           "       shutting down, or its storage is full or failed: try again later\n"
           "  3    refused by the relay (token, busy channel, protocol error); the\n"
           "       relay's error code name and text are printed\n"
           "  4    checksum or size mismatch (frame CRC32C, file size, file SHA-256)\n"
           "  5    local I/O error (e.g. ENOSPC: disk full)\n"
           "  6    TLS failed: the relay's certificate did not verify (--ca,\n"
           "       --tls-name), it refused ours, or only one side uses TLS\n"
           "  64   usage error: bad flag, option value or argument (EX_USAGE; the\n"
           "       same code in ferryd, ferry-trace and ferry-swarm)\n"
           "  130  interrupted (SIGINT/SIGTERM); temp files removed\n";
}
