/*
 * auth.h - who may publish to or subscribe from which channel.
 *
 * A token file has one rule a line: `TOKEN publish|subscribe|both|admin GLOB`
 * (admin: delete files and channels, set retention; it includes subscribe)
 * ('#' comments, blank lines ignored); GLOB is an fnmatch(3) pattern over
 * channel names.  A file that holds only the line `deny-all` grants nothing
 * on purpose (a reload to an empty table is refused otherwise).  A table is
 * read-only once loaded, so every session may consult it without a lock;
 * a reload publishes a new one and frees the old with fy_auth_retire once
 * no reader can hold it (ck_epoch).  Without a token file the relay lets
 * anyone who can reach its port publish and subscribe.
 */
#ifndef FERRY_RELAY_AUTH_H
#define FERRY_RELAY_AUTH_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fy_auth fy_auth;

enum fy_auth_right { FY_AUTH_PUBLISH = 1, FY_AUTH_SUBSCRIBE = 2, FY_AUTH_ADMIN = 4 };

/* Load path.  Returns 0, or -errno / -EINVAL with "FILE:LINE: reason" in err. */
int fy_auth_load(const char *path, fy_auth **out, char *err, size_t errcap);

/* True when some rule grants `right` on channel to token.  Any thread. */
bool fy_auth_allows(const fy_auth *a, const char *token, unsigned right, const char *channel);

/* Number of rules (for the startup log line). */
size_t fy_auth_rules(const fy_auth *a);

/* Did the file say `deny-all` (no rules, on purpose)? */
bool fy_auth_deny_all(const fy_auth *a);

void fy_auth_free(fy_auth *a);

/* Bracket every use of a table that a reload may replace: between begin
 * and end the table the caller loaded is not freed.  Any thread; short
 * sections only (a reload waits for them).  begin: 0, or -ENOMEM (no epoch
 * record for this thread: do not read the table, and do not call end). */
int fy_auth_read_begin(void);
void fy_auth_read_end(void);

/* Free a table that is no longer published, once every read section that
 * could have loaded it has ended (blocks for that grace period).  Not on a
 * thread that is inside a read section; the reloading thread only. */
void fy_auth_retire(fy_auth *a);

#endif
