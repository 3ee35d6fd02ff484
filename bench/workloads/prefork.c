/* prefork: a master builds a heap, forks worker processes that serve
 * requests from it, and each worker measures how much of the shared heap it
 * has copied.
 *
 * The design the seeds recommend ("disable the collector, use a master/
 * worker design") and the one Instagram measured: "Dismissing Python
 * Garbage Collection at Instagram" (Instagram Engineering, 2017) reports
 * that gc.disable() in their prefork uWSGI master raised the memory each
 * worker shared with it from about 140 MB to 225 MB. gc.freeze() (bpo-31558,
 * CPython 3.7) moves the master's objects into a generation that no
 * collection looks at, so that collections in the workers stop writing
 * their GC headers, and PEP 683 (immortal objects, CPython 3.12) names the
 * remaining writer: reference counts, which every read of a shared object
 * changes. --prefork-gc picks what the master does just before it forks:
 *
 *   on               nothing: the workers' collectors run over the whole heap
 *   off              hl_gc_disable(): no worker ever collects (cycles leak)
 *   freeze           hl_gc_freeze(): the workers collect only their own objects
 *   freeze-immortal  freeze, then hl_gc_immortalize(): the heap's counts stop
 *                    moving too (what Cinder's immortalize_heap does; --immortal=on
 *                    alone makes only the runtime's own objects immortal)
 *
 * The heap, built by the master (the runner's one worker thread) before the
 * timed part: HEAP_RECORDS records, each an instance of Record with an int
 * id, a str name, a list of tags (two of TAGS interned strs, a float, an
 * int) and a dict of attributes ({"score": float, "rank": int, "group":
 * tag}), 9 objects a record; an index dict from name to record and a dict
 * from tag to the list of its records, as a web application's module state
 * (450,000 objects, about 40 MiB). One full collection follows, so that the
 * heap is old when the workers start, as a server's is after its imports.
 *
 * A request, in a worker: look up REQUEST_RECORDS records by a name it
 * formats (a new str, as from a URL; any record, or with --touch-pct=P one
 * of the first P % built: a server whose requests read part of its state),
 * read each one's fields, taking and
 * dropping references as the interpreter does, and build a response: a
 * list of one dict per record holding the record's id, name and score and a
 * copy of its tags list. Then a context instance and a handler instance
 * that point at each other (a cycle: only a collection frees it) hold the
 * response, and the response goes into a per-worker cache of CACHE_SLOTS
 * entries, replacing the oldest one: cached responses live long enough to
 * reach the old generation, so that full collections come (CPython's rule:
 * when the objects promoted since the last one exceed a quarter of the old
 * generation), as in a server that keeps caches.
 *
 * What a worker measures, at SAMPLES + 1 points spread evenly over its run
 * (its share of the requests, or of --duration-s): /proc/self/smaps_rollup
 * (Rss, Pss, Shared_Clean, Shared_Dirty, Private_Clean, Private_Dirty) and
 * which of the pages holding the master's object headers it has copied
 * (/proc/self/pagemap's "exclusively mapped" bit, Linux 4.2: a page still
 * shared with the master is mapped twice or more), all of them and those
 * holding a container's header; its requests per second of its own wall
 * and CPU time, its minor page faults (a copy-on-write copy is one), its
 * collections, and a 1-in-8 sample of request latencies. The workers write
 * into a shared anonymous mapping; the master waits for them and the report
 * hook puts their figures in the result's `extra`.
 *
 * rc=gil and --threads=1 only: the master forks from the runner's worker
 * thread, and a child has that thread alone; the free-threaded modes rely
 * on threads (QSBR readers, stops of the world) that the child does not
 * have. ops = requests served by all the workers; scale=1 is REQUEST_UNIT
 * requests per worker. The checksum folds every request's ids and ranks:
 * it depends on the seed and --workers, never on --prefork-gc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "result.h"
#include "workload.h"

#define HEAP_RECORDS 50000u
#define TAGS 64u
#define REQUEST_RECORDS 4u
#define CACHE_SLOTS 4096u
#define REQUEST_UNIT 10000u
#define SAMPLES 20u
#define LATENCY_EVERY 8u

/* smaps_rollup's fields, in KiB */
#define PF_SMAPS(X)                                                                      \
  X(rss, "Rss:") X(pss, "Pss:") X(shared_clean, "Shared_Clean:")                         \
  X(shared_dirty, "Shared_Dirty:") X(private_clean, "Private_Clean:")                    \
  X(private_dirty, "Private_Dirty:")
