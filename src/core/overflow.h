/* Private: naming the task whose stack overflowed (overflow.c). */
#ifndef SCIO_CORE_OVERFLOW_H
#define SCIO_CORE_OVERFLOW_H

#include "internal.h"

/* Around the scheduler of a run, in its thread: while the run is active a
 * fault in a task's guard page is reported on stderr before the process
 * dies by SIGSEGV, if SIGSEGV's disposition was the default.  Cannot fail
 * (without memory for the alternate stack there is just no report). */
void scio__overflow_guard_enter(scio__loop *l);
void scio__overflow_guard_leave(void);

#endif
