/* libheaplab-trace.so: records every allocation of a program run under
 * LD_PRELOAD, for the replay workload (bench/workloads/replay.c) to run the
 * same operations under any allocator. `heaplab record -o FILE -- PROGRAM`
 * sets it up; the file's format is docs/trace-format.md (hl_trace_format.h).
 *
 * Each entry point calls the next definition of itself in the process
 * (dlsym RTLD_NEXT: glibc's, or another preloaded allocator's), then
 * appends one record to a buffer of the calling thread. A full buffer
 * (HL_TRACE_CHUNK_RAW_MAX) is compressed with zstd by that thread and
 * written as one chunk under the file's lock, so that threads share nothing
 * per operation but the sequence counter (one atomic add; see
 * hl_trace_format.h for why it is taken after an allocation and before a
 * free). The records are deltas (LEB128), 5 to 8 bytes for most.
 *
 * Environment: HEAPLAB_TRACE_OUT=FILE records into FILE (without it, the
 * library only passes calls through); HEAPLAB_TRACE_PID=PID records only in
 * the process with that pid. The first recording process sets it to its own
 * pid when it is unset, so that the programs it runs (gcc's cc1, a shell's
 * commands) inherit LD_PRELOAD but do not write over its file.
 *
 * Recursion. dlsym calls calloc before malloc is known: such calls are
 * served from a static bump buffer (`boot`), whose blocks are never freed.
 * The recorder's own allocations (zstd's context, pthread_setspecific's
 * second-level array) run with the thread's `busy` flag set and pass
 * through unrecorded; the thread buffers are mmap'd.
 *
 * Lifetimes. A thread's state is made at its first operation (its index
 * is the order of that), registered in a list, and flushed by a
 * pthread_key destructor at thread exit. The library's destructor, at
 * process exit, sets `stopping`, flushes every thread still registered
 * (taking each one's lock: see tstate) and writes the end chunk; later
 * operations pass through unrecorded. A process that exits without running
 * destructors (_exit, a signal) leaves a file without its end chunk, which
 * the reader refuses as truncated. fork: the child stops recording (its
 * operations pass through; it never writes to the parent's file); a child
 * that execs a program does not record either (HEAPLAB_TRACE_PID).
 */
#define _GNU_SOURCE   /* RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "hl_trace_format.h"
#include "stderr_line.h"

#define EXPORT __attribute__((visibility("default")))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ZSTD_LEVEL 1

EXPORT void *malloc(size_t n);
EXPORT void free(void *p);
EXPORT void *calloc(size_t nelem, size_t elsize);
EXPORT void *realloc(void *p, size_t n);
EXPORT int posix_memalign(void **out, size_t alignment, size_t n);
EXPORT void *aligned_alloc(size_t alignment, size_t n);
EXPORT void *memalign(size_t alignment, size_t n);
EXPORT void *valloc(size_t n);
EXPORT void *pvalloc(size_t n);

/* ---- the real functions ------------------------------------------------- */

static struct {
  void *(*malloc)(size_t);
  void (*free)(void *);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  int (*posix_memalign)(void **, size_t, size_t);
  void *(*aligned_alloc)(size_t, size_t);
  void *(*memalign)(size_t, size_t);
  void *(*valloc)(size_t);
  void *(*pvalloc)(size_t);
} real;

/* dlsym's own allocations while `real` is being resolved: bump-allocated,
 * 16-byte aligned, never freed (a handful of small blocks). */
static _Alignas(16) unsigned char boot[16384];
static size_t boot_used;
static _Atomic int resolving;   /* 1 while resolve() runs (in one thread) */

static bool in_boot(const void *p) {
  return (const unsigned char *)p >= boot && (const unsigned char *)p < boot + sizeof boot;
}

static void *boot_alloc(size_t n) {
  size_t at = (boot_used + 15) & ~(size_t)15;
  if (at + n > sizeof boot) return NULL;
  boot_used = at + n;
  return boot + at;   /* zero: static storage, never reused */
}