#define PF_FIELD_(f, key) uint64_t f##_kib;

typedef struct pf_sample {
  uint64_t t_ns;              /* since the fork returned in the worker */
  uint64_t requests;
  uint64_t minor_faults;
  PF_SMAPS(PF_FIELD_)
  uint64_t heap_pages_copied, heap_gc_pages_copied;
} pf_sample_t;

/* One worker's figures, in the shared mapping: written by the worker,
 * read by the master after waitpid (progress: while it runs). */
typedef struct pf_report {
  uint64_t progress;          /* requests so far, relaxed */
  uint64_t requests, checksum, wall_ns, cpu_ns, minor_faults;
  uint64_t collections[HL_GC_GENERATIONS], gc_visited, gc_pause_ns, gc_collected;
  uint32_t nsamples;
  int ok;
  char err[160];
  pf_sample_t samples[SAMPLES + 1];
  hl_hist_t latency;
} pf_report_t;

typedef struct heap_page { uintptr_t page; bool gc; } heap_page_t;

typedef struct prefork {
  hl_prefork_gc_t mode;
  unsigned workers;
  uint64_t seed;
  uint64_t touched;           /* requests read records 0 .. touched-1 */
  size_t page_size;
  /* the master's heap */
  hl_type_t *record_cls, *ctx_cls, *handler_cls;
  hl_object_t *module;        /* {"records": [...], "index": {...}, "groups": {...}} */
  hl_object_t *records, *index, *groups;
  hl_object_t *tags[TAGS];
  hl_object_t *k_score, *k_rank, *k_group, *k_id, *k_name, *k_tags;
  uint64_t heap_objects, heap_containers;
  int64_t frozen, immortalized;
  /* the pages of the heap's object headers, sorted, unique */
  heap_page_t *pages;
  size_t npages, npages_gc;
  /* the master at the fork */
  pf_sample_t master;
  /* the workers */
  pf_report_t *reports;       /* workers entries, MAP_SHARED */
  size_t reports_len;
  pid_t *pids;
  int exit_status[64];
  hl_hist_t latency;
} prefork_t;

/* ---- reading /proc ---------------------------------------------------------------- */
/* With read(2), not stdio: the worker is a child of a threaded process. */
static void read_smaps(pf_sample_t *s) {
  char buf[4096];
  int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = '\0';
#define PF_PARSE_(f, key)                                                  \
  {                                                                        \
    const char *at = strstr(buf, "\n" key);                                \
    if (at) s->f##_kib = strtoull(at + 1 + strlen(key), NULL, 10);         \
  }
  PF_SMAPS(PF_PARSE_)
#undef PF_PARSE_
}

/* How many of the heap's pages this process maps alone (copied on write
 * since the fork, while the master still maps the original). */
static void read_pagemap(const prefork_t *p, pf_sample_t *s) {
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  uint64_t copied = 0, copied_gc = 0, e[512];
  for (size_t i = 0; i < p->npages;) {
    /* a run of consecutive pages, one read */
    size_t j = i + 1;
    while (j < p->npages && j - i < HL_ARRAY_LEN(e) && p->pages[j].page == p->pages[j - 1].page + 1)
      j++;
    off_t at = (off_t)(p->pages[i].page * sizeof(uint64_t));
    ssize_t want = (ssize_t)((j - i) * sizeof(uint64_t));
    if (pread(fd, e, (size_t)want, at) == want)
      for (size_t k = i; k < j; k++) {
        uint64_t v = e[k - i];
        bool excl = (v >> 63 & 1) && (v >> 56 & 1);   /* present and exclusively mapped */
        copied += excl;
        copied_gc += excl && p->pages[k].gc;
      }
    i = j;
  }
  close(fd);
  s->heap_pages_copied = copied;
  s->heap_gc_pages_copied = copied_gc;
}

static void sample(const prefork_t *p, pf_sample_t *s, uint64_t t0, uint64_t requests) {
  memset(s, 0, sizeof *s);
  s->t_ns = hl_now_ns() - t0;
  s->requests = requests;
  s->minor_faults = hl_page_faults_minor();
  read_smaps(s);
  read_pagemap(p, s);
}

/* ---- the master's heap ------------------------------------------------------------ */
typedef struct page_list { heap_page_t *v; size_t n, cap; bool nomem; } page_list_t;

