/* libheaplab-malloc.so: the pool allocator as the process's malloc, for any
 * program started with LD_PRELOAD (CPython with PYTHONMALLOC=malloc
 * included, so that every Python object lives in heaplab's pools).
 *
 * glibc's manual ("Replacing malloc") lists what a replacement must define:
 * malloc, free, calloc, realloc, and for full coverage aligned_alloc,
 * malloc_usable_size, memalign, posix_memalign, pvalloc, valloc; we add
 * reallocarray and cfree. libstdc++'s operator new and delete call malloc
 * and free (aligned new calls aligned_alloc), so C++ needs nothing more.
 *
 * Who serves what:
 *   1..limit bytes, alignment <= the geometry's      the pools (hl_pool_*)
 *   0 bytes                                          the pools, as 1 byte
 *   larger, large=medium                             huge blocks (huge.c): every
 *                                                    size, any alignment
 *   larger, or over-aligned, or before we are ready  glibc, under the names
 *                                                    it exports for this
 *                                                    (__libc_malloc...)
 * limit is the geometry's threshold (large=medium: PTRDIFF_MAX, huge blocks
 * taking what the classes do not), less the debug header and guards with
 * alloc-debug=on (see below). The shim sends large requests to glibc itself
 * rather than through hl_pool_malloc's raw layer: that skips the pools'
 * lock, and keeps "in one of our arenas" equivalent to "ours" (the raw
 * layer under the debug hooks would hand out glibc blocks with a header in
 * front, which glibc's free could not take back).
 *
 * Foreign pointers. A block we did not serve (allocated by glibc before we
 * were ready, during our own set-up, or by glibc internally through
 * __libc_malloc, or any block of glibc's above) is recognised by the radix
 * tree (hl_pool_owns: not in one of our arenas) and goes back to glibc:
 * __libc_free, __libc_realloc, glibc's malloc_usable_size. A glibc block
 * stays in glibc when realloc shrinks it below the threshold (CPython's
 * obmalloc does the same with blocks it does not manage).
 *
 * Alignment: a pool block has the geometry's alignment, 16 in `modern` (the
 * default), as glibc's malloc. `classic` and custom geometries with 8 give
 * 8-byte alignment to every size, as CPython's obmalloc did before 3.8: the
 * researcher's choice, not a warning on every process's stderr (test suites
 * compare stderr), and what the README says.
 *
 * realloc(p, 0) returns a minimal block and frees p (the raw layer's rule,
 * hl_raw.h, as jemalloc and mimalloc do); glibc's frees p and returns NULL.
 * Failures return NULL with errno = ENOMEM (EINVAL for a bad alignment).
 *
 * Set-up. No constructor is early enough: the dynamic loader and libc call
 * malloc before any constructor of ours runs. So the first call sets up:
 * `limit` is 0 until the pools are ready, so every request falls off the
 * fast path into a slow one that claims the set-up by a CAS on `state`.
 * Set-up may allocate (through glibc's functions that call malloc); such a
 * nested call, or a call from another thread meanwhile, finds the state
 * taken and is served by glibc: its block is foreign and goes back to glibc
 * when freed. The shim keeps no thread-local state of its own (a TLS access
 * in the general-dynamic model may itself allocate); the per-thread caches
 * (tcache=magazine|heap, tcache.h) use the initial-exec model, which is safe
 * in a library loaded at start-up: preload it, never dlopen it.
 *
 * Configuration: HEAPLAB_* variables through base/config.c's table, one
 * variable at a time, so that a bad one costs only itself: it is reported
 * once on stderr (variable, value, accepted values, from config.c) and the
 * default stays. A preloaded library must never exit its host. Forced:
 * alloc=pool (HEAPLAB_ALLOC=anything else is reported and ignored) and
 * threads > 1, so that hl_alloc_init puts the pools behind their lock: the
 * host may start threads at any time. Its defaults are the option table's
 * library column (`heaplab list` shows them: tcache, arena-keep-kib,
 * arena-decay-ms, pool-colour, pool-retire). HEAPLAB_CONFIG files are not read
 * (this library reads only the environment); HEAPLAB_THREADS is ignored.
 * Every other allocator option applies as in the driver (geometry, tcache,
 * tcache-kib, arena-keep-kib, arena-decay-ms, arena-release, arena-huge, pool-requeue,
 * pool-retire, alloc-debug).
 * HEAPLAB_STATS=1 (or HEAPLAB_ALLOC_STATS=on) prints the statistics at exit
 * as text, HEAPLAB_STATS=json as one JSON object, on stderr or into the file
 * HEAPLAB_STATS_FILE names (print_stats).
 *
 * alloc-debug=on (HEAPLAB_ALLOC_DEBUG=on): the debug hooks of debug.c check
 * the blocks the pools serve. A debug block is the request plus a header
 * and trailing guard (hli_debug_overhead: 72 bytes in `modern`), so the pools
 * serve requests up to threshold minus that (440 bytes in `modern`); larger
 * ones go to glibc unchecked, since a debug block outside our arenas could
 * not be told from a foreign one. The hooks abort on a bad free of one of
 * our blocks; foreign pointers never reach them. The sizes come from
 * debug.c itself (hli_debug_overhead, hli_debug_size), so its layout lives
 * in one place.
 *
 * fork: pthread_atfork(hl_alloc_fork_*) is registered by the constructor
 * (not by the lazy set-up, which may run inside glibc code that holds the
 * atfork lock), so a child never inherits the pools' lock held.
 *
 * Symbols: the library is built with hidden visibility and a version script
 * (preload.map) that exports only the functions above and two for tests
 * (hl_preload_block_size, hl_preload_threshold), so that heaplab's own
 * functions inside it never bind to, or are bound by, another copy of them
 * in the host (the heaplab driver links hl_alloc statically).
 */