static void resolve(void) {
  int expected = 0;
  /* acq_rel: pairs with the release store below in a thread that resolved
   * first (then `real` is complete when this one sees resolving == 0). */
  if (!atomic_compare_exchange_strong_explicit(&resolving, &expected, 1, memory_order_acq_rel,
                                               memory_order_acquire))
    return;
  real.calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
  real.free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
  real.realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
  real.posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
  real.aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
  real.memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
  real.valloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "valloc");
  real.pvalloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "pvalloc");
  /* malloc last: the entry points test it to know resolution is done */
  void *(*m)(size_t) = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
  __atomic_store_n(&real.malloc, m, __ATOMIC_RELEASE);   /* pairs with ready()'s acquire */
  if (!real.calloc || !real.free || !real.realloc || !m) {
    static const char msg[] = "heaplab-trace: dlsym cannot find the next malloc; aborting\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    abort();
  }
}

/* True once `real` is set; false while this thread (or another) resolves,
 * when the caller serves the request from `boot`. */
static inline bool ready(void) {
  if (__builtin_expect(__atomic_load_n(&real.malloc, __ATOMIC_ACQUIRE) != NULL, 1)) return true;
  resolve();
  return __atomic_load_n(&real.malloc, __ATOMIC_ACQUIRE) != NULL;
}

/* ---- recording state ---------------------------------------------------- */

/* One per recording thread; mmap'd. `lock` is taken by its owner around
 * each record (uncontended: an exchange on a line no other thread writes)
 * and by the exit flusher, which is how a record in progress at exit is
 * either finished before the flush or never started. */
typedef struct tstate {
  _Atomic int lock;
  uint32_t index;
  uint32_t count;               /* records in buf */
  uint32_t len;                 /* bytes in buf */
  uint64_t prev_seq, prev_addr; /* delta state, reset per chunk */
  ZSTD_CCtx *cctx;
  struct tstate *next;          /* the registry, under reg_lock */
  uint8_t buf[HL_TRACE_CHUNK_RAW_MAX];
} tstate_t;

#define TS_DEAD ((tstate_t *)1)   /* this thread exited, or may not record */

static __thread tstate_t *t_state __attribute__((tls_model("initial-exec")));
/* Set while the recorder itself runs in this thread: its allocations
 * (zstd, pthread_setspecific) pass through unrecorded. */
static __thread int t_busy __attribute__((tls_model("initial-exec")));

static _Atomic int recording;     /* 1 from the constructor to the destructor */
static _Atomic int stopping;      /* set by the destructor: no record after it */
static _Atomic uint64_t seq;      /* the process-wide order (hl_trace_format.h) */
static _Atomic uint32_t nthreads;
static pid_t owner;               /* the recording process */
static int fd = -1;
static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static tstate_t *registry;
static pthread_key_t exit_key;
/* totals for the end chunk, under file_lock */
static uint64_t total_records, total_chunks;
static bool write_failed;

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hli_stderr_line("heaplab-trace", fmt, ap);
  va_end(ap);
}

static bool write_all(const void *p, size_t n) {
  const unsigned char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= (size_t)w;
  }
  return true;
}

/* One chunk, under file_lock. */
static void write_chunk(uint8_t kind, uint32_t thread, uint32_t count, uint32_t raw,
                        const void *payload, uint32_t stored) {
  uint8_t h[HL_TRACE_CHUNK_BYTES] = {0};
  hl_trace_put_u32(h, HL_TRACE_CHUNK_MAGIC);
  h[4] = kind;
  hl_trace_put_u32(h + 8, thread);
  hl_trace_put_u32(h + 12, count);
  hl_trace_put_u32(h + 16, raw);
  hl_trace_put_u32(h + 20, stored);
  pthread_mutex_lock(&file_lock);
  if (!write_failed && (!write_all(h, sizeof h) || !write_all(payload, stored))) {
    write_failed = true;
    warn("cannot write the trace: %s; recording stops, the file is incomplete", strerror(errno));
  }
  if (kind == HL_TRACE_CHUNK_OPS) {
    total_records += count;
    total_chunks++;
  }
  pthread_mutex_unlock(&file_lock);
}

/* Compresses and writes ts's buffer; called with ts->lock held. Only in
 * the recording process: a forked child's copy of the buffers is dropped. */
