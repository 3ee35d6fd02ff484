/* heaplab configuration: the option table and its three validation steps.
 *
 * The table below is the single source of truth for option names, types,
 * defaults, accepted values, help and environment variables (the idea of
 * mimalloc's src/options.c, with MMTk's MMTK_* variables as the environment
 * model). `heaplab list`, `--help`, the JSON "config" object and every error
 * message are generated from it, so they cannot disagree.
 *
 * Availability. A value whose implementation is not in this build is marked
 * `built = false` with a reason; asking for it is an error that says so
 * ("not available yet"), never a silent fallback. When a later change builds
 * a strategy, it flips the flag here and nothing else about the option moves:
 * names and defaults are a contract that result files and scripts rely on.
 */
#include "hl_config.h"

#include "hl_base.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef enum { T_CHOICE, T_ONOFF, T_UINT, T_DOUBLE, T_TRIPLE, T_RANGE, T_PATH, T_GEOMETRY } opt_type_t;

typedef struct choice {
  const char *name;
  bool built;
  const char *why_not;       /* why it is not built ("" when it is) */
  const char *help;          /* an axis's strategy: what it is (its option's help lists them) */
} choice_t;

typedef struct option {
  const char *name;
  opt_type_t type;
  const char *defval;
  const choice_t *choices;   /* T_CHOICE, T_ONOFF: in enum order */
  int nchoices;
  uint64_t min, max;         /* T_UINT; T_TRIPLE per element; T_RANGE both ends */
  double dmin, dmax;         /* T_DOUBLE */
  size_t offset;             /* into hl_config_t */
  size_t size;               /* of the field (T_UINT: 4 or 8; T_PATH: buffer) */
  bool built;                /* the option as a whole (numeric options) */
  const char *not_built;     /* why the option is not available yet (a choice says its own) */
  const char *help;
  /* the malloc library's default where it differs (alloc/preload.c: a host
   * program's threads are unknown in number and its peak RSS counts every
   * arena kept; docs/measurements.md, "The library's defaults"); NULL: the same */
  const char *library_default;
} option_t;

#define FIELD(f) offsetof(hl_config_t, f), sizeof(((hl_config_t *)0)->f)
#define CHOICES(a) a, (int)(sizeof(a) / sizeof((a)[0]))

/* A value every build has. */
#define BUILT(name) {name, true, "", NULL}

/* on|off, stored as bool: index 0 is off so that the index is the bool. */
static const choice_t onoff_both[] = {BUILT("off"), BUILT("on")};

static const choice_t alloc_choices[] = {BUILT("pool"),     BUILT("system"),
                                         BUILT("obmalloc"), BUILT("mimalloc"),
                                         BUILT("jemalloc"), BUILT("tcmalloc")};
/* T_GEOMETRY: these presets, or "ALIGN,THRESHOLD,POOL,ARENA" in bytes (K and
 * M suffixes), whose invariants the allocator checks (hl_alloc_check_config). */
static const choice_t geometry_choices[] = {BUILT("classic"), BUILT("modern")};
static const choice_t large_choices[] = {BUILT("libc"), BUILT("medium")};
static const choice_t sweep_choices[] = {BUILT("stopped"), BUILT("resumed")};
static const choice_t requeue_choices[] = {BUILT("back"), BUILT("front")};
static const choice_t retire_choices[] = {BUILT("now"), BUILT("keep")};
static const choice_t release_choices[] = {BUILT("munmap"), BUILT("madvise")};
static const choice_t payload_choices[] = {BUILT("none"), BUILT("ints")};
static const choice_t size_dist_choices[] = {BUILT("uniform"), BUILT("power-law"),
                                             BUILT("histogram")};
static const choice_t trace_format_choices[] = {BUILT("json"), BUILT("chrome")};
static const choice_t prefork_gc_choices[] = {BUILT("on"), BUILT("off"), BUILT("freeze"),
                                              BUILT("freeze-immortal")};
/* The object layer's axes, row for row from their lists (hl_config.h). */
#define RC_CHOICE_(ID, name, built, help, why_not) {#name, built, why_not, help},
/* each collector's reason, by name, for its options' rows as well */
#define GC_WHY_(ID, name, built, rc, help, why_not) static const char gc_why_##ID[] = why_not;
HL_GC_COLLECTORS(GC_WHY_)
#define GC_CHOICE_(ID, name, built, rc, help, why_not) {#name, built, gc_why_##ID, help},
#define GC_RC_(ID, name, built, rc, help, why_not) rc,
static const choice_t rc_choices[] = {HL_RC_MODES(RC_CHOICE_)};
#define GIL_CHOICE_(ID, name, built, help, why_not) {#name, built, why_not, help},
static const choice_t gil_choices[] = {HL_GIL_POLICIES(GIL_CHOICE_)};
static const choice_t gc_choices[] = {HL_GC_COLLECTORS(GC_CHOICE_)};
/* the allocator's per-thread caches, from their list too */
#define TCACHE_CHOICE_(ID, name, built, help, why_not) {name, built, why_not, help},
static const choice_t tcache_choices[] = {HL_TCACHE_MODES(TCACHE_CHOICE_)};
/* the refcount modes each collector runs with */
static const unsigned gc_rc_modes[] = {HL_GC_COLLECTORS(GC_RC_)};

