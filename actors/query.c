/*
 * query.c - a query connection: the session that got FY_FT_QUERY instead
 * of hello answers it with QREC records and QEND, then closes
 * (docs/protocol.md, "Queries").
 *
 * What only the disk knows (the channels and their files, `ferry rm` of
 * files, `ferry retain`) is read and written here, on the session's turn,
 * by the catalog (src/store/catalog.c): a walk of frame headers, short
 * next to a connection's life, and it never waits for another actor.  Who
 * is connected (`ferry info`) is asked of the query collector (qinfo.c),
 * and deleting a whole channel of the registry, which alone can tell that
 * no writer has it open; their answers come back as QREPLY.
 *
 * Rights (src/relay/auth.h): ls and info need subscribe on the channel
 * (ls without a channel lists only the channels the token may subscribe
 * to); rm and retain need admin.
 *
 * In a cluster (docs/cluster.md) ls and info answer from this relay's own
 * copy, a follower's being seq-identical to the leader's; rm and retain
 * change the channel, so only its leader runs them: another member answers
 * FY_ENOTLEADER naming it, as it does to a hello (session_lead.c), and the
 * client follows (src/cli/query.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ferry/err.h"
#include "ferry/io.h"
#include "ferry/klog.h"
#include "ferry/proto.h"
#include "ferry/sched.h"
#include "query.h"
#include "session_int.h"
#include "store/catalog.h"

#define QUERY_OUT_MAX ((size_t)64 << 20) /* a listing queued for a slow client, at most */
#define LEAD_RETRY_MS 10                 /* looking again for the member's first poll */
#define LEAD_WAIT_MAX_NS (20ull * 1000000000ull) /* within the session's 30 s answer timeout */

static const char *const op_name[] = {"?", "ls", "info", "rm", "retain"};

/* ---- output ------------------------------------------------------------------ */

/* One QREC record (a key=value line).  0 or a negative error. */
/* A record's value: as it is, or "quoted" with \" and \\ escapes when it
 * holds a space, a quote, a backslash or '=' or is empty (a file name may:
 * "my report (v2).txt"), so the client's key=value reader (src/cli/query.c)
 * gets it back whole. */
static const char *qv(const char *v, char *buf, size_t cap)
{
    size_t o = 0;

    if (*v && !strpbrk(v, " \"\\="))
        return v;
    buf[o++] = '"';
    for (; *v && o + 3 < cap; v++) {
        if (*v == '"' || *v == '\\')
            buf[o++] = '\\';
        buf[o++] = *v;
    }
    buf[o++] = '"';
    buf[o] = 0;
    return buf;
}

