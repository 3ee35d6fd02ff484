/* --trace=FILE: what happened during a run, in time.
 *
 * Two formats (--trace-format):
 *
 * json (the default; docs/results.md, "The trace"): JSON lines written as
 *   things happen: the monitor's samples (ops, progress, RSS) every 100 ms,
 *   each collection's start and end, each GIL switch.
 *
 * chrome: the Trace Event format (Google's "Trace Event Format" document,
 *   the JSON that Perfetto and chrome://tracing open; docs/observability.md):
 *   { "traceEvents": [...] } with
 *     "M" metadata: the process's name, each thread's name and order;
 *     "X" complete events, one track per thread: collections (and the
 *         incremental collector's increments), the GIL held and waited for,
 *         stopping the world, the world stopped, a thread parked by
 *         another's stop, and the run's timed part on the main thread;
 *     "i" instants: a GIL drop request, on the thread that asked;
 *     "C" counters: RSS and ops (the monitor, every 100 ms) and the pool
 *         allocator's live blocks (read at the end of a collection, at most
 *         every 10 ms, while the world is stopped or the GIL held: the only
 *         moment another thread's heap may be read).
 *   An interval is known when it ends, and the format's readers want each
 *   thread's events in time order, so events are not written as they come:
 *   each is a fixed-size record appended (fwrite, one stdio lock per record)
 *   to an unlinked temporary file, off the process's memory and so off the
 *   RSS it measures. At the end the records are read back, sorted by time
 *   (at one instant, the longer interval first, so that intervals nest), and
 *   written as JSON. Timestamps are microseconds since the run's start with
 *   three decimals: nanoseconds, as measured.
 *
 * The hooks run on the thread where the event happens (gc callbacks,
 * sync/observe.c's observer, the GIL's switch hook); they are set before the
 * workers start and cleared after they are joined.
 */
#include "trace.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "result.h"
#include "workload.h"

typedef enum {
  K_NAME,          /* a = worker index, or NAME_MAIN */
  K_RUN,           /* the timed part (main thread) */
  K_GC,            /* a = generation | full << 8 | increment << 9, b = collected, c = uncollectable */
  K_GIL_WAIT,      /* b = forced */
  K_GIL_HOLD,      /* b = reason */
  K_GIL_ASK,       /* instant */
  K_STW_STOPPING,  /* from the request until all stopped */
  K_STW_STOPPED,   /* from all stopped until the resume */
  K_STW_PARKED,    /* parked by another's stop */
  K_RSS,           /* counters: a = the value */
  K_OPS,
  K_LIVE
} kind_t;

#define NAME_MAIN UINT64_MAX

/* One event: 48 bytes in the temporary file. */
typedef struct rec {
  uint64_t ts;     /* ns since t0: the start of an interval, or the instant */
  uint64_t dur;    /* ns (intervals) */
  uint64_t a, b, c;
  uint32_t tid;
  uint32_t kind;
} rec_t;

static struct {
  FILE *f;                  /* the trace file */
  FILE *tmp;                /* chrome: the records */
  hl_trace_format_t format;
  uint64_t t0;
  bool gc_on, gil_on, observer_on;
  bool live;                /* chrome: sample the pool's live blocks */
  bool incremental;
  uint64_t live_last;       /* under the collection: when last sampled */
  char workload[64];
  const hl_config_t *cfg;
} tr;

static __thread uint32_t my_tid;
static __thread uint64_t gc_start_ns;

static uint32_t tid_self(void) {
  if (!my_tid) my_tid = (uint32_t)syscall(SYS_gettid);
  return my_tid;
}

static uint64_t since_t0(uint64_t ns) { return ns > tr.t0 ? ns - tr.t0 : 0; }

static void put(kind_t kind, uint64_t start_ns, uint64_t dur, uint64_t a, uint64_t b,
                uint64_t c) {
  rec_t r = {since_t0(start_ns), dur, a, b, c, tid_self(), kind};
  fwrite(&r, sizeof r, 1, tr.tmp);
}

