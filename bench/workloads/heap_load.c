/* heap-load: a real Python program's live heap, rebuilt in heaplab's
 * objects, and what a collector does with it.
 *
 * --input=FILE is a heap bench/python/heap_capture.py captured from a
 * program under CPython (format: docs/heap-format.md, version 1): one
 * record per object, its kind, size and edges. The workload
 *   0. (check, before anything runs) reads the whole file and validates
 *      it: a bad header, a malformed or out-of-order record, an edge to no
 *      object, a count that disagrees with the header, a file that ends
 *      before its `end` line are bad input (exit 2), the message naming
 *      the file, the line and what is wrong;
 *   1. (timed, the collector on at its thresholds) rebuilds the graph in
 *      two passes over the file, so that memory is the objects and one
 *      pointer per record, never the edges:
 *        pass 1 makes every object: i -> an int (1000 + id, above the small-
 *          int cache), f -> a float, s -> a str of the record's length
 *          (its bytes from the id), t -> a tuple of NEDGES Nones, l -> a
 *          list of NEDGES Nones, d -> an empty dict, o and x -> an instance
 *          of a class with NEDGES slots (one class per slot count: "o" the
 *          instances of Python classes, their edges the attribute dict or
 *          values and the type; "x" every other object, its referents);
 *        pass 2 sets the edges: tuple items, list items, dict entries, slots;
 *          an edge -1 (None, True, False ... in CPython) is None. A dict key
 *          is the captured key when that is an atom (int, float, str) not
 *          already in the dict (two strs the file gives only lengths for
 *          may be equal here); otherwise a synthesized int key distinct
 *          from every other (-1, -2, ...), counted (extra.keys_synthesized).
 *      The loader holds a reference to every object: the whole graph stays
 *      reachable, as the program's heap was when it was captured.
 *      ops = objects made.
 *   2. (untimed) checks the graph: objects per kind and edges per kind, read
 *      back from heaplab's objects (tuple and list sizes, dict sizes x 2,
 *      slots), must equal the file's; a difference fails the run;
 *   3. (untimed, automatic collection off) one full collection, then
 *      FULL_RUNS timed full collections, and YOUNG_RUNS young ones, each
 *      after YOUNG_LISTS lists of two references into the graph (the same
 *      young batch heap_capture.py times CPython with): nanoseconds per
 *      object examined, the median (JSON gc.full_ns_per_obj and
 *      gc.young_ns_per_obj, as long-lived reports them);
 *   4. drops every reference: with a collector the graph's cycles are left
 *      to it (the runner's last collection, then its leak check); with
 *      --gc=none the loader clears every container first, so that
 *      reference counting frees it all.
 * The pauses and MMU (JSON gc) are those of step 1. The result's "extra"
 * has the file's counts, the loaded counts, the edges the capture dropped,
 * the synthesized keys and CPython's own collection times on the original
 * heap (copied from the file's meta line), so that one JSON has both.
 *
 * --churn=N (N > 0) makes the load, the check and the probe untimed (the
 * loader's progress still ticks) and times N rounds of mutation instead:
 * the timed part's pauses, MMU, collections and backlog are then the
 * churn's, and extra.churn has what the rounds did. The mutation phase is
 * heap_churn.c's (described at its top); heap_load.h holds what the two
 * files share.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap_load.h"

#define FORMAT_VERSION 1
#define FULL_RUNS 5
#define YOUNG_RUNS 20
#define YOUNG_LISTS 2000u
#define STR_MAX ((uint64_t)1 << 30)   /* a record's str length beyond this is corrupt */

static const char kind_letters[K_COUNT + 1] = "ifstldox";
static const char *const kind_names[K_COUNT] = {"int",  "float", "str",      "tuple",
                                                "list", "dict",  "instance", "other"};

static void reader_close(reader_t *r) {
  if (r->f) fclose(r->f);
  free(r->line);
  if (r->meta) json_object_put(r->meta);
  r->f = NULL;
  r->line = NULL;
  r->meta = NULL;
}

/* The next line without its newline; NULL at the end of the file. */
static char *next_line(reader_t *r) {
  ssize_t n = getline(&r->line, &r->cap, r->f);
  if (n < 0) return NULL;
  r->lineno++;
  if (n > 0 && r->line[n - 1] == '\n') r->line[n - 1] = '\0';
  return r->line;
}