static void note(page_list_t *l, const hl_object_t *o, size_t page_size) {
  if (l->nomem) return;
  if (l->n + 3 > l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 1u << 16;
    heap_page_t *v = realloc(l->v, cap * sizeof *v);
    if (!v) {
      l->nomem = true;
      return;
    }
    l->v = v;
    l->cap = cap;
  }
  bool gc = (o->flags & HL_OF_GC) != 0;
  uintptr_t a = (uintptr_t)o;
  /* the header, and a container's GC links in front of it: every page they touch */
  uintptr_t first = (gc ? a - 2 * sizeof(uintptr_t) : a) / page_size;
  uintptr_t last = (a + sizeof(hl_object_t) - 1) / page_size;
  for (uintptr_t pg = first; pg <= last; pg++) l->v[l->n++] = (heap_page_t){pg, gc};
}

static int page_cmp(const void *a, const void *b) {
  uintptr_t x = ((const heap_page_t *)a)->page, y = ((const heap_page_t *)b)->page;
  return x < y ? -1 : x > y;
}

static void pages_finish(prefork_t *p, page_list_t *l) {
  qsort(l->v, l->n, sizeof *l->v, page_cmp);
  size_t n = 0, ngc = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (n && l->v[n - 1].page == l->v[i].page) {
      l->v[n - 1].gc |= l->v[i].gc;
      continue;
    }
    l->v[n++] = l->v[i];
  }
  for (size_t i = 0; i < n; i++) ngc += l->v[i].gc;
  p->pages = l->v;
  p->npages = n;
  p->npages_gc = ngc;
}

/* Objects the heap holds, noted as they are made (a new reference each,
 * handed to its holder by the caller). */
static hl_object_t *made(prefork_t *p, page_list_t *l, hl_object_t *o) {
  if (!o) return NULL;
  p->heap_objects++;
  p->heap_containers += (o->flags & HL_OF_GC) != 0;
  note(l, o, p->page_size);
  return o;
}

static int build_record(prefork_t *p, page_list_t *l, uint64_t i, hl_rand_t *rng) {
  char name[32];
  int len = snprintf(name, sizeof name, "user%06llu", (unsigned long long)i);
  hl_object_t *rec = made(p, l, hl_instance_new(p->record_cls));
  hl_object_t *id = made(p, l, hl_int_new((int64_t)(100000 + i)));
  hl_object_t *nm = made(p, l, hl_str_new(name, (size_t)len));
  hl_object_t *tags = made(p, l, hl_list_new(0));
  hl_object_t *tf = made(p, l, hl_float_new((double)i / 7.0));
  hl_object_t *ti = made(p, l, hl_int_new((int64_t)(1000 + i % 5000)));
  hl_object_t *attrs = made(p, l, hl_dict_new());
  hl_object_t *score = made(p, l, hl_float_new((double)(hl_rand_next(rng) % 100000) / 100.0));
  hl_object_t *rank = made(p, l, hl_int_new((int64_t)(1000 + hl_rand_below(rng, 1000000))));
  hl_object_t *g1 = p->tags[hl_rand_below(rng, TAGS)], *g2 = p->tags[hl_rand_below(rng, TAGS)];
  int rc = -1;
  if (rec && id && nm && tags && tf && ti && attrs && score && rank &&
      hl_list_append(tags, g1) == 0 && hl_list_append(tags, g2) == 0 &&
      hl_list_append(tags, tf) == 0 && hl_list_append(tags, ti) == 0 &&
      hl_dict_set(attrs, p->k_score, score) == 0 && hl_dict_set(attrs, p->k_rank, rank) == 0 &&
      hl_dict_set(attrs, p->k_group, g1) == 0 && hl_list_append(p->records, rec) == 0 &&
      hl_dict_set(p->index, nm, rec) == 0) {
    hl_slot_set(rec, 0, id);
    hl_slot_set(rec, 1, nm);
    hl_slot_set(rec, 2, tags);
    hl_slot_set(rec, 3, attrs);
    hl_object_t *members = hl_dict_get(p->groups, g1);
    rc = members ? hl_list_append(members, rec) : -1;
  }
  hl_object_t *all[] = {rec, id, nm, tags, tf, ti, attrs, score, rank};
  for (size_t k = 0; k < HL_ARRAY_LEN(all); k++) hl_xdecref(all[k]);
  return rc;
}

