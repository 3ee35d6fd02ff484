/* long-lived: a large heap that stays, young objects that come and go, a
 * little cyclic garbage: what the generational collector's pauses look like
 * as the heap grows (the number an incremental collector has to beat).
 *
 * Each worker, timed:
 *   1. builds a heap of --scale million objects: records in chunk lists of
 *      CHUNK records, the chunks in one top list. Record i is of kind i % 4:
 *        0  a tuple (I, F, S)                                    4 objects
 *        1  a Rec instance (slots id = I, tags = [F, S],
 *           peer = None)                                         5 objects
 *        2  a dict {"id": I, "name": S, "pos": (F, F + 0.5)}     6 objects
 *        3  a list [I, S]                                        3 objects
 *      with I = 1000 + i (an int above the small-int cache), F = i + 0.25,
 *      S = "r" followed by i in decimal; the dict keys are interned;
 *   2. churns: CHURN_PER_SCALE x scale operations, each one record made of
 *      kind i % 4 (i counting on), which
 *        with probability 1/8 replaces a random record of the heap: the heap
 *          ages and renews, so that survivors pile up and full collections
 *          come due;
 *        with probability 1/8 replaces a random slot of a young window (a
 *          list of YOUNG slots): objects that survive a young collection or
 *          two;
 *        otherwise is dropped at once;
 *      and with probability 1/16 a Rec whose peer is itself is made and
 *      dropped: cyclic garbage (5 objects), which only a collection frees.
 * The heap itself is acyclic (with --gc=none only the self-cycles leak,
 * and the worker counts them). With --duration-s, both steps stop at the
 * deadline (the heap may then be smaller).
 * ops = records made (steps 1 and 2). The pauses (JSON "gc") come from the
 * collector's own schedule during the timed part.
 *
 * Then, untimed, one worker measures the collector's cost per object beside
 * CPython's (bench/python/gc_long_lived.py builds the same heap at the same
 * scale with the same rules and times gc.collect the same way), with
 * automatic collection off:
 *   - a full collection first (everything old; tuples and dicts untracked
 *     where they can be), then FULL_RUNS timed full collections;
 *   - YOUNG_RUNS times: YOUNG_RECORDS records of the four kinds in a fresh
 *     list and YOUNG_CYCLES self-cycles dropped, then one timed collection
 *     of generation 0; then the list is dropped.
 * JSON "gc" gets young_ns_per_obj and full_ns_per_obj: for each run, the
 * timed nanoseconds over the objects the collection examined (step 1 of
 * the algorithm: the tracked containers of the generations collected); the
 * median over the runs, so that a run the scheduler interrupted does not
 * weigh on the figure (on a shared machine some are).
 *
 * Before that, where the young objects lie (JSON "extra".young_placement,
 * papers/gc-threshold): generation 0 as the churn left it, beside every
 * tracked container; their addresses by 4 KiB page. A young object made by
 * the churn takes a block freed by a record it replaced, anywhere in the
 * heap, so the young generation is scattered over the heap's pages rather
 * than packed: a collection of it misses the cache once it outgrows it.
 *
 * The checksum folds every record's values as it is made and a final walk
 * of the heap: it depends on the seed, the scale and the thread only.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

#define CHUNK 1000u
#define YOUNG 4096u
#define CHURN_PER_SCALE 4000000ull
#define FULL_RUNS 3
#define YOUNG_RUNS 20
#define YOUNG_RECORDS 2000u
#define YOUNG_CYCLES 100u

typedef struct ll_shared {
  hl_type_t *rec;                 /* id, tags, peer */
  hl_object_t *k_id, *k_name, *k_pos;
  uint64_t heap_objects;          /* per thread: scale million */
  uint64_t churn;                 /* operations per thread */
  hl_run_gc_probe_t probe;              /* written by the one worker that measures */
  struct ll_placement {           /* likewise: generation 0 at the churn's end */
    bool measured;
    uint64_t young, young_pages, heap_objects, heap_pages, young_pages_shared;
    uint64_t gap_median, gap_p90;   /* bytes between consecutive young objects, list order */
  } place;
} ll_shared_t;

static void ll_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  ll_shared_t *s = shared;
  if (!s) return;
  hl_xdecref(s->k_id);
  hl_xdecref(s->k_name);
  hl_xdecref(s->k_pos);
  free(s);
}