static const option_t options[HL_OPT_COUNT] = {
  [HL_OPT_ALLOC] = {"alloc", T_CHOICE, "pool", CHOICES(alloc_choices), 0, 0, 0, 0,
    FIELD(alloc), true, NULL,
    "object allocator: pool = arenas > pools > blocks (obmalloc), system = the C library's "
    "malloc; peers, loaded from their Debian packages: obmalloc (CPython 3.11's "
    "PyObject_Malloc), mimalloc, jemalloc, tcmalloc", NULL},
  [HL_OPT_GEOMETRY] = {"geometry", T_GEOMETRY, "modern", CHOICES(geometry_choices), 0, 0, 0, 0,
    FIELD(geometry), true, NULL,
    "pool allocator geometry: classic = 8 B align, 256 B threshold, 4 KiB pools, 256 KiB arenas; "
    "modern = 16 B, 512 B, 16 KiB, 1 MiB (CPython 3.10+); or ALIGN,THRESHOLD,POOL,ARENA", NULL},
  [HL_OPT_LARGE] = {"large", T_CHOICE, "libc", CHOICES(large_choices), 0, 0, 0, 0,
    FIELD(large), true, NULL,
    "alloc=pool: what serves requests above the threshold: libc = the C library (obmalloc's "
    "split); medium = size classes in the pools, eight per power of two, up to an eighth of "
    "a pool (2 KiB in modern), then in spans of 2^k pools up to 64 KiB, then the C library",
    NULL},
  [HL_OPT_POOL_COLOUR] = {"pool-colour", T_ONOFF, "off", CHOICES(onoff_both), 0, 0, 0, 0,
    FIELD(pool_colour), true, NULL,
    "pool headers at one of 64 cache-line offsets in the pool's first page, chosen by the "
    "pool's index, rather than at its start (obmalloc), so that they do not all share the "
    "same cache sets; needs pools of at least 16 KiB", "on"},
  [HL_OPT_POOL_REQUEUE] = {"pool-requeue", T_CHOICE, "back", CHOICES(requeue_choices), 0, 0, 0,
    0, FIELD(pool_requeue), true, NULL,
    "where a full pool goes when one of its blocks is freed: back = the end of its size "
    "class's list, so that it gathers more frees before it serves (mimalloc's pages); "
    "front = it serves the next allocation (obmalloc)", NULL},
  [HL_OPT_POOL_RETIRE] = {"pool-retire", T_CHOICE, "now", CHOICES(retire_choices), 0, 0, 0,
    0, FIELD(pool_retire), true, NULL,
    "what becomes of a pool whose last block is freed: now = back to its arena's free pools "
    "(obmalloc); keep = it stays its size class's pool while it is the class's only one, so "
    "that a block malloc'd and freed in turn does not set a pool up each time (mimalloc "
    "keeps such a page a while); given back by a trim (hl_alloc_collect), a failed mapping "
    "and the thread cache's release", "keep"},
  [HL_OPT_TCACHE] = {"tcache", T_CHOICE, "none", CHOICES(tcache_choices), 0, 0, 0, 0,
    FIELD(tcache), true, NULL,
    "per-thread cache in front of the pools:", "heap-magazine"},
  [HL_OPT_ALLOC_DEBUG] = {"alloc-debug", T_ONOFF, "off", CHOICES(onoff_both), 0, 0, 0, 0,
    FIELD(alloc_debug), true, NULL,
    "fill and guard bytes, API-family check, double-free and overrun detection", NULL},
  [HL_OPT_ALLOC_STATS] = {"alloc-stats", T_ONOFF, "off", CHOICES(onoff_both), 0, 0, 0, 0,
    FIELD(alloc_stats), true, NULL,
    "print the pool allocator's statistics (as sys._debugmallocstats) on stderr after the run", NULL},
  [HL_OPT_ARENA_KEEP_KIB] = {"arena-keep-kib", T_UINT, "3072", NULL, 0, 0, 1u << 30, 0, 0,
    FIELD(arena_keep_kib), true, NULL,
    "empty arenas kept, in KiB (rounded up to whole arenas), before the rest go back to the "
    "OS (0 = CPython: release each)", "1024"},
  [HL_OPT_ARENA_RELEASE] = {"arena-release", T_CHOICE, "munmap", CHOICES(release_choices), 0, 0,
    0, 0, FIELD(arena_release), true, NULL,
    "how an arena goes back to the OS: munmap, or madvise (pages freed, address range kept)", NULL},
  [HL_OPT_ARENA_DECAY_MS] = {"arena-decay-ms", T_UINT, "0", NULL, 0, 0, 3600000, 0, 0,
    FIELD(arena_decay_ms), true, NULL,
    "empty arenas beyond arena-keep-kib go back to the OS once empty this long, in ms "
    "(0 = at once; hl_alloc_collect releases them all)", "10"},
  [HL_OPT_ARENA_HUGE] = {"arena-huge", T_ONOFF, "off", CHOICES(onoff_both), 0, 0, 0, 0,
    FIELD(arena_huge), true, NULL,
    "advise each arena for transparent huge pages (madvise MADV_HUGEPAGE): one TLB entry per "
    "2 MiB instead of 512, for a heap whose live and young objects lie scattered (CPython's "
    "PYTHON_PYMALLOC_HUGEPAGES, gh-144319); a preset geometry's arena grows to one huge page, "
    "a custom one must be a multiple of it", NULL},
  [HL_OPT_TCACHE_KIB] = {"tcache-kib", T_UINT, "1024", NULL, 0, 16, 1u << 22, 0, 0,
    FIELD(tcache_kib), true, NULL,
    "per-thread cache budget, in KiB: magazine = bytes of free blocks a thread keeps; "
    "heap = empty arenas a thread's heap keeps (at least arena-keep-kib); heap-magazine = "
    "both", NULL},
  [HL_OPT_FREELISTS] = {"freelists", T_ONOFF, "on", CHOICES(onoff_both), 0, 0, 0, 0,
    FIELD(freelists), true, NULL,
    "per-type free lists (float, tuple, list, dict) in front of the object allocator", NULL},
  [HL_OPT_RC] = {"rc", T_CHOICE, "gil", CHOICES(rc_choices), 0, 0, 0, 0,
    FIELD(rc), true, NULL,
    "reference counts:", NULL},
  [HL_OPT_IMMORTAL] = {"immortal", T_ONOFF, "off", CHOICES(onoff_both), 0, 0, 0, 0,
    FIELD(immortal), true, NULL,
    "immortal objects (PEP 683): small ints, interned strings, singletons skip refcounting", NULL},
  [HL_OPT_GC] = {"gc", T_CHOICE, "stw", CHOICES(gc_choices), 0, 0, 0, 0,
    FIELD(gc), true, NULL, "cycle collector:", NULL},
  [HL_OPT_THRESHOLD] = {"threshold", T_TRIPLE, "700,10,10", NULL, 0, 0, 1000000000, 0, 0,
    FIELD(threshold), true, NULL,
    "generation thresholds A,B,C as gc.set_threshold (A = 0 disables automatic collection)", NULL},
  [HL_OPT_GC_UNTRACK] = {"gc-untrack", T_ONOFF, "on", CHOICES(onoff_both), 0, 0, 0, 0,
    FIELD(gc_untrack), true, NULL,
    "untrack containers that cannot be part of a cycle, as CPython does: a tuple whose items "
    "are all untracked or atomic (at a collection), a dict until it holds a container", NULL},
  [HL_OPT_PAUSE_BUDGET_US] = {"pause-budget-us", T_UINT, "1000", NULL, 0, 1, 1000000000, 0, 0,
    FIELD(pause_budget_us), HL_GC_BUILT_INCREMENTAL, gc_why_INCREMENTAL,
    "incremental and concurrent collectors: the longest pause one increment (a handshake) may "
    "take, in microseconds", NULL},
  [HL_OPT_MMU_TARGET] = {"mmu-target", T_UINT, "0", NULL, 0, 0, 99, 0, 0,
    FIELD(mmu_target), HL_GC_BUILT_INCREMENTAL, gc_why_INCREMENTAL,
    "incremental and concurrent collectors: the percentage of every 10 ms window left to the "
    "mutators; an "
    "increment's scan work stops where its pause would leave less, unless the scan falls behind "
    "while garbage is made or the old generation grows 5x (0 = no such rule)", NULL},
  [HL_OPT_GC_THREADS] = {"gc-threads", T_UINT, "1", NULL, 0, 1, 1024, 0, 0,
    FIELD(gc_threads), HL_GC_BUILT_CONCURRENT, gc_why_CONCURRENT,
    "concurrent collector: the threads that collect beside the mutators (only 1 is built)", NULL},
  [HL_OPT_GC_SWEEP] = {"gc-sweep", T_CHOICE, "stopped", CHOICES(sweep_choices), 0, 0, 0, 0,
    FIELD(gc_sweep), true, NULL,
    "without a GIL, where a collection's garbage is deleted: stopped = before the world "
    "resumes (CPython 3.13t's order), resumed = after, by the collecting thread while the "
    "others run (the pause loses the frees; gc.sweep_ns has them)", NULL},
  [HL_OPT_SWITCH_INTERVAL_US] = {"switch-interval-us", T_UINT, "5000", NULL, 0, 1, 1000000000, 0, 0,
    FIELD(switch_interval_us), true, NULL,
    "GIL switch interval (sys.setswitchinterval), in microseconds", NULL},
  [HL_OPT_GIL] = {"gil", T_CHOICE, "classic", CHOICES(gil_choices), 0, 0, 0, 0,
    FIELD(gil), true, NULL, "GIL policy (rc=gil only):", NULL},
  [HL_OPT_STW_PROBE_MS] = {"stw-probe-ms", T_UINT, "0", NULL, 0, 0, 100000, 0, 0,
    FIELD(stw_probe_ms), true, NULL,
    "without a GIL: the runner stops the world every N ms of the run and resumes it at once, "
    "to measure the time to stop (the JSON \"stw\" object); 0 = never", NULL},
  [HL_OPT_STW_REPORT_US] = {"stw-report-us", T_UINT, "0", NULL, 0, 0, 1000000000, 0, 0,
    FIELD(stw_report_us), true, NULL,
    "debug, without a GIL: report on stderr each thread that has not reached a checkpoint this "
    "many microseconds after a stop of the world was requested; 0 = never", NULL},
  /* workload options: read only by the workloads whose uses name them
   * (an explicit one elsewhere gets the "no effect" note) */
  [HL_OPT_CYCLE_SIZE] = {"cycle-size", T_UINT, "10", NULL, 0, 2, 100000, 0, 0,
    FIELD(cycle_size), true, NULL,
    "cyclotron: instances per ring (each points at the next, the last at the first); "
    "the Python twin's --cycle-size; shared and prodcons with --pass-cycles: lists per ring",
    NULL},
  [HL_OPT_CYCLE_PAYLOAD] = {"cycle-payload", T_CHOICE, "none", CHOICES(payload_choices), 0, 0, 0,
    0, FIELD(cycle_payload), true, NULL,
    "cyclotron: what each ring node holds: none, or ints = a list of 8 ints above the "
    "small-int cache (10 objects a node instead of 1)", NULL},
  [HL_OPT_LIVE_HEAP_M] = {"live-heap-m", T_UINT, "0", NULL, 0, 0, 1024, 0, 0,
    FIELD(live_heap_m), true, NULL,
    "cyclotron: millions of live objects built before the rings (in all, split among the "
    "threads) and kept to the end (records in chunk lists, as long-lived's heap); 0 = none", NULL},
  [HL_OPT_PASS_CYCLES] = {"pass-cycles", T_ONOFF, "off", CHOICES(onoff_both), 0, 0, 0, 0,
    FIELD(pass_cycles), true, NULL,
    "shared, prodcons: each value passed between threads rides in a ring of --cycle-size "
    "lists, so the thread that drops it leaves cyclic garbage another thread made", NULL},
  [HL_OPT_SIZES] = {"sizes", T_RANGE, "auto", NULL, 0, 1, 1u << 30, 0, 0,
    FIELD(sizes), true, NULL,
    "malloc-churn, alloc-random, alloc-xthread, alloc-larson: the block sizes, MIN..MAX bytes; "
    "auto = the workload's own (8..512 or 1..512)", NULL},
  [HL_OPT_SIZE_DIST] = {"size-dist", T_CHOICE, "uniform", CHOICES(size_dist_choices), 0, 0, 0,
    0, FIELD(size_dist), true, NULL,
    "the allocator workloads' size distribution over --sizes: uniform; power-law (density "
    "proportional to size^-1.5, most blocks small, as real programs show); histogram (the "
    "\"SIZE COUNT\" lines of --size-hist, clipped to --sizes when it is given)", NULL},
  [HL_OPT_SIZE_HIST] = {"size-hist", T_PATH, "", NULL, 0, 0, 0, 0, 0,
    FIELD(size_hist), true, NULL,
    "--size-dist=histogram: a file of \"SIZE COUNT\" lines ('#' starts a comment), "
    "e.g. a program's request sizes", NULL},
  [HL_OPT_INPUT] = {"input", T_PATH, "", NULL, 0, 0, 0, 0, 0,
    FIELD(input), true, NULL,
    "heap-load: the captured heap to rebuild (bench/python/heap_capture.py's output, "
    "docs/heap-format.md); replay: the allocation trace to replay ('heaplab record', "
    "docs/trace-format.md)", NULL},
  [HL_OPT_CHURN] = {"churn", T_UINT, "0", NULL, 0, 0, 100000000, 0, 0,
    FIELD(churn), true, NULL,
    "heap-load: rounds of mutation after the load, the timed part then (one round = one "
    "young-collection interval of the captured program: edges replaced, subgraphs rebuilt, "
    "cyclic garbage dropped at the file's rates; docs/heap-format.md); 0 = none", NULL},
  [HL_OPT_WORKERS] = {"workers", T_UINT, "2", NULL, 0, 1, 64, 0, 0,
    FIELD(workers), true, NULL,
    "prefork: worker processes the master forks after building its heap", NULL},
  [HL_OPT_PREFORK_GC] = {"prefork-gc", T_CHOICE, "on", CHOICES(prefork_gc_choices), 0, 0, 0, 0,
    FIELD(prefork_gc), true, NULL,
    "prefork: the collector around the fork: on; off = gc.disable() in the master before it "
    "forks; freeze = gc.freeze() before the fork (the workers collect their own objects); "
    "freeze-immortal = frozen and the master's heap made immortal (PEP 683, "
    "hl_gc_immortalize)", NULL},
  [HL_OPT_TOUCH_PCT] = {"touch-pct", T_UINT, "100", NULL, 0, 1, 100, 0, 0,
    FIELD(touch_pct), true, NULL,
    "prefork: the percentage of the master's records that requests read (the first ones "
    "built; 100 = any record)", NULL},
  [HL_OPT_THREADS] = {"threads", T_UINT, "1", NULL, 0, 1, 1024, 0, 0,
    FIELD(threads), true, NULL,
    "worker threads (beyond the cores, the machine is oversubscribed)", NULL},
  [HL_OPT_PIN] = {"pin", T_ONOFF, "off", CHOICES(onoff_both), 0, 0, 0, 0,
    FIELD(pin), true, NULL,
    "pin worker i to core i mod cores (hwloc)", NULL},
  [HL_OPT_SCALE] = {"scale", T_UINT, "1", NULL, 0, 1, 1000000, 0, 0,
    FIELD(scale), true, NULL,
    "work per thread, in multiples of the workload's unit (see heaplab list)", NULL},
  [HL_OPT_SEED] = {"seed", T_UINT, "42", NULL, 0, 0, UINT64_MAX, 0, 0,
    FIELD(seed), true, NULL,
    "random seed: the same seed gives the same operations and the same checksum", NULL},
  [HL_OPT_DURATION_S] = {"duration-s", T_DOUBLE, "0", NULL, 0, 0, 0, 0.0, 86400.0,
    FIELD(duration_s), true, NULL,
    "run for this many seconds instead of a fixed amount of work (0 = use scale)", NULL},
  [HL_OPT_TRACE] = {"trace", T_PATH, "", NULL, 0, 0, 0, 0, 0,
    FIELD(trace), true, NULL,
    "write an event trace (progress, RSS over time, collections, GIL switches) to this file",
    NULL},
  [HL_OPT_TRACE_FORMAT] = {"trace-format", T_CHOICE, "json", CHOICES(trace_format_choices), 0, 0,
    0, 0, FIELD(trace_format), true, NULL,
    "--trace's format: json = JSON lines (docs/results.md); chrome = the Trace Event format "
    "(Perfetto, chrome://tracing): a track per thread with its collections, stop-the-world "
    "waits and GIL holds and waits, counters for RSS and live pool blocks", NULL},
  [HL_OPT_CONFIG] = {"config", T_PATH, "", NULL, 0, 0, 0, 0, 0,
    FIELD(config), true, NULL,
    "read `name = value` lines from this file (below environment and flags)", NULL},
};

