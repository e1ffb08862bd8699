/*
 * auth.h - who may publish to or subscribe from which channel.
 *
 * A token file has one rule a line: `TOKEN publish|subscribe|both|admin GLOB`
 * (admin: delete files and channels, set retention; it includes subscribe)
 * ('#' comments, blank lines ignored); GLOB is an fnmatch(3) pattern over
 * channel names.  The table is loaded once at startup and read-only after,
 * so every session may consult it without a lock.  Without a token file the
 * relay lets anyone who can reach its port publish and subscribe.
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

void fy_auth_free(fy_auth *a);

#endif