#define _GNU_SOURCE   /* RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc_internal.h"
#include "hl_alloc.h"
#include "hl_config.h"
#include "stderr_line.h"

#define HL_EXPORT __attribute__((visibility("default")))

/* glibc's allocator under its own names (exported by libc.so.6 for
 * replacements to call; not declared by its headers). */
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t nelem, size_t elsize);
void *__libc_realloc(void *p, size_t size);
void __libc_free(void *p);
void *__libc_memalign(size_t alignment, size_t size);

extern char **environ;

HL_EXPORT void *malloc(size_t n);
HL_EXPORT void free(void *p);
HL_EXPORT void *calloc(size_t nelem, size_t elsize);
HL_EXPORT void *realloc(void *p, size_t n);
HL_EXPORT void *reallocarray(void *p, size_t nmemb, size_t size);
HL_EXPORT int posix_memalign(void **out, size_t alignment, size_t n);
HL_EXPORT void *aligned_alloc(size_t alignment, size_t n);
HL_EXPORT void *memalign(size_t alignment, size_t n);
HL_EXPORT void *valloc(size_t n);
HL_EXPORT void *pvalloc(size_t n);
HL_EXPORT size_t malloc_usable_size(void *p);
HL_EXPORT void cfree(void *p);
HL_EXPORT size_t hl_preload_block_size(const void *p);
HL_EXPORT size_t hl_preload_threshold(void);

/* ---- state -------------------------------------------------------------- */

enum { UNSET, SETTING_UP, SET };
static int32_t state;             /* UNSET -> SETTING_UP -> SET, by one thread */
/* The largest request the pools serve; 0 until they are ready, and for good
 * when set-up failed. Written once, with release, after everything below;
 * the fast paths' acquire load of it pairs with that store, so a thread
 * that sees it non-zero sees the pools, pool_align and debug set up. */
static size_t limit;
/* malloc's bound: limit when the debug hooks are off, else 0 (every request
 * then takes malloc_slow, which checks where the block came from). Set with
 * limit, the same way. */
static size_t fast_limit;
static size_t pool_align;         /* the geometry's alignment */
/* The largest request a pool or span class serves (hl_preload_threshold);
 * limit is larger when huge blocks serve the rest (large=medium). */
static size_t classes_limit;
static bool debug;                /* alloc-debug=on */
enum { STATS_OFF, STATS_TEXT, STATS_JSON };
static int stats_at_exit;         /* HEAPLAB_STATS */
static uint64_t libc_requests;    /* served by glibc since set-up (relaxed) */
static int stats_fd = -1;         /* HEAPLAB_STATS: a copy of stderr (print_stats) */
static dev_t stats_dev;           /* ... and the file it was a copy of */
static ino_t stats_ino;
static char stats_file[4096];     /* HEAPLAB_STATS_FILE: where the statistics go instead */

