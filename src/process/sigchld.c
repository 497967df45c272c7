/* Exit watching without pidfd: interim version that polls (replaced by the
 * SIGCHLD receiver of sigwatch.c). */
#include "process_internal.h"

int scio__sigchld_wait(void) { return scio_sleep(0.005); }