/* An unsigned decimal field followed by a space or the end; *p moves past it. */
static bool field_u64(const char **p, uint64_t *v) {
  const char *s = *p;
  if (*s < '0' || *s > '9') return false;
  uint64_t x = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (x > (UINT64_MAX - 9) / 10) return false;
    x = x * 10 + (uint64_t)(*s - '0');
  }
  if (*s != ' ' && *s != '\0') return false;
  *v = x;
  *p = *s == ' ' ? s + 1 : s;
  return true;
}

/* An edge: -1 or an id below objects; *p moves past it. */
static bool field_edge(const char **p, uint64_t objects, int64_t *e) {
  const char *s = *p;
  if (s[0] == '-' && s[1] == '1' && (s[2] == ' ' || s[2] == '\0')) {
    *e = -1;
    *p = s[2] == ' ' ? s + 3 : s + 2;
    return true;
  }
  uint64_t v;
  if (!field_u64(p, &v) || v >= objects) return false;
  *e = (int64_t)v;
  return true;
}

/* Opens the file and reads its three header lines. */
static int reader_open(reader_t *r, const char *path, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  r->path = path;
  if (!(r->f = fopen(path, "r")))
    return BAD("heap-load: %s: cannot open: %s", path, strerror(errno));
  const char *l = next_line(r);
  unsigned version;
  int used = 0;
  if (!l) return BAD("heap-load: %s: empty file (no 'heaplab-heap' header)", path);
  if (sscanf(l, "heaplab-heap %u%n", &version, &used) != 1 || l[used])
    return BAD("heap-load: %s:1: not a heaplab heap file (the first line is not "
               "'heaplab-heap VERSION')", path);
  if (version != FORMAT_VERSION)
    return BAD("heap-load: %s:1: format version %u; this heaplab reads version %d", path,
               version, FORMAT_VERSION);
  const char *p;
  if (!(l = next_line(r)) || strncmp(l, "objects ", 8) != 0 || !(p = l + 8, field_u64(&p, &r->objects)) ||
      strncmp(p, "edges ", 6) != 0 || !(p += 6, field_u64(&p, &r->edges)) || *p)
    return BAD("heap-load: %s:2: expected 'objects N edges E'", path);
  if (r->objects == 0) return BAD("heap-load: %s:2: a heap of no objects", path);
  if (r->objects > ((uint64_t)1 << 40))
    return BAD("heap-load: %s:2: %" PRIu64 " objects is more than a heap file may hold", path,
               r->objects);
  if (!(l = next_line(r)) || strncmp(l, "meta ", 5) != 0)
    return BAD("heap-load: %s:3: expected 'meta {JSON}'", path);
  r->meta = json_tokener_parse(l + 5);
  if (!r->meta || !json_object_is_type(r->meta, json_type_object))
    return BAD("heap-load: %s:3: the meta line is not a JSON object", path);
  return 0;
}

/* The next record, checked against the header (rec->edges left unparsed).
 * 1: a record; 0: the `end` line after the last one; -1: bad. */