/* ---- small helpers ------------------------------------------------------ */

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static void *field(hl_config_t *c, const option_t *o) { return (char *)c + o->offset; }
static const void *cfield(const hl_config_t *c, const option_t *o) {
  return (const char *)c + o->offset;
}

/* "a, b, c" for messages; with only_built, the values available now. */
static void list_choices(const option_t *o, bool only_built, char *buf, size_t len) {
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < o->nchoices; i++) {
    if (only_built && !o->choices[i].built) continue;
    n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? ", " : "",
                          o->choices[i].name);
  }
  if (n == 0) snprintf(buf, len, "none yet");
}

/* The digits a number may have after its point (parse_decimal). */
#define DECIMALS_MAX 9

static void describe_accepted(const option_t *o, char *buf, size_t len) {
  switch (o->type) {
  case T_CHOICE:
  case T_ONOFF: list_choices(o, false, buf, len); break;
  case T_UINT:
    snprintf(buf, len, "an integer in %llu..%llu", (unsigned long long)o->min,
             (unsigned long long)o->max);
    break;
  case T_DOUBLE:
    snprintf(buf, len, "a number in %g..%g, at most %d decimals", o->dmin, o->dmax, DECIMALS_MAX);
    break;
  case T_TRIPLE:
    snprintf(buf, len, "three integers A,B,C, each in 0..%llu", (unsigned long long)o->max);
    break;
  case T_RANGE:
    snprintf(buf, len, "auto, or MIN..MAX with %llu <= MIN <= MAX <= %llu",
             (unsigned long long)o->min, (unsigned long long)o->max);
    break;
  case T_PATH: snprintf(buf, len, "a file path (empty: none)"); break;
  case T_GEOMETRY: {
    char names[64];
    list_choices(o, false, names, sizeof names);
    snprintf(buf, len, "%s, or ALIGN,THRESHOLD,POOL,ARENA in bytes (K, M suffixes)", names);
    break;
  }
  }
}


