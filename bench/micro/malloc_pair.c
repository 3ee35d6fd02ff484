/* heaplab-malloc-pair: malloc and free one block of a size, N times, with
 * nothing else live of that size: the loop a program's hottest allocation
 * makes, as the host calls it (through the PLT, under whichever malloc is
 * preloaded). scripts/callgrind-preload counts its instructions per pair
 * under heaplab's malloc library and its peers (issue 27, item 2).
 * Usage: heaplab-malloc-pair N SIZE */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: heaplab-malloc-pair N SIZE\n");
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
    sink = p;
    free(p);
  }
  (void)sink;
  return 0;
}
