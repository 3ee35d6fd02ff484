/* tests/fuzz/fuzz_sweep.c: a libFuzzer harness for the sweep file parser
 * (bench/sweep.c, through hl_sweep_check_stream in bench/commands.h).
 *
 * An input is the text of a sweep file, read through fmemopen. Beyond
 * "no crash", hl_sweep_check_stream checks what the parser promises
 * (bench/sweep.c, check_parsed and check_point): each grid's first point is
 * the sum of the grids before it, its points the product of its axes, every
 * value trimmed and non-empty, no axis twice in a grid, and each point's
 * `heaplab run` argv holds every value whole, inside its buffer. The first
 * 4 points are validated as `heaplab run` would (option, value,
 * combination), and a refusal must carry a message.
 *
 * Build and run: see tests/fuzz/CMakeLists.txt; replay_sweep replays
 * tests/fuzz/corpus/sweep/ in every build.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;   /* fmemopen refuses an empty buffer */
  FILE *f = fmemopen((void *)data, size, "r");
  if (!f) abort();
  char err[4096] = "";
  size_t points;
  int rc = hl_sweep_check_stream(f, "fuzz.sweep", 4, &points, err, sizeof err);
  fclose(f);
  if (rc != 0 && err[0] == '\0') {
    fprintf(stderr, "fuzz_sweep: refused without a message\n");
    abort();
  }
  return 0;
}
