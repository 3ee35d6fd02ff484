/* tests/fuzz/fuzz_compare.c: a libFuzzer harness for the reader of result
 * lines behind `heaplab compare` (bench/compare.c, through
 * hl_compare_streams in bench/commands.h), report included.
 *
 * An input is a file of JSON lines, given as both A and B (two fmemopen
 * streams). Beyond "no crash": a refusal carries a message, and a file
 * compared with itself changes nothing, so no row of the report's tables
 * ends in "better *" or "worse *" (every figure has the same samples on
 * both sides).
 *
 * Build and run: see tests/fuzz/CMakeLists.txt; replay_compare replays
 * tests/fuzz/corpus/compare/ in every build.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;   /* fmemopen refuses an empty buffer */
  FILE *a = fmemopen((void *)data, size, "r"), *b = fmemopen((void *)data, size, "r");
  char *report = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&report, &len);
  if (!a || !b || !out) abort();
  char err[1024] = "";
  int rc = hl_compare_streams(a, "a.jsonl", b, "b.jsonl", out, err, sizeof err);
  fclose(a);
  fclose(b);
  fclose(out);
  if (rc != 0 && (rc != 2 || err[0] == '\0')) {
    fprintf(stderr, "fuzz_compare: exit status %d, message '%s'\n", rc, err);
    abort();
  }
  /* a verdict is the last cell of a table row (a heading echoes config
   * values, which may hold any text) */
  for (char *l = rc == 0 ? report : NULL; l && *l;) {
    char *nl = strchr(l, '\n');
    size_t n = nl ? (size_t)(nl - l) : strlen(l);
    if (n > 2 && l[0] == '|' && l[n - 1] == '|' &&
        ((n >= 11 && memcmp(l + n - 11, " better * |", 11) == 0) ||
         (n >= 10 && memcmp(l + n - 10, " worse * |", 10) == 0))) {
      fprintf(stderr, "fuzz_compare: a file compared with itself changed:\n%s\n", report);
      abort();
    }
    l = nl ? nl + 1 : NULL;
  }
  free(report);
  return 0;
}
