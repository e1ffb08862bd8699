/*
 * ctl.c - building the small control frames the relay sends (welcome, ack,
 * pong, error, bye) into a caller's buffer (fy__ctl_*).  Shared by the
 * session and the forwarder so both speak exactly the same frames.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ferry/klog.h"
#include "ferry/proto.h"
#include "relay_int.h"

int fy__ctl_frame(uint8_t type, uint32_t channel, uint64_t seq, const uint8_t *payload,
                  size_t len, uint8_t *out, size_t cap)
{
    fy_frame_hdr h = {.type = type, .channel = channel, .seq = seq};

    if (cap < FY_FRAME_HDR_SIZE + len)
        return -ENOBUFS;
    if (len)
        memmove(out + FY_FRAME_HDR_SIZE, payload, len);
    fy_frame_seal(&h, out + FY_FRAME_HDR_SIZE, len, out);
    return (int)(FY_FRAME_HDR_SIZE + len);
}

int fy__ctl_error(uint32_t channel, int code, uint8_t *out, size_t cap, const char *fmt, ...)
{
    fy_error e = {.code = (uint32_t)(code < 0 ? -code : code)};
    uint8_t p[FY_CTL_PAYLOAD_MAX + 16];
    size_t n;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(e.text, sizeof e.text, fmt, ap);
    va_end(ap);
    int rc = fy_error_encode(&e, p, sizeof p, &n);
    if (rc < 0)
        return rc;
    return fy__ctl_frame(FY_FT_ERROR, channel, 0, p, n, out, cap);
}

int fy__ctl_welcome(const fy_welcome *w, const fy__part_info *part, uint8_t *out, size_t cap)
{
    fy_welcome x = *w;
    uint8_t p[FY_WELCOME_MAX];
    size_t n;

    if (part) {
        x.part_seq = part->seq;
        x.part_size = part->size;
        x.part_got = part->got;
        snprintf(x.part_name, sizeof x.part_name, "%s", part->name);
        x.part_source = part->source;
        x.src_flags = part->prefix_ok ? FY_WELCOME_SRC_F_PREFIX : 0;
        memcpy(x.part_prefix_sha, part->prefix_sha, sizeof x.part_prefix_sha);
    }
    int rc = fy_welcome_encode(&x, p, sizeof p, &n);
    return rc < 0 ? rc : fy__ctl_frame(FY_FT_WELCOME, w->channel, 0, p, n, out, cap);
}

int fy__ctl_ack(uint32_t channel, uint64_t seq, uint8_t *out, size_t cap)
{
    fy_ack a = {.seq = seq};
    uint8_t p[16];
    size_t n;
    int rc = fy_ack_encode(&a, p, sizeof p, &n);

    return rc < 0 ? rc : fy__ctl_frame(FY_FT_ACK, channel, 0, p, n, out, cap);
}

void fy__ctl_log_peer_error(const char *peer, const char *who, const fy_frame *f)
{
    fy_error e;
    char q[FY_ERRTEXT_MAX + 8];

    if (fy_error_decode(f->payload, f->hdr.len, &e) == 0)
        fy_klog(FY_LOG_WARN, who, "peer=%s code=%u text=%s", peer, e.code,
                fy_klog_q(e.text, q, sizeof q));
}
