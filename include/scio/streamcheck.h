/* scio — the stream conformance kit: generic checks that any byte stream
 * implementation must pass (Trio's trio.testing.check_one_way_stream,
 * check_two_way_stream and check_half_closeable_stream, with scio's rules).
 *
 * For authors of layers: give the kit a function that makes a connected
 * pair of your streams, and it runs every rule of <scio/stream.h> over
 * fresh pairs, one check after another:
 *
 *   static int make_pair(scio_stream **a, scio_stream **b, void *arg) {...}
 *   scio_stream_kit kit = {.make = make_pair};
 *   rc = scio_stream_check_two_way(&kit);   // inside a task of a run
 *   if (rc < 0) printf("%s\n", scio_errmsg());
 *
 * With Check, <scio/testing.h> wraps these in scio_check_two_way_stream(&kit)
 * (a failed check fails the test with the message).
 *
 * Why this lives in libscio and not in a header: the checks are a few
 * hundred lines compiled once, with the library's warnings, sanitizer and
 * valgrind runs; they depend on no test framework (the result is a code and
 * scio_errmsg(), so Check, cmocka or plain asserts can use them); and the
 * stream layers of later scio versions (sockets, TLS, processes) run the
 * same code their users do.
 *
 * Ownership: the kit owns every pair `make` returns and closes both ends
 * (also when a check fails), unless a check closes them itself.  `make`
 * must return two open streams it no longer uses, or an error (the kit
 * then stops with that error and closes whichever end is not NULL).  The
 * kit itself is borrowed for the call: the functions keep nothing.
 *
 * Calls to `make` and every check run in the calling task and in child tasks
 * of a nursery the kit opens; each check runs under a deadline (`timeout`),
 * so a stream that blocks where it must not fails the check instead of
 * hanging the test.  Under the autojump clock (SCIO_TEST_AUTOJUMP) that
 * deadline costs no real time.  The kit needs one free instrument slot (of
 * scio_instrument_add's 8) to see whether a call yielded.
 *
 * What the checks assert (each by the name its failure message gives),
 * with `s` the first end of a pair and `r` the second (what is sent on s
 * is received on r).  scio_stream_check_one_way:
 *   send_receive      a send and a concurrent receive(max 1) meet, both
 *                     yielding; an empty send is a checkpoint that sends
 *                     nothing (the receiver keeps waiting: no EOF);
 *   receive_small     a NULL buffer is SCIO_EINVAL for send and receive;
 *                     receive(max 0) returns 0 after a yield and takes
 *                     nothing; receive(max 1) returns one byte at a time;
 *   busy_receive      a second receiver gets SCIO_EBUSY (also with max 0)
 *                     and takes nothing: the first still gets the data;
 *   checkpoints       receive, receive(max 0), send (also of 0 bytes) and
 *                     wait_send_ready yield even when they can complete at
 *                     once; in a cancelled scope each returns SCIO_ECANCELED
 *                     with no effect (no byte taken, none sent); a stream
 *                     without wait_send_ready (SCIO_ENOSYS) is accepted;
 *   cancel_receive    a receive cancelled while blocked loses nothing: the
 *                     next receive gets the next bytes sent;
 *   cancelled_ops     a send and a receive in a cancelled scope fail with
 *                     SCIO_ECANCELED; then both ends close at once, with 0;
 *   pending           scio_stream_pending does not yield; when > 0, a
 *                     receive completes without the peer; it is 0 once
 *                     everything sent was received (and on s);
 *   tiny_writes       256 one-byte sends with empty sends between them, to
 *                     a receiver of random sizes, arrive intact;
 *   large_write       one send of `large` bytes to a concurrent receiver of
 *                     random sizes arrives intact; while that send is
 *                     blocked (if the stream blocks it), a second send,
 *                     send_eof and wait_send_ready get SCIO_EBUSY;
 *   cancel_send       a large send cancelled while blocked, then s closed:
 *                     r receives a prefix of its bytes, then SCIO_EOF or
 *                     SCIO_EBROKEN (all of them if the send had completed);
 *   close_receiver    r closes (0) while s sends in a loop: the send gets
 *                     SCIO_EBROKEN, and so does every later one;
 *   close_receiver_cancelled  the same with r closed in a cancelled scope
 *                     (the close returns 0 or SCIO_ECANCELED and closes);
 *   close_sender      after s was closed in a cancelled scope, r gets
 *                     SCIO_EOF or SCIO_EBROKEN, never data and never a
 *                     hang, and the same again on the next receive;
 *   send_then_close   s sends and closes before r receives: r gets the
 *                     data, then SCIO_EOF, repeatedly; both closes 0;
 *   close_wakes       closing r wakes a receive blocked on r with
 *                     SCIO_ECLOSED;
 *   close_wakes_peer  closing s wakes a receive blocked on r with SCIO_EOF
 *                     or SCIO_EBROKEN;
 *   after_close       while scio_close(x) is in flight (its checkpoint),
 *                     every call on x (receive, send, send of 0 bytes,
 *                     send_eof, wait_send_ready, pending, close) returns
 *                     SCIO_ECLOSED: a second close is safe, not a double
 *                     free.  (After scio_close returns, x is gone: that is
 *                     the one difference from Trio's repeated aclose.)
 * and with make_clogged (a pair where a send on s blocks until r receives;
 * for the two-way checks, either way round):
 *   clogged_wait      wait_send_ready blocks until r starts receiving;
 *   clogged_busy_wait with a wait_send_ready blocked, another one and a
 *                     send get SCIO_EBUSY;
 *   clogged_busy_send with a send blocked, another send and a
 *                     wait_send_ready get SCIO_EBUSY;
 *   clogged_close_receiver  closing r lets a blocked wait_send_ready go
 *                     with 0 or SCIO_EBROKEN; one started afterwards yields
 *                     and answers the same way;
 *   clogged_close_receiver_send  closing r wakes a blocked send with
 *                     SCIO_EBROKEN;
 *   clogged_close_sender, clogged_close_sender_wait  closing s wakes a
 *                     blocked send / wait_send_ready with SCIO_ECLOSED.
 * scio_stream_check_two_way: all of the above in both directions, and
 *   duplex            1 MiB each way at once in random chunks (up to
 *                     16 KiB), four concurrent tasks, intact;
 *   close_while_receiving  a receive blocked on one end while the other end
 *                     closes gets SCIO_EOF.
 * scio_stream_check_half_closeable: all of the two-way checks, and
 *   send_eof          a cancelled send_eof has no effect; send then
 *                     send_eof (which yields): the peer receives the data,
 *                     then SCIO_EOF, repeatedly; a send after it is
 *                     SCIO_ECLOSED; send_eof again returns 0 and yields;
 *                     the same the other way round;
 *   clogged_eof_send, clogged_eof_wait  with make_clogged: send_eof during
 *                     a blocked send / wait_send_ready is SCIO_EBUSY.
 *
 * Available since 0.1.
 */
