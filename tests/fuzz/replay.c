/* tests/fuzz/replay.c: main() for a fuzz harness without libFuzzer, so that
 * the inputs in tests/fuzz/corpus/<name>/ (the seeds and every crash found,
 * kept as regression inputs) run as plain CTest tests in every build, the
 * Release one included.
 *
 *   replay_<name> FILE|DIR...   runs LLVMFuzzerTestOneInput on each file
 *                               (a directory: each file in it, sorted)
 *
 * A harness signals a failure by aborting, as under libFuzzer; exit status 0
 * means every input passed, 2 a file that cannot be read.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  if (!buf || ferror(f)) {
    fprintf(stderr, "replay: %s: cannot read\n", path);
    fclose(f);
    free(buf);
    return -1;
  }
  fclose(f);
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
  /* a copy of exactly n bytes, so that ASan sees a read past the input */
  uint8_t *in = malloc(n ? n : 1);
  if (!in) abort();
  memcpy(in, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(in, n);
  free(in);
  return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  int files = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
      return 2;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (replay_file(argv[i]) != 0) return 2;
      files++;
      continue;
    }
    struct dirent **ents;
    int n = scandir(argv[i], &ents, NULL, by_name);
    if (n < 0) {
      fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
      return 2;
    }
    for (int k = 0; k < n; k++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], ents[k]->d_name);
      if (ents[k]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        if (replay_file(path) != 0) return 2;
        files++;
      }
      free(ents[k]);
    }
    free(ents);
  }
  printf("replay: %d inputs passed\n", files);
  return 0;
}