/* ---- json: JSON lines ------------------------------------------------------------- */

static void json_event(const char *event, uint64_t ops, double frac) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "t_s", json_object_new_double((double)(hl_now_ns() - tr.t0) / 1e9));
  json_object_object_add(o, "event", json_object_new_string(event));
  json_object_object_add(o, "ops", json_object_new_int64((int64_t)ops));
  json_object_object_add(o, "progress", json_object_new_double(frac));
  json_object_object_add(o, "rss_bytes", json_object_new_int64((int64_t)hl_rss_current_bytes()));
  fprintf(tr.f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  json_object_put(o);
}

static void json_gc(bool start, const hl_gc_info_t *info, void *arg) {
  (void)arg;
  if (start)
    fprintf(tr.f, "{\"t_s\":%.9f,\"event\":\"gc_start\",\"generation\":%d}\n",
            (double)(hl_now_ns() - tr.t0) / 1e9, info->generation);
  else
    fprintf(tr.f,
            "{\"t_s\":%.9f,\"event\":\"gc_end\",\"generation\":%d,\"collected\":%llu,"
            "\"uncollectable\":%llu}\n",
            (double)(hl_now_ns() - tr.t0) / 1e9, info->generation,
            (unsigned long long)info->collected, (unsigned long long)info->uncollectable);
}

static void json_gil(uint64_t thread_id, bool forced, uint64_t waited_ns, void *arg) {
  (void)arg;
  fprintf(tr.f,
          "{\"t_s\":%.9f,\"event\":\"gil_switch\",\"thread\":%llu,\"forced\":%s,"
          "\"waited_ns\":%llu}\n",
          (double)(hl_now_ns() - tr.t0) / 1e9, (unsigned long long)thread_id,
          forced ? "true" : "false", (unsigned long long)waited_ns);
}

/* ---- chrome: the hooks -------------------------------------------------------------- */

static void chrome_gc(bool start, const hl_gc_info_t *info, void *arg) {
  (void)arg;
  uint64_t now = hl_now_ns();
  if (start) {
    gc_start_ns = now;
    return;
  }
  /* the incremental collector records an increment that scanned as the
   * oldest generation; its young-only pauses keep their generation */
  bool increment = tr.incremental && info->generation == HL_GC_GENERATIONS - 1;
  put(K_GC, gc_start_ns, now - gc_start_ns,
      (uint64_t)info->generation | (uint64_t)info->full << 8 | (uint64_t)increment << 9,
      info->collected, info->uncollectable);
  /* The world is stopped, or this thread holds the GIL: no other thread is
   * in the allocator's pools (hl_alloc_stats reads them all). */
  if (tr.live && now - tr.live_last >= 10 * 1000 * 1000ull) {
    static hl_alloc_stats_t s;   /* large; one collection at a time */
    hl_alloc_stats(&s);
    tr.live_last = hl_now_ns();
    put(K_LIVE, now, 0, s.blocks_in_use - s.tcache_blocks, 0, 0);
  }
}

static void chrome_sync(hl_sync_event_t ev, uint64_t now, uint64_t a, uint64_t b, void *arg) {
  (void)arg;
  switch (ev) {
  case HL_SYNC_GIL_TAKE:
    if (a) put(K_GIL_WAIT, now - a, a, 0, b, 0);
    break;
  case HL_SYNC_GIL_RELEASE: put(K_GIL_HOLD, now - a, a, 0, b, 0); break;
  case HL_SYNC_GIL_DROP_REQUEST: put(K_GIL_ASK, now, 0, 0, 0, 0); break;
  case HL_SYNC_STW_STOPPED: put(K_STW_STOPPING, now - a, a, 0, 0, 0); break;
  case HL_SYNC_STW_RESUME: put(K_STW_STOPPED, now - a, a, 0, 0, 0); break;
  case HL_SYNC_STW_UNPARKED: put(K_STW_PARKED, now - a, a, 0, 0, 0); break;
  }
}