static int ll_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  ll_shared_t *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "long-lived: out of memory");
    return -ENOMEM;
  }
  s->heap_objects = c->scale * 1000000ull;
  s->churn = c->scale * CHURN_PER_SCALE;
  if (!(s->rec = hl_class_new("Rec", 3, false, NULL)) ||
      !(s->k_id = hl_str_intern_cstr("id")) || !(s->k_name = hl_str_intern_cstr("name")) ||
      !(s->k_pos = hl_str_intern_cstr("pos"))) {
    snprintf(err, errlen, "long-lived: %s", hl_err_message());
    ll_teardown(s, NULL);
    return -ENOMEM;
  }
  *shared = s;
  return 0;
}

static void ll_report(void *shared, hl_run_result_t *r) {
  const ll_shared_t *s = shared;
  if (s->place.measured) {
    const struct ll_placement *p = &s->place;
    json_object *o = json_object_new_object(), *y = json_object_new_object();
    json_object_object_add(y, "young_objects", json_object_new_int64((int64_t)p->young));
    json_object_object_add(y, "young_pages", json_object_new_int64((int64_t)p->young_pages));
    json_object_object_add(y, "young_pages_shared_with_old",
                           json_object_new_int64((int64_t)p->young_pages_shared));
    json_object_object_add(y, "tracked_objects", json_object_new_int64((int64_t)p->heap_objects));
    json_object_object_add(y, "tracked_pages", json_object_new_int64((int64_t)p->heap_pages));
    json_object_object_add(y, "gap_median_bytes", json_object_new_int64((int64_t)p->gap_median));
    json_object_object_add(y, "gap_p90_bytes", json_object_new_int64((int64_t)p->gap_p90));
    json_object_object_add(o, "young_placement", y);
    r->extra = o;
  }
  if (!r->gc) return;
  r->gc->probe = s->probe;
}

static const unsigned kind_objects[4] = {4, 5, 6, 3};

/* Record i of its kind (a new reference, NULL when memory ran out). *value
 * gets what the checksum folds. */
static hl_object_t *record(const ll_shared_t *s, uint64_t i, uint64_t *value) {
  char buf[24];
  int len = snprintf(buf, sizeof buf, "r%llu", (unsigned long long)i);
  hl_object_t *I = hl_int_new((int64_t)(1000 + i)), *F = hl_float_new((double)i + 0.25);
  hl_object_t *S = hl_str_new(buf, (size_t)len), *o = NULL;
  if (!I || !F || !S) goto out;
  switch (i & 3) {
  case 0: o = hl_tuple_pack(3, I, F, S); break;
  case 1: {
    hl_object_t *tags = hl_list_new(0);
    if (!tags || hl_list_append(tags, F) != 0 || hl_list_append(tags, S) != 0 ||
        !(o = hl_instance_new(s->rec))) {
      hl_xdecref(tags);
      break;
    }
    hl_slot_set(o, 0, I);
    hl_slot_set(o, 1, tags);
    hl_decref(tags);
    break;
  }
  case 2: {
    hl_object_t *F2 = hl_float_new((double)i + 0.75), *pos = F2 ? hl_tuple_pack(2, F, F2) : NULL;
    o = pos ? hl_dict_new() : NULL;
    if (o && (hl_dict_set(o, s->k_id, I) != 0 || hl_dict_set(o, s->k_name, S) != 0 ||
              hl_dict_set(o, s->k_pos, pos) != 0)) {
      hl_decref(o);
      o = NULL;
    }
    hl_xdecref(F2);
    hl_xdecref(pos);
    break;
  }
  default:
    o = hl_list_new(0);
    if (o && (hl_list_append(o, I) != 0 || hl_list_append(o, S) != 0)) {
      hl_decref(o);
      o = NULL;
    }
    break;
  }
  *value = hl_fnv1a_u64(i, (uint64_t)len);
out:
  hl_xdecref(I);
  hl_xdecref(F);
  hl_xdecref(S);
  return o;
}

/* The value a record holds (what the final walk folds): its I. */
static int64_t record_id(const ll_shared_t *s, hl_object_t *o) {
  switch (o->type->kind) {
  case HL_K_TUPLE: return hl_int_value(hl_tuple_get(o, 0));
  case HL_K_INSTANCE: return hl_int_value(hl_slot_get(o, 0));
  case HL_K_DICT: return hl_int_value(hl_dict_get(o, s->k_id));
  default: return hl_int_value(hl_list_get(o, 0));
  }
}

