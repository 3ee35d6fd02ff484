/* Process CPU time, resident memory and page faults.
 *
 * These may run inside a malloc replacement (heaplab's allocator standing
 * in for the process's malloc), where calling malloc would recurse, so
 * nothing here allocates: no fopen (it mallocs its FILE and buffer), only
 * open/read into a stack buffer and a small hand-written number parser.
 * On a system without /proc the readers return 0, as the header promises.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "hl_measure.h"

uint64_t hl_clock_monotonic_ns(void) { return hl_now_ns(); }

uint64_t hl_process_cpu_ns(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

uint64_t hl_thread_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t hl_page_faults_minor(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (uint64_t)ru.ru_minflt;
}

/* Reads up to cap - 1 bytes of a /proc file and NUL-terminates them;
 * returns the length, or -1. /proc files are generated on read and may
 * come back in several short reads, hence the loop. */
static ssize_t read_small_file(const char *path, char *buf, size_t cap) {
  int fd;
  do {
    fd = open(path, O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return -1;
  size_t len = 0;
  while (len < cap - 1) {
    ssize_t r = read(fd, buf + len, cap - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = '\0';
  return (ssize_t)len;
}

/* Parses the decimal number at *p after skipping blanks; advances *p past
 * it. Returns 0 with *ok false when there is no digit. */
static uint64_t parse_u64(const char **p, int *ok) {
  const char *s = *p;
  while (*s == ' ' || *s == '\t') s++;
  uint64_t v = 0;
  *ok = (*s >= '0' && *s <= '9');
  while (*s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
  *p = s;
  return v;
}

/* /proc/self/statm: "size resident shared text lib data dt", in pages. */
size_t hl_rss_current_bytes(void) {
  char buf[256];
  if (read_small_file("/proc/self/statm", buf, sizeof buf) <= 0) return 0;
  const char *p = buf;
  int ok;
  (void)parse_u64(&p, &ok);
  if (!ok) return 0;
  uint64_t resident = parse_u64(&p, &ok);
  if (!ok) return 0;
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0) return 0;
  return (size_t)(resident * (uint64_t)page);
}

/* /proc/self/status: a line "VmHWM:\t   123456 kB", about a third of the
 * way into a file of 1.5 KiB or so; 4 KiB of stack holds all of it.
 * The kernel reports max(its recorded mark, RSS now) but records the mark
 * only at some events (such as unmap and exit), from approximate per-CPU
 * counters: a later read may come out some pages (tens per CPU at most)
 * below an RSS read earlier. A high-water mark, not an exact one. */
/* The "\nKEY:   123 kB" line of a /proc file of at most 4 KiB, in bytes. */
static size_t proc_kb_field(const char *path, const char *key) {
  char buf[4096];
  if (read_small_file(path, buf, sizeof buf) <= 0) return 0;
  const char *p = strstr(buf, key);
  if (p == NULL) return 0;
  p += strlen(key);
  int ok;
  uint64_t kb = parse_u64(&p, &ok);
  if (!ok) return 0;
  return (size_t)(kb * 1024u);
}

size_t hl_rss_peak_bytes(void) { return proc_kb_field("/proc/self/status", "\nVmHWM:"); }

/* smaps_rollup: the totals of /proc/self/smaps, a dozen lines */
size_t hl_rss_huge_bytes(void) {
  return proc_kb_field("/proc/self/smaps_rollup", "\nAnonHugePages:");
}

uint64_t hl_file_u64(const char *path) {
  char buf[64];
  if (read_small_file(path, buf, sizeof buf) <= 0) return 0;
  const char *p = buf;
  int ok;
  uint64_t v = parse_u64(&p, &ok);
  return ok ? v : 0;
}