static inline size_t load_limit(void) { return hl_atomic_c11_load_acquire_size(&limit); }

/* One line on stderr (stderr_line.h). */
HL_PRINTF(1, 2) static void warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hli_stderr_line("heaplab-malloc", fmt, ap);
  va_end(ap);
}

/* ---- configuration ------------------------------------------------------ */

/* Set-up's scratch: three configurations of ~10 KiB each and a statistics
 * record. Not on the stack, since the first malloc may run on a small one,
 * and not in static storage either, where a host would keep them resident
 * for its lifetime (28 KiB under CPython): mapped for set-up, unmapped after
 * it. Only the set-up thread touches them. */
typedef struct setup_scratch {
  hl_config_t cfg, trial, defaults;
  hl_alloc_stats_t probe;
} setup_scratch_t;

/* HEAPLAB_STATS: a flag's values (on: text), or json. */
static bool parse_stats(const char *v, int *out) {
  static const struct { const char *name; int mode; } values[] = {
      {"1", STATS_TEXT}, {"on", STATS_TEXT}, {"yes", STATS_TEXT}, {"true", STATS_TEXT},
      {"json", STATS_JSON}, {"0", STATS_OFF}, {"off", STATS_OFF}, {"no", STATS_OFF},
      {"false", STATS_OFF}, {"", STATS_OFF}};
  for (size_t i = 0; i < HL_ARRAY_LEN(values); i++)
    if (strcmp(v, values[i].name) == 0) {
      *out = values[i].mode;
      return true;
    }
  warn("environment variable HEAPLAB_STATS: invalid value '%s'; accepted: 1, on, yes, true "
       "(text), json, 0, off, no, false; ignored", v);
  return false;
}

static void load_environment(setup_scratch_t *sc) {
  /* Read by this library or by other parts of heaplab, not options. */
  static const char *const extra_ok[] = {"HEAPLAB_STATS", "HEAPLAB_STATS_FILE",
                                         "HEAPLAB_MICRO_ITERATIONS", NULL};
  /* The library's own defaults, where the option table's library column
   * says (tcache=heap-magazine: a host's threads are unknown in number, and
   * CPython wants the block it has just freed back; one arena
   * kept and a 10 ms decay: a host's peak RSS counts every arena kept;
   * coloured pool headers; docs/measurements.md, "The library's defaults",
   * has the measurements);
   * every HEAPLAB_* variable still chooses. */
  hl_config_defaults_for(&sc->cfg, HL_DEFAULTS_LIBRARY);
  hl_config_defaults_for(&sc->defaults, HL_DEFAULTS_LIBRARY);
  for (char **e = environ; e && *e; e++) {
    if (strncmp(*e, "HEAPLAB_", 8) != 0) continue;
    if (strncmp(*e, "HEAPLAB_STATS=", 14) == 0) {
      int mode;
      if (parse_stats(*e + 14, &mode)) stats_at_exit = mode;
      continue;
    }
    if (strncmp(*e, "HEAPLAB_STATS_FILE=", 19) == 0) {
      if (strlen(*e + 19) < sizeof stats_file) memcpy(stats_file, *e + 19, strlen(*e + 19) + 1);
      else warn("HEAPLAB_STATS_FILE: the path is longer than %zu bytes; ignored, the "
                "statistics go to stderr", sizeof stats_file - 1);
      continue;
    }
    if (strncmp(*e, "HEAPLAB_CONFIG=", 15) == 0) {
      if ((*e)[15] != '\0')
        warn("HEAPLAB_CONFIG=%s: the preload library reads only HEAPLAB_* variables, not "
             "config files; ignored", *e + 15);
      continue;
    }
    /* One variable at a time: hl_config_load_env stops at the first bad
     * one, and the others must still apply. trial keeps cfg intact when
     * this one fails. */
    char err[1024];
    char *one[2] = {*e, NULL};
    sc->trial = sc->cfg;
    if (hl_config_load_env(&sc->trial, one, extra_ok, err, sizeof err) != 0 ||
        hl_config_check_available(&sc->trial, 0, err, sizeof err) != 0) {
      warn("%s; ignored, the default stays", err);
      continue;
    }
    sc->cfg = sc->trial;
  }
  if (sc->cfg.alloc != HL_ALLOC_POOL) {
    warn("HEAPLAB_ALLOC=%s: the preload library always uses alloc=pool; ignored",
         hl_config_choice_name(HL_OPT_ALLOC, (int)sc->cfg.alloc));
    sc->cfg.alloc = HL_ALLOC_POOL;
  }
  if (sc->cfg.alloc_stats && stats_at_exit == STATS_OFF) stats_at_exit = STATS_TEXT;
  if (stats_at_exit != STATS_OFF && stats_file[0] == '\0') {
    struct stat st;
    stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 100);
    if (stats_fd >= 0 && fstat(stats_fd, &st) == 0) {
      stats_dev = st.st_dev;
      stats_ino = st.st_ino;
    } else if (stats_fd >= 0) {
      close(stats_fd);
      stats_fd = -1;
    }
  }
  sc->cfg.threads = 2;   /* any value > 1: the pools behind their lock */
}