static bool parse_u64(const char *s, uint64_t *out) {
  if (!isdigit((unsigned char)s[0])) return false;  /* no sign, no blank */
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return false;
  *out = v;
  return true;
}

/* The integers' grammar with an optional fraction: DIGITS[.DIGITS], at most
 * DECIMALS_MAX digits after the point. No sign, blank, exponent, hex, inf or
 * nan, which strtod alone would take. The limit is what makes the value
 * round-trip through hl_config_format (which a result's record relies on):
 * with at most 14 significant digits below 10^5 (the T_DOUBLE ranges), a
 * double keeps the decimal exactly, and "%.9f" gives it back. */
static bool parse_decimal(const char *s, double *out) {
  const char *p = s;
  if (!isdigit((unsigned char)*p)) return false;
  while (isdigit((unsigned char)*p)) p++;
  if (*p == '.') {
    const char *point = p++;
    if (!isdigit((unsigned char)*p)) return false;
    while (isdigit((unsigned char)*p)) p++;
    if (p - point - 1 > DECIMALS_MAX) return false;
  }
  if (*p != '\0') return false;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (errno || *end || !isfinite(v)) return false;
  *out = v;
  return true;
}

/* "16K" -> 16384; digits with an optional K or M suffix. */
static bool parse_size(const char *s, uint64_t *out) {
  char num[32];
  size_t n = strlen(s);
  if (n == 0 || n >= sizeof num) return false;
  memcpy(num, s, n + 1);
  uint64_t mult = 1;
  if (num[n - 1] == 'K' || num[n - 1] == 'k') mult = 1024;
  if (num[n - 1] == 'M' || num[n - 1] == 'm') mult = 1024 * 1024;
  if (mult != 1) num[n - 1] = '\0';
  uint64_t v;
  if (!parse_u64(num, &v) || v > (UINT64_MAX >> 20)) return false;
  *out = v * mult;
  return true;
}

/* Exactly n comma-separated numbers ("700,10,10"); with sizes, each may
 * carry a K or M suffix. */