static int reader_next(reader_t *r, uint64_t expect_id, record_t *rec, char *err, size_t errlen) {
  const char *l = next_line(r);
  if (!l)
    return BAD("heap-load: %s: truncated after line %" PRIu64 ": %" PRIu64 " records of %" PRIu64
               " and no 'end' line", r->path, r->lineno, expect_id, r->objects);
  if (expect_id == r->objects) {
    if (strcmp(l, "end") != 0)
      return BAD("heap-load: %s:%" PRIu64 ": expected 'end' after %" PRIu64 " records", r->path,
                 r->lineno, r->objects);
    if (next_line(r))
      return BAD("heap-load: %s:%" PRIu64 ": text after the 'end' line", r->path, r->lineno);
    return 0;
  }
  const char *p = l, *k;
  if (!field_u64(&p, &rec->id) || rec->id != expect_id)
    return BAD("heap-load: %s:%" PRIu64 ": expected record %" PRIu64 " ('ID KIND SIZE NEDGES "
               "EDGES...'), found '%.40s'", r->path, r->lineno, expect_id, l);
  if (!*p || !(k = strchr(kind_letters, *p)) || (p[1] != ' '))
    return BAD("heap-load: %s:%" PRIu64 ": record %" PRIu64 ": bad kind '%.8s' (one of %s)",
               r->path, r->lineno, rec->id, p, kind_letters);
  rec->kind = (int)(k - kind_letters);
  p += 2;
  if (!field_u64(&p, &rec->size) || !field_u64(&p, &rec->n))
    return BAD("heap-load: %s:%" PRIu64 ": record %" PRIu64 ": bad SIZE or NEDGES", r->path,
               r->lineno, rec->id);
  if (rec->kind <= K_STR && rec->n != 0)
    return BAD("heap-load: %s:%" PRIu64 ": record %" PRIu64 ": an %s with %" PRIu64 " edges",
               r->path, r->lineno, rec->id, kind_names[rec->kind], rec->n);
  if (rec->kind == K_STR && rec->size > STR_MAX)
    return BAD("heap-load: %s:%" PRIu64 ": record %" PRIu64 ": a str of %" PRIu64 " bytes",
               r->path, r->lineno, rec->id, rec->size);
  if (rec->kind == K_DICT && rec->n % 2)
    return BAD("heap-load: %s:%" PRIu64 ": record %" PRIu64 ": a dict with an odd number of "
               "edges (%" PRIu64 "; key, value pairs)", r->path, r->lineno, rec->id, rec->n);
  if (rec->n > (uint64_t)UINT32_MAX)
    return BAD("heap-load: %s:%" PRIu64 ": record %" PRIu64 ": %" PRIu64 " edges", r->path,
               r->lineno, rec->id, rec->n);
  rec->edges = p;
  return 1;
}

/* Every edge of rec parsed and checked; out (may be NULL) gets them. */
static int record_edges(reader_t *r, const record_t *rec, int64_t *out, char *err, size_t errlen) {
  const char *p = rec->edges;
  for (uint64_t i = 0; i < rec->n; i++) {
    int64_t e;
    if (!*p)
      return BAD("heap-load: %s:%" PRIu64 ": record %" PRIu64 ": %" PRIu64 " edges of %" PRIu64,
                 r->path, r->lineno, rec->id, i, rec->n);
    if (!field_edge(&p, r->objects, &e))
      return BAD("heap-load: %s:%" PRIu64 ": record %" PRIu64 ": edge %" PRIu64 " is not -1 or "
                 "an id below %" PRIu64, r->path, r->lineno, rec->id, i + 1, r->objects);
    if (out) out[i] = e;
  }
  if (*p)
    return BAD("heap-load: %s:%" PRIu64 ": record %" PRIu64 ": more than its %" PRIu64 " edges",
               r->path, r->lineno, rec->id, rec->n);
  return 0;
}

/* Step 0: the whole file, validated; its counts into *file. */
static int validate(const char *path, hp_counts_t *file, uint64_t *singles, hp_rates_t *rates,
                    char *err, size_t errlen) {
  reader_t r;
  int rc = reader_open(&r, path, err, errlen);
  if (rc == 0) rc = hl_churn_rates(r.meta, path, rates, err, errlen);
  uint64_t edges = 0;
  int64_t *buf = NULL;
  size_t bufn = 0;
  memset(file, 0, sizeof *file);
  *singles = 0;
  for (uint64_t id = 0; rc == 0; id++) {
    record_t rec;
    int n = reader_next(&r, id, &rec, err, errlen);
    if (n <= 0) {
      rc = n;
      break;
    }
    if (rec.n > bufn) {
      int64_t *nb = realloc(buf, rec.n * sizeof *nb);
      if (!nb) {
        rc = BAD("heap-load: %s:%" PRIu64 ": out of memory", path, r.lineno);
        break;
      }
      buf = nb;
      bufn = rec.n;
    }
    if ((rc = record_edges(&r, &rec, buf, err, errlen)) != 0) break;
    for (uint64_t i = 0; i < rec.n; i++) *singles += buf[i] < 0;
    file->objects[rec.kind]++;
    file->edges[rec.kind] += rec.n;
    edges += rec.n;
  }
  if (rc == 0 && edges != r.edges)
    rc = BAD("heap-load: %s:2: the header says %" PRIu64 " edges, the records hold %" PRIu64,
             path, r.edges, edges);
  free(buf);
  reader_close(&r);
  return rc;
}

