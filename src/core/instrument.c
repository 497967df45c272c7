/* Instrument hooks: a fixed array, so the scheduler's check is one load. */
#include "internal.h"

SCIO_API int scio_instrument_add(const scio_instrument *ins) {
  scio__loop *l = scio__loop_current();
  if (!l || !ins)
    return scio__seterr(SCIO_EINVAL, "instrument_add: %s",
                        l ? "instrument is NULL" : "not inside a run");
  if (l->nins == SCIO__MAX_INSTRUMENTS)
    return scio__seterr(-ENOSPC, "instrument_add: at most %d instruments",
                        SCIO__MAX_INSTRUMENTS);
  l->ins[l->nins++] = ins;
  l->budget = 0; /* the fast paths must not run while instruments watch */
  return 0;
}

SCIO_API int scio_instrument_remove(const scio_instrument *ins) {
  scio__loop *l = scio__loop_current();
  if (!l)
    return scio__seterr(SCIO_EINVAL, "instrument_remove: not inside a run");
  for (int i = 0; i < l->nins; i++)
    if (l->ins[i] == ins) {
      for (int j = i + 1; j < l->nins; j++)
        l->ins[j - 1] = l->ins[j];
      l->nins--;
      return 0;
    }
  return scio__seterr(SCIO_EINVAL, "instrument_remove: not installed");
}
