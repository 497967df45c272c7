/* Private: what the condition variable needs of the lock. */
#ifndef SCIO_SYNC_LOCK_H
#define SCIO_SYNC_LOCK_H

#include "scio/sync.h"

/* 1 if lock is an initialised lock, else 0. */
int scio__lock_valid(const scio_lock *lock);

/* 0 if the current task holds the (valid) lock, else SCIO_EPERM with a
 * detail naming the call `what`. */
int scio__lock_check_owner(const scio_lock *lock, const char *what);

#endif