static void flush(tstate_t *ts) {
  if (!ts->count) return;
  if (getpid() == owner && !write_failed) {
    t_busy++;
    if (!ts->cctx) ts->cctx = ZSTD_createCCtx();
    size_t cap = ZSTD_compressBound(ts->len);
    /* a scratch the size of a chunk: mmap'd, so that it is never recorded
     * nor kept per thread */
    void *out = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t n = 0;
    if (ts->cctx && out != MAP_FAILED) {
      ZSTD_CCtx_setParameter(ts->cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL);
      ZSTD_CCtx_setParameter(ts->cctx, ZSTD_c_checksumFlag, 1);
      n = ZSTD_compress2(ts->cctx, out, cap, ts->buf, ts->len);
    }
    if (out == MAP_FAILED || !ts->cctx || ZSTD_isError(n)) {
      warn("cannot compress a chunk (%s); recording stops, the file is incomplete",
           out == MAP_FAILED ? "out of memory" : !ts->cctx ? "no zstd context"
                                                         : ZSTD_getErrorName(n));
      write_failed = true;
    } else {
      write_chunk(HL_TRACE_CHUNK_OPS, ts->index, ts->count, ts->len, out, (uint32_t)n);
    }
    if (out != MAP_FAILED) munmap(out, cap);
    t_busy--;
  }
  ts->count = ts->len = 0;
  ts->prev_seq = ts->prev_addr = 0;
}

static void lock_ts(tstate_t *ts) {
  /* acquire: pairs with unlock_ts's release in the other holder (the owner
   * or the exit flusher), so that each sees the buffer the other left */
  while (atomic_exchange_explicit(&ts->lock, 1, memory_order_acquire))
    while (atomic_load_explicit(&ts->lock, memory_order_relaxed)) sched_yield();
}

static void unlock_ts(tstate_t *ts) { atomic_store_explicit(&ts->lock, 0, memory_order_release); }

static void thread_exit(void *arg) {
  tstate_t *ts = arg;
  lock_ts(ts);
  flush(ts);
  unlock_ts(ts);
  pthread_mutex_lock(&reg_lock);
  for (tstate_t **pp = &registry; *pp; pp = &(*pp)->next)
    if (*pp == ts) {
      *pp = ts->next;
      break;
    }
  pthread_mutex_unlock(&reg_lock);
  t_busy++;
  ZSTD_freeCCtx(ts->cctx);
  t_busy--;
  munmap(ts, sizeof *ts);
  t_state = TS_DEAD;   /* glibc's own frees after this destructor pass through */
}

static tstate_t *new_tstate(void) {
  t_busy++;
  tstate_t *ts = mmap(NULL, sizeof *ts, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ts == MAP_FAILED) {
    t_busy--;
    return t_state = TS_DEAD;
  }
  pthread_mutex_lock(&reg_lock);
  if (atomic_load_explicit(&stopping, memory_order_relaxed)) {
    pthread_mutex_unlock(&reg_lock);
    munmap(ts, sizeof *ts);
    t_busy--;
    return t_state = TS_DEAD;
  }
  ts->index = atomic_fetch_add_explicit(&nthreads, 1, memory_order_relaxed);
  ts->next = registry;
  registry = ts;
  pthread_mutex_unlock(&reg_lock);
  pthread_setspecific(exit_key, ts);   /* may calloc: t_busy is set */
  t_busy--;
  return t_state = ts;
}

/* The caller's state, locked, or NULL when this operation is not recorded. */
static inline tstate_t *begin_record(void) {
  if (!atomic_load_explicit(&recording, memory_order_relaxed) || t_busy) return NULL;
  tstate_t *ts = t_state;
  if (UNLIKELY(!ts)) ts = new_tstate();
  if (ts == TS_DEAD) return NULL;
  lock_ts(ts);
  if (UNLIKELY(atomic_load_explicit(&stopping, memory_order_relaxed))) {
    unlock_ts(ts);
    return NULL;
  }
  return ts;
}

static inline uint64_t next_seq(void) {
  return atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed);
}

/* Appends one record: a, b are the first two fields after seq, c, d the
 * others (which ones an op has: hl_trace_format.h). */
