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
 *
 * None of the functions here is a checkpoint; all may be called outside a
 * task.  Pointer arguments are borrowed: a function uses them during the
 * call only, unless its comment says that it keeps, owns or takes them over.
 */
#ifndef SCIO_ERROR_H
#define SCIO_ERROR_H

#include <errno.h>
#include <stdarg.h>
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

/* X(name, value, description): one table that generates the SCIO_E*
 * constants, scio_err_name() and scio_strerror(), after libuv's
 * UV_ERRNO_MAP.  It lists scio's own conditions and the errno values that
 * scio's calls return or that a network program meets, so that every error
 * can be spelled as a macro (SCIO_ECONNREFUSED == SCIO_ECONNREFUSED).  An errno
 * value missing here is still a valid code: scio_err_name() and
 * scio_strerror() know every errno of the platform.  Descriptions are short
 * and lower case. */
#define SCIO_ERRNO_MAP(X)                                                     \
  X(ECANCELED, -ECANCELED, "operation cancelled")                             \
  X(ETIMEDOUT, -ETIMEDOUT, "operation timed out")                             \
  X(ENOMEM, -ENOMEM, "out of memory")                                         \
  X(EINVAL, -EINVAL, "invalid argument")                                      \
  X(EBUSY, -EBUSY, "resource busy: another task is using it")                \
  X(EAGAIN, -EAGAIN, "operation would block")                                 \
  X(EPERM, -EPERM, "operation not permitted")                                 \
  X(EACCES, -EACCES, "permission denied")                                     \
  X(EDEADLK, -EDEADLK, "resource deadlock would occur")                       \
  X(ENOENT, -ENOENT, "no such entry")                                         \
  X(ENOSYS, -ENOSYS, "not supported")                                         \
  X(EMFILE, -EMFILE, "too many open files")                                   \
  X(ENFILE, -ENFILE, "too many open files in the system")                     \
  X(EINTR, -EINTR, "interrupted by a signal")                                 \
  X(EIO, -EIO, "input/output error")                                          \
  X(EBADF, -EBADF, "bad file descriptor")                                     \
  X(EEXIST, -EEXIST, "already exists")                                        \
  X(ENOSPC, -ENOSPC, "no space left on device")                               \
  X(ENOBUFS, -ENOBUFS, "no buffer space available")                           \
  X(ERANGE, -ERANGE, "result out of range")                                   \
  X(EPIPE, -EPIPE, "broken pipe")                                             \
  X(ECONNREFUSED, -ECONNREFUSED, "connection refused")                        \
  X(ECONNRESET, -ECONNRESET, "connection reset by peer")                      \
  X(ECONNABORTED, -ECONNABORTED, "connection aborted")                        \
  X(ENOTCONN, -ENOTCONN, "socket is not connected")                           \
  X(EISCONN, -EISCONN, "socket is already connected")                         \
  X(EINPROGRESS, -EINPROGRESS, "operation in progress")                       \
  X(EALREADY, -EALREADY, "operation already in progress")                     \
  X(EHOSTUNREACH, -EHOSTUNREACH, "host is unreachable")                       \
  X(EHOSTDOWN, -EHOSTDOWN, "host is down")                                    \
  X(ENETUNREACH, -ENETUNREACH, "network is unreachable")                      \
  X(ENETDOWN, -ENETDOWN, "network is down")                                   \
  X(ENETRESET, -ENETRESET, "connection reset by the network")                 \
  X(EADDRINUSE, -EADDRINUSE, "address already in use")                        \
  X(EADDRNOTAVAIL, -EADDRNOTAVAIL, "address not available")                   \
  X(EAFNOSUPPORT, -EAFNOSUPPORT, "address family not supported")              \
  X(EPROTONOSUPPORT, -EPROTONOSUPPORT, "protocol not supported")              \
  X(ENOPROTOOPT, -ENOPROTOOPT, "protocol option not available")               \
  X(EPROTO, -EPROTO, "protocol error")                                        \
  X(EOPNOTSUPP, -EOPNOTSUPP, "operation not supported")                       \
  X(ENOTSOCK, -ENOTSOCK, "not a socket")                                      \
  X(EMSGSIZE, -EMSGSIZE, "message too long")                                  \
  X(EDESTADDRREQ, -EDESTADDRREQ, "destination address required")              \
  X(ESHUTDOWN, -ESHUTDOWN, "cannot send after shutdown")                      \
  X(ENAMETOOLONG, -ENAMETOOLONG, "name too long")                             \
  X(ECHILD, -ECHILD, "no such child process")                               \
  X(EISDIR, -EISDIR, "is a directory")                                      \
  X(ENOTDIR, -ENOTDIR, "not a directory")                                    \
  X(ESPIPE, -ESPIPE, "not seekable: a pipe, FIFO or socket")                 \
  X(EFBIG, -EFBIG, "file too large")                                         \
  X(EROFS, -EROFS, "read-only file system")                                  \
  X(EOF, -4001, "end of stream")                                              \
  X(EBROKEN, -4002, "broken: the peer is gone")                               \
  X(ECLOSED, -4003, "resource closed")                                        \
  X(ENOTSTARTED, -4004, "task returned without calling scio_started()")       \
  X(EINCOMPLETE, -4005, "stream ended before the requested amount")           \
  X(EDELIM, -4006, "delimiter not found within the limit")                    \
  X(EDECODE, -4007, "invalid encoded input")                                  \
  X(ENESTED, -4008, "scio_run is already running in this thread")            \
  X(ETASKFAILED, -4009, "a task failed")                                     \
  X(ETLS, -4010, "TLS failure")                                             \
  X(ENOTFOUND, -4020, "no such host")                                        \
  X(EDNS, -4021, "DNS lookup failed")                                       \
  X(EPROCESS, -4030, "a child process failed")