static int rec(session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rec(session *s, const char *fmt, ...)
{
    char line[FY_QREC_MAX];
    uint8_t fr[FY_FRAME_HDR_SIZE + FY_QREC_MAX];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1;
    int len = fy__ctl_frame(FY_FT_QREC, 0, 0, (const uint8_t *)line, (size_t)n, fr, sizeof fr);
    if (len < 0)
        return len;
    s->qrecs++;
    return fy_outq_push(&s->out, &s->conn, fr, (size_t)len);
}

/* QEND, one log line, then close. */
static void finish(session *s)
{
    uint8_t p[8], fr[FY_FRAME_HDR_SIZE + 8];
    size_t n;
    fy_qend e = {.code = 0, .count = s->qrecs};

    fy_qend_encode(&e, p, sizeof p, &n);
    int len = fy__ctl_frame(FY_FT_QEND, 0, 0, p, n, fr, sizeof fr);
    if (len < 0 || fy_outq_push(&s->out, &s->conn, fr, (size_t)len) < 0) {
        fy__session_finish(s, "query answer not taken");
        return;
    }
    fy_klog(FY_LOG_INFO, "query answered", "peer=%s client=%s op=%s channel=%s records=%u",
            s->peer, s->query->client[0] ? s->query->client : "-", op_name[s->query->op],
            s->query->channel[0] ? s->query->channel : "-", s->qrecs);
    fy__session_linger(s);
}

static void chan_dir(const session *s, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", s->ctx->chan_root, name);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static int64_t age(int64_t t)
{
    int64_t now = (int64_t)time(NULL);
    return t && now > t ? now - t : 0;
}

/* The files a listing shows: complete and not deleted. */
static uint64_t live_files(const fy_cat *c)
{
    uint64_t n = 0;
    for (size_t i = 0; i < c->n; i++)
        n += !c->f[i].deleted;
    return n;
}

/* The channel's own record. */
static int chan_rec(session *s, const char *name, const fy_cat *c)
{
    return rec(s, "type=channel channel=%s files=%" PRIu64 " bytes=%" PRIu64 " first_seq=%" PRIu64
               " last_seq=%" PRIu64 " end_seq=%" PRIu64 " age_s=%" PRId64 " partial=%d",
               name, live_files(c), c->bytes, c->first_seq, c->next_seq ? c->next_seq - 1 : 0,
               c->end_seq, age(c->newest_s), c->partial);
}

/* Scan channel name; -FY_ENOCHAN when it has no directory. */
static int scan(session *s, const char *name, fy_cat *c)
{
    char dir[4600];
    chan_dir(s, name, dir, sizeof dir);
    int rc = fy_cat_scan(dir, c);
    return rc == -ENOENT || rc == -ENOTDIR ? -FY_ENOCHAN : rc;
}

/* ---- the operations answered here ----------------------------------------------- */

/* May token do right on chan?  Inside a read section, so a reload cannot
 * free the table while it is read (auth.h). */
static bool allowed(session *s, const char *token, unsigned right, const char *chan)
{
    bool ok = fy_auth_read_begin() == 0;

    if (ok) {
        ok = fy_auth_allows(fy__auth(s->ctx), token, right, chan);
        fy_auth_read_end();
    }
    return ok;
}

static int ls_all(session *s)
{
    char (*names)[FY_NAME_MAX + 1];
    size_t n;
    int rc = fy_cat_channels(s->ctx->chan_root, &names, &n);

    for (size_t i = 0; rc >= 0 && i < n; i++) {
        fy_cat c;
        if (!allowed(s, s->query->token, FY_AUTH_SUBSCRIBE, names[i]))
            continue;
        if (scan(s, names[i], &c) < 0)
            continue; /* removed meanwhile, or unreadable: not listed */
        rc = chan_rec(s, names[i], &c);
        fy_cat_free(&c);
    }
    free(names);
    return rc;
}

static int ls_chan(session *s, const char *name)
{
    fy_cat c;
    int rc = scan(s, name, &c);

    if (rc < 0)
        return rc;
    rc = chan_rec(s, name, &c);
    for (size_t i = 0; rc >= 0 && i < c.n; i++) {
        const fy_cat_file *f = &c.f[i];
        char sha[2 * FY_SHA256_LEN + 1], q[2 * FY_NAME_MAX + 3];
        if (f->deleted)
            continue;
        hex(f->sha256, sizeof f->sha256, sha);
        rc = rec(s, "type=file channel=%s name=%s size=%" PRIu64 " sha256=%s seq_first=%" PRIu64
                 " seq_last=%" PRIu64 " stored=%" PRId64 " age_s=%" PRId64, name,
                 qv(f->name, q, sizeof q), f->size,
                 sha, f->seq_first, f->seq_last, f->stored_s, age(f->stored_s));
    }
    fy_cat_free(&c);
    return rc;
}

/* The retention in force: the channel's own, else the relay's. */
static int retention(session *s, const char *name, uint64_t *bytes, uint64_t *secs)
{
    char dir[4600];
    chan_dir(s, name, dir, sizeof dir);
    int rc = fy_cat_retain_load(dir, bytes, secs);
    if (rc <= 0) {
        *bytes = s->ctx->conf->retain_bytes;
        *secs = s->ctx->conf->retain_age;
    }
    return rc;
}

static int info_local(session *s, const char *name)
{
    fy_cat c;
    uint64_t bytes, secs;
    int rc = scan(s, name, &c);

    if (rc < 0)
        return rc;
    rc = chan_rec(s, name, &c);
    fy_cat_free(&c);
    int own = retention(s, name, &bytes, &secs);
    if (rc >= 0)
        rc = rec(s, "type=retain channel=%s retain_bytes=%" PRIu64 " retain_age_s=%" PRIu64
                 " source=%s", name, bytes, secs, own > 0 ? "channel" : "relay");
    return rc;
}

/* Every live version of each name is deleted, or none when a name has
 * none (FY_ENOFILE names it). */
static int rm_files(session *s, const char *name)
{
    fy_query *q = s->query;
    char dir[4600];
    fy_cat c;
    int rc = scan(s, name, &c);

    if (rc < 0)
        return rc;
    for (uint16_t i = 0; i < q->nnames; i++)
        if (!fy_cat_find(&c, q->names[i], 0)) {
            fy_cat_free(&c);
            fy__session_fail_as(s, FY_ENOFILE, "query refused", "no file '%s' on channel '%s'",
                                q->names[i], name);
            return 1;
        }
    chan_dir(s, name, dir, sizeof dir);
    for (size_t k = 0; rc >= 0 && k < c.n; k++) {
        fy_cat_file *f = &c.f[k];
        for (uint16_t i = 0; rc >= 0 && i < q->nnames && !f->deleted; i++) {
            if (strcmp(f->name, q->names[i]) != 0)
                continue;
            if ((rc = fy_cat_delete(dir, f)) < 0)
                break;
            f->deleted = true;
            char qn[2 * FY_NAME_MAX + 3];
            fy_klog(FY_LOG_INFO, "file deleted", "channel=%s name=%s seq_first=%" PRIu64
                    " seq_last=%" PRIu64 " client=%s", name, qv(f->name, qn, sizeof qn),
                    f->seq_first, f->seq_last, q->client[0] ? q->client : "-");
            rc = rec(s, "type=deleted channel=%s name=%s seq_first=%" PRIu64 " seq_last=%" PRIu64,
                     name, qv(f->name, qn, sizeof qn), f->seq_first, f->seq_last);
        }
    }
    fy_cat_free(&c);
    return rc;
}

static int retain(session *s, const char *name)
{
    fy_query *q = s->query;
    char dir[4600];
    struct stat st;
    uint64_t bytes, secs;

    chan_dir(s, name, dir, sizeof dir);
    if (stat(dir, &st) != 0)
        return -FY_ENOCHAN;
    retention(s, name, &bytes, &secs);
    if (q->flags & FY_QF_BYTES)
        bytes = q->arg1;
    if (q->flags & FY_QF_AGE)
        secs = q->arg2;
    int rc = fy_cat_retain_save(dir, bytes, secs);
    if (rc < 0)
        return rc;
    fy_klog(FY_LOG_INFO, "channel retention set", "channel=%s retain_bytes=%" PRIu64
            " retain_age_s=%" PRIu64 " client=%s", name, bytes, secs, q->client[0] ? q->client : "-");
    return rec(s, "type=retain channel=%s retain_bytes=%" PRIu64 " retain_age_s=%" PRIu64
               " source=channel", name, bytes, secs);
}

/* ---- the query ----------------------------------------------------------------------- */

static void failed(session *s, int rc)
{
    const char *ch = s->query->channel;
    if (rc == -FY_ENOCHAN)
        fy__session_fail_as(s, FY_ENOCHAN, "query refused", "no channel '%s' on the relay", ch);
    else
        fy__session_fail_as(s, rc < -1000 ? rc : FY_EINTERNAL, "query failed", "%s %s: %s",
                            op_name[s->query->op], ch, fy_strerror(rc));
}

/* The operations that wait for another actor; 0 when asked. */
static int ask(session *s)
{
    fy_query *q = s->query;
    if (q->op == FY_QOP_INFO) {
        fy__qinfo_req *r = calloc(1, sizeof *r);
        if (!r)
            return -ENOMEM;
        r->reply = fy_actor_ref(s->self);
        snprintf(r->channel, sizeof r->channel, "%s", q->channel);
        if (fy__msg_qinfo(s->ctx->query, r) < 0) {
            fy_actor_unref(r->reply);
            free(r);
            return -FY_ESHUTDOWN;
        }
        return 0;
    }
    fy__chan_req *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->reply = fy_actor_ref(s->self);
    snprintf(r->name, sizeof r->name, "%s", q->channel);
    fy__msg_chan_drop(s->ctx->registry, r); /* the registry outlives every session */
    return 0;
}

static int run(session *s)
{
    fy_query *q = s->query;
    switch (q->op) {
    case FY_QOP_LS:
        return q->channel[0] ? ls_chan(s, q->channel) : ls_all(s);
    case FY_QOP_INFO: {
        int rc = info_local(s, q->channel);
        return rc < 0 ? rc : ask(s) == 0 ? 1 : -FY_ESHUTDOWN;
    }
    case FY_QOP_RM:
        return q->nnames ? rm_files(s, q->channel) : ask(s) == 0 ? 1 : -ENOMEM;
    default:
        return retain(s, q->channel);
    }
}

/* rm and retain on a cluster member that does not lead the channel:
 * FY_ENOTLEADER naming the leader.  While the member has not read the
 * channel's state yet, look again in LEAD_RETRY_MS (FY__TM_LEAD brings the
 * session back to fy__query_lead), for at most the lease TTL.  True when
 * the query is answered or waits. */
static bool not_leader(session *s)
{
    fy_member *m = s->ctx->member;
    fy_query *q = s->query;
    fy_member_lead l;
    uint64_t now = fy_now_ns(), ttl = s->ctx->conf->cluster_ttl * 1000000000ull;

    if (!m || (q->op != FY_QOP_RM && q->op != FY_QOP_RETAIN) || !q->channel[0])
        return false;
    if (!s->lead_t0) {
        s->lead_t0 = now;
        if (fy_member_serve(m, q->channel) < 0)
            return false; /* the member is full: answer from here, as before clusters */
    }
    (void)fy_member_lead_of(m, q->channel, &l);
    if (l.leading)
        return false;
    bool settled = l.known && l.addr[0] && strcmp(l.leader, fy_member_node(m)) != 0;
    if (!settled && now - s->lead_t0 < (ttl < LEAD_WAIT_MAX_NS ? ttl : LEAD_WAIT_MAX_NS)) {
        fy_timer_after(s->self, LEAD_RETRY_MS, FY__TM_LEAD);
        return true;
    }
    fy__session_fail_as(s, FY_ENOTLEADER, settled ? "query redirected to the channel's leader"
                                                  : "channel's leader unknown",
                        "leader=%s addr=%s epoch=%llu", l.known ? l.leader : "",
                        settled ? l.addr : "", (unsigned long long)l.epoch);
    return true;
}

void fy__query_lead(session *s)
{
    if (s->st != S_QUERY || not_leader(s))
        return;
    int rc = run(s);
    if (rc < 0)
        failed(s, rc);
    else if (rc == 0)
        finish(s);
}

void fy__query_frame(session *s, const fy_frame *f)
{
    fy_query *q = calloc(1, sizeof *q);
    int rc;

    if (!q) {
        fy__session_fail(s, FY_EINTERNAL, "out of memory");
        return;
    }
    s->query = q;
    if ((rc = fy_query_decode(f->payload, f->hdr.len, q)) < 0) {
        q->op = 0;
        fy__session_fail(s, rc, "query: %s", fy_strerror(rc));
        return;
    }
    s->st = S_QUERY;
    s->out.max = QUERY_OUT_MAX;
    snprintf(s->hello.channel, sizeof s->hello.channel, "%s", q->channel); /* for log lines */
    snprintf(s->hello.client, sizeof s->hello.client, "%s", q->client);
    fy_klog(FY_LOG_INFO, "query", "peer=%s client=%s op=%s channel=%s names=%u", s->peer,
            q->client[0] ? q->client : "-", op_name[q->op], q->channel[0] ? q->channel : "-",
            q->nnames);
    unsigned right = q->op == FY_QOP_LS || q->op == FY_QOP_INFO ? FY_AUTH_SUBSCRIBE : FY_AUTH_ADMIN;
    if (q->channel[0] && !allowed(s, q->token, right, q->channel)) {
        fy__session_fail(s, FY_EAUTH, "token may not %s channel %s",
                         right == FY_AUTH_ADMIN ? "administer" : "subscribe to", q->channel);
        return;
    }
    fy__query_lead(s);
    /* run's 1: answered already (an error), or the rest comes as QREPLY */
}

void fy__query_reply(session *s, fy_msg *m)
{
    const char *text = m->buf ? (const char *)fy_buf_data(m->buf) : "";
    size_t len = m->buf ? fy_buf_len(m->buf) : 0;
    char line[FY_QREC_MAX];

    if (s->st != S_QUERY)
        return;
    if (m->u32) {
        fy__session_fail_as(s, (int)m->u32, "query refused", "%.*s", (int)len, text);
        return;
    }
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        snprintf(line, sizeof line, "%.*s", (int)n, text + at);
        if (n && rec(s, "%s", line) < 0) {
            fy__session_finish(s, "query answer not taken");
            return;
        }
        at += n + 1;
    }
    finish(s);
}

/* ---- for the collector and the registry ---------------------------------------------- */

int fy__query_post(const fy__ctx *ctx, fy_actor *to, uint32_t code, const char *fmt, ...)
{
    va_list ap;
    fy_buf *b;
    char probe[1];

    va_start(ap, fmt);
    int n = vsnprintf(probe, sizeof probe, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    int rc = fy_buf_alloc(ctx->pool, (size_t)n + 1, &b);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)fy_buf_data(b), (size_t)n + 1, fmt, ap);
    va_end(ap);
    fy_buf_set_len(b, (size_t)n);
    return fy_actor_post(to, FY_RM_QREPLY, code, 0, 0, NULL, b);
}

void fy__query_drop_refuse(const fy__ctx *ctx, fy__chan_req *q, uint32_t code, const char *why)
{
    fy__query_post(ctx, q->reply, code, "channel '%s' not deleted: %s", q->name, why);
    fy_actor_unref(q->reply);
    free(q);
}

void fy__query_drop_now(const fy__ctx *ctx, fy__chan_req *q)
{
    int rc = fy_cat_remove_channel(ctx->chan_root, q->name);

    if (rc == -ENOENT) {
        fy__query_post(ctx, q->reply, FY_ENOCHAN, "no channel '%s' on the relay", q->name);
    } else if (rc < 0) {
        fy_klog(FY_LOG_ERROR, "channel delete failed", "channel=%s err=%s", q->name,
                fy_errname(rc));
        fy__query_post(ctx, q->reply, FY_EINTERNAL, "channel '%s': delete failed: %s", q->name,
                       fy_strerror(rc));
    } else {
        fy_klog(FY_LOG_INFO, "channel deleted", "channel=%s", q->name);
        fy__query_post(ctx, q->reply, 0, "type=removed channel=%s", q->name);
    }
    fy_actor_unref(q->reply);
    free(q);
}
