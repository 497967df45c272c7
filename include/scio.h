/* scio — structured concurrency I/O for C.
 *
 * The umbrella header: a program includes <scio.h> and gets the whole public
 * API.  Each layer's header is also usable alone (<scio/core.h>, ...).
 * Later layers add their headers below, in layer order (sync, thread,
 * streams, process, net, tls).  <scio/testing.h> is deliberately not
 * included: it is for test programs only.
 */
#ifndef SCIO_H
#define SCIO_H

#include "scio/version.h"
#include "scio/error.h"
#include "scio/core.h"
#include "scio/sync.h"
#include "scio/thread.h"
#include "scio/stream.h"
#include "scio/pipe.h"
#include "scio/stapled.h"
#include "scio/channel.h"
#include "scio/buffered.h"
#include "scio/text.h"
#include "scio/streamcheck.h"
#include "scio/process.h"
#include "scio/file.h"
#include "scio/net.h"
#include "scio/tls.h"
#include "scio/dtls.h"

#endif /* SCIO_H */
