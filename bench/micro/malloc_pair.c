/* heaplab-malloc-pair: malloc and free one block of a size, N times, with
 * nothing else live of that size: the loop a program's hottest allocation
 * makes, as the host calls it (through the PLT, under whichever malloc is
 * preloaded). scripts/callgrind-preload counts its instructions per pair
 * under heaplab's malloc library and its peers (issue 27, item 2).
 * With a third argument `touch`, each block gets a byte written per 4 KiB
 * page, as a program that uses what it allocates: the page faults of a
 * fresh mapping show (huge blocks, docs/measurements.md "Huge blocks").
 * Usage: heaplab-malloc-pair N SIZE [touch] */
#include <string.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 3 && !(argc == 4 && strcmp(argv[3], "touch") == 0)) {
    fprintf(stderr, "usage: heaplab-malloc-pair N SIZE [touch]\n");
    return 2;
  }
  char *end;
  long n = strtol(argv[1], &end, 10);
  if (*end || n < 0) {
    fprintf(stderr, "heaplab-malloc-pair: N '%s': accepted: an integer >= 0\n", argv[1]);
    return 2;
  }
  long size = strtol(argv[2], &end, 10);
  if (*end || size < 1) {
    fprintf(stderr, "heaplab-malloc-pair: SIZE '%s': accepted: an integer >= 1\n", argv[2]);
    return 2;
  }
  void *volatile sink = NULL;
  for (long i = 0; i < n; i++) {
    void *p = malloc((size_t)size);
    if (!p) {
      fprintf(stderr, "heaplab-malloc-pair: out of memory\n");
      return 1;
    }
    if (argc == 4)
      for (long k = 0; k < size; k += 4096) ((volatile char *)p)[k] = (char)i;
    sink = p;
    free(p);
  }
  (void)sink;
  return 0;
}
