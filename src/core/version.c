#include "scio/version.h"

SCIO_API unsigned scio_version(void) { return SCIO_VERSION_HEX; }
SCIO_API const char *scio_version_string(void) { return SCIO_VERSION_STRING; }