/* Self-cycle: a Rec whose peer is itself, dropped. */
static bool cyclic_garbage(const ll_shared_t *s, uint64_t i) {
  uint64_t v;
  hl_object_t *o = record(s, (i & ~(uint64_t)3) | 1, &v);   /* kind 1: a Rec */
  if (!o) return false;
  hl_slot_set(o, 2, o);
  hl_decref(o);
  return true;
}


static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The addresses of a get_objects list's items but the list itself (which
 * is tracked too); a malloc'ed array, *n its length; NULL when empty. */
static uint64_t *addresses(int generation, size_t *n) {
  hl_object_t *l = hl_gc_get_objects(generation);
  *n = 0;
  if (!l) return NULL;
  size_t len = hl_list_size(l);
  uint64_t *a = len ? malloc(len * sizeof *a) : NULL;
  for (size_t k = 0; a && k < len; k++) {
    hl_object_t *o = hl_list_get(l, k);
    if (o != l) a[(*n)++] = (uint64_t)(uintptr_t)o;
  }
  hl_decref(l);
  return a;
}

/* Distinct 4 KiB pages of n sorted addresses. */
static uint64_t pages_of(const uint64_t *a, size_t n) {
  uint64_t pages = 0;
  for (size_t k = 0; k < n; k++)
    if (k == 0 || a[k] >> 12 != a[k - 1] >> 12) pages++;
  return pages;
}

/* Untimed: where generation 0's objects lie (struct ll_placement). */
static void placement(struct ll_placement *p) {
  size_t ny, nall;
  uint64_t *young = addresses(0, &ny), *all = addresses(-1, &nall);
  if (young && all && ny > 1) {
    uint64_t *gap = malloc((ny - 1) * sizeof *gap);
    if (gap) {
      for (size_t k = 1; k < ny; k++)
        gap[k - 1] = young[k] > young[k - 1] ? young[k] - young[k - 1] : young[k - 1] - young[k];
      qsort(gap, ny - 1, sizeof *gap, cmp_u64);
      p->gap_median = gap[(ny - 1) / 2];
      p->gap_p90 = gap[(ny - 1) * 9 / 10];
      free(gap);
    }
    qsort(young, ny, sizeof *young, cmp_u64);
    qsort(all, nall, sizeof *all, cmp_u64);
    p->young = ny;
    p->young_pages = pages_of(young, ny);
    p->heap_objects = nall;
    p->heap_pages = pages_of(all, nall);
    /* a young page is shared when a tracked object not young lies on it:
     * more tracked objects on the page than young ones */
    size_t j = 0, k = 0;
    while (k < ny) {
      uint64_t page = young[k] >> 12, in_young = 0, in_all = 0;
      while (k < ny && young[k] >> 12 == page) k++, in_young++;
      while (j < nall && all[j] >> 12 < page) j++;
      while (j < nall && all[j] >> 12 == page) j++, in_all++;
      if (in_all > in_young) p->young_pages_shared++;
    }
    p->measured = true;
  }
  free(young);
  free(all);
}

/* Untimed (hl_run_gc_probe, below): the collector's cost per object
 * examined, as the Python twin measures it; each young run makes YOUNG_RECORDS records
 * in a fresh list and drops YOUNG_CYCLES self-cycles. */
typedef struct { const ll_shared_t *cs; uint64_t i; } young_maker_t;

static hl_object_t *make_young(void *arg) {
  young_maker_t *m = arg;
  hl_object_t *tmp = hl_list_new(0);
  if (!tmp) return NULL;
  for (unsigned k = 0; k < YOUNG_RECORDS; k++) {
    uint64_t v;
    hl_object_t *o = record(m->cs, m->i++, &v);
    if (!o) break;
    hl_list_append(tmp, o);
    hl_decref(o);
  }
  for (unsigned k = 0; k < YOUNG_CYCLES; k++) cyclic_garbage(m->cs, m->i++);
  return tmp;
}