static bool parse_list(const char *value, int n, bool sizes, uint64_t *out) {
  const char *p = value;
  for (int k = 0; k < n; k++) {
    char part[32];
    size_t len = strcspn(p, ",");
    if (len == 0 || len >= sizeof part) return false;
    memcpy(part, p, len);
    part[len] = '\0';
    if (!(sizes ? parse_size(part, &out[k]) : parse_u64(part, &out[k]))) return false;
    p += len;
    if (k < n - 1) {
      if (*p != ',') return false;
      p++;
    }
  }
  return *p == '\0';
}

static int choice_index(const option_t *o, const char *v) {
  for (int i = 0; i < o->nchoices; i++)
    if (strcmp(o->choices[i].name, v) == 0) return i;
  if (o->type == T_ONOFF) {
    static const char *const yes[] = {"true", "yes", "1"}, *const no[] = {"false", "no", "0"};
    for (int i = 0; i < 3; i++) {
      if (strcmp(v, yes[i]) == 0) return 1;
      if (strcmp(v, no[i]) == 0) return 0;
    }
  }
  return -1;
}

static int value_index(const hl_config_t *c, const option_t *o) {
  if (o->type == T_ONOFF) return *(const bool *)cfield(c, o) ? 1 : 0;
  int i = *(const int *)cfield(c, o);
  return i < o->nchoices ? i : -1;   /* -1: a custom geometry */
}

/* Levenshtein distance, for "did you mean". Names are short. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return 64;
  size_t row[64];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (row[j] + 1 < best) best = row[j] + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

static void unknown_option(const char *name, const char *where, char *err, size_t errlen) {
  const char *best = NULL;
  size_t bestd = 3;   /* suggest only close names */
  for (int i = 0; i < HL_OPT_COUNT; i++) {
    size_t d = edit_distance(name, options[i].name);
    if (d < bestd) { bestd = d; best = options[i].name; }
  }
  char all[512];
  size_t n = 0;
  for (int i = 0; i < HL_OPT_COUNT; i++)
    n += (size_t)snprintf(all + n, n < sizeof all ? sizeof all - n : 0, "%s%s",
                          i ? ", " : "", options[i].name);
  if (best)
    errf(err, errlen, "%sunknown option '%s' (did you mean '%s'?); options are: %s", where,
         name, best, all);
  else
    errf(err, errlen, "%sunknown option '%s'; options are: %s", where, name, all);
}

/* ---- the table, outward ------------------------------------------------- */

size_t hl_config_option_count(void) { return HL_OPT_COUNT; }

static const char *type_name(opt_type_t t) {
  switch (t) {
  case T_CHOICE: return "choice";
  case T_ONOFF: return "on|off";
  case T_UINT: return "integer";
  case T_DOUBLE: return "number";
  case T_TRIPLE: return "triple";
  case T_RANGE: return "range";
  case T_PATH: return "path";
  case T_GEOMETRY: return "geometry";
  }
  return "?";
}

/* The option's one environment variable: HEAPLAB_ and its name in capitals,
 * '-' as '_'. */
