/* heaplab configuration: one table of options, one effective configuration.
 *
 * Every option has a name, a type, a default, its accepted values, a help
 * line and an environment variable HEAPLAB_<NAME> (upper case, '-' -> '_').
 * Precedence, lowest first: default < config file (--config FILE or
 * HEAPLAB_CONFIG) < environment < --name=value flag. The table lives in the
 * bottom layer so that every layer, and the preloaded malloc library (which
 * can read only the environment), sees the same names, defaults and checks.
 *
 * Validation happens in three steps, all before anything runs:
 *   1. value:        the text parses and is in range / among the choices;
 *   2. combination:  no two options contradict each other;
 *   3. availability: no strategy that this build does not have yet is asked
 *                    for, explicitly or as the default of an option the
 *                    chosen workload uses.
 * Each failure gives a message naming the option, the value and what is
 * accepted; the driver turns it into exit status 2.
 */
#ifndef HL_CONFIG_H
#define HL_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "hl_base.h"

#ifdef __cplusplus
extern "C" {
#endif
HL_API_BEGIN

/* Enumerated values; the order matches the choice lists in base/config.c. */
/* pool and system are heaplab's; the rest are peer allocators measured beside
 * it, loaded from their Debian packages at run time (bench/peers.c). */
typedef enum {
  HL_ALLOC_POOL, HL_ALLOC_SYSTEM, HL_ALLOC_OBMALLOC, HL_ALLOC_MIMALLOC, HL_ALLOC_JEMALLOC,
  HL_ALLOC_TCMALLOC
} hl_alloc_kind_t;
typedef enum { HL_GEOMETRY_CLASSIC, HL_GEOMETRY_MODERN, HL_GEOMETRY_CUSTOM } hl_geometry_kind_t;
typedef enum { HL_ARENA_RELEASE_MUNMAP, HL_ARENA_RELEASE_MADVISE } hl_arena_release_t;
/* Where a full pool goes when a block of it is freed: to the back of its
 * class's list (it gathers frees while the pools ahead serve), or to the
 * front (obmalloc: it serves the next allocation). */
typedef enum { HL_POOL_REQUEUE_BACK, HL_POOL_REQUEUE_FRONT } hl_pool_requeue_t;
typedef enum { HL_POOL_RETIRE_NOW, HL_POOL_RETIRE_KEEP } hl_pool_retire_t;
/* What serves requests above the pools' threshold: the C library
 * (obmalloc's split), or medium size classes in the pools up to an eighth
 * of a pool, then the C library (alloc/size_class.c) */
typedef enum { HL_LARGE_LIBC, HL_LARGE_MEDIUM } hl_large_t;
/* The per-thread caches in front of the pools (alloc/tcache.h), one row
 * each, as the object layer's axes below (ID, the option's value as a
 * string, built, help, why_not): the enum, the option's choices and the
 * test suites' loops (tests/CMakeLists.txt, HL_TCACHE_BUILT) are made from
 * it. Each row's fast paths are alloc.c's, its slow paths its own file. */
#define HL_TCACHE_MODES(X)                                                                 \
  X(NONE, "none", 1, "one lock (obmalloc under a GIL)", "")                                 \
  X(MAGAZINE, "magazine", 1, "tcmalloc-style lists over the shared pools", "")              \
  X(HEAP, "heap", 1, "mimalloc-style thread-owned pools", "")                               \
  X(HEAP_MAGAZINE, "heap-magazine", 1, "LIFO lists in front of the thread's own pools", "")
#define HL_TCACHE_ENUM_(ID, name, built, help, why_not) HL_TCACHE_##ID,
typedef enum { HL_TCACHE_MODES(HL_TCACHE_ENUM_) HL_TCACHE_COUNT } hl_tcache_t;
/* --trace's format: heaplab's JSON lines, or the Trace Event format (a JSON
 * array that Perfetto and chrome://tracing open; bench/trace.c) */
typedef enum { HL_TRACE_FORMAT_JSON, HL_TRACE_FORMAT_CHROME } hl_trace_format_t;
/* cyclotron's ring nodes: no payload, or a list of 8 ints each */
typedef enum { HL_CYCLE_PAYLOAD_NONE, HL_CYCLE_PAYLOAD_INTS } hl_cycle_payload_t;
/* the allocator workloads' block sizes (bench/workloads/sizes.c): uniform
 * over --sizes, a power law over it, or a histogram read from --size-hist */
typedef enum { HL_SIZE_DIST_UNIFORM, HL_SIZE_DIST_POWER_LAW, HL_SIZE_DIST_HISTOGRAM } hl_size_dist_t;
/* prefork's collector in the master and its forked workers
 * (bench/workloads/prefork.c): on; off (gc.disable() before the fork);
 * freeze (gc.freeze() before it); freeze-immortal (the frozen heap made
 * immortal too, hl_gc_immortalize) */
typedef enum {
  HL_PREFORK_GC_ON, HL_PREFORK_GC_OFF, HL_PREFORK_GC_FREEZE, HL_PREFORK_GC_FREEZE_IMMORTAL
} hl_prefork_gc_t;
/* --gc-sweep, without a GIL: where a collection's garbage is deleted */
typedef enum { HL_GC_SWEEP_STOPPED, HL_GC_SWEEP_RESUMED } hl_gc_sweep_t;

/* The strategy axes of the object layer, one row per strategy. The option
 * table (config.c), the enums below and gc/'s tables of rows are all made
 * from these lists, so that a new strategy is one row here, its file and
 * its tests (gc/README.md lists exactly what a new collector touches).
 *   ID       the enum's suffix (HL_RC_GIL, HL_GC_STW)
 *   name     the option's value, and the C name of the row its file
 *            defines (hli_rc_<name>, hli_collector_<name>)
 *   built    1 when its file is in this build; asking for one that is not
 *            is refused, with why_not, before anything runs
 *   rc       (collectors) the refcount modes it runs with, HL_RC_BIT()s
 *   help     what it is, for `heaplab list` and --help */
#define HL_RC_MODES(X)                                                                     \
  X(GIL, gil, 1, "plain under a global lock", "")                                          \
  X(ATOMIC, atomic, 1, "atomic instructions", "")                                          \
  X(BIASED, biased, 1, "owner-local plus shared atomic (PEP 703)", "")
#define HL_GC_COLLECTORS(X)                                                                \
  X(NONE, none, 1, HL_RC_ANY, "refcounting only (cycles leak)", "")                        \
  X(STW, stw, 1, HL_RC_ANY, "CPython's generational", "")                                  \
  X(INCREMENTAL, incremental, 1, HL_RC_ANY,                                                \
    "stw's young generations and an incremental scan of the old one, pauses within "       \
    "--pause-budget-us", "")                                                               \
  X(CONCURRENT, concurrent, 1, HL_RC_BIT(HL_RC_ATOMIC) | HL_RC_BIT(HL_RC_BIASED),          \
    "incremental's scan on a collector thread beside the mutators, the world stopped for "  \
    "young collections and validation only; without a GIL", "")
/* The GIL's policies (sync/gil_<name>.c, --gil), rows as above without rc:
 *   classic  CPython 3.2+: a waiter asks the holder to drop the GIL after a
 *            switch interval without a switch, whoever it is
 *   handoff  a thread that comes back from blocking (I/O, sleep) asks at
 *            once and the GIL is handed to it at the holder's next
 *            checkpoint (the priority requests of bpo-7946) */
#define HL_GIL_POLICIES(X)                                                                 \
  X(CLASSIC, classic, 1, "CPython 3.2+: a waiter asks the holder to let go after one "     \
    "switch interval", "")                                                                 \
  X(HANDOFF, handoff, 1, "a thread back from blocking asks at once and is handed the GIL " \
    "at the holder's next checkpoint (bpo-7946's priority requests)", "")

#define HL_RC_ENUM_(ID, name, built, help, why_not) HL_RC_##ID,
#define HL_GC_ENUM_(ID, name, built, rc, help, why_not) HL_GC_##ID,
typedef enum { HL_RC_MODES(HL_RC_ENUM_) HL_RC_COUNT } hl_rc_mode_t;
typedef enum { HL_GC_COLLECTORS(HL_GC_ENUM_) HL_GC_COUNT } hl_gc_mode_t;
#define HL_GIL_ENUM_(ID, name, built, help, why_not) HL_GIL_##ID,
typedef enum { HL_GIL_POLICIES(HL_GIL_ENUM_) HL_GIL_COUNT } hl_gil_policy_t;
#define HL_RC_BIT(mode) (1u << (mode))
#define HL_RC_ANY ((1u << HL_RC_COUNT) - 1)
/* HL_GC_BUILT_<ID>: whether that collector is in this build (an option
 * that only it reads is available with it). */
#define HL_GC_BUILT_ENUM_(ID, name, built, rc, help, why_not) HL_GC_BUILT_##ID = built,
enum { HL_GC_COLLECTORS(HL_GC_BUILT_ENUM_) };

/* The option ids, in table order. */
typedef enum {
  HL_OPT_ALLOC,
  HL_OPT_GEOMETRY,
  HL_OPT_LARGE,
  HL_OPT_POOL_COLOUR,
  HL_OPT_POOL_REQUEUE,
  HL_OPT_POOL_RETIRE,
  HL_OPT_TCACHE,
  HL_OPT_ALLOC_DEBUG,
  HL_OPT_ALLOC_STATS,
  HL_OPT_ARENA_KEEP_KIB,
  HL_OPT_ARENA_RELEASE,
  HL_OPT_ARENA_DECAY_MS,
  HL_OPT_ARENA_HUGE,
  HL_OPT_TCACHE_KIB,
  HL_OPT_FREELISTS,
  HL_OPT_RC,
  HL_OPT_IMMORTAL,
  HL_OPT_GC,
  HL_OPT_THRESHOLD,
  HL_OPT_GC_UNTRACK,
  HL_OPT_PAUSE_BUDGET_US,
  HL_OPT_MMU_TARGET,
  HL_OPT_GC_THREADS,
  HL_OPT_GC_SWEEP,
  HL_OPT_SWITCH_INTERVAL_US,
  HL_OPT_GIL,
  HL_OPT_STW_PROBE_MS,
  HL_OPT_STW_REPORT_US,
  HL_OPT_CYCLE_SIZE,
  HL_OPT_CYCLE_PAYLOAD,
  HL_OPT_LIVE_HEAP_M,
  HL_OPT_PASS_CYCLES,
  HL_OPT_SIZES,
  HL_OPT_SIZE_DIST,
  HL_OPT_SIZE_HIST,
  HL_OPT_INPUT,
  HL_OPT_CHURN,
  HL_OPT_WORKERS,
  HL_OPT_PREFORK_GC,
  HL_OPT_TOUCH_PCT,
  HL_OPT_THREADS,
  HL_OPT_PIN,
  HL_OPT_SCALE,
  HL_OPT_SEED,
  HL_OPT_DURATION_S,
  HL_OPT_TRACE,
  HL_OPT_TRACE_FORMAT,
  HL_OPT_CONFIG,
  HL_OPT_COUNT
} hl_opt_id_t;

#define HL_OPT_BIT(id) (1ull << (id))
/* a workload's uses are one 64-bit mask of these bits (C only: C++
 * benchmarks include this header too) */
#ifndef __cplusplus
_Static_assert(HL_OPT_COUNT <= 64, "more options than a uses mask holds");
#endif

typedef enum {
  HL_SRC_DEFAULT, HL_SRC_FILE, HL_SRC_ENV, HL_SRC_FLAG
} hl_opt_source_t;

typedef struct hl_config {
  hl_alloc_kind_t alloc;
  hl_geometry_kind_t geometry;
  uint64_t        geometry_custom[4];  /* alignment, threshold, pool, arena (bytes) */
  hl_large_t      large;
  bool            pool_colour;         /* pool headers at cache-line offsets */
  hl_pool_requeue_t pool_requeue;
  hl_pool_retire_t pool_retire;
  hl_tcache_t     tcache;
  bool            alloc_debug;
  bool            alloc_stats;
  uint64_t        arena_keep_kib;      /* empty arenas kept before release */
  hl_arena_release_t arena_release;
  uint64_t        arena_decay_ms;      /* empty arenas beyond the keep live this long */
  bool            arena_huge;          /* arenas advised for transparent huge pages */
  uint64_t        tcache_kib;          /* per-thread cache budget */
  bool            freelists;
  hl_rc_mode_t    rc;
  bool            immortal;
  hl_gc_mode_t    gc;
  uint32_t        threshold[3];
  bool            gc_untrack;          /* untrack tuples and dicts that cannot be in a cycle */
  uint64_t        pause_budget_us;
  uint64_t        mmu_target;          /* percent of every 10 ms left to the mutators (0: no rule) */
  uint64_t        gc_threads;          /* the concurrent collector's threads */
  hl_gc_sweep_t   gc_sweep;            /* without a GIL: garbage deleted stopped or resumed */
  uint64_t        switch_interval_us;
  hl_gil_policy_t gil;                 /* with rc=gil only */
  uint64_t        stw_probe_ms;        /* 0: the runner stops no world */
  uint64_t        stw_report_us;       /* 0: no reports */
  /* workload options (cyclotron, bench/workloads/cyclotron.c) */
  uint64_t        cycle_size;          /* nodes per ring */
  hl_cycle_payload_t cycle_payload;
  uint64_t        live_heap_m;         /* live heap kept beside the rings, millions of objects in all */
  bool            pass_cycles;         /* shared, prodcons: values passed in rings (ring.h) */
  /* workload options (the allocator workloads, bench/workloads/sizes.c) */
  uint32_t        sizes[2];            /* smallest, largest block; 0,0: the workload's own */
  hl_size_dist_t  size_dist;
  char            size_hist[4096];     /* --size-dist=histogram: "SIZE COUNT" lines */
  char            input[4096];         /* heap-load: a captured heap; replay: a trace */
  uint64_t        churn;               /* heap-load: mutation rounds after the load; 0: none */
  uint64_t        workers;             /* prefork: worker processes forked by the master */
  hl_prefork_gc_t prefork_gc;
  uint64_t        touch_pct;           /* prefork: the share of the heap's records requests read */
  uint32_t        threads;
  bool            pin;
  uint64_t        scale;
  uint64_t        seed;
  double          duration_s;          /* 0: run a fixed amount of work (scale) */
  char            trace[4096];         /* "" : no trace */
  hl_trace_format_t trace_format;
  char            config[4096];        /* "" : no config file */
  hl_opt_source_t source[HL_OPT_COUNT];
  char            origin[HL_OPT_COUNT][64]; /* "flag", "env HEAPLAB_X", "file F:12" */
} hl_config_t;

/* What the table says about one option; for `heaplab list` and --help. */
typedef struct hl_option_info {
  const char *name;
  const char *type;        /* "choice", "on|off", "integer", "number", "triple", "range", "path", "geometry" */
  const char *defval;
  const char *accepted;    /* e.g. "gil, atomic, biased" or "1..1024" */
  const char *help;
  const char *env;         /* HEAPLAB_<NAME> */
  const char *not_yet;     /* comma-separated values not built yet; "" if none */
  const char *library_default;   /* libheaplab-malloc.so's default where it differs; "" if not */
} hl_option_info_t;

size_t hl_config_option_count(void);
void   hl_config_option_info(hl_opt_id_t id, hl_option_info_t *out);
/* The id of an option by name (dashes, as on the command line), or -1. */
int    hl_config_find(const char *name);

/* All options at their defaults: the driver's, or the malloc library's,
 * which differ where the option table's library column says. */
typedef enum { HL_DEFAULTS_DRIVER, HL_DEFAULTS_LIBRARY } hl_defaults_t;
void hl_config_defaults_for(hl_config_t *c, hl_defaults_t who);
void hl_config_defaults(hl_config_t *c);   /* the driver's */

/* Sets one option from text. origin says where it came from, for messages
 * and for the result ("flag", "env HEAPLAB_RC", "file x.conf:3").
 * Returns 0, or -1 with a message in err (name, value, what is accepted). */
int hl_config_set(hl_config_t *c, const char *name, const char *value,
                  hl_opt_source_t src, const char *origin,
                  char *err, size_t errlen);

/* The longest line of a config file, in bytes without its newline. */
#define HL_CONFIG_LINE_MAX 8192

/* Reads `name = value` lines ('#' starts a comment; blank lines ignored)
 * from a regular file or a pipe. A line longer than HL_CONFIG_LINE_MAX or
 * with a NUL byte is an error, as is a directory or a device.
 * Returns 0, or -1 with "FILE:LINE: ..." in err. */
int hl_config_load_file(hl_config_t *c, const char *path, char *err, size_t errlen);
/* The same from an open stream (path names it in messages); the caller
 * closes it. hl_config_load_file's reader, exposed for the fuzzer
 * (tests/fuzz/fuzz_config.c reads its inputs through fmemopen). */
int hl_config_load_stream(hl_config_t *c, FILE *f, const char *path, char *err, size_t errlen);

/* Applies every HEAPLAB_<NAME> variable of envp. A HEAPLAB_ variable that
 * names no option is an error unless listed in extra_ok (NULL-terminated
 * names such as "HEAPLAB_STATS" read by other parts). */
int hl_config_load_env(hl_config_t *c, char *const *envp,
                       const char *const *extra_ok, char *err, size_t errlen);

/* The whole precedence chain: defaults, then the config file named by the
 * flags or the environment, then the environment, then the flags
 * (argv entries "--name=value"; "--name value" is accepted too). Entries that
 * are not options (not starting with "--") are an error. */
int hl_config_resolve(hl_config_t *c, int argc, char *const *argv,
                      char *const *envp, char *err, size_t errlen);

/* Step 2: contradictions between options. */
int hl_config_check_combinations(const hl_config_t *c, char *err, size_t errlen);

/* Step 3: strategies not built yet. `uses` is the set of options
 * (HL_OPT_BIT) the workload reads; an option outside it is checked only when
 * set explicitly. */
int hl_config_check_available(const hl_config_t *c, uint64_t uses,
                              char *err, size_t errlen);

/* Options that were set explicitly but have no effect in this configuration
 * (geometry with alloc=system, ...): one note per line into buf; returns the
 * number of notes. */
int hl_config_notes(const hl_config_t *c, uint64_t uses, char *buf, size_t len);

/* The effective value of one option as canonical text (what --name= accepts). */
void hl_config_format(const hl_config_t *c, hl_opt_id_t id, char *buf, size_t len);

/* Name of an enumerated value, for summaries. */
const char *hl_config_choice_name(hl_opt_id_t id, int value);

HL_API_END
#ifdef __cplusplus
}
#endif
#endif /* HL_CONFIG_H */