static int hp_check(const hl_config_t *c, char *err, size_t errlen) {
  if (!c->input[0]) return BAD("heap-load: option 'input' is required (--input=FILE, a heap "
                               "from bench/python/heap_capture.py)");
  if (c->threads != 1)
    return BAD("option 'threads': invalid value '%u' for heap-load; accepted: 1 (one graph, "
               "one loader)", c->threads);
  hp_counts_t file;
  uint64_t singles;
  hp_rates_t rates;
  return validate(c->input, &file, &singles, &rates, err, errlen);
}

static void hp_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  hp_shared_t *s = shared;
  if (!s) return;
  reader_close(&s->hdr);
  free(s->objs);
  free(s->roots);
  free(s->index);
  free(s->templates);
  free(s->pending);
  free(s->pending_cyclic);
  free(s->classes[0]);
  free(s->classes[1]);
  free(s);
}

static int hp_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  hp_shared_t *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "heap-load: out of memory");
    return -ENOMEM;
  }
  s->path = c->input;
  s->no_empty_tuple = c->churn > 0;
  /* validated in check; read again for the counts the result reports */
  if (validate(c->input, &s->file, &s->singleton_edges, &s->rates, err, errlen) != 0 ||
      reader_open(&s->hdr, c->input, err, errlen) != 0) {
    hp_teardown(s, NULL);
    return -EINVAL;
  }
  if (!(s->objs = calloc(s->hdr.objects, sizeof *s->objs))) {
    snprintf(err, errlen, "heap-load: out of memory for %" PRIu64 " objects", s->hdr.objects);
    hp_teardown(s, NULL);
    return -ENOMEM;
  }
  *shared = s;
  return 0;
}

/* The class of instances with n slots (o: which = 0, x: 1), made once. */
hl_type_t *hl_heap_class_for(hp_shared_t *s, int which, uint64_t n) {
  if (n >= s->nclasses[which]) {
    uint64_t m = n + 1 > 2 * s->nclasses[which] ? n + 1 : 2 * s->nclasses[which];
    hl_type_t **nc = realloc(s->classes[which], m * sizeof *nc);
    if (!nc) return NULL;
    memset(nc + s->nclasses[which], 0, (m - s->nclasses[which]) * sizeof *nc);
    s->classes[which] = nc;
    s->nclasses[which] = m;
  }
  if (!s->classes[which][n]) {
    char name[48];
    snprintf(name, sizeof name, "%s%" PRIu64, which ? "Other" : "Instance", n);
    s->classes[which][n] = hl_class_new(name, (uint32_t)n, false, NULL);
  }
  return s->classes[which][n];
}

/* Pass 1: record rec's object, its edges None (a new reference, NULL when
 * memory ran out). */
static hl_object_t *make_object(hp_shared_t *s, const record_t *rec, char *sbuf) {
  switch (rec->kind) {
  case K_INT: return hl_int_new((int64_t)(1000 + rec->id));
  case K_FLOAT: return hl_float_new((double)rec->id + 0.5);
  case K_STR: {
    /* the id in hex, repeated: strs of one length differ where they can */
    char hex[17];
    int hl = snprintf(hex, sizeof hex, "%" PRIx64, rec->id);
    for (uint64_t i = 0; i < rec->size; i++) sbuf[i] = hex[i % (uint64_t)hl];
    return hl_str_new(rec->size ? sbuf : "", rec->size);
  }
  case K_TUPLE: {
    hl_object_t *t = hl_tuple_new(rec->n);
    for (uint64_t i = 0; t && i < rec->n; i++) hl_tuple_set(t, i, hl_newref(hl_None));
    return t;
  }
  case K_LIST: return hl_list_new(rec->n);
  case K_DICT: return hl_dict_new();
  default: {
    hl_type_t *cls = hl_heap_class_for(s, rec->kind == K_OTHER, rec->n);
    hl_object_t *o = cls ? hl_instance_new(cls) : NULL;
    for (uint64_t i = 0; o && i < rec->n; i++) hl_slot_set(o, (uint32_t)i, hl_None);
    return o;
  }
  }
}

