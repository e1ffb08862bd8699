/*
 * buf.h - reference-counted packet buffers from a bounded pool.
 *
 * In ferryd a buffer holds the raw bytes (header + payload) of received
 * frames, not one frame each: frames of up to 64 KiB are packed back to back
 * into shared buffers of the 4 KiB or 64 KiB class, a bigger frame gets a
 * buffer of its own (actors/session.c).  The buffers travel in a batch that holds one
 * reference to each; the writer shares the batch with every forwarder, and
 * the last holder's fy_buf_unref() returns the buffer to its pool.  (Scrape
 * answers use small pool buffers too, src/relay/stats.c.)  Capacities come in six
 * classes: 4 KiB, 64 KiB, 256 KiB, 1 MiB and 4 MiB, each plus 256 bytes,
 * and FY_BUF_MAX_CAP (src/rt/buf.c); a request gets the smallest class that
 * fits.  The pool has a hard byte limit, counted in class capacity: an
 * allocation that would pass it fails with -FY_EPOOL instead of growing,
 * which is how the relay bounds its memory.  Free buffers are cached per
 * CPU, then in shared lock-free stacks.  The sanitizer builds
 * (FY_POOL_MALLOC) use plain malloc/free per buffer so ASan sees every
 * misuse, but still enforce the byte limit.
 */
#ifndef FERRY_BUF_H
#define FERRY_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct fy_buf fy_buf;
typedef struct fy_bufpool fy_bufpool;

/* Largest buffer the pool hands out (16 MiB), also the largest class.  ferryd's
 * max-payload is capped at FY_BUF_MAX_CAP - FY_FRAME_HDR_SIZE (src/relay/conf.c)
 * so any frame fits one buffer; the default max-payload is 1 MiB. */
#define FY_BUF_MAX_CAP ((size_t)(16u << 20))

/* Create a pool that never holds more than max_bytes of buffer capacity in
 * live buffers.  Returns 0 or -ENOMEM / -EINVAL. */
int fy_bufpool_new(size_t max_bytes, fy_bufpool **out);

/* Free the pool.  Every buffer must have been released (asserted in debug). */
void fy_bufpool_free(fy_bufpool *p);

/* Take a buffer of at least cap bytes with refcount 1 and length 0.  Any
 * thread.  Returns 0, -FY_EPOOL when the byte limit is reached, -EINVAL when
 * cap > FY_BUF_MAX_CAP, -ENOMEM. */
int fy_buf_alloc(fy_bufpool *p, size_t cap, fy_buf **out);

/* Add a reference (any thread holding one); returns b for chaining. */
fy_buf *fy_buf_ref(fy_buf *b);

/* Drop a reference (any thread); the last one returns the buffer to its pool.
 * NULL is ignored. */
void fy_buf_unref(fy_buf *b);

uint8_t *fy_buf_data(fy_buf *b);
const uint8_t *fy_buf_cdata(const fy_buf *b);
size_t fy_buf_len(const fy_buf *b);
size_t fy_buf_cap(const fy_buf *b);
/* Set the used length (owner, before sharing the buffer); len <= cap. */
void fy_buf_set_len(fy_buf *b, size_t len);
/* Current reference count (for tests and asserts only). */
uint32_t fy_buf_refs(const fy_buf *b);

/* Bytes of capacity held by live buffers, and the limit (any thread; racy
 * snapshot, for metrics and tests). */
size_t fy_bufpool_used(const fy_bufpool *p);
size_t fy_bufpool_limit(const fy_bufpool *p);
/* Number of live buffers (racy snapshot). */
size_t fy_bufpool_live(const fy_bufpool *p);

#endif
