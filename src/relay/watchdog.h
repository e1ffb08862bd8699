/*
 * watchdog.h - systemd's watchdog (WatchdogSec=) fed only while the
 * runtime makes progress.
 *
 * A notifier thread sends WATCHDOG=1 on $NOTIFY_SOCKET every quarter of
 * $WATCHDOG_USEC, but only when the heartbeat it asked for at its previous
 * tick has come back: a message to the heartbeat actor (a scheduler thread
 * must run it), which arms a 1 ms timer (the poller must fire it), whose
 * delivery (a scheduler thread again) answers.  A relay whose scheduler
 * threads or poller are stuck stops answering, WATCHDOG=1 stops, and
 * systemd kills and restarts it after WatchdogSec.
 */
#ifndef FERRY_RELAY_WATCHDOG_H
#define FERRY_RELAY_WATCHDOG_H

#include <stddef.h>

#include "ferry/actor.h"

typedef struct fy_watchdog fy_watchdog;

/* Start the heartbeat actor on s (started) and the notifier thread when the
 * service manager asked for a watchdog ($WATCHDOG_USEC set, and
 * $WATCHDOG_PID unset or this process); otherwise *out = NULL and nothing
 * runs.  Main thread, after READY=1.  0, or -errno with a message in err. */
int fy_watchdog_start(fy_sched *s, fy_watchdog **out, char *err, size_t errcap);

/* The interval WATCHDOG=1 is sent at, in microseconds (0 for NULL). */
unsigned long long fy_watchdog_tick_usec(const fy_watchdog *w);

/* Test hook (FERRY_TEST_WATCHDOG_STALL_MS, docs/development.md): keep every
 * scheduler thread busy for ms, as a stuck relay would be.  Main thread.
 * 0 or -ENOMEM. */
int fy_watchdog_stall(fy_watchdog *w, fy_sched *s, unsigned ms);

/* Stop the notifier (joined) and the heartbeat actor; free.  NULL is fine.
 * Main thread, before the relay stops. */
void fy_watchdog_stop(fy_watchdog *w);

#endif
