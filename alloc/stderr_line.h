/* One line on stderr with write(2), for the libraries that run inside a
 * host's malloc (libheaplab-malloc.so, libheaplab-trace.so): no stdio lock
 * (the host may hold it), no allocation (we may be the allocator). A
 * header of one static function, so that each library keeps its own copy
 * behind its hidden visibility. */
#ifndef HL_STDERR_LINE_H
#define HL_STDERR_LINE_H

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

/* "PREFIX: message\n", cut to 1 KiB; write's short writes are retried. */
static void hli_stderr_line(const char *prefix, const char *fmt, va_list ap) {
  char buf[1024];
  int k = snprintf(buf, sizeof buf, "%s: ", prefix);
  if (k < 0) k = 0;
  int m = vsnprintf(buf + k, sizeof buf - (size_t)k - 1, fmt, ap);
  size_t n = (size_t)k + (m < 0 ? 0 : (size_t)m);
  if (n > sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  for (size_t off = 0; off < n;) {
    ssize_t w = write(STDERR_FILENO, buf + off, n - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
}

#endif /* HL_STDERR_LINE_H */
