/* scio — error codes, error detail and the allocator hook.
 *
 * Every fallible scio function returns an int (or ssize_t): >= 0 on success,
 * a negative code on failure.  System errors are negative errno values
 * (SCIO_ENOMEM == -ENOMEM); scio's own conditions live in a reserved range
 * (-4000 .. -4099) that no errno value reaches.  A call that returns an error
 * has had no other effect and reports nothing later, unless its documentation
 * says otherwise.
 *
 * The human-readable detail of the last error of the current task is kept by
 * scio_errmsg().
 */
#ifndef SCIO_ERROR_H
#define SCIO_ERROR_H

#include <errno.h>
#include <stddef.h>

#include "scio/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SCIO_API
#if defined(__GNUC__)
#define SCIO_API __attribute__((visibility("default")))
#else
#define SCIO_API
#endif
#endif

/* X(name, value, description): one table that generates the enum, the names
 * and scio_strerror().  Keep descriptions short and lower case. */
#define SCIO_ERRNO_MAP(X)                                                     \
  X(ECANCELED, -ECANCELED, "operation cancelled")                             \
  X(ETIMEDOUT, -ETIMEDOUT, "operation timed out")                             \
  X(ENOMEM, -ENOMEM, "out of memory")                                         \
  X(EINVAL, -EINVAL, "invalid argument")                                      \
  X(EBUSY, -EBUSY, "resource busy: another task is using it")                \
  X(EWOULDBLOCK, -EAGAIN, "operation would block")                            \
  X(EPERM, -EPERM, "operation not permitted")                                 \
  X(EDEADLK, -EDEADLK, "resource deadlock would occur")                       \
  X(ENOENT, -ENOENT, "no such entry")                                         \
  X(ENOSYS, -ENOSYS, "not supported")                                         \
  X(EMFILE, -EMFILE, "too many open files")                                   \
  X(EOF, -4001, "end of stream")                                              \
  X(EBROKEN, -4002, "broken: the peer is gone")                               \
  X(ECLOSED, -4003, "resource closed")                                        \
  X(ENOTSTARTED, -4004, "task returned without calling scio_started()")       \
  X(EINCOMPLETE, -4005, "stream ended before the requested amount")           \
  X(EDELIM, -4006, "delimiter not found within the limit")                    \
  X(EDECODE, -4007, "invalid encoded input")                                  \
  X(ENESTED, -4008, "scio_run is already running in this thread")            \
  X(ETASKFAILED, -4009, "a task failed")                                     \
  X(ETLS, -4010, "TLS failure")

enum {
#define SCIO__ERR_ENUM(name, value, text) SCIO_##name = (value),
  SCIO_ERRNO_MAP(SCIO__ERR_ENUM)
#undef SCIO__ERR_ENUM
  SCIO__ERR_RESERVED_LO = -4099,
  SCIO__ERR_RESERVED_HI = -4000
};

/* The description of an error code, e.g. "operation cancelled".  Unknown
 * negative codes that are errno values get strerror()'s text; anything else
 * "unknown error".  Never NULL; the string is static. */
SCIO_API const char *scio_strerror(int code);

/* The symbolic name of an error code without the prefix, e.g. "ECANCELED",
 * or "UNKNOWN".  Never NULL; the string is static. */
SCIO_API const char *scio_err_name(int code);

/* The detail of the last error set in the current task (or, outside any task,
 * in the current thread), e.g. "sleep_until: deadline is NaN".  "" when there
 * is none.  The string stays valid until the next scio call in the same task.
 * After scio_run() returns, it holds the root task's last detail. */
SCIO_API const char *scio_errmsg(void);

/* Clear the current task's error detail. */
SCIO_API void scio_errmsg_clear(void);

/* Every allocation scio makes goes through these three functions.  ctx is
 * passed back unchanged.  Any of the three may be NULL to restore the C
 * library's function.  Call it before scio_run(), from one thread; it is not
 * synchronised with running loops.  (libevent, c-ares and OpenSSL have hooks
 * of their own; scio does not reroute them.) */
typedef struct scio_allocator {
  void *(*malloc_fn)(void *ctx, size_t size);
  void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
  void (*free_fn)(void *ctx, void *ptr);
  void *ctx;
} scio_allocator;

/* Install an allocator (NULL restores the default). */
SCIO_API void scio_set_allocator(const scio_allocator *allocator);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_ERROR_H */