static int build_heap(prefork_t *p, hl_rand_t *rng, char *err, size_t errlen) {
  page_list_t l = {0};
  p->k_score = hl_str_intern_cstr("score");
  p->k_rank = hl_str_intern_cstr("rank");
  p->k_group = hl_str_intern_cstr("group");
  p->k_id = hl_str_intern_cstr("id");
  p->k_name = hl_str_intern_cstr("name");
  p->k_tags = hl_str_intern_cstr("tags");
  p->module = made(p, &l, hl_dict_new());
  p->records = made(p, &l, hl_list_new(0));
  p->index = made(p, &l, hl_dict_new());
  p->groups = made(p, &l, hl_dict_new());
  bool ok = p->k_score && p->k_rank && p->k_group && p->k_id && p->k_name && p->k_tags &&
            p->module && p->records && p->index && p->groups &&
            hl_dict_set_cstr(p->module, "records", p->records) == 0 &&
            hl_dict_set_cstr(p->module, "index", p->index) == 0 &&
            hl_dict_set_cstr(p->module, "groups", p->groups) == 0;
  for (unsigned t = 0; ok && t < TAGS; t++) {
    char name[16];
    snprintf(name, sizeof name, "tag-%02u", t);
    hl_object_t *members = made(p, &l, hl_list_new(0));
    ok = (p->tags[t] = hl_str_intern_cstr(name)) != NULL && members &&
         hl_dict_set(p->groups, p->tags[t], members) == 0;
    if (p->tags[t]) note(&l, p->tags[t], p->page_size);
    hl_xdecref(members);
  }
  for (uint64_t i = 0; ok && i < HEAP_RECORDS; i++) ok = build_record(p, &l, i, rng) == 0;
  if (!ok || l.nomem) {
    free(l.v);
    snprintf(err, errlen, "out of memory building the master's heap: %s", hl_err_message());
    return -1;
  }
  pages_finish(p, &l);
  return 0;
}

static void drop_heap(prefork_t *p) {
  hl_clear(&p->records);
  hl_clear(&p->index);
  hl_clear(&p->groups);
  hl_clear(&p->module);
  for (unsigned t = 0; t < TAGS; t++) hl_clear(&p->tags[t]);
  hl_object_t **keys[] = {&p->k_score, &p->k_rank, &p->k_group, &p->k_id, &p->k_name, &p->k_tags};
  for (size_t k = 0; k < HL_ARRAY_LEN(keys); k++) hl_clear(keys[k]);
}

/* ---- a worker -------------------------------------------------------------------- */
/* One record's part of a response; *sum gets its id and rank. NULL: out of memory. */
static hl_object_t *serve_record(const prefork_t *p, hl_rand_t *rng, uint64_t *sum) {
  char name[32];
  uint64_t i = hl_rand_below(rng, p->touched);
  int len = snprintf(name, sizeof name, "user%06llu", (unsigned long long)i);
  hl_object_t *key = hl_str_new(name, (size_t)len);
  if (!key) return NULL;
  hl_object_t *rec = hl_dict_get(p->index, key);
  hl_decref(key);
  if (!rec) return NULL;
  rec = hl_newref(rec);
  hl_object_t *id = hl_newref(hl_slot_get(rec, 0)), *nm = hl_newref(hl_slot_get(rec, 1));
  hl_object_t *tags = hl_newref(hl_slot_get(rec, 2)), *attrs = hl_newref(hl_slot_get(rec, 3));
  hl_object_t *score = hl_dict_get_ref(attrs, p->k_score);
  hl_object_t *rank = hl_dict_get_ref(attrs, p->k_rank);
  hl_object_t *item = hl_dict_new(), *copy = hl_list_new(0);
  bool ok = score && rank && item && copy;
  /* for tag in rec.tags: copy.append(tag) */
  for (size_t k = 0; ok && k < hl_list_size(tags); k++) {
    hl_object_t *t = hl_newref(hl_list_get(tags, k));
    ok = hl_list_append(copy, t) == 0;
    hl_decref(t);
  }
  ok = ok && hl_dict_set(item, p->k_id, id) == 0 && hl_dict_set(item, p->k_name, nm) == 0 &&
       hl_dict_set(item, p->k_score, score) == 0 && hl_dict_set(item, p->k_tags, copy) == 0;
  if (ok) *sum = hl_fnv1a_u64(hl_fnv1a_u64(*sum, (uint64_t)hl_int_value(id)),
                              (uint64_t)hl_int_value(rank));
  hl_object_t *all[] = {rec, id, nm, tags, attrs, score, rank, copy};
  for (size_t k = 0; k < HL_ARRAY_LEN(all); k++) hl_xdecref(all[k]);
  if (!ok) hl_clear(&item);
  return item;
}

