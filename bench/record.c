/* heaplab record -o FILE [--lib PATH] -- PROGRAM [ARGS...]
 *
 * Runs PROGRAM with libheaplab-trace.so preloaded (alloc/trace_record.c),
 * which records its allocations into FILE (docs/trace-format.md), waits for
 * it, checks that the file ends with its end chunk, and prints what it
 * recorded and the replay command line. The library is found, in order,
 * from --lib, HEAPLAB_TRACE_LIB, or beside this executable in the build
 * tree (alloc/libheaplab-trace.so). Only PROGRAM's own process records:
 * the programs it starts inherit LD_PRELOAD but not the recording (see
 * trace_record.c); its forked children stop recording.
 *
 * Exit status: PROGRAM's own when it exited (and the trace is complete); 1
 * when it was killed by a signal or the trace is incomplete; 2 for bad
 * input (no -o, no program, no library).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "hl_trace_format.h"

extern char **environ;

void hl_record_usage(FILE *f) {
  fprintf(f,
          "usage: heaplab record -o FILE [--lib PATH] -- PROGRAM [ARGS...]\n"
          "\n"
          "Runs PROGRAM with libheaplab-trace.so preloaded, recording every malloc, calloc,\n"
          "realloc, free and aligned allocation of its process (threads included, not the\n"
          "programs it starts) into FILE, a zstd-compressed trace (docs/trace-format.md).\n"
          "'heaplab run replay --input=FILE --threads=N' replays it under any --alloc.\n"
          "\n"
          "  -o FILE      the trace to write (replaced)\n"
          "  --lib PATH   libheaplab-trace.so (default: $HEAPLAB_TRACE_LIB, else\n"
          "               alloc/libheaplab-trace.so beside this heaplab)\n"
          "exit status: PROGRAM's; 1 if it was killed or the trace is incomplete; 2 bad input\n");
}

static int find_lib(const char *given, char *out, size_t len) {
  if (given && *given) {
    snprintf(out, len, "%s", given);
  } else {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(out, len, "%s/alloc/libheaplab-trace.so", exe);
  }
  return access(out, R_OK);
}

/* The end chunk's figures, or -1 with why not. */
static int read_end(const char *path, uint64_t *records, uint64_t *threads, char *why,
                    size_t whylen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(why, whylen, "cannot open it: %s", strerror(errno));
    return -1;
  }
  uint8_t h[HL_TRACE_HEADER_BYTES], e[HL_TRACE_CHUNK_BYTES + HL_TRACE_END_BYTES];
  int rc = -1;
  if (fread(h, 1, sizeof h, f) != sizeof h || memcmp(h, HL_TRACE_MAGIC, 8) != 0) {
    snprintf(why, whylen, "no trace header (was the library loaded?)");
  } else if (fseek(f, -(long)sizeof e, SEEK_END) != 0 || fread(e, 1, sizeof e, f) != sizeof e ||
             hl_trace_get_u32(e) != HL_TRACE_CHUNK_MAGIC || e[4] != HL_TRACE_CHUNK_END) {
    snprintf(why, whylen, "no end chunk (the program did not exit through exit(), or a write "
             "failed)");
  } else {
    *records = hl_trace_get_u64(e + HL_TRACE_CHUNK_BYTES);
    *threads = hl_trace_get_u64(e + HL_TRACE_CHUNK_BYTES + 24);
    rc = 0;
  }
  fclose(f);
  return rc;
}

int hl_cmd_record(int argc, char **argv) {
  const char *out = NULL, *lib = getenv("HEAPLAB_TRACE_LIB");
  int i = 0;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      hl_record_usage(stdout);
      return 0;
    }
    if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--lib") == 0) && i + 1 < argc) {
      if (argv[i][1] == 'o') out = argv[++i];
      else lib = argv[++i];
    } else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2]) {
      out = argv[i] + 2;
    } else if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--lib") == 0) {
      fprintf(stderr, "heaplab record: %s needs a value (%s)\n", argv[i],
              argv[i][1] == 'o' ? "-o FILE" : "--lib PATH");
      return 2;
    } else {
      fprintf(stderr, "heaplab record: unknown argument '%s'; accepted: -o FILE, --lib PATH, "
              "then -- PROGRAM [ARGS]\n", argv[i]);
      return 2;
    }
  }
  if (!out || i >= argc) {
    fprintf(stderr, "heaplab record: %s\n", !out ? "-o FILE is required" : "no PROGRAM after --");
    hl_record_usage(stderr);
    return 2;
  }
  char path[PATH_MAX + 32];
  if (find_lib(lib, path, sizeof path) != 0) {
    fprintf(stderr, "heaplab record: cannot read the recording library '%s'; build it (cmake "
            "target heaplab-trace, not built under the sanitizers) or name it with --lib or "
            "HEAPLAB_TRACE_LIB\n", path);
    return 2;
  }
  /* LD_PRELOAD: ours first, then what the environment already preloads
   * (another allocator, which the recorder then passes calls to) */
  const char *pre = getenv("LD_PRELOAD");
  size_t n = strlen(path) + (pre ? strlen(pre) : 0) + 2;
  char *preload = malloc(n);
  if (!preload) return 1;
  snprintf(preload, n, "%s%s%s", path, pre && *pre ? ":" : "", pre ? pre : "");
  unlink(out);   /* a stale file is never taken for this run's */
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "heaplab record: fork: %s\n", strerror(errno));
    free(preload);
    return 1;
  }
  if (pid == 0) {
    char spid[24];
    snprintf(spid, sizeof spid, "%lld", (long long)getpid());
    if (setenv("LD_PRELOAD", preload, 1) != 0 || setenv("HEAPLAB_TRACE_OUT", out, 1) != 0 ||
        setenv("HEAPLAB_TRACE_PID", spid, 1) != 0)
      _exit(127);
    execvp(argv[i], argv + i);
    fprintf(stderr, "heaplab record: cannot run '%s': %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  free(preload);
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) {
      fprintf(stderr, "heaplab record: waitpid: %s\n", strerror(errno));
      return 1;
    }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
    fprintf(stderr, "heaplab record: '%s' did not run (exit status 127)\n", argv[i]);
    return 1;
  }
  uint64_t records = 0, threads = 0;
  char why[256];
  if (read_end(out, &records, &threads, why, sizeof why) != 0) {
    fprintf(stderr, "heaplab record: %s is incomplete: %s\n", out, why);
    return 1;
  }
  if (WIFSIGNALED(st)) {
    fprintf(stderr, "heaplab record: '%s' was killed by signal %d\n", argv[i], WTERMSIG(st));
    return 1;
  }
  fprintf(stderr, "heaplab record: %llu operations in %llu threads into %s; replay: heaplab run "
          "replay --input=%s --threads=%llu\n", (unsigned long long)records,
          (unsigned long long)threads, out, out, (unsigned long long)threads);
  return WEXITSTATUS(st);
}