/* What edge e names. With --churn, an edge to the empty tuple is None:
 * the runtime's singleton, as None is (immortal in CPython 3.12), is then
 * never held by the churn's garbage, which --gc=none keeps past the
 * runtime's end (hli_tuple_fini wants the runtime's reference the last). */
static hl_object_t *target(const hp_shared_t *s, int64_t e) {
  if (e < 0) return hl_None;
  hl_object_t *o = s->objs[e];
  if (s->no_empty_tuple && o->type->kind == HL_K_TUPLE && hl_tuple_size(o) == 0) return hl_None;
  return o;
}

/* Pass 2: rec's edges into its object. 0, or -1 when memory ran out. */
static int set_edges(hp_shared_t *s, const record_t *rec, const int64_t *e) {
  hl_object_t *o = s->objs[rec->id];
  switch (rec->kind) {
  case K_TUPLE:
    for (uint64_t i = 0; i < rec->n; i++)
      hl_tuple_set(o, i, hl_newref(target(s, e[i])));
    return 0;   /* retrack tracks it again where a collection untracked it */
  case K_LIST:
    for (uint64_t i = 0; i < rec->n; i++)
      if (hl_list_set(o, i, hl_newref(target(s, e[i]))) != 0) return -1;
    return 0;
  case K_DICT:
    for (uint64_t i = 0; i < rec->n; i += 2) {
      hl_object_t *k = e[i] < 0 ? NULL : s->objs[e[i]], *v = target(s, e[i + 1]);
      hl_object_t *own = NULL;
      bool atom = k && (hl_is_kind(k, HL_K_INT) || hl_is_kind(k, HL_K_FLOAT) ||
                        hl_is_kind(k, HL_K_STR));
      if (!atom || hl_dict_contains(o, k) != 0) {
        k = own = hl_int_new(-(int64_t)++s->keys_synthesized);
        if (!k) return -1;
      }
      int rc = hl_dict_set(o, k, v);
      hl_xdecref(own);
      if (rc != 0) return -1;
    }
    return 0;
  case K_INST:
  case K_OTHER:
    for (uint64_t i = 0; i < rec->n; i++)
      hl_slot_set(o, (uint32_t)i, target(s, e[i]));
    return 0;
  default: return 0;
  }
}

/* A collection during the load may have untracked a tuple while it held
 * Nones (pass 1) or tuples not filled yet (pass 2); a dict stays untracked
 * when what it was given was such a tuple (the dict tracks itself only
 * for a key or value the collector may see, as CPython's MAINTAIN_TRACKING).
 * An untracked container in a cycle hides the cycle from the collector for
 * good. After pass 2, every tuple and dict that holds a container the
 * collector may see is tracked again, until nothing changes: CPython builds
 * a tuple whole, so that its collections only untrack complete ones. */
bool hl_heap_may_be_tracked(const hl_object_t *x) {
  return x && (x->flags & HL_OF_GC) && (x->type->kind != HL_K_TUPLE || hl_gc_is_tracked(x));
}

static void retrack(hp_shared_t *s) {
  if (!hl_gc_active()) return;
  for (bool changed = true; changed;) {
    changed = false;
    for (uint64_t i = s->made; i-- > 0;) {
      hl_object_t *o = s->objs[i], *k, *v;
      bool want = false;
      if (hl_gc_is_tracked(o)) continue;
      if (o->type->kind == HL_K_TUPLE) {
        for (size_t j = 0; j < hl_tuple_size(o) && !want; j++)
          want = hl_heap_may_be_tracked(hl_tuple_get(o, j));
      } else if (o->type->kind == HL_K_DICT) {
        for (size_t pos = 0; !want && hl_dict_next(o, &pos, &k, &v);)
          want = hl_heap_may_be_tracked(k) || hl_heap_may_be_tracked(v);
      }
      if (want) {
        hl_gc_track(o);
        changed = true;
      }
    }
  }
}