/* A request; false: out of memory. */
static bool serve(const prefork_t *p, hl_object_t *cache, hl_rand_t *rng, uint64_t n,
                  uint64_t *sum) {
  hl_object_t *resp = hl_list_new(0), *ctx = hl_instance_new(p->ctx_cls);
  hl_object_t *handler = hl_instance_new(p->handler_cls), *slot = hl_int_new((int64_t)(1000 + n % CACHE_SLOTS));
  bool ok = resp && ctx && handler && slot;
  for (unsigned r = 0; ok && r < REQUEST_RECORDS; r++) {
    hl_object_t *item = serve_record(p, rng, sum);
    ok = item && hl_list_append(resp, item) == 0;
    hl_xdecref(item);
  }
  if (ok) {
    /* the request's context and its handler point at each other */
    hl_slot_set(ctx, 0, resp);
    hl_slot_set(ctx, 1, handler);
    hl_slot_set(handler, 0, ctx);
    ok = hl_dict_set(cache, slot, resp) == 0;   /* replaces the entry CACHE_SLOTS requests old */
  }
  hl_object_t *all[] = {resp, ctx, handler, slot};
  for (size_t k = 0; k < HL_ARRAY_LEN(all); k++) hl_xdecref(all[k]);
  return ok;
}

static HL_NORETURN void worker_main(prefork_t *p, unsigned k, uint64_t target, uint64_t deadline) {
  pf_report_t *rep = &p->reports[k];
  uint64_t t0 = hl_now_ns(), c0 = hl_process_cpu_ns();
  hl_rand_t rng;
  hl_rand_seed(&rng, p->seed * 0x100000001b3ull + 1 + k);
  hl_gc_stats_reset();
  hl_hist_init(&rep->latency);
  sample(p, &rep->samples[0], t0, 0);
  rep->nsamples = 1;
  hl_object_t *cache = hl_dict_new();
  uint64_t n = 0, sum = hl_fnv1a_u64(HL_FNV_OFFSET, k);
  bool ok = cache != NULL;
  while (ok) {
    /* the share of the run done: requests, or time */
    double done = deadline ? (double)(hl_now_ns() - t0) / (double)(deadline - t0)
                           : (double)n / (double)target;
    while (rep->nsamples <= SAMPLES && done * SAMPLES >= rep->nsamples) {
      sample(p, &rep->samples[rep->nsamples], t0, n);
      rep->nsamples++;
    }
    if (done >= 1) break;
    for (unsigned c = 0; c < 16 && ok && (deadline || n < target); c++) {
      HL_WORKLOAD_CHECKPOINT();
      bool timed = n % LATENCY_EVERY == 0;
      uint64_t s0 = timed ? hl_now_ns() : 0;
      ok = serve(p, cache, &rng, n, &sum);
      if (timed) hl_hist_record(&rep->latency, hl_now_ns() - s0);
      n++;
    }
    hl_atomic_store_relaxed_u64(&rep->progress, n);
  }
  if (!ok) snprintf(rep->err, sizeof rep->err, "worker %u: out of memory: %s", k, hl_err_message());
  rep->wall_ns = hl_now_ns() - t0;
  rep->cpu_ns = hl_process_cpu_ns() - c0;
  rep->minor_faults = hl_page_faults_minor();
  rep->requests = n;
  rep->checksum = sum;
  hl_gc_stats_t gs;
  hl_gc_stats(&gs);
  for (int g = 0; g < HL_GC_GENERATIONS; g++) rep->collections[g] = gs.collections[g];
  rep->gc_visited = gs.visited;
  rep->gc_pause_ns = gs.pause_ns_total;
  for (int g = 0; g < HL_GC_GENERATIONS; g++) rep->gc_collected += gs.collected[g];
  hl_atomic_store_relaxed_u64(&rep->progress, n);
  rep->ok = ok;
  /* no clean-up: the process ends here, and its heap with it */
  _exit(ok ? 0 : 1);
}

/* ---- the master ------------------------------------------------------------------ */
static const char *mode_name(hl_prefork_gc_t m) {
  return hl_config_choice_name(HL_OPT_PREFORK_GC, (int)m);
}

static int before_fork(prefork_t *p) {
  /* the heap is old when the workers start (hl_gc_collect: 0 with --gc=none) */
  hl_gc_collect(HL_GC_GENERATIONS - 1);
  switch (p->mode) {
  case HL_PREFORK_GC_ON: break;
  case HL_PREFORK_GC_OFF: hl_gc_disable(); break;
  case HL_PREFORK_GC_FREEZE:
  case HL_PREFORK_GC_FREEZE_IMMORTAL:
    hl_gc_freeze();
    p->frozen = (int64_t)hl_gc_get_freeze_count();
    if (p->mode == HL_PREFORK_GC_FREEZE_IMMORTAL && (p->immortalized = hl_gc_immortalize()) < 0)
      return -1;
    break;
  }
  return 0;
}

