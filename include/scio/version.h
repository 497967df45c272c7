/* scio — version of the headers and of the library.
 *
 * The three numbers below are the only place the version is written; configure.ac
 * reads them from here.  SCIO_VERSION_HEX packs them as 0xMMmmpp so that
 * versions compare with < and >.
 */
#ifndef SCIO_VERSION_H
#define SCIO_VERSION_H

#define SCIO_VERSION_MAJOR 0
#define SCIO_VERSION_MINOR 1
#define SCIO_VERSION_PATCH 0
#define SCIO_VERSION_STRING "0.1.0"

#define SCIO_VERSION_HEX                                                      \
  ((SCIO_VERSION_MAJOR << 16) | (SCIO_VERSION_MINOR << 8) | SCIO_VERSION_PATCH)

/* True when the headers are at least version major.minor.patch. */
#define SCIO_VERSION_AT_LEAST(major, minor, patch)                            \
  (SCIO_VERSION_HEX >= (((major) << 16) | ((minor) << 8) | (patch)))

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

/* The version of the library actually linked, as SCIO_VERSION_HEX.  Not a
 * checkpoint; may be called anywhere, also outside a run.  Never fails. */
SCIO_API unsigned scio_version(void);
/* The same as a string, e.g. "0.1.0": a static string owned by the
 * library, valid for the whole run of the program.  Not a checkpoint; may
 * be called anywhere.  Never fails. */
SCIO_API const char *scio_version_string(void);


#ifdef __cplusplus
}
#endif
#endif /* SCIO_VERSION_H */
