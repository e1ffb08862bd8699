/*
 * buf.h - reference-counted packet buffers from a bounded pool.
 *
 * One received frame lives in one fy_buf.  The file-writer, the indexer and
 * every forwarder hold references to the same bytes; the last fy_buf_unref()
 * returns the buffer to its pool.  Buffers come in size classes and the pool
 * has a hard byte limit: an allocation that would pass it fails with
 * -FY_EPOOL instead of growing, which is how the relay bounds its memory.
 * Per-thread caches sit in front of the shared free lists.  The sanitizer
 * builds (FY_POOL_MALLOC) use plain malloc/free per buffer so ASan sees
 * every misuse, but still enforce the byte limit.
 */
#ifndef FERRY_BUF_H
#define FERRY_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct fy_buf fy_buf;
typedef struct fy_bufpool fy_bufpool;

/* Largest buffer the pool hands out: a 1 MiB payload plus its header, rounded. */
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
