/* The out-of-line copies of the calls that layer.h declares and internal.h
 * defines inline for the core (see SCIO__LAYER_INLINE there): layers call
 * these; link-time optimisation may inline them again. */
#define SCIO__EMIT_LAYER_CALLS 1
#include "internal.h"