int hl_heap_kind_of(const hp_shared_t *s, const hl_object_t *o) {
  switch (o->type->kind) {
  case HL_K_INT: return K_INT;
  case HL_K_FLOAT: return K_FLOAT;
  case HL_K_STR: return K_STR;
  case HL_K_TUPLE: return K_TUPLE;
  case HL_K_LIST: return K_LIST;
  case HL_K_DICT: return K_DICT;
  default: {
    uint32_t n = o->type->nslots;
    return n < s->nclasses[1] && s->classes[1][n] == o->type ? K_OTHER : K_INST;
  }
  }
}

/* Step 2: the loaded graph's counts, read back from the objects. */
static void count_loaded(hp_shared_t *s) {
  memset(&s->loaded, 0, sizeof s->loaded);
  for (uint64_t i = 0; i < s->made; i++) {
    hl_object_t *o = s->objs[i];
    int k = hl_heap_kind_of(s, o);
    uint64_t e = 0;
    switch (k) {
    case K_TUPLE: e = hl_tuple_size(o); break;
    case K_LIST: e = hl_list_size(o); break;
    case K_DICT: e = 2 * hl_dict_size(o); break;
    case K_INST:
    case K_OTHER:
      for (uint32_t j = 0; j < o->type->nslots; j++) e += hl_slot_get(o, j) != NULL;
      break;
    default: break;
    }
    s->loaded.objects[k]++;
    s->loaded.edges[k] += e;
  }
}

/* Step 3, as long-lived's probe (hl_run_gc_probe): the collector's cost
 * per object examined; each young run makes YOUNG_LISTS two-item lists of
 * the graph's first containers in a fresh list, as heap_capture.py takes
 * the first of gc.get_objects(). */
typedef struct { hl_object_t *base[2 * YOUNG_LISTS + 2]; size_t nb; } young_maker_t;

static hl_object_t *make_young(void *arg) {
  young_maker_t *m = arg;
  if (!m->nb) return NULL;
  hl_object_t *tmp = hl_list_new(0);
  for (unsigned k = 0; tmp && k < YOUNG_LISTS; k++) {
    hl_object_t *l = hl_list_new(0);
    if (!l) break;
    hl_list_append(l, m->base[(2 * k) % m->nb]);
    hl_list_append(l, m->base[(2 * k + 1) % m->nb]);
    hl_list_append(tmp, l);
    hl_decref(l);
  }
  return tmp;
}

static void probe(hp_shared_t *s) {
  static young_maker_t m;   /* 4000 pointers: not on the stack */
  m.nb = 0;
  for (uint64_t i = 0; i < s->made && m.nb < HL_ARRAY_LEN(m.base); i++)
    if (s->objs[i]->flags & HL_OF_GC) m.base[m.nb++] = s->objs[i];
  hl_run_gc_probe(&s->probe, FULL_RUNS, YOUNG_RUNS, make_young, &m);
}

/* Step 4 with --gc=none: every container emptied, so that no cycle stays. */
void hl_heap_clear_one(hl_object_t *o) {
  switch (o->type->kind) {
  case HL_K_TUPLE:
    for (size_t j = 0; j < hl_tuple_size(o); j++) hl_tuple_set(o, j, hl_newref(hl_None));
    break;
  case HL_K_LIST: hl_list_clear(o); break;
  case HL_K_DICT: hl_dict_clear(o); break;
  case HL_K_INSTANCE:
    for (uint32_t j = 0; j < o->type->nslots; j++) hl_slot_set(o, j, NULL);
    break;
  default: break;
  }
}

static void clear_all(hp_shared_t *s) {
  for (uint64_t i = 0; i < s->made; i++) {
    if ((i & 1023) == 0) HL_WORKLOAD_CHECKPOINT();
    hl_heap_clear_one(s->objs[i]);
  }
}