static void after_workers(prefork_t *p) {
  if (p->mode == HL_PREFORK_GC_FREEZE_IMMORTAL) hl_gc_immortalize_undo();
  if (p->mode == HL_PREFORK_GC_FREEZE || p->mode == HL_PREFORK_GC_FREEZE_IMMORTAL)
    hl_gc_unfreeze();
  if (p->mode == HL_PREFORK_GC_OFF) hl_gc_enable();
}

static void prefork_work(hl_worker_t *w) {
  prefork_t *p = w->shared;
  char err[256];
  hl_rand_t rng;
  hl_rand_seed(&rng, w->cfg->seed);
  int rc = build_heap(p, &rng, err, sizeof err);
  if (rc == 0 && before_fork(p) != 0) {
    snprintf(err, sizeof err, "%s", hl_err_message());
    after_workers(p);   /* what before_fork did, undone (with no workers) */
    rc = -1;
  }
  if (rc != 0) {
    hl_worker_fail(w, "%s", err);
    hl_worker_begin(w);
    hl_worker_end(w);
    drop_heap(p);
    return;
  }
  sample(p, &p->master, hl_now_ns(), 0);
  hl_worker_begin(w);
  uint64_t per_worker = w->target_ops / p->workers;
  unsigned started = 0;
  for (unsigned k = 0; k < p->workers; k++) {
    hl_alloc_fork_prepare();
    pid_t pid = fork();
    if (pid == 0) {
      hl_alloc_fork_child();
      worker_main(p, k, per_worker, w->deadline_ns);
    }
    hl_alloc_fork_parent();
    if (pid < 0) {
      hl_worker_fail(w, "fork of worker %u of %u: %s", k, p->workers, strerror(errno));
      break;
    }
    p->pids[k] = pid;
    started++;
  }
  /* wait, publishing the workers' progress as this thread's */
  unsigned left = started;
  while (left) {
    uint64_t sum = 0;
    for (unsigned k = 0; k < started; k++) sum += hl_atomic_load_relaxed_u64(&p->reports[k].progress);
    hl_atomic_store_relaxed_u64(&w->progress, sum);
    for (unsigned k = 0; k < started; k++) {
      if (!p->pids[k]) continue;
      int status;
      pid_t r = waitpid(p->pids[k], &status, WNOHANG);
      if (r == p->pids[k]) {
        p->exit_status[k] = status;
        p->pids[k] = 0;
        left--;
      }
    }
    if (left) {
      struct timespec ts = {0, 5000000};
      nanosleep(&ts, NULL);
    }
  }
  uint64_t ops = 0, sum = 0;
  for (unsigned k = 0; k < started; k++) {
    pf_report_t *rep = &p->reports[k];
    int st = p->exit_status[k];
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !rep->ok) {
      if (WIFSIGNALED(st))
        hl_worker_fail(w, "worker %u was killed by signal %d", k, WTERMSIG(st));
      else
        hl_worker_fail(w, "worker %u exited with status %d%s%s", k, WEXITSTATUS(st),
                       rep->err[0] ? ": " : "", rep->err);
    }
    ops += rep->requests;
    sum = hl_fnv1a_u64(sum, rep->checksum);
    hl_hist_merge(&p->latency, &rep->latency);
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
  after_workers(p);
  drop_heap(p);
}

/* ---- the workload ---------------------------------------------------------------- */
static int prefork_check(const hl_config_t *c, char *err, size_t errlen) {
  if (c->rc != HL_RC_GIL) {
    snprintf(err, errlen,
             "option 'rc': invalid value '%s' for prefork, whose workers are forked from one "
             "thread and keep only it (the free-threaded modes need the threads they "
             "registered); accepted: gil",
             hl_config_choice_name(HL_OPT_RC, (int)c->rc));
    return -1;
  }
  if (c->threads != 1) {
    snprintf(err, errlen,
             "option 'threads': invalid value '%u' for prefork, whose master is one thread "
             "(the workers are processes: --workers); accepted: 1",
             c->threads);
    return -1;
  }
  if (c->gc == HL_GC_NONE && c->prefork_gc != HL_PREFORK_GC_OFF) {
    snprintf(err, errlen,
             "option 'prefork-gc': invalid value '%s' with --gc=none, which has no collector "
             "to run, freeze or make immortal; accepted with --gc=none: off (or pick --gc=stw)",
             mode_name(c->prefork_gc));
    return -1;
  }
  return 0;
}