/* ---- set-up ------------------------------------------------------------- */

static void set_up_with(setup_scratch_t *sc) {
  char err[1024];
  load_environment(sc);
  int bad = hl_alloc_check_config(&sc->cfg, err, sizeof err);
  if (bad && sc->cfg.pool_colour) {
    /* HEAPLAB_POOL_COLOUR=on with pools it cannot colour: drop the colours
     * rather than the geometry asked for, if that is what was wrong */
    sc->trial = sc->cfg;
    sc->trial.pool_colour = false;
    char other[512];
    if (hl_alloc_check_config(&sc->trial, other, sizeof other) == 0) {
      warn("%s; ignored, pool-colour=off", err);
      sc->cfg = sc->trial;
      bad = 0;
    }
  }
  if (bad) {
    char def[64];
    hl_config_format(&sc->defaults, HL_OPT_GEOMETRY, def, sizeof def);
    warn("%s; ignored, the default geometry '%s' stays", err, def);
    sc->cfg.geometry = sc->defaults.geometry;
    memcpy(sc->cfg.geometry_custom, sc->defaults.geometry_custom,
           sizeof sc->cfg.geometry_custom);
  }
  /* Before the hooks turn on: from here on free() asks the radix tree
   * first, so a foreign pointer never reaches them. Release: pairs with
   * free()'s acquire load of debug. */
  hl_atomic_c11_store_release_bool(&debug, sc->cfg.alloc_debug);
  if (hl_alloc_init(&sc->cfg, err, sizeof err) != 0) {
    warn("cannot set up the pool allocator: %s; glibc serves every request", err);
    return;
  }
  hl_alloc_stats(&sc->probe);   /* the geometry, as alloc.c resolved it */
  size_t lim = (size_t)sc->probe.max_size;   /* the threshold, or large=medium's largest class */
  /* large=medium: above the spans, huge blocks (huge.c), so every size */
  size_t classes = lim;
  if (hli_huge_enabled()) lim = (size_t)PTRDIFF_MAX;
  pool_align = (size_t)sc->probe.alignment;
  if (sc->cfg.alloc_debug) {
    /* debug.c's own figure: the header and guard a debug block adds */
    size_t over = hli_debug_overhead();
    if (lim <= over) {
      warn("HEAPLAB_ALLOC_DEBUG=on: the threshold leaves no room for the debug header and "
           "guards; alloc-debug is off");
      hl_alloc_reset();
      sc->cfg.alloc_debug = false;
      if (hl_alloc_init(&sc->cfg, err, sizeof err) != 0) {
        warn("cannot set up the pool allocator: %s; glibc serves every request", err);
        return;
      }
      hl_atomic_c11_store_release_bool(&debug, false);   /* as above */
    } else {
      lim -= over;
      classes -= over;
    }
  }
  classes_limit = classes;
  /* Release: pairs with load_limit() in every entry point (see `limit`). */
  hl_atomic_c11_store_release_size(&fast_limit, debug ? 0 : lim);
  hl_atomic_c11_store_release_size(&limit, lim);
}

static void set_up(void) {
  setup_scratch_t *sc = hl_os_map_aligned(sizeof *sc, 0);   /* page-aligned */
  if (sc == NULL) {
    warn("cannot set up the pool allocator: no memory for its configuration (%zu bytes); "
         "glibc serves every request", sizeof *sc);
    return;
  }
  set_up_with(sc);
  hl_os_unmap(sc, sizeof *sc);
}

/* The limit, once set up; 0 while another call sets up (this one is then
 * nested in it, or another thread's) or when set-up failed. */