static void ll_work(hl_worker_t *w) {
  ll_shared_t *s = w->shared;
  hl_rand_t *rng = &w->rng;
  uint64_t ops = 0, made = 0, i = 0, sum = hl_fnv1a_u64(HL_FNV_OFFSET, w->index), v;
  if (!w->deadline_ns) w->target_ops = UINT64_MAX;   /* the schedule below decides */
  hl_object_t *top = NULL, *young = NULL;
  size_t nchunks = 0;

  hl_worker_begin(w);
  /* 1. the heap */
  if (!(top = hl_list_new(0)) || !(young = hl_list_new(YOUNG))) {
    hl_worker_fail(w, "out of memory for the heap's lists");
    goto done;
  }
  made = 2;
  while (made < s->heap_objects && !w->error) {
    hl_object_t *chunk = hl_list_new(0);
    if (!chunk || hl_list_append(top, chunk) != 0) {
      hl_xdecref(chunk);
      hl_worker_fail(w, "out of memory building the heap");
      break;
    }
    hl_decref(chunk);
    nchunks++;
    made++;
    for (unsigned k = 0; k < CHUNK && made < s->heap_objects; k++, i++) {
      HL_WORKLOAD_CHECKPOINT();
      hl_object_t *o = record(s, i, &v);
      if (!o || hl_list_append(chunk, o) != 0) {
        hl_xdecref(o);
        hl_worker_fail(w, "out of memory building the heap: %s", hl_err_message());
        break;
      }
      hl_decref(o);
      sum = hl_fnv1a_u64(sum, v);
      made += kind_objects[i & 3];
      ops++;
    }
    if (!hl_worker_tick(w, ops) && w->deadline_ns) break;
  }
  /* 2. the churn */
  for (uint64_t n = 0; n < s->churn && !w->error;) {
    for (unsigned k = 0; k < 256 && n < s->churn; k++, n++, i++) {
      HL_WORKLOAD_CHECKPOINT();
      uint64_t r = hl_rand_next(rng);
      unsigned where = (unsigned)(r & 7);   /* 0: the heap, 1: the young window */
      r >>= 3;
      hl_object_t *chunk = NULL, *o;
      size_t slot = 0;
      if (where == 0) {
        chunk = hl_list_get(top, (size_t)(r % nchunks));
        slot = (size_t)((r >> 20) % hl_list_size(chunk));
      } else if (where == 1) {
        slot = (size_t)(r % YOUNG);
      }
      o = record(s, i, &v);
      if (HL_UNLIKELY(!o)) {
        hl_worker_fail(w, "out of memory in the churn: %s", hl_err_message());
        break;
      }
      sum = hl_fnv1a_u64(sum, v);
      if (where == 0) hl_list_set(chunk, slot, o);        /* steals o */
      else if (where == 1) hl_list_set(young, slot, o);
      else hl_decref(o);
      if (((r >> 40) & 15) == 0) {
        if (!cyclic_garbage(s, i)) {
          hl_worker_fail(w, "out of memory making cyclic garbage");
          break;
        }
        w->cyclic_garbage += kind_objects[1];
      }
      ops++;
    }
    if (!hl_worker_tick(w, ops) && w->deadline_ns) break;
  }
  /* the heap's values, walked */
  for (size_t c = 0; top && c < hl_list_size(top) && !w->error; c++) {
    HL_WORKLOAD_CHECKPOINT();
    hl_object_t *chunk = hl_list_get(top, c);
    for (size_t k = 0; k < hl_list_size(chunk); k++)
      sum = hl_fnv1a_u64(sum, (uint64_t)record_id(s, hl_list_get(chunk, k)));
  }
done:
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
  /* untimed: one worker times collections over every worker's heap */
  if (hl_worker_phase(w) && !w->error && hl_gc_active()) {
    placement(&s->place);
    young_maker_t m = {s, i};
    hl_run_gc_probe(&s->probe, FULL_RUNS, YOUNG_RUNS, make_young, &m);
  }
  hl_worker_phase_done(w);
  hl_xdecref(top);   /* acyclic: reference counting frees the heap */
  hl_xdecref(young);
}

const hl_workload_t hl_workload_long_lived = {
  .name = "long-lived",
  .summary = "a heap of scale million long-lived objects (tuples, instances, dicts, lists in "
             "chunk lists), then young churn that renews it, with some cyclic garbage: the "
             "collector's pauses as the heap grows; then young and full collections timed",
  .unit = "a heap of 1,000,000 objects and 4,000,000 churn operations per thread",
  .uses = HL_RUNNER_USES | HL_OBJ_USES,
  .ops_per_scale = 222222 + CHURN_PER_SCALE,
  .setup = ll_setup,
  .work = ll_work,
  .teardown = ll_teardown,
  .report = ll_report,
};