static void env_of(const option_t *o, char *buf, size_t len) {
  size_t k = (size_t)snprintf(buf, len, "HEAPLAB_");
  for (const char *p = o->name; *p && k + 1 < len; p++)
    buf[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
  buf[k] = '\0';
}

void hl_config_option_info(hl_opt_id_t id, hl_option_info_t *out) {
  /* Static buffers per option: the strings live as long as the process. */
  static char accepted[HL_OPT_COUNT][160], env[HL_OPT_COUNT][48], not_yet[HL_OPT_COUNT][96];
  static char help[HL_OPT_COUNT][320];
  const option_t *o = &options[id];
  describe_accepted(o, accepted[id], sizeof accepted[id]);
  env_of(o, env[id], sizeof env[id]);
  not_yet[id][0] = '\0';
  if (!o->built) {
    snprintf(not_yet[id], sizeof not_yet[id], "all (%s)", o->not_built);
  } else {
    size_t n = 0;
    for (int i = 0; i < o->nchoices; i++)
      if (!o->choices[i].built)
        n += (size_t)snprintf(not_yet[id] + n, n < sizeof not_yet[id] ? sizeof not_yet[id] - n : 0,
                              "%s%s", n ? ", " : "", o->choices[i].name);
  }
  /* an axis: its intro, then each strategy's own line */
  size_t h = (size_t)snprintf(help[id], sizeof help[id], "%s", o->help);
  for (int i = 0; i < o->nchoices && o->choices[i].help; i++)
    h += (size_t)snprintf(help[id] + h, h < sizeof help[id] ? sizeof help[id] - h : 0, "%s %s = %s",
                          i ? "," : "", o->choices[i].name, o->choices[i].help);
  *out = (hl_option_info_t){o->name,  type_name(o->type), o->defval, accepted[id], help[id],
                            env[id], not_yet[id], o->library_default ? o->library_default : ""};
}

int hl_config_find(const char *name) {
  for (int i = 0; i < HL_OPT_COUNT; i++)
    if (strcmp(options[i].name, name) == 0) return i;
  return -1;
}

const char *hl_config_choice_name(hl_opt_id_t id, int value) {
  const option_t *o = &options[id];
  if (value < 0 || value >= o->nchoices) return "?";
  return o->choices[value].name;
}

/* ---- setting values ----------------------------------------------------- */

static int set_option(hl_config_t *c, int id, const char *value, hl_opt_source_t src,
                      const char *origin, char *err, size_t errlen) {
  const option_t *o = &options[id];
  char acc[256];
  void *f = field(c, o);
  switch (o->type) {
  case T_CHOICE:
  case T_ONOFF: {
    int i = choice_index(o, value);
    if (i < 0) goto bad;
    if (o->type == T_ONOFF) *(bool *)f = i == 1;
    else *(int *)f = i;
    break;
  }
  case T_UINT: {
    uint64_t v;
    if (!parse_u64(value, &v) || v < o->min || v > o->max) goto bad;
    if (o->size == sizeof(uint32_t)) *(uint32_t *)f = (uint32_t)v;
    else *(uint64_t *)f = v;
    break;
  }
  case T_DOUBLE: {
    double v;
    if (!parse_decimal(value, &v) || v < o->dmin || v > o->dmax) goto bad;
    *(double *)f = v;
    break;
  }
  case T_TRIPLE: {
    uint64_t v[3];
    if (!parse_list(value, 3, false, v)) goto bad;
    uint32_t t[3];
    for (int k = 0; k < 3; k++) {
      if (v[k] > o->max) goto bad;
      t[k] = (uint32_t)v[k];
    }
    memcpy(f, t, sizeof t);
    break;
  }
  case T_RANGE: {
    uint32_t r[2] = {0, 0};
    if (strcmp(value, "auto") != 0) {
      const char *dots = strstr(value, "..");
      char lo[24];
      uint64_t a, b;
      if (!dots || (size_t)(dots - value) >= sizeof lo) goto bad;
      memcpy(lo, value, (size_t)(dots - value));
      lo[dots - value] = '\0';
      if (!parse_u64(lo, &a) || !parse_u64(dots + 2, &b) || a < o->min || a > b || b > o->max)
        goto bad;
      r[0] = (uint32_t)a;
      r[1] = (uint32_t)b;
    }
    memcpy(f, r, sizeof r);
    break;
  }
  case T_GEOMETRY: {
    int i = choice_index(o, value);
    if (i >= 0) {
      *(int *)f = i;
      break;
    }
    uint64_t v[4];
    if (!parse_list(value, 4, true, v)) goto bad;
    *(int *)f = HL_GEOMETRY_CUSTOM;
    memcpy(c->geometry_custom, v, sizeof v);
    break;
  }
  case T_PATH:
    if (strlen(value) >= o->size) {
      errf(err, errlen, "option '%s': the path is longer than %zu bytes", o->name, o->size - 1);
      return -1;
    }
    strcpy((char *)f, value);
    break;
  }
  c->source[id] = src;
  snprintf(c->origin[id], sizeof c->origin[id], "%s", origin ? origin : "");
  return 0;
bad:
  describe_accepted(o, acc, sizeof acc);
  errf(err, errlen, "option '%s': invalid value '%s'%s%s; accepted: %s", o->name, value,
       origin && *origin ? " from " : "", origin ? origin : "", acc);
  return -1;
}

void hl_config_defaults_for(hl_config_t *c, hl_defaults_t who) {
  memset(c, 0, sizeof *c);
  for (int i = 0; i < HL_OPT_COUNT; i++) {
    char err[256];
    const char *v = who == HL_DEFAULTS_LIBRARY && options[i].library_default
                        ? options[i].library_default
                        : options[i].defval;
    if (set_option(c, i, v, HL_SRC_DEFAULT, "default", err, sizeof err) != 0)
      abort();  /* a default that does not parse is a bug in the table */
  }
}

void hl_config_defaults(hl_config_t *c) { hl_config_defaults_for(c, HL_DEFAULTS_DRIVER); }

int hl_config_set(hl_config_t *c, const char *name, const char *value, hl_opt_source_t src,
                  const char *origin, char *err, size_t errlen) {
  int id = hl_config_find(name);
  if (id < 0) {
    char where[96] = "";
    if (origin && *origin && strcmp(origin, "flag") != 0)
      snprintf(where, sizeof where, "%s: ", origin);
    unknown_option(name, where, err, errlen);
    return -1;
  }
  return set_option(c, id, value, src, origin, err, errlen);
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

/* One line of a config file into line[HL_CONFIG_LINE_MAX + 1], without its
 * newline: 1, 0 at the end of the file, -1 with a message for a line that
 * is too long or holds a NUL byte (never split, never cut short: a line's
 * tail read as a line of its own could set an option) or a read error.
 * Stops at the limit, so an endless line costs no memory. */
static int read_line(FILE *f, char *line, const char *origin, char *err, size_t errlen) {
  size_t n = 0;
  int ch;
  while ((ch = getc(f)) != EOF && ch != '\n') {
    if (ch == '\0') {
      errf(err, errlen, "%s: a NUL byte at byte %zu; accepted: text lines of `name = value`",
           origin, n + 1);
      return -1;
    }
    if (n == HL_CONFIG_LINE_MAX) {
      errf(err, errlen, "%s: line longer than %d bytes", origin, HL_CONFIG_LINE_MAX);
      return -1;
    }
    line[n++] = (char)ch;
  }
  line[n] = '\0';
  if (ch == EOF && ferror(f)) {
    errf(err, errlen, "%s: cannot read: %s", origin, strerror(errno));
    return -1;
  }
  return ch == EOF && n == 0 ? 0 : 1;
}

int hl_config_load_file(hl_config_t *c, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    errf(err, errlen, "option 'config': cannot open '%s': %s", path, strerror(errno));
    return -1;
  }
  /* A directory opens and reads as empty; a device (/dev/zero) never ends:
   * only a file or a pipe (--config=<(...)) holds lines. */
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
    errf(err, errlen, "option 'config': '%s' is %s; accepted: a file of `name = value` lines",
         path, S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
    fclose(f);
    return -1;
  }
  int rc = hl_config_load_stream(c, f, path, err, errlen);
  fclose(f);
  return rc;
}

int hl_config_load_stream(hl_config_t *c, FILE *f, const char *path, char *err, size_t errlen) {
  char *line = malloc(HL_CONFIG_LINE_MAX + 1);
  if (!line) {
    errf(err, errlen, "option 'config': no memory to read '%s'", path);
    return -1;
  }
  int lineno = 0, rc = 0, got;
  for (;;) {
    char origin[64];
    snprintf(origin, sizeof origin, "file %.40s:%d", path, lineno + 1);
    if ((got = read_line(f, line, origin, err, errlen)) <= 0) {
      rc = got;
      break;
    }
    lineno++;
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *s = trim(line);
    if (*s == '\0') continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      errf(err, errlen, "%s: expected 'name = value', got '%s'", origin, s);
      rc = -1;
      break;
    }
    *eq = '\0';
    char *name = trim(s), *value = trim(eq + 1);
    if (strcmp(name, "config") == 0) {
      errf(err, errlen, "%s: a config file cannot name another config file", origin);
      rc = -1;
      break;
    }
    if (hl_config_set(c, name, value, HL_SRC_FILE, origin, err, errlen) != 0) {
      rc = -1;
      break;
    }
  }
  free(line);
  return rc;
}

static bool env_to_name(const char *var, size_t len, char *name, size_t cap) {
  const char *pre = "HEAPLAB_";
  size_t plen = strlen(pre);
  if (len <= plen || strncmp(var, pre, plen) != 0 || len - plen >= cap) return false;
  size_t k = 0;
  for (size_t i = plen; i < len; i++)
    name[k++] = var[i] == '_' ? '-' : (char)tolower((unsigned char)var[i]);
  name[k] = '\0';
  return true;
}