static void hp_work(hl_worker_t *w) {
  hp_shared_t *s = w->shared;
  reader_t *r = &s->hdr;
  uint64_t sum = HL_FNV_OFFSET;
  int64_t *e = NULL;
  size_t en = 0;
  char *sbuf = NULL, err[256];
  size_t sbufn = 0;
  bool churn = w->cfg->churn > 0;
  uint8_t *referenced = NULL;   /* --churn: what hl_churn_roots needs of pass 2 */
  w->target_ops = UINT64_MAX;   /* the file decides */
  long body = ftell(r->f);
  hl_obj_stats_t os;
  hl_freelists_clear();
  hl_obj_stats(&os);
  s->live_before = os.allocated - os.freed;

  if (churn && !(referenced = calloc(r->objects, 1)))
    hl_worker_fail(w, "out of memory for %" PRIu64 " objects", r->objects);
  if (!churn) hl_worker_begin(w);
  /* pass 1: the objects */
  for (uint64_t id = 0; id < r->objects && !w->error; id++) {
    if ((id & 1023) == 0) {
      HL_WORKLOAD_CHECKPOINT();
      hl_worker_tick(w, id);
    }
    record_t rec;
    if (reader_next(r, id, &rec, err, sizeof err) != 1) {   /* the file changed since check */
      hl_worker_fail(w, "%s", err);
      break;
    }
    if (rec.kind == K_STR && rec.size > sbufn) {
      char *nb = realloc(sbuf, rec.size);
      if (!nb) {
        hl_worker_fail(w, "out of memory for a str of %" PRIu64 " bytes", rec.size);
        break;
      }
      sbuf = nb;
      sbufn = rec.size;
    }
    if (!(s->objs[id] = make_object(s, &rec, sbuf))) {
      hl_worker_fail(w, "out of memory at record %" PRIu64 ": %s", id, hl_err_message());
      break;
    }
    s->made++;
    sum = hl_fnv1a_u64(sum, (uint64_t)rec.kind ^ (rec.n << 8));
  }
  /* pass 2: the edges */
  if (!w->error && fseek(r->f, body, SEEK_SET) != 0)
    hl_worker_fail(w, "%s: cannot seek back: %s", s->path, strerror(errno));
  r->lineno = 3;
  for (uint64_t id = 0; id < r->objects && !w->error; id++) {
    if ((id & 1023) == 0) {
      HL_WORKLOAD_CHECKPOINT();
      hl_worker_tick(w, s->made);
    }
    record_t rec;
    if (reader_next(r, id, &rec, err, sizeof err) != 1) {
      hl_worker_fail(w, "%s", err);
      break;
    }
    if (rec.n > en) {
      int64_t *nb = realloc(e, rec.n * sizeof *nb);
      if (!nb) {
        hl_worker_fail(w, "out of memory for %" PRIu64 " edges", rec.n);
        break;
      }
      e = nb;
      en = rec.n;
    }
    if (record_edges(r, &rec, e, err, sizeof err) != 0) {
      hl_worker_fail(w, "%s", err);
      break;
    }
    if (set_edges(s, &rec, e) != 0) {
      hl_worker_fail(w, "out of memory at record %" PRIu64 "'s edges: %s", id, hl_err_message());
      break;
    }
    if (referenced)
      for (uint64_t i = 0; i < rec.n; i++)
        if (e[i] >= 0 && (uint64_t)e[i] != id) referenced[e[i]] = 1;
  }
  if (!w->error) retrack(s);
  if (!churn) {
    w->ops = s->made;
    w->checksum = sum;
    hl_worker_end(w);
  }
  free(e);
  free(sbuf);
  if (!w->error) {
    count_loaded(s);
    s->checked = memcmp(&s->loaded, &s->file, sizeof s->file) == 0;
    if (!s->checked)
      hl_worker_fail(w, "the loaded graph differs from %s's counts (extra.loaded against "
                     "extra.file)", s->path);
  }
  if (!w->error && hl_gc_active()) probe(s);
  if (churn) {
    if (!w->error && hl_churn_templates(s) != 0)
      hl_worker_fail(w, "out of memory copying the garbage's templates");
    if (!w->error && hl_churn_roots(s, referenced) != 0)
      hl_worker_fail(w, "out of memory finding the graph's roots");
    free(referenced);
    /* the graph old, as a program's long-lived data is by the time it churns */
    hl_worker_begin_collected(w);
    hl_obj_stats(&os);
    s->churn.allocated = os.allocated;
    s->churn.freed = os.freed;
    if (!w->error) hl_churn_run(s, w, &sum);
    hl_obj_stats(&os);
    s->churn.allocated = os.allocated - s->churn.allocated;
    s->churn.freed = os.freed - s->churn.freed;
    w->ops = s->churn.edges_replaced + s->churn.rebuilt + s->churn.garbage_made;
    w->checksum = sum;
    hl_worker_end(w);
    if (s->roots) {
      hl_churn_finish(s, w);
      return;
    }
  }
  /* step 4 */
  hl_churn_drop_index(s);
  hl_churn_drop_templates(s);
  if (!hl_gc_active()) clear_all(s);
  for (uint64_t i = 0; i < s->made; i++) {
    if ((i & 1023) == 0) HL_WORKLOAD_CHECKPOINT();
    hl_clear(&s->objs[i]);
  }
}