static uint64_t prefork_ops(const hl_config_t *c) {
  return (uint64_t)REQUEST_UNIT * c->scale * c->workers;
}

static void prefork_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  prefork_t *p = shared;
  if (!p) return;
  if (p->reports) munmap(p->reports, p->reports_len);
  free(p->pages);
  free(p->pids);
  free(p);
}

static int prefork_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  prefork_t *p = calloc(1, sizeof *p);
  if (!p) goto nomem;
  p->mode = c->prefork_gc;
  p->workers = (unsigned)c->workers;
  p->seed = c->seed;
  p->touched = HEAP_RECORDS * c->touch_pct / 100;
  if (!p->touched) p->touched = 1;
  p->page_size = (size_t)sysconf(_SC_PAGESIZE);
  p->immortalized = -1;
  p->frozen = -1;
  hl_hist_init(&p->latency);
  p->reports_len = p->workers * sizeof *p->reports;
  p->reports = mmap(NULL, p->reports_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p->reports == MAP_FAILED) {
    p->reports = NULL;
    goto nomem;
  }
  if (!(p->pids = calloc(p->workers, sizeof *p->pids)) ||
      !(p->record_cls = hl_class_new("Record", 4, false, NULL)) ||
      !(p->ctx_cls = hl_class_new("Context", 2, false, NULL)) ||
      !(p->handler_cls = hl_class_new("Handler", 1, false, NULL)))
    goto nomem;
  *shared = p;
  return 0;
nomem:
  prefork_teardown(p, NULL);
  snprintf(err, errlen, "prefork: out of memory");
  return -ENOMEM;
}

static json_object *sample_json(const pf_sample_t *s) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "t_s", json_object_new_double((double)s->t_ns / 1e9));
  json_object_object_add(o, "requests", json_object_new_int64((int64_t)s->requests));
  json_object_object_add(o, "minor_faults", json_object_new_int64((int64_t)s->minor_faults));
#define PF_JSON_(f, key) \
  json_object_object_add(o, #f "_kib", json_object_new_int64((int64_t)s->f##_kib));
  PF_SMAPS(PF_JSON_)
#undef PF_JSON_
  json_object_object_add(o, "heap_pages_copied", json_object_new_int64((int64_t)s->heap_pages_copied));
  json_object_object_add(o, "heap_gc_pages_copied",
                         json_object_new_int64((int64_t)s->heap_gc_pages_copied));
  return o;
}

/* The workers' mean of one field at the sample nearest a share of the run. */
static double at_share(const prefork_t *p, double share, size_t off) {
  double sum = 0;
  unsigned n = 0;
  for (unsigned k = 0; k < p->workers; k++) {
    const pf_report_t *rep = &p->reports[k];
    if (!rep->nsamples) continue;
    unsigned i = (unsigned)(share * SAMPLES + 0.5);
    if (i >= rep->nsamples) i = rep->nsamples - 1;
    sum += (double)*(const uint64_t *)(const void *)((const char *)&rep->samples[i] + off);
    n++;
  }
  return n ? sum / n : 0;
}

