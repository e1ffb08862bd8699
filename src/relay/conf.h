/*
 * conf.h - ferryd's settings: defaults, `key = value` config files and the
 * command-line values that override them.
 *
 * One table of keys (conf.c) serves the config file and the flags, so a
 * key documented in docs/ferryd.conf is always also a flag (--key VALUE).
 * Parsing is strict: an unknown key, a bad number or a value out of range
 * is an error with a message naming the key and the reason.
 */
#ifndef FERRY_RELAY_CONF_H
#define FERRY_RELAY_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FY_CONF_PATH_MAX 4096
#define FY_CONF_KEYS_MAX 96 /* room in fy_conf.line for the key table (conf.c asserts it) */

/* live-send: how a live forwarder sends frames to its receiver. */
enum fy_live_send {
    FY_LIVE_SEND_FILE,    /* "file": sendfile from the segment's page cache */
    FY_LIVE_SEND_BUFFERS, /* "buffers": writev from the shared buffers (default) */
};

/* write-mode: how a writer appends to its channel's log. */
enum fy_write_mode {
    FY_WRITE_DIRECT,   /* "direct": synchronous O_DIRECT appends */
    FY_WRITE_BUFFERED, /* "buffered": write-behind through the page cache (default) */
};

/* acks: what an acknowledgement means (docs/cluster.md, "Acknowledgements"). */
enum fy_acks {
    FY_ACKS_ALL,    /* "all": stored by every in-sync replica (cluster mode only) */
    FY_ACKS_LEADER, /* "leader": stored on this relay's disk */
    FY_ACKS_UNSET,  /* the default: all with cluster, else leader (fy_conf_acks_all) */
};

typedef struct fy_conf {
    char listen[256];
    char data[FY_CONF_PATH_MAX];
    char auth[FY_CONF_PATH_MAX];  /* "" or "off" = no token file (fy_conf_token_file) */
    char metrics[256];            /* HOST:PORT for GET /metrics; "" = off */
    char trace[FY_CONF_PATH_MAX]; /* record the trace continuously to this file; "" = off */
    uint64_t trace_max_bytes;     /* trace file + its predecessor; 0 = 64 MiB */
    uint64_t trace_events;        /* events per thread ring; 0 = record nothing */
    unsigned threads;             /* 0 = one per core */
    uint64_t memory;              /* buffer pool limit, bytes */
    uint64_t max_payload;
    int fsync_mode;               /* enum fy_fsync_mode */
    uint32_t fsync_ms;
    uint64_t segment_bytes;
    uint64_t retain_bytes;
    uint64_t retain_age;          /* seconds */
    uint64_t scrub_interval;      /* seconds between scrub passes; 0 = no scrubbing */
    uint64_t scrub_rate;          /* bytes/s a channel's scrubber reads at most */
    uint64_t window;              /* per-receiver live window, bytes */
    enum fy_live_send live_send;
    enum fy_write_mode write_mode;
    uint64_t channel_budget;      /* per-channel in-flight bytes, session -> writer */
    uint64_t write_behind;        /* per channel, bytes appended but not yet durable before
                                     the sender waits for the disk; 0 = min(64M, memory / 4)
                                     (fy_conf_write_behind) */
    uint64_t sndbuf;              /* receiver sockets' SO_SNDBUF; 0 = kernel autotuning */
    uint64_t idle_timeout;        /* seconds without progress before a peer is cut; 0 = off */
    uint64_t takeover_grace;      /* seconds a sender must be idle before the same sender replaces it */
    int log_level;                /* enum fy_klog_level */
    /* Limits a hostile client cannot pass (docs/ferryd.conf). */
    uint64_t channel_idle_ms;     /* close a channel this long without sender or receiver */
    uint64_t max_channels;        /* channels open at once */
    uint64_t max_connections;     /* client connections at once (sessions + receivers) */
    uint64_t max_conns_per_ip;    /* of those, from one address */
    uint64_t drain_timeout;       /* seconds an orderly shutdown may take before it is cut */
    uint64_t metrics_timeout_ms;  /* a metrics-port connection's whole life (slow clients) */
    uint64_t min_free;            /* /readyz fails with less free space in DATA; 0 = off */
    /* Edge relay (actors/upstream.c): mirror channels from this relay. */
    char upstream[256];           /* HOST:PORT; "" = this relay originates every channel */
    char upstream_token[256];     /* subscribe token for the upstream; "" = none */
    uint64_t upstream_linger_ms;  /* follow on this long after the last local receiver left */
    /* TLS (docs/operations.md, "TLS"): "" = plaintext. */
    char tls_cert[FY_CONF_PATH_MAX];      /* the listener's certificate chain (PEM) */
    char tls_key[FY_CONF_PATH_MAX];       /* its private key (PEM) */
    char tls_client_ca[FY_CONF_PATH_MAX]; /* require client certificates chained to these */
    char upstream_ca[FY_CONF_PATH_MAX];   /* TLS to the upstream, verified against these CAs */
    char upstream_tls_name[256];          /* name expected in the upstream's certificate */
    /* Cluster (docs/cluster.md): "" = a relay on its own. */
    char cluster[256];            /* etcd endpoints "http://H:P[,http://H:P...]" */
    char node[256];               /* this relay's name in the cluster (1-63 of [A-Za-z0-9._-]) */
    char advertise[256];          /* HOST:PORT clients are redirected to; "" = the bound address */
    char cluster_prefix[256];     /* etcd key prefix, "/ferry" */
    uint64_t cluster_ttl;         /* lease TTL, seconds */
    uint64_t replicas;            /* R of the channels this relay creates */
    int acks;                     /* enum fy_acks */
    uint64_t replica_lag_ms;      /* a follower not caught up this long leaves the in-sync
                                     set; 0 = the lease TTL (fy_conf_replica_lag_ms) */
    /* Where each value came from, for errors that name FILE:LINE: the line
     * of the config file that set it, by key-table index (0 = a default or
     * a flag), and that file. */
    uint32_t line[FY_CONF_KEYS_MAX];
    char file[FY_CONF_PATH_MAX];
} fy_conf;

