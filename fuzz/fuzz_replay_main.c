/* A main() for the libFuzzer targets, for compilers without libFuzzer (gcc):
 * it reads each file named on the command line into a heap buffer of
 * exactly its size (so ASan catches a read one past the end, as under
 * libFuzzer) and calls LLVMFuzzerTestOneInput on it.  `make check' uses it
 * to replay the corpora in fuzz/corpus/.  Exit status 0 when every input
 * ran (a failing check aborts). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The whole file in an exact-size heap block; NULL on error (reported). */
static uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return NULL;
  }
  uint8_t *buf = NULL;
  long len = -1;
  if (fseek(f, 0, SEEK_END) == 0)
    len = ftell(f);
  if (len >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    /* malloc(0) may return NULL: keep one byte but report size 0. */
    buf = malloc(len ? (size_t)len : 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
      free(buf);
      buf = NULL;
    }
  }
  if (!buf)
    fprintf(stderr, "%s: cannot read\n", path);
  fclose(f);
  *size = (size_t)(len > 0 ? len : 0);
  return buf;
}

int main(int argc, char **argv) {
  int failed = 0, ran = 0;
  for (int i = 1; i < argc; i++) {
    size_t size;
    uint8_t *buf = read_file(argv[i], &size);
    if (!buf) {
      failed = 1;
      continue;
    }
    LLVMFuzzerTestOneInput(buf, size);
    free(buf);
    ran++;
  }
  fprintf(stderr, "%s: replayed %d input(s)\n", argv[0], ran);
  return failed;
}