static void end_record(tstate_t *ts, uint8_t op, uint64_t s, uint64_t addr, uint64_t size,
                       uint64_t extra, uint64_t s2, uint64_t old) {
  uint8_t *p = ts->buf + ts->len;
  *p++ = op;
  p = hl_trace_put_varint(p, s - ts->prev_seq);
  switch (op) {
  case HL_TRACE_REALLOC:
    p = hl_trace_put_varint(p, s2 - s);
    p = hl_trace_put_varint(p, hl_trace_zigzag((int64_t)(old - ts->prev_addr)));
    p = hl_trace_put_varint(p, hl_trace_zigzag((int64_t)(addr - old)));
    p = hl_trace_put_varint(p, size);
    s = s2;
    break;
  case HL_TRACE_FREE:
    p = hl_trace_put_varint(p, hl_trace_zigzag((int64_t)(addr - ts->prev_addr)));
    break;
  default:
    p = hl_trace_put_varint(p, hl_trace_zigzag((int64_t)(addr - ts->prev_addr)));
    p = hl_trace_put_varint(p, size);
    if (op == HL_TRACE_MEMALIGN) p = hl_trace_put_varint(p, extra);
    break;
  }
  ts->prev_seq = s;
  ts->prev_addr = addr;
  ts->len = (uint32_t)(p - ts->buf);
  ts->count++;
  if (ts->len > HL_TRACE_CHUNK_RAW_MAX - HL_TRACE_RECORD_MAX) flush(ts);
  unlock_ts(ts);
}

static void record_alloc(uint8_t op, void *p, size_t n, size_t align) {
  tstate_t *ts = begin_record();
  if (ts) end_record(ts, op, next_seq(), (uintptr_t)p, n, align, 0, 0);
}

/* ---- the entry points ---------------------------------------------------- */

void *malloc(size_t n) {
  if (UNLIKELY(!ready())) return boot_alloc(n);
  void *p = real.malloc(n);
  if (p) record_alloc(HL_TRACE_MALLOC, p, n, 0);
  return p;
}

void *calloc(size_t nelem, size_t elsize) {
  if (UNLIKELY(!ready())) {
    size_t n;
    return __builtin_mul_overflow(nelem, elsize, &n) ? NULL : boot_alloc(n);
  }
  void *p = real.calloc(nelem, elsize);
  if (p) record_alloc(HL_TRACE_CALLOC, p, nelem * elsize, 0);
  return p;
}

void free(void *p) {
  if (!p || UNLIKELY(in_boot(p))) return;
  if (UNLIKELY(!ready())) return;   /* a block from the next malloc before we know free: leak it */
  tstate_t *ts = begin_record();
  if (ts) end_record(ts, HL_TRACE_FREE, next_seq(), (uintptr_t)p, 0, 0, 0, 0);
  real.free(p);
}

void *realloc(void *p, size_t n) {
  if (!p) return malloc(n);
  if (UNLIKELY(in_boot(p) || !ready())) {
    /* a boot block: copied out (its size is unknown; what follows it in
     * boot is either another block or zeros, both readable) */
    void *q = malloc(n);
    if (q && in_boot(p)) {
      size_t avail = (size_t)(boot + sizeof boot - (unsigned char *)p);
      memcpy(q, p, n < avail ? n : avail);
    }
    return q;
  }
  uint64_t s1 = 0;
  bool rec = atomic_load_explicit(&recording, memory_order_relaxed) && !t_busy;
  if (rec) s1 = next_seq();
  void *q = real.realloc(p, n);
  if (!rec) return q;
  uint64_t s2 = next_seq();
  tstate_t *ts = begin_record();
  if (!ts) return q;
  if (q) end_record(ts, HL_TRACE_REALLOC, s1, (uintptr_t)q, n, 0, s2, (uintptr_t)p);
  else if (n == 0) end_record(ts, HL_TRACE_FREE, s1, (uintptr_t)p, 0, 0, 0, 0);   /* freed */
  else unlock_ts(ts);   /* failed: p unchanged, nothing happened */
  return q;
}

int posix_memalign(void **out, size_t alignment, size_t n) {
  if (UNLIKELY(!ready())) return ENOMEM;
  int rc = real.posix_memalign(out, alignment, n);
  if (rc == 0) record_alloc(HL_TRACE_MEMALIGN, *out, n, alignment);
  return rc;
}