/* ---- chrome: writing ------------------------------------------------------------------ */

static int rec_order(const void *pa, const void *pb) {
  const rec_t *x = pa, *y = pb;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  if (x->dur != y->dur) return x->dur > y->dur ? -1 : 1;   /* the enclosing one first */
  return x->kind < y->kind ? -1 : x->kind > y->kind;
}

static const char *gil_reason(uint64_t b) {
  return b == 0 ? "block" : b == 1 ? "request" : "detach";
}

/* ns as microseconds with three decimals, exactly */
static void us(char *buf, size_t len, uint64_t ns) {
  snprintf(buf, len, "%llu.%03llu", (unsigned long long)(ns / 1000),
           (unsigned long long)(ns % 1000));
}

static void write_event(FILE *f, unsigned pid, const rec_t *r) {
  char ts[32], dur[32];
  us(ts, sizeof ts, r->ts);
  us(dur, sizeof dur, r->dur);
  const char *head = ",\n{\"pid\":%u,\"tid\":%u,\"ts\":%s,";
  switch ((kind_t)r->kind) {
  case K_NAME: break;   /* metadata, written first */
  case K_RUN:
    fprintf(f, head, pid, r->tid, ts);
    fprintf(f, "\"ph\":\"X\",\"dur\":%s,\"name\":\"timed part\",\"cat\":\"run\"}", dur);
    break;
  case K_GC: {
    int gen = (int)(r->a & 0xff);
    bool full = (r->a >> 8) & 1, incr = (r->a >> 9) & 1;
    char name[32];
    if (incr) snprintf(name, sizeof name, "gc increment");
    else snprintf(name, sizeof name, "gc gen %d", gen);
    fprintf(f, head, pid, r->tid, ts);
    fprintf(f,
            "\"ph\":\"X\",\"dur\":%s,\"name\":\"%s\",\"cat\":\"gc\",\"args\":{\"generation\":%d,"
            "\"full\":%s,\"collected\":%llu,\"uncollectable\":%llu}}",
            dur, name, gen, full ? "true" : "false", (unsigned long long)r->b,
            (unsigned long long)r->c);
    break;
  }
  case K_GIL_WAIT:
    fprintf(f, head, pid, r->tid, ts);
    fprintf(f, "\"ph\":\"X\",\"dur\":%s,\"name\":\"GIL wait\",\"cat\":\"gil\"}", dur);
    break;
  case K_GIL_HOLD:
    fprintf(f, head, pid, r->tid, ts);
    fprintf(f,
            "\"ph\":\"X\",\"dur\":%s,\"name\":\"GIL held\",\"cat\":\"gil\",\"args\":{\"released\":"
            "\"%s\"}}",
            dur, gil_reason(r->b));
    break;
  case K_GIL_ASK:
    fprintf(f, head, pid, r->tid, ts);
    fprintf(f, "\"ph\":\"i\",\"s\":\"t\",\"name\":\"GIL drop request\",\"cat\":\"gil\"}");
    break;
  case K_STW_STOPPING:
  case K_STW_STOPPED:
  case K_STW_PARKED: {
    const char *name = r->kind == K_STW_STOPPING  ? "stopping the world"
                       : r->kind == K_STW_STOPPED ? "world stopped"
                                                  : "parked (stop the world)";
    fprintf(f, head, pid, r->tid, ts);
    fprintf(f, "\"ph\":\"X\",\"dur\":%s,\"name\":\"%s\",\"cat\":\"stw\"}", dur, name);
    break;
  }
  case K_RSS:
    fprintf(f, head, pid, r->tid, ts);
    fprintf(f, "\"ph\":\"C\",\"name\":\"RSS\",\"args\":{\"MiB\":%.3f}}",
            (double)r->a / (1024.0 * 1024.0));
    break;
  case K_OPS:
    fprintf(f, head, pid, r->tid, ts);
    fprintf(f, "\"ph\":\"C\",\"name\":\"ops\",\"args\":{\"ops\":%llu}}", (unsigned long long)r->a);
    break;
  case K_LIVE:
    fprintf(f, head, pid, r->tid, ts);
    fprintf(f, "\"ph\":\"C\",\"name\":\"live pool blocks\",\"args\":{\"blocks\":%llu}}",
            (unsigned long long)r->a);
    break;
  }
}

