/* A program built by `make installcheck' against the installed scio only,
 * with the flags of `pkg-config --cflags --libs scio', to prove that the
 * installed headers, library and scio.pc work together. */
#include <scio.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
  const char *msg = scio_strerror(SCIO_ECANCELED);

  printf("scio %s (headers %s)\n", scio_version_string(), SCIO_VERSION_STRING);
  printf("SCIO_ECANCELED: %s\n", msg);
  if (strcmp(scio_version_string(), SCIO_VERSION_STRING) != 0) {
    fprintf(stderr, "consumer: library and headers disagree on the version\n");
    return 1;
  }
  if (msg == NULL || msg[0] == '\0') {
    fprintf(stderr, "consumer: scio_strerror gave no text\n");
    return 1;
  }
  return 0;
}
