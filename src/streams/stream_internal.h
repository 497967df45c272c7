/* Private: the generic stream bracket, for layers with extra operations.
 *
 * A layer that adds receive-like calls of its own (buffered's
 * receive_exactly and receive_until) must take the same "receiving" flag
 * and in-flight count that scio_receive takes, so that a second receiver
 * gets SCIO_EBUSY and a close during the call defers the free. */
#ifndef SCIO_STREAMS_STREAM_INTERNAL_H
#define SCIO_STREAMS_STREAM_INTERNAL_H

#include "scio/stream.h"

/* Check s (open, no other receiver) and enter it as a receiver: 0, or
 * SCIO_ECLOSED / SCIO_EBUSY with the detail naming `what`. */
int scio__stream_enter_receive(scio_stream *s, const char *what);
/* Leave; frees s if it was closed meanwhile and nothing else is inside. */
void scio__stream_leave_receive(scio_stream *s);

/* scio_close without the checkpoint, for a stream owned by something that
 * closes it from cleanup code (a process, a file stream's inner pipe): the
 * same effects (the free deferred while a call is inside it).  A stream
 * already being closed is left to that close.  Any stream works: only the
 * vtable is called. */
void scio__stream_close_nowait(scio_stream *s);

#endif