int hl_config_load_env(hl_config_t *c, char *const *envp, const char *const *extra_ok,
                       char *err, size_t errlen) {
  if (!envp) return 0;
  for (char *const *e = envp; *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    char name[64], var[72];
    size_t len = (size_t)(eq - *e);
    if (strncmp(*e, "HEAPLAB_", len < 8 ? len : 8) != 0 || len < 8) continue;
    snprintf(var, sizeof var, "%.*s", (int)len, *e);
    bool extra = false;
    for (const char *const *x = extra_ok; x && *x; x++)
      if (strlen(*x) == len && strncmp(*x, *e, len) == 0) extra = true;
    if (extra) continue;
    /* a HEAPLAB_ variable too long to be an option's, or HEAPLAB_ alone:
     * unknown too, never skipped */
    if (!env_to_name(*e, len, name, sizeof name)) {
      errf(err, errlen, "environment variable %.*s%s: unknown variable; accepted: HEAPLAB_<OPTION> "
           "for an option of 'heaplab list'", (int)(len < 80 ? len : 80), *e,
           len < 80 ? "" : "...");
      return -1;
    }
    char origin[80];
    snprintf(origin, sizeof origin, "env %s", var);
    int id = hl_config_find(name);
    if (id < 0) {
      char where[100];
      snprintf(where, sizeof where, "environment variable %s: ", var);
      unknown_option(name, where, err, errlen);
      return -1;
    }
    /* only the documented spelling: HEAPLAB_pool-colour is no variable */
    char want[72];
    env_of(&options[id], want, sizeof want);
    if (strcmp(var, want) != 0) {
      errf(err, errlen, "environment variable %s: unknown variable; option '%s' is set by %s",
           var, options[id].name, want);
      return -1;
    }
    if (hl_config_set(c, name, eq + 1, HL_SRC_ENV, origin, err, errlen) != 0) return -1;
  }
  return 0;
}

/* Splits argv into (name, value) pairs: "--name=value", "--name value", and
 * a bare "--name" for on|off options (meaning on). Calls fn for each. */
typedef int (*flag_fn)(hl_config_t *c, const char *name, const char *value, char *err,
                       size_t errlen);

static int walk_flags(hl_config_t *c, int argc, char *const *argv, flag_fn fn, char *err,
                      size_t errlen) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
      errf(err, errlen, "unexpected argument '%s': options are written --name=value", a);
      return -1;
    }
    char name[64];
    const char *value;
    const char *eq = strchr(a + 2, '=');
    size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
    if (nlen >= sizeof name) nlen = sizeof name - 1;
    memcpy(name, a + 2, nlen);
    name[nlen] = '\0';
    int id = hl_config_find(name);
    if (id < 0) {
      unknown_option(name, "", err, errlen);
      return -1;
    }
    if (eq) {
      value = eq + 1;
    } else if (options[id].type == T_ONOFF) {
      value = "on";
    } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
      value = argv[++i];
    } else {
      char acc[256];
      describe_accepted(&options[id], acc, sizeof acc);
      errf(err, errlen, "option '%s': missing value; accepted: %s", name, acc);
      return -1;
    }
    if (fn(c, name, value, err, errlen) != 0) return -1;
  }
  return 0;
}

static int flag_find_config(hl_config_t *c, const char *name, const char *value, char *err,
                            size_t errlen) {
  if (strcmp(name, "config") == 0)
    return hl_config_set(c, name, value, HL_SRC_FLAG, "flag", err, errlen);
  return 0;
}

static int flag_apply(hl_config_t *c, const char *name, const char *value, char *err,
                      size_t errlen) {
  return hl_config_set(c, name, value, HL_SRC_FLAG, "flag", err, errlen);
}

int hl_config_resolve(hl_config_t *c, int argc, char *const *argv, char *const *envp,
                      char *err, size_t errlen) {
  /* read by other parts: the preloaded library, heaplab-micro */
  static const char *const extra_ok[] = {"HEAPLAB_STATS", "HEAPLAB_STATS_FILE",
                                         "HEAPLAB_MICRO_ITERATIONS", "HEAPLAB_SWEEP_BINARY",
                                         /* fault injection: sync/hl_failpoint.h */
                                         "HEAPLAB_FAIL_AT", "HEAPLAB_FAIL_P",
                                         "HEAPLAB_FAIL_SEED", "HEAPLAB_FAIL_KIND",
                                         NULL};
  hl_config_defaults(c);
  /* The config file sits below the environment and the flags, so it is read
   * first; which file to read comes from the flag, else the environment. */
  hl_config_t probe;
  hl_config_defaults(&probe);
  if (hl_config_load_env(&probe, envp, extra_ok, err, errlen) != 0) return -1;
  if (walk_flags(&probe, argc, argv, flag_find_config, err, errlen) != 0) return -1;
  if (probe.config[0]) {
    if (hl_config_load_file(c, probe.config, err, errlen) != 0) return -1;
  }
  if (hl_config_load_env(c, envp, extra_ok, err, errlen) != 0) return -1;
  if (walk_flags(c, argc, argv, flag_apply, err, errlen) != 0) return -1;
  return 0;
}

/* ---- step 2: combinations ----------------------------------------------- */

int hl_config_check_combinations(const hl_config_t *c, char *err, size_t errlen) {
  if (c->alloc != HL_ALLOC_POOL && c->tcache != HL_TCACHE_NONE) {
    errf(err, errlen,
         "impossible combination: tcache=%s caches the pool allocator's blocks and needs "
         "alloc=pool, but alloc=%s; accepted with alloc=%s: tcache=none",
         hl_config_choice_name(HL_OPT_TCACHE, c->tcache),
         hl_config_choice_name(HL_OPT_ALLOC, c->alloc),
         hl_config_choice_name(HL_OPT_ALLOC, c->alloc));
    return -1;
  }
  /* a collector that runs with some refcount modes only (its row says) */
  if (!(gc_rc_modes[c->gc] & HL_RC_BIT(c->rc))) {
    char ok[64];
    size_t n = 0;
    ok[0] = '\0';
    for (int m = 0; m < HL_RC_COUNT; m++)
      if (gc_rc_modes[c->gc] & HL_RC_BIT(m))
        n += (size_t)snprintf(ok + n, n < sizeof ok ? sizeof ok - n : 0, "%s%s", n ? ", " : "",
                              rc_choices[m].name);
    errf(err, errlen, "impossible combination: gc=%s does not run with rc=%s; accepted with gc=%s: rc=%s",
         gc_choices[c->gc].name, rc_choices[c->rc].name, gc_choices[c->gc].name, ok);
    return -1;
  }
  /* the concurrent collector's second thread is not built (gc/gen_conc.c) */
  if (c->gc == HL_GC_CONCURRENT && c->gc_threads > 1) {
    errf(err, errlen, "gc-threads=%llu: the concurrent collector has one thread (a second "
                      "would need the old generation split); accepted: gc-threads=1",
         (unsigned long long)c->gc_threads);
    return -1;
  }
  /* a histogram's sizes come from a file, and only a histogram reads one */
  if (c->size_dist == HL_SIZE_DIST_HISTOGRAM && !c->size_hist[0]) {
    errf(err, errlen, "impossible combination: size-dist=histogram reads its sizes from "
                      "--size-hist=FILE, which is not set; accepted: --size-hist=FILE, or "
                      "size-dist=uniform or power-law");
    return -1;
  }
  if (c->size_hist[0] && c->size_dist != HL_SIZE_DIST_HISTOGRAM) {
    errf(err, errlen, "impossible combination: size-hist=%s is read only with "
                      "size-dist=histogram, but size-dist=%s; accepted: size-dist=histogram "
                      "with it, or no size-hist", c->size_hist, size_dist_choices[c->size_dist].name);
    return -1;
  }
  return 0;
}

