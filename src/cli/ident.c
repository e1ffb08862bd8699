/*
 * ident.c - the client's name for hello and queries (ident.h).  The
 * default is made from $USER (else the password entry) and the host name,
 * each character outside the allowed set replaced by '_', so any login
 * gives a name the relay accepts.
 */
#include "cli/ident.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/proto.h"

static char g_name[FY_CLIENT_MAX + 1];
static int g_set;

static void make_default(void)
{
    char host[256] = "", user[128] = "";
    const char *u = getenv("USER");
    struct passwd *pw;

    if ((!u || !*u) && (pw = getpwuid(getuid())))
        u = pw->pw_name;
    snprintf(user, sizeof user, "%s", u && *u ? u : "user");
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "host");
    snprintf(g_name, sizeof g_name, "%.31s@%.32s", user, host);
    for (char *p = g_name; *p; p++)
        if (fy_client_name_check(p, 1) < 0)
            *p = '_';
}

const char *fy_cli_client_name(void)
{
    if (!g_set) {
        const char *env = getenv("FERRY_CLIENT_NAME");
        if (!env || fy_cli_set_client_name(env) < 0)
            make_default();
        g_set = 1;
    }
    return g_name;
}

int fy_cli_set_client_name(const char *name)
{
    if (fy_client_name_check(name, strlen(name)) < 0)
        return -FY_ENAME;
    snprintf(g_name, sizeof g_name, "%s", name);
    g_set = 1;
    return 0;
}
