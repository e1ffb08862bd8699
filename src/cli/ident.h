/*
 * ident.h - the name a client gives the relay in its hello and queries
 * (FY_HELLO_F_CLIENT): shown in ferryd's log lines and in `ferry info`,
 * so an operator sees who a connection is, not only its address.
 * Default `user@host`; --client-name or $FERRY_CLIENT_NAME replace it.
 * fy_cli_set_client_name: the program, before any other thread starts;
 * fy_cli_client_name: any thread.
 */
#ifndef FY_CLI_IDENT_H
#define FY_CLI_IDENT_H

/* The name (never NULL; "" only when none could be made). */
const char *fy_cli_client_name(void);

/* Use name instead of the default.  0, or -FY_ENAME for a name that
 * fy_client_name_check refuses. */
int fy_cli_set_client_name(const char *name);

#endif