static HL_NOINLINE size_t limit_slow(void) {
  /* Acquire on failure: pairs with the release below, for a caller that
   * finds the state SET and reads the limit. */
  if (!hl_atomic_c11_cas_acq_rel_i32(&state, UNSET, SETTING_UP))
    return load_limit();
  set_up();
  hl_atomic_c11_store_release_i32(&state, SET);
  return load_limit();
}

static inline size_t pools_limit(void) {
  size_t l = load_limit();
  return HL_LIKELY(l != 0) ? l : limit_slow();
}

/* Where the statistics go. HEAPLAB_STATS_FILE names a file, opened at exit
 * (appended to, created if need be). Otherwise stderr: programs may close
 * it before they exit (coreutils' close_stdout does, from an atexit handler
 * that runs before our destructor), so set-up keeps a copy of it, high and
 * close-on-exec so that it neither takes a descriptor number the program
 * expects nor leaks into the programs it runs. The program may as well
 * close that copy, or put a file of its own on its number (dup2, closefrom
 * then open): the copy is used only if it is still the file stderr was at
 * set-up (same device and inode), else descriptor 2 as it is at exit. */
static int stats_open(bool *close_after) {
  *close_after = false;
  if (stats_file[0] != '\0') {
    int fd = open(stats_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd >= 0) {
      *close_after = true;
      return fd;
    }
    warn("HEAPLAB_STATS_FILE=%s: cannot open: %s; the statistics go to stderr", stats_file,
         strerror(errno));
    return STDERR_FILENO;
  }
  struct stat st;
  if (stats_fd >= 0 && fstat(stats_fd, &st) == 0 && st.st_dev == stats_dev &&
      st.st_ino == stats_ino) {
    *close_after = true;
    return stats_fd;
  }
  return STDERR_FILENO;   /* not ours any more: left as the program has it */
}

static void print_stats(void) {
  static hl_alloc_stats_t s;
  hl_alloc_stats(&s);   /* before fdopen allocates */
  hl_alloc_stats_process(&s);
  uint64_t libc = hl_atomic_c11_load_relaxed_u64(&libc_requests);
  bool close_after;
  int fd = stats_open(&close_after);
  FILE *f = fdopen(fd, "w");   /* "a" would set O_APPEND on stderr's description */
  if (f == NULL) {
    if (close_after) close(fd);
    return;
  }
  if (stats_at_exit == STATS_JSON) {
    /* one object, a line per part; "format" names this layout
     * (docs/malloc-library.md, "Statistics") */
    fprintf(f, "{\"format\": \"heaplab-malloc-stats/1\", \"pid\": %ld, \"libc_requests\": %llu,\n",
            (long)getpid(), (unsigned long long)libc);
    hl_alloc_stats_print_json(&s, f);
    fprintf(f, "}\n");
  } else {
    fprintf(f, "heaplab-malloc: statistics of process %ld at exit\n", (long)getpid());
    hl_alloc_stats_print(&s, f);
    fprintf(f, "\n%-22s = %15llu   %s\n", "libc_requests", (unsigned long long)libc,
            "requests served by glibc: above the threshold or over-aligned");
  }
  if (close_after) fclose(f);   /* closes fd */
  else fflush(f);               /* stderr's descriptor stays the program's */
}

/* Runs when the loader initialises this library: after the loader's and
 * libc's first mallocs, before the program's constructors. */
__attribute__((constructor)) static void preload_constructor(void) {
  (void)pools_limit();
  if (load_limit() != 0)
    (void)pthread_atfork(hl_alloc_fork_prepare, hl_alloc_fork_parent, hl_alloc_fork_child);
}

/* After the program's own destructors and atexit handlers (the loader
 * finalises a preloaded library after the program): the last word. */
__attribute__((destructor)) static void preload_destructor(void) {
  if (stats_at_exit != STATS_OFF && load_limit() != 0) print_stats();
}

/* ---- the paths ---------------------------------------------------------- */

static inline void count_libc(void) {
  /* Relaxed: a statistic, read once at exit. */
  hl_atomic_c11_add_relaxed_u64(&libc_requests, 1);
}

