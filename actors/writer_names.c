/*
 * writer_names.c - the channel's latest stored file of each name, for a
 * sender that asks before sending (dup-ask frames: dedupe).
 *
 * The writer notes every file-end it stores (name, size, SHA-256, the
 * file-begin's seq) in a chained hash table, newest per name, and answers
 * a dup-ask with the file that has the name and the size asked for, as long
 * as retention has not dropped its first frame.  Memory only: it starts
 * empty each time the channel's log is opened (a restart, a reopen after
 * channel-idle), so a file sent again after that is stored again -- never
 * wrongly skipped.  At most NAMES_MAX names are kept (a new name past it is
 * not noted: dedupe is best effort, storing is not).
 */
#include <stdlib.h>
#include <string.h>

#include "ferry/buf.h"
#include "msg.h"
#include "writer_int.h"

#define NAMES_BUCKETS 4096u
#define NAMES_MAX ((size_t)1 << 18)

typedef struct fy__wname {
    struct fy__wname *next;
    uint64_t size, begin_seq;
    uint8_t sha[FY_SHA256_LEN];
    char name[];
} fy__wname;

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h % NAMES_BUCKETS;
}

void fy__writer_names_note(fy__writer *w, const char *name, uint64_t size, uint64_t begin_seq,
                           const uint8_t sha[FY_SHA256_LEN])
{
    if (!w->names && !(w->names = calloc(NAMES_BUCKETS, sizeof *w->names)))
        return;
    fy__wname **head = &w->names[hash(name)], *e = *head;
    while (e && strcmp(e->name, name) != 0)
        e = e->next;
    if (!e) {
        size_t len = strlen(name) + 1;
        if (w->nnames >= NAMES_MAX || !(e = malloc(sizeof *e + len)))
            return;
        memcpy(e->name, name, len);
        e->next = *head;
        *head = e;
        w->nnames++;
    }
    e->size = size;
    e->begin_seq = begin_seq;
    memcpy(e->sha, sha, sizeof e->sha);
}

void fy__writer_names_ask(fy__writer *w, fy_actor *from, const fy_buf *q)
{
    if (from != w->sender || !q || fy_buf_len(q) != sizeof(fy_dup_ask))
        return; /* not the attached sender any more: it is gone or going */
    const fy_dup_ask *qu = (const fy_dup_ask *)(const void *)fy_buf_cdata(q);
    const fy__wname *e = w->names ? w->names[hash(qu->name)] : NULL;
    while (e && strcmp(e->name, qu->name) != 0)
        e = e->next;
    fy_buf *b;
    if (fy_buf_alloc(w->ctx->pool, FY_SHA256_LEN, &b) < 0) {
        fy__msg_dup_answer(w->sender, 0, NULL); /* "not known": the sender sends the file */
        return;
    }
    bool held = e && e->size == qu->size && e->begin_seq >= fy_log_first_seq(w->log);
    memcpy(fy_buf_data(b), held ? e->sha : (const uint8_t[FY_SHA256_LEN]){0}, FY_SHA256_LEN);
    fy_buf_set_len(b, FY_SHA256_LEN);
    fy__msg_dup_answer(w->sender, held ? e->begin_seq : 0, b);
}

void fy__writer_names_free(fy__writer *w)
{
    for (size_t i = 0; w->names && i < NAMES_BUCKETS; i++) {
        for (fy__wname *e = w->names[i], *n; e; e = n) {
            n = e->next;
            free(e);
        }
    }
    free(w->names);
    w->names = NULL;
    w->nnames = 0;
}