#ifndef SCIO_STREAMCHECK_H
#define SCIO_STREAMCHECK_H

#include <stddef.h>

#include "scio/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Make a connected pair: *a and *b get two open streams, now the caller's.
 * What is sent on *a is received on *b (and, for two-way streams, the
 * other way round).  Runs in a task; may block.  0 or a negative error. */
typedef int (*scio_stream_pair_fn)(scio_stream **a, scio_stream **b,
                                   void *arg);

enum scio_stream_kit_flags {
  /* Send only printable ASCII (for text layers, whose input must be valid
   * in their encoding); the default sends every byte value. */
  SCIO_STREAM_KIT_TEXT = 1u << 0,
  /* The stream carries bytes of its own besides the data (TLS records such
   * as session tickets), so scio_stream_pending may be above zero where no
   * data was sent: the "nothing pending" checks are skipped. */
  SCIO_STREAM_KIT_CONTROL_BYTES = 1u << 1
};

/* The code a failed check returns; scio_errmsg() says which check, what it
 * expected and what it got ("stream check after_close (s): send: expected
 * ECLOSED, got 0").  A protocol error: the stream broke the stream
 * protocol of <scio/stream.h>. */
#define SCIO_STREAM_CHECK_FAILED (-EPROTO)

typedef struct scio_stream_kit {
  scio_stream_pair_fn make; /* required */
  /* Optional (NULL: those checks are skipped): a pair in which a send on
   * *a blocks until *b receives, and (for the two-way checks) a send on *b
   * until *a receives: Trio's clogged_stream_maker. */
  scio_stream_pair_fn make_clogged;
  void *arg;      /* passed to make and make_clogged */
  unsigned flags; /* enum scio_stream_kit_flags */
  /* Bytes of the large_write check: 0 means 4 MiB. */
  size_t large;
  /* Seconds each check may take before it fails as hung: 0 means 60. */
  double timeout;
} scio_stream_kit;

/* Run every check for a one-way stream (send on a, receive on b), in the
 * calling task.  A checkpoint (it runs many).  Returns 0 when every check
 * passed, or:
 *   SCIO_STREAM_CHECK_FAILED  the first check that failed, detail in
 *                             scio_errmsg();
 *   SCIO_EINVAL               kit or kit->make is NULL, a negative timeout,
 *                             or not called inside a task;
 *   SCIO_ECANCELED            the calling task was cancelled;
 *   SCIO_ENOSPC               no free instrument slot;
 *   an error of make / make_clogged, or SCIO_ENOMEM from the kit itself. */
SCIO_API int scio_stream_check_one_way(const scio_stream_kit *kit);
/* The one-way checks in both directions, and the two-way checks; the pair
 * must be two-way.  A checkpoint.  Same results as
 * scio_stream_check_one_way: 0, SCIO_STREAM_CHECK_FAILED, SCIO_EINVAL,
 * SCIO_ECANCELED, SCIO_ENOSPC, SCIO_ENOMEM or an error of make. */
SCIO_API int scio_stream_check_two_way(const scio_stream_kit *kit);
/* The two-way checks and the send_eof checks.  A checkpoint.  Same results
 * as scio_stream_check_one_way: 0, SCIO_STREAM_CHECK_FAILED, SCIO_EINVAL,
 * SCIO_ECANCELED, SCIO_ENOSPC, SCIO_ENOMEM or an error of make. */
SCIO_API int scio_stream_check_half_closeable(const scio_stream_kit *kit);

#ifdef __cplusplus
}
#endif
#endif /* SCIO_STREAMCHECK_H */