/* A name as a JSON string (names come from the workload table and the
 * configuration: plain text, but quoted properly all the same). */
static void json_string(FILE *f, const char *s) {
  json_object *o = json_object_new_string(s);
  fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), f);
  json_object_put(o);
}

static void write_chrome(void) {
  size_t n = 0;
  rec_t *recs = NULL;
  if (fflush(tr.tmp) == 0 && fseek(tr.tmp, 0, SEEK_END) == 0) {
    long bytes = ftell(tr.tmp);
    n = bytes > 0 ? (size_t)bytes / sizeof(rec_t) : 0;
    recs = n ? malloc(n * sizeof *recs) : NULL;
    rewind(tr.tmp);
    if (!recs || fread(recs, sizeof *recs, n, tr.tmp) != n) n = 0;
  }
  qsort(recs, n, sizeof *recs, rec_order);
  unsigned pid = (unsigned)getpid();
  FILE *f = tr.f;
  char title[160];
  snprintf(title, sizeof title, "heaplab run %s", tr.workload);
  fprintf(f, "{\"traceEvents\":[\n{\"pid\":%u,\"tid\":%u,\"ph\":\"M\",\"name\":\"process_name\","
          "\"args\":{\"name\":", pid, pid);
  json_string(f, title);
  fprintf(f, "}}");
  /* thread names: the main thread first, then the workers in order, then
   * any other thread that left an event */
  for (size_t i = 0; i < n; i++) {
    if (recs[i].kind != K_NAME) continue;
    char name[64];
    uint64_t sort = recs[i].a == NAME_MAIN ? 0 : recs[i].a + 1;
    if (recs[i].a == NAME_MAIN) snprintf(name, sizeof name, "main (monitor)");
    else snprintf(name, sizeof name, "worker %llu", (unsigned long long)recs[i].a);
    fprintf(f,
            ",\n{\"pid\":%u,\"tid\":%u,\"ph\":\"M\",\"name\":\"thread_name\",\"args\":{\"name\":"
            "\"%s\"}},\n{\"pid\":%u,\"tid\":%u,\"ph\":\"M\",\"name\":\"thread_sort_index\","
            "\"args\":{\"sort_index\":%llu}}",
            pid, recs[i].tid, name, pid, recs[i].tid, (unsigned long long)sort);
  }
  for (size_t i = 0; i < n; i++) write_event(f, pid, &recs[i]);
  fprintf(f, "\n],\n\"displayTimeUnit\":\"ms\",\"otherData\":{\"workload\":");
  json_string(f, tr.workload);
  fprintf(f, ",\"commit\":");
  json_string(f, hl_build_commit);
  fprintf(f, ",\"events\":%zu}}\n", n);
  free(recs);
}

/* ---- the runner's calls ------------------------------------------------------------- */

int hl_trace_open(const hl_config_t *c, const char *workload, char *err, size_t errlen) {
  memset(&tr, 0, sizeof tr);
  if (!c->trace[0]) return 0;
  tr.cfg = c;
  tr.format = c->trace_format;
  snprintf(tr.workload, sizeof tr.workload, "%s", workload);
  if (!(tr.f = fopen(c->trace, "w"))) {
    snprintf(err, errlen, "option 'trace': cannot write '%s': %s", c->trace, strerror(errno));
    return -1;
  }
  if (tr.format == HL_TRACE_FORMAT_CHROME && !(tr.tmp = tmpfile())) {
    snprintf(err, errlen, "option 'trace': cannot create a temporary file for the chrome "
             "format's events: %s", strerror(errno));
    fclose(tr.f);
    tr.f = NULL;
    return -1;
  }
  return 0;
}