#define ALIGNED_ENTRY(name, params, call, alignment, size)          \
  void *name params {                                                 \
    if (UNLIKELY(!ready() || !real.name)) return NULL;                \
    void *p = real.name call;                                         \
    if (p) record_alloc(HL_TRACE_MEMALIGN, p, size, alignment);       \
    return p;                                                         \
  }

ALIGNED_ENTRY(aligned_alloc, (size_t alignment, size_t n), (alignment, n), alignment, n)
ALIGNED_ENTRY(memalign, (size_t alignment, size_t n), (alignment, n), alignment, n)
ALIGNED_ENTRY(valloc, (size_t n), (n), (size_t)sysconf(_SC_PAGESIZE), n)
ALIGNED_ENTRY(pvalloc, (size_t n), (n), (size_t)sysconf(_SC_PAGESIZE), n)

/* ---- start and end -------------------------------------------------------- */

static void fork_child(void) {
  atomic_store_explicit(&recording, 0, memory_order_relaxed);
}

__attribute__((constructor)) static void trace_start(void) {
  ready();
  const char *out = getenv("HEAPLAB_TRACE_OUT"), *pid = getenv("HEAPLAB_TRACE_PID");
  owner = getpid();
  if (!out || !*out) return;
  if (pid && *pid) {
    if (strtoll(pid, NULL, 10) != (long long)owner) return;   /* not the program recorded */
  } else {
    char b[24];
    snprintf(b, sizeof b, "%lld", (long long)owner);
    t_busy++;
    setenv("HEAPLAB_TRACE_PID", b, 1);
    t_busy--;
  }
  fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    warn("cannot open HEAPLAB_TRACE_OUT=%s: %s; not recording", out, strerror(errno));
    return;
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  uint8_t h[HL_TRACE_HEADER_BYTES] = {0};
  memcpy(h, HL_TRACE_MAGIC, 8);
  hl_trace_put_u32(h + 8, HL_TRACE_VERSION);
  hl_trace_put_u32(h + 12, HL_TRACE_HEADER_BYTES);
  hl_trace_put_u64(h + 16, (uint64_t)owner);
  hl_trace_put_u64(h + 24, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec);
  if (!write_all(h, sizeof h)) {
    warn("cannot write %s: %s; not recording", out, strerror(errno));
    return;
  }
  static char cmd[4096];
  int cf = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  ssize_t cn = cf >= 0 ? read(cf, cmd, sizeof cmd) : -1;
  if (cf >= 0) close(cf);
  if (cn > 0) write_chunk(HL_TRACE_CHUNK_PROGRAM, 0, 0, (uint32_t)cn, cmd, (uint32_t)cn);
  if (pthread_key_create(&exit_key, thread_exit) != 0 ||
      pthread_atfork(NULL, NULL, fork_child) != 0) {
    warn("cannot register the thread-exit and fork handlers; not recording");
    return;
  }
  atomic_store_explicit(&recording, 1, memory_order_release);
}

__attribute__((destructor)) static void trace_stop(void) {
  if (!atomic_load_explicit(&recording, memory_order_relaxed) || getpid() != owner) return;
  /* seq_cst: every lock_ts after the flusher's unlock_ts of that thread
   * sees it (begin_record's check runs under the lock) */
  atomic_store(&stopping, 1);
  pthread_mutex_lock(&reg_lock);
  for (tstate_t *ts = registry; ts; ts = ts->next) {
    lock_ts(ts);
    flush(ts);
    unlock_ts(ts);
  }
  pthread_mutex_unlock(&reg_lock);
  atomic_store_explicit(&recording, 0, memory_order_relaxed);
  uint8_t e[HL_TRACE_END_BYTES];
  pthread_mutex_lock(&file_lock);
  hl_trace_put_u64(e, total_records);
  hl_trace_put_u64(e + 8, total_chunks);
  pthread_mutex_unlock(&file_lock);
  hl_trace_put_u64(e + 16, atomic_load(&seq));
  hl_trace_put_u64(e + 24, atomic_load(&nthreads));
  write_chunk(HL_TRACE_CHUNK_END, 0, 0, HL_TRACE_END_BYTES, e, HL_TRACE_END_BYTES);
  if (write_failed) warn("the trace is incomplete (a write failed)");
}