/* p came from hl_pool_malloc/calloc/realloc for n bytes (n <= limit). */
static inline void *from_pools(void *p, size_t n) {
  if (HL_UNLIKELY(p == NULL)) {
    errno = ENOMEM;
    return NULL;
  }
  /* With the hooks on, a block can leave the arenas only when no arena
   * could be mapped (pool_malloc falls back to the raw layer): move it to a
   * plain glibc block, which free() will recognise as foreign. */
  if (HL_UNLIKELY(hl_atomic_c11_load_relaxed_bool(&debug)) && !hl_pool_owns(p)) {
    void *q = __libc_malloc(n);
    if (q) memcpy(q, p, n);
    hl_pool_free(p);
    return q;
  }
  return p;
}

static inline bool owned(const void *p) { return hl_pool_owns(p); }

/* Bytes the caller of an owned block may use. */
static inline size_t owned_usable_size(const void *p) {
  if (HL_UNLIKELY(hl_atomic_c11_load_relaxed_bool(&debug))) return hli_debug_size(p);
  return hl_pool_block_size(p);
}

/* ---- glibc's side: decay and out of memory ----------------------------------
 * The requests glibc serves bypass alloc.c, so they poll the pools' decay
 * here (hli_alloc_decay_poll: one relaxed load unless an arena waits, and
 * then a clock read; the call to glibc behind it is slow already), and when
 * glibc fails they give back every arena cached and the thread caches
 * (hli_alloc_release_all; no lock of ours is held on these paths) and try once
 * more: the arenas kept may be the very address space glibc lacks. Only
 * once set up (limit != 0): before, the pools do not exist. */
static inline void libc_poll(size_t l) {
  if (HL_LIKELY(l != 0)) hli_alloc_decay_poll();
}

/* r: glibc's answer; true when it failed for want of memory and the pools
 * gave back what they cache, so that the caller asks glibc once more. */
static inline bool libc_retry(const void *r, size_t l) {
  if (HL_LIKELY(r != NULL) || l == 0 || errno != ENOMEM) return false;
  hli_alloc_release_all();
  errno = ENOMEM;
  return true;
}

static HL_NOINLINE void *malloc_slow(size_t n) {
  size_t l = pools_limit();
  if (n == 0 && l != 0) n = 1;
  if (n - 1 < l) return from_pools(hl_pool_malloc(n), n);
  if (l != 0) count_libc();
  libc_poll(l);
  void *p = __libc_malloc(n);   /* sets errno on failure */
  return libc_retry(p, l) ? __libc_malloc(n) : p;
}

void *malloc(size_t n) {
  /* 1..limit; 0 wraps around, and fast_limit is 0 until set up. A tail
   * call: without the hooks every block comes from the arenas, and NULL
   * only from glibc (the raw layer, when no arena can be mapped), which has
   * set errno. Acquire: pairs with set-up's release store (see `limit`). */
  if (HL_LIKELY(n - 1 < hl_atomic_c11_load_acquire_size(&fast_limit))) return hl_pool_malloc(n);
  return malloc_slow(n);
}

void free(void *p) {
  /* Without the hooks hl_pool_free sends a pointer outside our arenas (NULL
   * included) to the raw layer, which is glibc's free here; with them, the
   * hooks would report it as not ours, so it goes to glibc first. Acquire:
   * pairs with set-up's release store of debug. */
  if (HL_UNLIKELY(hl_atomic_c11_load_acquire_bool(&debug)) && !owned(p)) {
    hli_alloc_decay_poll();   /* debug is set only once the pools are */
    __libc_free(p);
    return;
  }
  hl_pool_free(p);
}

void cfree(void *p) { free(p); }

void *calloc(size_t nelem, size_t elsize) {
  size_t n;
  if (HL_UNLIKELY(__builtin_mul_overflow(nelem, elsize, &n))) {
    errno = ENOMEM;
    return NULL;
  }
  size_t l = pools_limit();
  if (n == 0 && l != 0) nelem = elsize = n = 1;
  if (n - 1 < l) return from_pools(hl_pool_calloc(nelem, elsize), n);
  if (l != 0) count_libc();
  libc_poll(l);
  void *p = __libc_calloc(nelem, elsize);
  return libc_retry(p, l) ? __libc_calloc(nelem, elsize) : p;
}

/* An owned block grows past the pools: into glibc. */
static void *move_to_libc(void *p, size_t n) {
  size_t l = load_limit();
  libc_poll(l);
  void *q = __libc_malloc(n);
  if (libc_retry(q, l)) q = __libc_malloc(n);
  if (q == NULL) return NULL;   /* errno from glibc; p untouched */
  count_libc();
  size_t have = owned_usable_size(p);
  memcpy(q, p, have < n ? have : n);
  hl_pool_free(p);
  return q;
}