/* The write-behind budget in effect: write_behind, or its default. */
uint64_t fy_conf_write_behind(const fy_conf *c);

/* Cluster mode with acks all: a file-end is acknowledged once every
 * in-sync replica stored it (actors/writer_isr.c). */
static inline bool fy_conf_acks_all(const fy_conf *c)
{
    return c->cluster[0] && c->acks != FY_ACKS_LEADER;
}

/* replica-lag in effect, in ms: replica_lag_ms, or the lease TTL. */
static inline uint64_t fy_conf_replica_lag_ms(const fy_conf *c)
{
    return c->replica_lag_ms ? c->replica_lag_ms : c->cluster_ttl * 1000;
}

/* Fill c with the defaults (any thread). */
void fy_conf_defaults(fy_conf *c);

/* Set one key ("max-payload", or "max_payload") from text.  Returns 0, or
 * -EINVAL / -ENOENT (unknown key) with a message in err. */
int fy_conf_set(fy_conf *c, const char *key, const char *val, char *err, size_t errcap);

/* Read a config file of `key = value` lines ('#' starts a comment).
 * Returns 0 or a negative error with "FILE:LINE: reason" in err. */
int fy_conf_load(fy_conf *c, const char *path, char *err, size_t errcap);

/* Check the combination of values (after file and flags).  0 or -EINVAL;
 * the message starts "FILE:LINE: " when a key it names came from the
 * config file. */
int fy_conf_check(const fy_conf *c, char *err, size_t errcap);


/* Is key a known key?  (For the flag parser: --KEY VALUE.) */
int fy_conf_known(const char *key);

/* The files the settings name, checked as the relay will use them: the TLS
 * certificate, key and CAs open and load.  0 or -EINVAL with the reason,
 * "FILE:LINE: " first when the key came from the config file.  (The token
 * file is fy_auth_load's.) */
int fy_conf_check_files(const fy_conf *c, char *err, size_t errcap);

/* "FILE:LINE: " when key's value in c came from the config file, else "". */
void fy_conf_where(const fy_conf *c, const char *key, char *buf, size_t cap);

/* ---- reloading (ferryd's SIGHUP) --------------------------------------------- */

/* Does a running ferryd take a new value of key on SIGHUP?  (auth,
 * log-level, drain-timeout; the others are read when a socket, a pool or a
 * channel is set up, so a new value needs a restart.) */
bool fy_conf_reloadable(const char *key);

/* The token file to load: c->auth, or NULL for none ("" or the explicit
 * `auth = off`, which a reload needs to drop a token file). */
const char *fy_conf_token_file(const fy_conf *c);

/* key's value in c as text ("8388608", "file-end", "info"); "" for an
 * unknown key. */
void fy_conf_format(const fy_conf *c, const char *key, char *buf, size_t cap);

/* Call fn once for each key whose value differs between a and b, in the
 * table's order, with both values as text.  Returns how many differ. */
typedef void (*fy_conf_diff_fn)(void *arg, const char *key, const char *old_val,
                                const char *new_val);
size_t fy_conf_diff(const fy_conf *a, const fy_conf *b, fy_conf_diff_fn fn, void *arg);

#endif