bool hl_trace_on(void) { return tr.f != NULL; }

void hl_trace_begin(uint64_t t0, bool gc, bool gil) {
  if (!tr.f) return;
  tr.t0 = t0;
  if (tr.format == HL_TRACE_FORMAT_JSON) {
    json_event("start", 0, 0.0);
    tr.gc_on = gc && hl_gc_callback_add(json_gc, NULL) == 0;
    if (gil) {
      hl_gil_set_switch_hook(json_gil, NULL);
      tr.gil_on = true;
    }
    return;
  }
  put(K_NAME, t0, 0, NAME_MAIN, 0, 0);
  tr.incremental = tr.cfg->gc == HL_GC_INCREMENTAL;
  tr.live = gc && tr.cfg->alloc == HL_ALLOC_POOL;
  tr.gc_on = gc && hl_gc_callback_add(chrome_gc, NULL) == 0;
  hl_sync_set_observer(chrome_sync, NULL);
  tr.observer_on = true;
  put(K_RSS, t0, 0, hl_rss_current_bytes(), 0, 0);
}

void hl_trace_thread(unsigned index) {
  if (tr.tmp) put(K_NAME, hl_now_ns(), 0, index, 0, 0);
}

void hl_trace_sample(uint64_t ops, double frac) {
  if (!tr.f) return;
  if (tr.format == HL_TRACE_FORMAT_JSON) {
    json_event("sample", ops, frac);
    return;
  }
  uint64_t now = hl_now_ns();
  put(K_RSS, now, 0, hl_rss_current_bytes(), 0, 0);
  put(K_OPS, now, 0, ops, 0, 0);
}

void hl_trace_unhook(void) {
  if (tr.gc_on) hl_gc_callback_remove(tr.format == HL_TRACE_FORMAT_JSON ? json_gc : chrome_gc, NULL);
  if (tr.gil_on) hl_gil_set_switch_hook(NULL, NULL);
  if (tr.observer_on) hl_sync_set_observer(NULL, NULL);
  tr.gc_on = tr.gil_on = tr.observer_on = false;
}

void hl_trace_end(uint64_t ops, uint64_t t_begin, uint64_t t_end) {
  if (!tr.f) return;
  if (tr.format == HL_TRACE_FORMAT_JSON) {
    json_event("end", ops, 1.0);
    return;
  }
  uint64_t now = hl_now_ns();
  if (t_end > t_begin) put(K_RUN, t_begin, t_end - t_begin, 0, 0, 0);
  put(K_RSS, now, 0, hl_rss_current_bytes(), 0, 0);
  put(K_OPS, now, 0, ops, 0, 0);
}

int hl_trace_close(bool ok, char *err, size_t errlen) {
  if (!tr.f) return 0;
  hl_trace_unhook();   /* a run that failed early may not have */
  bool bad = false;
  int e = 0;
  if (tr.tmp) {
    errno = 0;
    bad = ferror(tr.tmp) != 0;
    if (bad) e = errno ? errno : EIO;
    if (!bad) write_chrome();   /* a failed run's too: what led to the failure */
    fclose(tr.tmp);
  }
  errno = 0;
  if (fflush(tr.f) != 0 || ferror(tr.f)) {
    bad = true;
    if (!e) e = errno;
  }
  if (fclose(tr.f) != 0) {
    bad = true;
    if (!e) e = errno;
  }
  int rc = 0;
  if (bad && ok) {
    snprintf(err, errlen, "option 'trace': cannot write '%s': %s", tr.cfg->trace,
             strerror(e ? e : EIO));
    rc = -1;
  }
  tr.f = tr.tmp = NULL;
  return rc;
}
