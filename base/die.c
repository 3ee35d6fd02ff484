/* hl_die: the end of the road for a state that cannot happen. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "hl_base.h"

void hl_die_at(const char *file, const char *func, int line, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* One fprintf, so that lines of two dying threads do not interleave. */
  fprintf(stderr, "heaplab: fatal: %s:%s@%d: %s\n", file, func, line, msg);
  fflush(stderr);
  abort();
}