static void prefork_report(void *shared, hl_run_result_t *r) {
  const prefork_t *p = shared;
  json_object *o = json_object_new_object(), *ws = json_object_new_array();
  json_object_object_add(o, "workers", json_object_new_int((int)p->workers));
  json_object_object_add(o, "prefork_gc", json_object_new_string(mode_name(p->mode)));
  json_object_object_add(o, "heap_records", json_object_new_int64(HEAP_RECORDS));
  json_object_object_add(o, "records_read", json_object_new_int64((int64_t)p->touched));
  json_object_object_add(o, "heap_objects", json_object_new_int64((int64_t)p->heap_objects));
  json_object_object_add(o, "heap_containers", json_object_new_int64((int64_t)p->heap_containers));
  json_object_object_add(o, "heap_pages", json_object_new_int64((int64_t)p->npages));
  json_object_object_add(o, "heap_gc_pages", json_object_new_int64((int64_t)p->npages_gc));
  json_object_object_add(o, "page_size", json_object_new_int64((int64_t)p->page_size));
  json_object_object_add(o, "frozen", json_object_new_int64(p->frozen));
  json_object_object_add(o, "immortalized", json_object_new_int64(p->immortalized));
  json_object_object_add(o, "master_at_fork", sample_json(&p->master));
  double rps = 0, cpu_rps = 0;
  for (unsigned k = 0; k < p->workers; k++) {
    const pf_report_t *rep = &p->reports[k];
    json_object *x = json_object_new_object(), *ss = json_object_new_array();
    double wall = (double)rep->wall_ns / 1e9, cpu = (double)rep->cpu_ns / 1e9;
    json_object_object_add(x, "requests", json_object_new_int64((int64_t)rep->requests));
    json_object_object_add(x, "exit_status", json_object_new_int(WIFEXITED(p->exit_status[k])
                                                                     ? WEXITSTATUS(p->exit_status[k])
                                                                     : -1));
    json_object_object_add(x, "wall_s", json_object_new_double(wall));
    json_object_object_add(x, "cpu_s", json_object_new_double(cpu));
    json_object_object_add(x, "requests_per_s", json_object_new_double(wall > 0 ? (double)rep->requests / wall : 0));
    json_object_object_add(x, "requests_per_cpu_s", json_object_new_double(cpu > 0 ? (double)rep->requests / cpu : 0));
    json_object_object_add(x, "minor_faults", json_object_new_int64((int64_t)rep->minor_faults));
    json_object *cs = json_object_new_array();
    for (int g = 0; g < HL_GC_GENERATIONS; g++)
      json_object_array_add(cs, json_object_new_int64((int64_t)rep->collections[g]));
    json_object_object_add(x, "collections", cs);
    json_object_object_add(x, "gc_visited", json_object_new_int64((int64_t)rep->gc_visited));
    json_object_object_add(x, "gc_collected", json_object_new_int64((int64_t)rep->gc_collected));
    json_object_object_add(x, "gc_pause_s", json_object_new_double((double)rep->gc_pause_ns / 1e9));
    json_object_object_add(x, "latency_ns", hl_json_hist(&rep->latency));
    for (uint32_t i = 0; i < rep->nsamples; i++) json_object_array_add(ss, sample_json(&rep->samples[i]));
    json_object_object_add(x, "samples", ss);
    json_object_array_add(ws, x);
    rps += wall > 0 ? (double)rep->requests / wall : 0;
    cpu_rps += cpu > 0 ? (double)rep->requests / cpu : 0;
  }
  json_object_object_add(o, "requests_per_s", json_object_new_double(rps));
  json_object_object_add(o, "requests_per_cpu_s", json_object_new_double(cpu_rps));
  json_object_object_add(o, "latency_ns", hl_json_hist(&p->latency));
  /* the curve: the workers' mean at 0, 10, 50 and 100 % of the run */
  static const struct { const char *name; double share; } at[] = {
    {"0", 0}, {"10", 0.1}, {"50", 0.5}, {"100", 1}};
  static const struct { const char *name; size_t off; } fields[] = {
    {"private_dirty_kib", offsetof(pf_sample_t, private_dirty_kib)},
    {"shared_dirty_kib", offsetof(pf_sample_t, shared_dirty_kib)},
    {"pss_kib", offsetof(pf_sample_t, pss_kib)},
    {"heap_pages_copied", offsetof(pf_sample_t, heap_pages_copied)},
    {"heap_gc_pages_copied", offsetof(pf_sample_t, heap_gc_pages_copied)}};
  for (size_t f = 0; f < HL_ARRAY_LEN(fields); f++) {
    json_object *c = json_object_new_object();
    for (size_t i = 0; i < HL_ARRAY_LEN(at); i++)
      json_object_object_add(c, at[i].name, json_object_new_double(at_share(p, at[i].share, fields[f].off)));
    json_object_object_add(o, fields[f].name, c);
  }
  json_object_object_add(o, "worker", ws);
  r->extra = o;
}

const hl_workload_t hl_workload_prefork = {
  .name = "prefork",
  .summary = "a master builds a 450,000-object heap and forks --workers processes that serve "
             "requests from it; each measures the heap pages it copied (smaps_rollup, "
             "pagemap) under --prefork-gc=on|off|freeze|freeze-immortal",
  .unit = "10,000 requests per worker process (4 record lookups, a response, a cycle each)",
  .uses = HL_RUNNER_USES | HL_OBJ_USES | HL_OPT_BIT(HL_OPT_WORKERS) |
          HL_OPT_BIT(HL_OPT_PREFORK_GC) | HL_OPT_BIT(HL_OPT_TOUCH_PCT),
  .ops_per_scale = REQUEST_UNIT,
  .ops_per_thread = prefork_ops,
  .check = prefork_check,
  .setup = prefork_setup,
  .work = prefork_work,
  .teardown = prefork_teardown,
  .report = prefork_report,
};
