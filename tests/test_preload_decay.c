/* libheaplab-malloc.so gives freed memory back while a program makes only
 * requests that glibc serves (the issue "Reliability", item 1), and gives
 * its cached arenas back before a request fails for want of address space.
 * Run under LD_PRELOAD, not linked with heaplab. usage:
 *   test_preload_decay decay [FIRST]   HEAPLAB_ARENA_DECAY_MS=300 (CTest sets it):
 *       100,000 blocks of 500 B, freed within the decay; after a sleep past
 *       it, each of a large malloc, the free of a glibc block and a realloc
 *       of one must bring RSS down by at least half of what was freed
 *       (FIRST: the case to start from, 0..2)
 *   test_preload_decay oom     HEAPLAB_ARENA_KEEP_KIB=262144: the same
 *       blocks freed and kept; in a child under RLIMIT_AS, a request that
 *       needs that address space must succeed
 * The thresholds are behaviour, not timing: tens of MiB go back or do not,
 * and the sleeps are one-sided (longer than the decay, never racing it).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { N = 100000, SIZE = 500 };
static void *blocks[N];

#define CHECK(c, ...)                                              \
  do {                                                             \
    if (!(c)) {                                                    \
      fprintf(stderr, "test_preload_decay: FAIL %s: ", #c);       \
      fprintf(stderr, __VA_ARGS__);                                \
      fputc('\n', stderr);                                         \
      exit(1);                                                     \
    }                                                              \
  } while (0)

/* field 0: VmSize, 1: RSS, in bytes. With open and read, not stdio: fopen
 * would malloc its FILE, a class of its own, whose first pool is an arena
 * event that runs the decay by itself. */
static long statm(int field) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  CHECK(fd >= 0, "/proc/self/statm");
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  CHECK(n > 0, "/proc/self/statm");
  buf[n] = '\0';
  char *end;
  long vm = strtol(buf, &end, 10), rss = strtol(end, NULL, 10);
  return (field == 0 ? vm : rss) * sysconf(_SC_PAGESIZE);
}

static void fill_and_free(void) {
  for (int i = 0; i < N; i++) {
    blocks[i] = malloc(SIZE);
    CHECK(blocks[i] != NULL, "malloc(%d)", SIZE);
    memset(blocks[i], 0x5a, SIZE);
  }
  for (int i = 0; i < N; i++) free(blocks[i]);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0) {}
}

static int decay(int first) {
  const char *d = getenv("HEAPLAB_ARENA_DECAY_MS");
  long decay_ms = d ? atol(d) : 10;
  const char *names[] = {"malloc(100000)", "free of a glibc block", "realloc of a glibc block"};
  for (int how = first; how < 3; how++) {
    void *big = malloc(200000);   /* glibc's: over the threshold */
    CHECK(big != NULL, "malloc(200000)");
    long before = statm(1);
    fill_and_free();
    long freed = (long)N * SIZE;
    sleep_ms(decay_ms + decay_ms / 2 + 50);
    void *r = NULL;
    switch (how) {
    case 0: r = malloc(100000); memset(r, 1, 100000); free(big); break;
    case 1: free(big); break;
    case 2: r = realloc(big, 300000); CHECK(r != NULL, "realloc"); break;
    }
    long after = statm(1);
    fprintf(stderr, "test_preload_decay: %s: RSS %ld KiB before the blocks, %ld KiB after\n",
            names[how], before / 1024, after / 1024);
    CHECK(after < before + freed / 2, "%s: RSS %ld KiB, %ld KiB before %ld KiB of blocks",
          names[how], after / 1024, before / 1024, freed / 1024);
    free(r);
  }
  return 0;
}

static int oom(void) {
  fill_and_free();   /* kept: HEAPLAB_ARENA_KEEP_KIB */
  long cached = (long)N * SIZE;
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    long vm = statm(0);
    struct rlimit rl = {(rlim_t)(vm + cached / 4), (rlim_t)(vm + cached / 4)};
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(3);
    size_t request = (size_t)cached / 2;
    char *p = malloc(request);   /* glibc's mmap: needs the arenas' space */
    if (p == NULL) _exit(1);
    memset(p, 1, request);
    _exit(0);
  }
  int status;
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "the child's large malloc under RLIMIT_AS: status %d (1: NULL)", status);
  return 0;
}

int main(int argc, char **argv) {
  CHECK(dlsym(RTLD_DEFAULT, "hl_preload_threshold") != NULL,
        "libheaplab-malloc.so is not preloaded");
  if (argc > 1 && strcmp(argv[1], "decay") == 0) return decay(argc > 2 ? atoi(argv[2]) : 0);
  if (argc > 1 && strcmp(argv[1], "oom") == 0) return oom();
  fprintf(stderr, "usage: test_preload_decay decay [FIRST] | oom\n");
  return 2;
}
