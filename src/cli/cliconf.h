/*
 * cliconf.h - the client's settings file, ~/.config/ferry/config.
 *
 * The same 'key = value' lines as ferryd's --config (src/relay/conf.c:
 * '#' starts a comment, blank lines are skipped), with the keys of the
 * flags they stand for: server, token-file, tls, ca, tls-name, tls-cert,
 * tls-key.  Where the file is: $FERRY_CONFIG if set, else
 * $XDG_CONFIG_HOME/ferry/config, else $HOME/.config/ferry/config.  A
 * missing file is no error.  Precedence, decided in src/cli/opts.c:
 * flags, then the environment (FERRY_SERVER, FERRY_TOKEN), then this
 * file, then the defaults.
 */
#ifndef FY_CLI_CLICONF_H
#define FY_CLI_CLICONF_H

#include <stdbool.h>
#include <stddef.h>

#define FY_CLI_CONF_VAL 1024

typedef struct fy_cli_conf {
    char path[1024];                   /* the file read ("" when none was found) */
    char server[FY_CLI_CONF_VAL];      /* "" = not set, as for every text key */
    char token_file[FY_CLI_CONF_VAL];
    char ca[FY_CLI_CONF_VAL], tls_name[256], tls_cert[FY_CLI_CONF_VAL], tls_key[FY_CLI_CONF_VAL];
    bool tls;                          /* tls = yes (or ca set) */
} fy_cli_conf;

/* Where the settings file is (see above) into path; 0, or -ENOENT when
 * neither $FERRY_CONFIG, $XDG_CONFIG_HOME nor $HOME is set. */
int fy_cli_conf_path(char *path, size_t cap);

/* Read the settings file into *c (zeroed first).  A missing file leaves *c
 * empty and returns 0; a file that does not parse returns -EINVAL with
 * "FILE:LINE: why" in err; one that cannot be read -errno. */
int fy_cli_conf_load(fy_cli_conf *c, char *err, size_t errcap);

#endif