/* ---- step 3: availability ----------------------------------------------- */

/* Whether the option matters in this configuration, beyond the workload's
 * own use of it: the knobs of a strategy matter only with that strategy. */
static bool relevant(const hl_config_t *c, int id, uint64_t uses) {
  if (!(uses & HL_OPT_BIT(id))) return false;
  switch (id) {
  case HL_OPT_GEOMETRY:
  case HL_OPT_LARGE:
  case HL_OPT_POOL_COLOUR:
  case HL_OPT_POOL_REQUEUE:
  case HL_OPT_POOL_RETIRE:
  case HL_OPT_TCACHE:
  case HL_OPT_ALLOC_STATS:
  case HL_OPT_ARENA_KEEP_KIB:
  case HL_OPT_ARENA_DECAY_MS:
  case HL_OPT_ARENA_HUGE:
  case HL_OPT_ARENA_RELEASE: return c->alloc == HL_ALLOC_POOL;
  case HL_OPT_TCACHE_KIB: return c->alloc == HL_ALLOC_POOL && c->tcache != HL_TCACHE_NONE;
  case HL_OPT_THRESHOLD:
  case HL_OPT_GC_UNTRACK: return c->gc != HL_GC_NONE;
  case HL_OPT_PAUSE_BUDGET_US:
  case HL_OPT_MMU_TARGET: return c->gc == HL_GC_INCREMENTAL || c->gc == HL_GC_CONCURRENT;
  case HL_OPT_GC_THREADS: return c->gc == HL_GC_CONCURRENT;
  case HL_OPT_GC_SWEEP: return c->gc != HL_GC_NONE && c->rc != HL_RC_GIL;
  case HL_OPT_SWITCH_INTERVAL_US:
  case HL_OPT_GIL: return c->rc == HL_RC_GIL;
  case HL_OPT_STW_PROBE_MS:
  case HL_OPT_STW_REPORT_US: return c->rc != HL_RC_GIL;
  case HL_OPT_TRACE_FORMAT: return c->trace[0] != '\0';
  default: return true;
  }
}

int hl_config_check_available(const hl_config_t *c, uint64_t uses, char *err, size_t errlen) {
  for (int id = 0; id < HL_OPT_COUNT; id++) {
    const option_t *o = &options[id];
    bool explicit = c->source[id] != HL_SRC_DEFAULT;
    if (!explicit && !relevant(c, id, uses)) continue;
    char val[64];
    hl_config_format(c, (hl_opt_id_t)id, val, sizeof val);
    const char *from = explicit ? c->origin[id] : "default";
    if (!o->built) {
      errf(err, errlen, "option '%s' (%s, %s) is not available yet: %s", o->name, val, from,
           o->not_built);
      return -1;
    }
    if (o->type == T_CHOICE || o->type == T_ONOFF || o->type == T_GEOMETRY) {
      int i = value_index(c, o);
      if (i >= 0 && !o->choices[i].built) {
        char now[128];
        list_choices(o, true, now, sizeof now);
        errf(err, errlen,
             "option '%s': value '%s' (%s) is not available yet: %s; available now: %s",
             o->name, val, from, o->choices[i].why_not, now);
        return -1;
      }
    }
  }
  return 0;
}

int hl_config_notes(const hl_config_t *c, uint64_t uses, char *buf, size_t len) {
  int n = 0;
  size_t k = 0;
  buf[0] = '\0';
  for (int id = 0; id < HL_OPT_COUNT; id++) {
    if (c->source[id] == HL_SRC_DEFAULT || relevant(c, id, uses)) continue;
    char val[64];
    hl_config_format(c, (hl_opt_id_t)id, val, sizeof val);
    k += (size_t)snprintf(buf + k, k < len ? len - k : 0,
                          "note: %s=%s (%s) has no effect in this configuration\n",
                          options[id].name, val, c->origin[id]);
    n++;
  }
  return n;
}

void hl_config_format(const hl_config_t *c, hl_opt_id_t id, char *buf, size_t len) {
  const option_t *o = &options[id];
  const void *f = cfield(c, o);
  switch (o->type) {
  case T_CHOICE:
  case T_ONOFF: snprintf(buf, len, "%s", o->choices[value_index(c, o)].name); break;
  case T_UINT:
    snprintf(buf, len, "%llu",
             (unsigned long long)(o->size == sizeof(uint32_t) ? *(const uint32_t *)f
                                                              : *(const uint64_t *)f));
    break;
  case T_DOUBLE: {
    /* "%g" gave 6 significant digits (0.2222222 came back as 0.222222) and
     * exponents parse_decimal refuses (1e-07): the decimals parse_decimal
     * accepts, trailing zeros dropped */
    char t[64];
    int n = snprintf(t, sizeof t, "%.*f", DECIMALS_MAX, *(const double *)f);
    while (n > 0 && t[n - 1] == '0') t[--n] = '\0';
    if (n > 0 && t[n - 1] == '.') t[--n] = '\0';
    snprintf(buf, len, "%s", t);
    break;
  }
  case T_TRIPLE: {
    const uint32_t *t = f;
    snprintf(buf, len, "%u,%u,%u", t[0], t[1], t[2]);
    break;
  }
  case T_RANGE: {
    const uint32_t *r = f;
    if (r[0] == 0) snprintf(buf, len, "auto");
    else snprintf(buf, len, "%u..%u", r[0], r[1]);
    break;
  }
  case T_PATH: snprintf(buf, len, "%s", (const char *)f); break;
  case T_GEOMETRY:
    if (*(const int *)f == HL_GEOMETRY_CUSTOM)
      snprintf(buf, len, "%llu,%llu,%llu,%llu", (unsigned long long)c->geometry_custom[0],
               (unsigned long long)c->geometry_custom[1],
               (unsigned long long)c->geometry_custom[2],
               (unsigned long long)c->geometry_custom[3]);
    else
      snprintf(buf, len, "%s", o->choices[*(const int *)f].name);
    break;
  }
}