enum {
#define SCIO__ERR_ENUM(name, value, text) SCIO_##name = (value),
  SCIO_ERRNO_MAP(SCIO__ERR_ENUM)
#undef SCIO__ERR_ENUM
  /* What a _nowait call returns when it would have to wait: the same
   * value as SCIO_EAGAIN (its name is "EAGAIN"). */
  SCIO_EWOULDBLOCK = SCIO_EAGAIN,
  SCIO__ERR_RESERVED_LO = -4099,
  SCIO__ERR_RESERVED_HI = -4000
};

/* The description of an error code, e.g. "operation cancelled" for
 * SCIO_ECANCELED: the table's text for the codes above, the C library's
 * strerror() text for any other errno value, "success" for 0, and
 * "unknown error" for anything else (positive values, unused numbers of
 * scio's range and anything below it).  Never NULL: the string is static,
 * owned by the library.  Not a checkpoint.  Never fails. */
SCIO_API const char *scio_strerror(int code);

/* The symbolic name of an error code without the SCIO_ prefix:
 * "ECANCELED", "EOF", and for any errno value the platform defines its
 * errno name ("ECONNREFUSED" for SCIO_ECONNREFUSED, also when it is not in the
 * table above).  0 is "OK".  "UNKNOWN" for anything else: positive values,
 * negative numbers that are no errno (on Linux, -41 and -58 are unused), and
 * unused numbers of scio's range and below it.  Never NULL: the string is
 * static, owned by the library.  Not a checkpoint.  Never fails. */
SCIO_API const char *scio_err_name(int code);

/* The detail of the last error set in the current task (or, outside any task,
 * in the current thread), e.g. "sleep_until: deadline is NaN".  "" when there
 * is none.  The string is owned by the task (or thread) and stays valid
 * until the next scio call in the same task.  After scio_run() returns, it
 * holds the root task's last detail, which the thread frees when it exits
 * (or at its next scio_errmsg_clear or error).  Not a checkpoint.  Never
 * fails. */
SCIO_API const char *scio_errmsg(void);

/* Clear the current task's error detail.  Not a checkpoint.  Returns
 * nothing; never fails. */
SCIO_API void scio_errmsg_clear(void);

/* Set the error detail that scio_errmsg() returns, formatted as by printf,
 * and return `code`, so that user code reports its own failures the way
 * scio's calls do:
 *
 *   if (bad_header(h))
 *     return scio_seterr(SCIO_EPROTO, "peer %s: bad header %#x", name, h);
 *
 * Inside a task the detail belongs to that task (as scio's own details do):
 * when the task returns a failure, its nursery's failure list reads "task
 * NAME: DETAIL" with this text.  Outside any task it belongs to the thread.
 * The next scio call that fails in the same task replaces it;
 * scio_errmsg_clear() empties it.  `code` is not checked: any int is passed
 * through, though a task's failure should be a negative code.  fmt NULL
 * clears the detail.  Not a checkpoint; never fails.  A detail that cannot
 * be stored whole for lack of memory is truncated (to at least 511 bytes).
 * Since 0.1. */
SCIO_API int scio_seterr(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* scio_seterr() with a va_list, for wrappers of your own; `ap` is used as
 * vprintf uses it (va_end is the caller's).  Not a checkpoint; never
 * fails.  Since 0.1. */
SCIO_API int scio_vseterr(int code, const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 0)))
#endif
    ;

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

/* Install an allocator (NULL restores the default).  The three pointers
 * and ctx are copied: *allocator may go away after the call, but ctx and
 * what the functions use must outlive every allocation made with them.
 * Not a checkpoint.  Returns nothing; never fails. */
SCIO_API void scio_set_allocator(const scio_allocator *allocator);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_ERROR_H */