void *realloc(void *p, size_t n) {
  if (p == NULL) return malloc(n);
  if (n == 0) n = 1;
  if (!owned(p)) {   /* foreign: glibc's, stays there */
    size_t l = load_limit();
    libc_poll(l);
    void *q = __libc_realloc(p, n);   /* p untouched on failure */
    return libc_retry(q, l) ? __libc_realloc(p, n) : q;
  }
  /* owned: the pools are set up */
  if (n - 1 < load_limit()) return from_pools(hl_pool_realloc(p, n), n);
  return move_to_libc(p, n);
}

void *reallocarray(void *p, size_t nmemb, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(nmemb, size, &n)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, n);
}

/* alignment: a power of two. Pool blocks are aligned to the geometry's
 * alignment (every class is a multiple of it, and so is the pool header);
 * a span's blocks to their size's lowest bit (a 4 KiB class: 4 KiB). */
static void *aligned_malloc(size_t alignment, size_t n) {
  size_t l = pools_limit();
  if (n == 0 && l != 0) n = 1;
  if (alignment <= pool_align) {
    if (n - 1 < l) return from_pools(hl_pool_malloc(n), n);
  } else if (n - 1 < l) {
    /* large=medium: a span class aligned to it, if one is */
    void *p = hli_pool_malloc_aligned(alignment, n);
    if (p) return p;
  }
  if (l != 0) count_libc();
  libc_poll(l);
  void *p = __libc_memalign(alignment, n);   /* sets errno on failure */
  return libc_retry(p, l) ? __libc_memalign(alignment, n) : p;
}

static inline bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

int posix_memalign(void **out, size_t alignment, size_t n) {
  if (!is_pow2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
  int saved = errno;
  void *p = aligned_malloc(alignment, n);
  errno = saved;
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

void *aligned_alloc(size_t alignment, size_t n) {
  if (!is_pow2(alignment)) {   /* C17 7.22.3.1: not a valid alignment */
    errno = EINVAL;
    return NULL;
  }
  return aligned_malloc(alignment, n);
}

void *memalign(size_t alignment, size_t n) {
  /* glibc's rules: any alignment, rounded up to a power of two */
  if (alignment == 0) alignment = 1;
  if (!is_pow2(alignment)) {
    if (alignment > ((size_t)1 << (sizeof(size_t) * 8 - 1))) {
      errno = EINVAL;
      return NULL;
    }
    alignment = (size_t)1 << (sizeof(size_t) * 8 - (size_t)__builtin_clzl(alignment));
  }
  return aligned_malloc(alignment, n);
}

void *valloc(size_t n) { return aligned_malloc((size_t)sysconf(_SC_PAGESIZE), n); }

void *pvalloc(size_t n) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  if (n > SIZE_MAX - (page - 1)) {
    errno = ENOMEM;
    return NULL;
  }
  size_t rounded = n == 0 ? page : (n + page - 1) & ~(page - 1);
  return aligned_malloc(page, rounded);
}

/* glibc's malloc_usable_size, for foreign blocks: found on first use, not at
 * set-up (dlsym may not be usable that early). */
static size_t (*libc_usable_size)(void *);

size_t malloc_usable_size(void *p) {
  if (p == NULL) return 0;
  if (owned(p)) return owned_usable_size(p);
  size_t (*f)(void *) =
      (size_t (*)(void *))hl_atomic_c11_load_relaxed_ptr((void **)&libc_usable_size);
  if (f == NULL) {
    f = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    if (f == NULL || f == malloc_usable_size) return 0;
    /* Relaxed: every thread that races here finds the same function. */
    hl_atomic_c11_store_relaxed_ptr((void **)&libc_usable_size, (void *)f);
  }
  return f(p);
}

/* ---- for tests ---------------------------------------------------------- */

/* The size class of p when the pools serve it, 0 when p is not ours. */
size_t hl_preload_block_size(const void *p) { return hl_pool_block_size(p); }

/* The largest request a pool or span class serves (0: glibc serves
 * everything); with large=medium, larger ones are huge blocks, ours too. */
size_t hl_preload_threshold(void) { return pools_limit() ? classes_limit : 0; }