static json_object *counts_json(const hp_counts_t *c) {
  json_object *o = json_object_new_object(), *ob = json_object_new_object(),
              *ed = json_object_new_object();
  uint64_t to = 0, te = 0;
  for (int k = 0; k < K_COUNT; k++) {
    json_object_object_add(ob, kind_names[k], json_object_new_int64((int64_t)c->objects[k]));
    json_object_object_add(ed, kind_names[k], json_object_new_int64((int64_t)c->edges[k]));
    to += c->objects[k];
    te += c->edges[k];
  }
  json_object_object_add(o, "objects", json_object_new_int64((int64_t)to));
  json_object_object_add(o, "edges", json_object_new_int64((int64_t)te));
  json_object_object_add(o, "objects_per_kind", ob);
  json_object_object_add(o, "edges_per_kind", ed);
  return o;
}

static void hp_report(void *shared, hl_run_result_t *r) {
  hp_shared_t *s = shared;
  if (r->gc) {
    r->gc->probe = s->probe;
  }
  json_object *o = json_object_new_object(), *m = s->hdr.meta, *v;
  json_object_object_add(o, "input", json_object_new_string(s->path));
  json_object_object_add(o, "format", json_object_new_int(FORMAT_VERSION));
  json_object_object_add(o, "file", counts_json(&s->file));
  json_object_object_add(o, "loaded", counts_json(&s->loaded));
  json_object_object_add(o, "counts_equal", json_object_new_boolean(s->checked));
  json_object_object_add(o, "singleton_edges", json_object_new_int64((int64_t)s->singleton_edges));
  json_object_object_add(o, "dropped_edges",
                         json_object_new_int64(json_object_object_get_ex(m, "dropped_edges", &v)
                                                   ? json_object_get_int64(v) : 0));
  json_object_object_add(o, "keys_synthesized", json_object_new_int64((int64_t)s->keys_synthesized));
  static const char *const copied[] = {"program", "python", "implementation", "cpython"};
  for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
    if (json_object_object_get_ex(m, copied[i], &v))
      json_object_object_add(o, copied[i], json_object_get(v));
  double cp = 0.0;
  json_object *c = NULL;
  if (json_object_object_get_ex(m, "cpython", &c) && json_object_object_get_ex(c, "full_ns_per_obj", &v))
    cp = json_object_get_double(v);
  if (cp > 0 && s->probe.full_runs)
    json_object_object_add(o, "full_vs_cpython",
                           json_object_new_double(s->probe.full_ns_per_obj / cp));
  if (s->churn.rounds) json_object_object_add(o, "churn", hl_churn_json(s, r));
  r->extra = o;
}

const hl_workload_t hl_workload_heap_load = {
  .name = "heap-load",
  .summary = "a Python program's live heap captured by bench/python/heap_capture.py "
             "(--input), rebuilt and checked against the file's counts; then full and young "
             "collections timed beside CPython's own on the original heap; with --churn=N, "
             "N timed rounds of mutation at the program's rates (a round: one young-collection "
             "interval of the program, threshold0 containers built as copies of subgraphs, "
             "as many edges replaced, its collected objects dropped as cyclic garbage)",
  .unit = "the file's objects, or --churn rounds (scale has no effect)",
  .uses = HL_RUNNER_USES | HL_OBJ_USES | HL_OPT_BIT(HL_OPT_INPUT) | HL_OPT_BIT(HL_OPT_CHURN),
  .ops_per_scale = 1,
  .check = hp_check,
  .setup = hp_setup,
  .work = hp_work,
  .teardown = hp_teardown,
  .report = hp_report,
};
