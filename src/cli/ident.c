/*
 * ident.c - the client's name for hello and queries (ident.h).  The
 * default is made from $USER (else the password entry) and the host name,
 * each character outside the allowed set replaced by '_', so any login
 * gives a name the relay accepts.
 */
#include "cli/ident.h"

#include <pthread.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry/err.h"
#include "ferry/proto.h"

static char g_name[FY_CLIENT_MAX + 1];
static bool g_given; /* fy_cli_set_client_name ran (before any thread) */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

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

static void init_name(void)
{
    const char *env = getenv("FERRY_CLIENT_NAME");

    if (g_given)
        return;
    if (env && fy_client_name_check(env, strlen(env)) == 0)
        snprintf(g_name, sizeof g_name, "%s", env);
    else
        make_default();
}

const char *fy_cli_client_name(void)
{
    /* once, whichever thread asks first (ferry demo's receivers are threads);
     * pthread_once orders the writes before every caller's reads */
    pthread_once(&g_once, init_name);
    return g_name;
}

int fy_cli_set_client_name(const char *name)
{
    if (fy_client_name_check(name, strlen(name)) < 0)
        return -FY_ENAME;
    snprintf(g_name, sizeof g_name, "%s", name);
    g_given = true;
    return 0;
}
