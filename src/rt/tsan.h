/*
 * tsan.h - ThreadSanitizer annotations for the runtime's ck atomics.
 *
 * ck's atomics are inline assembly, which ThreadSanitizer cannot see, so
 * without help it reports every hand-over of a message, an actor or a timer
 * between threads as a data race.  Instead of suppressing those reports the
 * runtime says where each hand-over happens: the publishing side calls
 * FY__TSAN_RELEASE(addr) before its atomic, the receiving side calls
 * FY__TSAN_ACQUIRE(addr) after its atomic, on the same address.  In builds
 * without FY_TSAN both are empty.
 */
#ifndef FY_RT_TSAN_H
#define FY_RT_TSAN_H

#ifdef FY_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define FY__TSAN_ACQUIRE(a) __tsan_acquire((void *)(a))
#define FY__TSAN_RELEASE(a) __tsan_release((void *)(a))
#else
#define FY__TSAN_ACQUIRE(a) ((void)(a))
#define FY__TSAN_RELEASE(a) ((void)(a))
#endif

#endif
