/* heap-load --churn=N: the mutation phase, N timed rounds on the graph
 * heap_load.c loaded, at the rates the captured program showed (issue 25,
 * item 5; docs/heap-format.md, "--churn=N").
 *
 * The loaded graph, once checked and probed, is handed to itself: the loader
 * keeps a reference only to its roots (every object no other object refers
 * to, and, for each group of objects reachable only from one another, such
 * as the interpreter's modules that CPython holds from C, the first of them
 * in file order), and the index holds one to each data container (tuple,
 * list, dict, "o" instance: index_add), where the mutations act. Then
 * --churn rounds, the timed part; a round stands for one young-collection
 * interval of the captured program (threshold0 containers allocated, net),
 * and does, interleaved at random in proportion to what is left of each:
 *   edges    rates.edges edge replacements: a list item, a dict value or a
 *            slot of an "o" instance (tuples, dict keys and "x" objects,
 *            whose references a Python program cannot rebind, are left
 *            alone) that holds an atom or None, of a random data container,
 *            set to another random live object: an attribute or an item
 *            updated (the old atom dies), never a structure cut off;
 *   rebuild  subgraphs detached and replaced by a fresh copy, until
 *            rates.allocs - rates.garbage containers were built: a data
 *            container (at most FAN_MAX edges) reached by a rebindable edge
 *            of a random one, and the data containers it reaches, breadth
 *            first, up to SUB_MAX; the copy keeps the subgraph's inner edges
 *            (its cycles: a minidom node's parent link), shares what lies
 *            outside it (atoms, types, larger containers), as copy.deepcopy
 *            would, and takes the old one's place, which dies as it may
 *            (cyclic garbage when it held a cycle and nothing else holds it);
 *   garbage  copies of cyclic subgraphs of the loaded heap (hl_churn_templates),
 *            up to rates.garbage containers, held until the next round and
 *            then dropped: cyclic garbage of the heap's own shapes, at the
 *            rate CPython's collector found the program's (noted with
 *            hl_gc_note_garbage: the backlog).
 * Random containers are uniform draws from the index. No collector's timing
 * changes a draw (what the index holds lives; the rest is never looked at),
 * so that the checksum (every choice and size) is the same under every --gc
 * and --rc for one --seed. ops = mutations: edges replaced, subgraphs
 * rebuilt and garbage subgraphs made.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "heap_load.h"

#define SUB_MAX 64       /* containers copied per subgraph */
#define FAN_MAX 64       /* a container with more edges is shared, never copied */
#define TEMPLATES 64     /* cyclic subgraphs kept as the garbage's shapes */
#define TEMPLATE_SCAN 20000   /* data containers examined to find them */
#define TRIES 64         /* draws per mutation before it is counted as missed */
#define DEFAULT_ALLOCS 700u   /* CPython 3.11's threshold0 */
#define THRESHOLD0_MAX (1u << 20)

static size_t ptr_hash(uintptr_t p, size_t cap) {
  return (size_t)(((uint64_t)p >> 4) * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
}

/* A map object -> position (linear probing, deletion by backward shift). */
typedef struct ptrmap {
  uintptr_t *key;
  uint64_t *val;
  size_t cap, n;
} ptrmap_t;

static uint64_t *ptrmap_find(const ptrmap_t *m, const void *o) {
  if (!m->cap) return NULL;
  for (size_t j = ptr_hash((uintptr_t)o, m->cap); m->key[j]; j = (j + 1) & (m->cap - 1))
    if (m->key[j] == (uintptr_t)o) return &m->val[j];
  return NULL;
}

/* 0, or -1 out of memory; o must not be there. */
static int ptrmap_put(ptrmap_t *m, const void *o, uint64_t v) {
  if (2 * (m->n + 1) > m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 1024;
    uintptr_t *nk = calloc(cap, sizeof *nk);
    uint64_t *nv = malloc(cap * sizeof *nv);
    if (!nk || !nv) {
      free(nk);
      free(nv);
      return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
      if (m->key[i]) {
        size_t j = ptr_hash(m->key[i], cap);
        while (nk[j]) j = (j + 1) & (cap - 1);
        nk[j] = m->key[i];
        nv[j] = m->val[i];
      }
    free(m->key);
    free(m->val);
    m->key = nk;
    m->val = nv;
    m->cap = cap;
  }
  size_t j = ptr_hash((uintptr_t)o, m->cap);
  while (m->key[j]) j = (j + 1) & (m->cap - 1);
  m->key[j] = (uintptr_t)o;
  m->val[j] = v;
  m->n++;
  return 0;
}

static void ptrmap_del(ptrmap_t *m, const void *o) {
  uint64_t *v = ptrmap_find(m, o);
  if (!v) return;
  size_t i = (size_t)(v - m->val), mask = m->cap - 1;
  m->key[i] = 0;
  m->n--;
  /* move back every later entry of the run that may sit at i */
  for (size_t j = (i + 1) & mask; m->key[j]; j = (j + 1) & mask) {
    size_t h = ptr_hash(m->key[j], m->cap);
    if (((j - h) & mask) >= ((j - i) & mask)) {
      m->key[i] = m->key[j];
      m->val[i] = m->val[j];
      m->key[j] = 0;
      i = j;
    }
  }
}

static void ptrmap_free(ptrmap_t *m) {
  free(m->key);
  free(m->val);
  memset(m, 0, sizeof *m);
}

/* A set of objects: the map, its values unused. */
typedef ptrmap_t ptrset_t;
/* 1: added, 0: already there, -1: out of memory. */
static int ptrset_add(ptrset_t *s, const void *o) {
  if (ptrmap_find(s, o)) return 0;
  return ptrmap_put(s, o, 0) == 0 ? 1 : -1;
}
static bool ptrset_has(const ptrset_t *s, const void *o) { return ptrmap_find(s, o) != NULL; }

/* A container's edges, numbered as the file numbers them: tuple and list
 * items, a dict's key and value of each entry (2i, 2i + 1), slots. */
static size_t edge_count(const hl_object_t *o) {
  switch (o->type->kind) {
  case HL_K_TUPLE: return hl_tuple_size(o);
  case HL_K_LIST: return hl_list_size(o);
  case HL_K_DICT: return 2 * hl_dict_size(o);
  case HL_K_INSTANCE: return o->type->nslots;
  default: return 0;
  }
}

/* Edge i (borrowed, may be NULL: an empty slot); for a dict, *key gets the
 * entry's key. Dict entry i is the first live one at or after index i of
 * its entries (the loader and the churn delete none, so it is entry i). */
static hl_object_t *edge_get(const hl_object_t *o, size_t i, hl_object_t **key) {
  switch (o->type->kind) {
  case HL_K_TUPLE: return hl_tuple_get(o, i);
  case HL_K_LIST: return hl_list_get(o, i);
  case HL_K_DICT: {
    size_t pos = i / 2;
    hl_object_t *k = NULL, *v = NULL;
    if (!hl_dict_next(o, &pos, &k, &v) && (pos = 0, !hl_dict_next(o, &pos, &k, &v))) return NULL;
    if (key) *key = k;
    return i % 2 ? v : k;
  }
  case HL_K_INSTANCE: return hl_slot_get(o, (uint32_t)i);
  default: return NULL;
  }
}

/* Whether a program may rebind edge i of o: a list item, a dict value, a
 * slot of an "o" instance. */
static bool rebindable(const hp_shared_t *s, const hl_object_t *o, size_t i) {
  switch (o->type->kind) {
  case HL_K_LIST: return true;
  case HL_K_DICT: return i % 2 == 1;
  case HL_K_INSTANCE: return hl_heap_kind_of(s, o) == K_INST;
  default: return false;
  }
}

/* Sets edge i of o (rebindable) to v (borrowed). 0, or -1 out of memory. */
static int edge_set(hl_object_t *o, size_t i, hl_object_t *key, hl_object_t *v) {
  int rc = 0;
  hl_incref(o);   /* what the old edge held may hold o's only other referrer */
  switch (o->type->kind) {
  case HL_K_LIST: rc = hl_list_set(o, i, hl_newref(v)); break;
  case HL_K_DICT: rc = hl_dict_set(o, key, v); break;
  default: hl_slot_set(o, (uint32_t)i, v); break;
  }
  hl_decref(o);
  return rc;
}

static bool is_data(const hp_shared_t *s, const hl_object_t *o) {
  int k = hl_heap_kind_of(s, o);
  return (k == K_TUPLE || k == K_LIST || k == K_DICT || k == K_INST) && edge_count(o) <= FAN_MAX;
}

/* A subgraph of data containers, breadth first from old[0], and its copy. */
#define SUB_HASH (4 * SUB_MAX)
typedef struct sub {
  hl_object_t *old[SUB_MAX], *copy[SUB_MAX];
  unsigned n;
  const hl_object_t *hkey[SUB_HASH];   /* old -> its index, open addressing */
  uint8_t hval[SUB_HASH];
} sub_t;

static int sub_find(const sub_t *g, const hl_object_t *o) {
  for (size_t j = ptr_hash((uintptr_t)o, SUB_HASH); g->hkey[j]; j = (j + 1) % SUB_HASH)
    if (g->hkey[j] == o) return g->hval[j];
  return -1;
}

static void sub_add(sub_t *g, hl_object_t *o) {
  size_t j = ptr_hash((uintptr_t)o, SUB_HASH);
  while (g->hkey[j]) j = (j + 1) % SUB_HASH;
  g->hkey[j] = o;
  g->hval[j] = (uint8_t)g->n;
  g->old[g->n++] = o;
}

static void sub_collect(const hp_shared_t *s, hl_object_t *root, unsigned max, sub_t *g) {
  g->n = 0;
  memset(g->hkey, 0, sizeof g->hkey);
  sub_add(g, root);
  for (unsigned i = 0; i < g->n && g->n < max; i++)
    for (size_t e = 0, ne = edge_count(g->old[i]); e < ne && g->n < max; e++) {
      hl_object_t *c = edge_get(g->old[i], e, NULL);
      if (c && (c->flags & HL_OF_GC) && is_data(s, c) && sub_find(g, c) < 0) sub_add(g, c);
    }
}

/* Kahn's sort of the subgraph's inner edges: how many of its containers no
 * cycle of it reaches (those reference counting frees once old[0] goes). */
static unsigned sub_acyclic(const sub_t *g) {
  unsigned indeg[SUB_MAX] = {0}, queue[SUB_MAX], head = 0, tail = 0;
  for (unsigned i = 0; i < g->n; i++)
    for (size_t e = 0, ne = edge_count(g->old[i]); e < ne; e++) {
      int j = sub_find(g, edge_get(g->old[i], e, NULL));
      if (j >= 0) indeg[j]++;
    }
  for (unsigned i = 0; i < g->n; i++)
    if (!indeg[i]) queue[tail++] = i;
  while (head < tail) {
    unsigned i = queue[head++];
    for (size_t e = 0, ne = edge_count(g->old[i]); e < ne; e++) {
      int j = sub_find(g, edge_get(g->old[i], e, NULL));
      if (j >= 0 && --indeg[j] == 0) queue[tail++] = (unsigned)j;
    }
  }
  return tail;
}

static hl_object_t *sub_map(const sub_t *g, hl_object_t *o) {
  int j = o ? sub_find(g, o) : -1;
  return j >= 0 ? g->copy[j] : o;
}

static void sub_drop(sub_t *g, unsigned made) {
  for (unsigned i = 0; i < made; i++) hl_clear(&g->copy[i]);
}

/* g->copy: a new reference to each container's copy, its inner edges to
 * the copies, the others shared. 0, or -1 out of memory (nothing kept). */
static int sub_copy(hp_shared_t *s, sub_t *g) {
  unsigned i;
  for (i = 0; i < g->n; i++) {
    hl_object_t *o = g->old[i], *c = NULL;
    size_t n = edge_count(o);
    switch (o->type->kind) {
    case HL_K_TUPLE:
      c = hl_tuple_new(n);
      for (size_t j = 0; c && j < n; j++) hl_tuple_set(c, j, hl_newref(hl_None));
      break;
    case HL_K_LIST: c = hl_list_new(n); break;
    case HL_K_DICT: c = hl_dict_new(); break;
    default: c = hl_instance_new(hl_heap_class_for(s, 0, o->type->nslots)); break;   /* an "o" */
    }
    if (!(g->copy[i] = c)) {
      sub_drop(g, i);
      return -1;
    }
  }
  for (i = 0; i < g->n; i++) {
    hl_object_t *o = g->old[i], *c = g->copy[i], *k, *v;
    switch (o->type->kind) {
    case HL_K_TUPLE:
      for (size_t j = 0; j < hl_tuple_size(o); j++)
        hl_tuple_set(c, j, hl_newref(sub_map(g, hl_tuple_get(o, j))));
      break;
    case HL_K_LIST:
      for (size_t j = 0; j < hl_list_size(o); j++)
        if (hl_list_set(c, j, hl_newref(sub_map(g, hl_list_get(o, j)))) != 0) goto oom;
      break;
    case HL_K_DICT:
      for (size_t pos = 0; hl_dict_next(o, &pos, &k, &v);)
        if (hl_dict_set(c, k, sub_map(g, v)) != 0) goto oom;
      break;
    default:
      for (uint32_t j = 0; j < o->type->nslots; j++)
        hl_slot_set(c, j, sub_map(g, hl_slot_get(o, j)));
      break;
    }
  }
  /* as retrack after the load: a collection may have untracked a tuple of
   * Nones, or a dict given only such a tuple, that holds containers now */
  if (hl_gc_active())
    for (bool changed = true; changed;) {
      changed = false;
      for (i = 0; i < g->n; i++) {
        hl_object_t *c = g->copy[i], *k, *v;
        bool want = false;
        if (hl_gc_is_tracked(c) || !(c->flags & HL_OF_GC)) continue;
        if (c->type->kind == HL_K_TUPLE)
          for (size_t j = 0; j < hl_tuple_size(c) && !want; j++)
            want = hl_heap_may_be_tracked(hl_tuple_get(c, j));
        else if (c->type->kind == HL_K_DICT)
          for (size_t pos = 0; !want && hl_dict_next(c, &pos, &k, &v);)
            want = hl_heap_may_be_tracked(k) || hl_heap_may_be_tracked(v);
        if (want) {
          hl_gc_track(c);
          changed = true;
        }
      }
    }
  return 0;
oom:
  sub_drop(g, g->n);
  return -1;
}

/* The rates a round follows, from the file's "mutation" object or the
 * defaults (docs/heap-format.md, "--churn"). */
static void rates_default(hp_rates_t *r, const char *why) {
  r->allocs = r->edges = DEFAULT_ALLOCS;
  r->garbage = DEFAULT_ALLOCS / 10;
  r->from_file = false;
  snprintf(r->source, sizeof r->source, "%s", why);
}

static bool json_u64(json_object *o, const char *name, uint64_t *v) {
  json_object *x;
  if (!json_object_object_get_ex(o, name, &x) || !json_object_is_type(x, json_type_int) ||
      json_object_get_int64(x) < 0)
    return false;
  *v = (uint64_t)json_object_get_int64(x);
  return true;
}

static bool json_u64x3(json_object *o, const char *name, uint64_t v[3]) {
  json_object *x;
  if (!json_object_object_get_ex(o, name, &x) || !json_object_is_type(x, json_type_array) ||
      json_object_array_length(x) != 3)
    return false;
  for (size_t i = 0; i < 3; i++) {
    json_object *e = json_object_array_get_idx(x, i);
    if (!json_object_is_type(e, json_type_int) || json_object_get_int64(e) < 0) return false;
    v[i] = (uint64_t)json_object_get_int64(e);
  }
  return true;
}

/* The meta line's optional "mutation" object (heap_capture.py's
 * MutationRecorder), checked: 0, or -1 with what is wrong. */
int hl_churn_rates(json_object *meta, const char *path, hp_rates_t *r, char *err, size_t errlen) {
  json_object *m;
  if (!json_object_object_get_ex(meta, "mutation", &m)) {
    rates_default(r, "default: the file records no rates (no meta \"mutation\")");
    return 0;
  }
  uint64_t thr[3], coll[3], got[3], unc[3], intervals, run_ns;
  const char *bad = NULL;
  if (!json_object_is_type(m, json_type_object)) bad = "is not a JSON object";
  else if (!json_u64x3(m, "threshold", thr) || thr[0] == 0)
    bad = "'threshold' is not 3 non-negative integers, the first above 0";
  else if (!json_u64x3(m, "collections", coll))
    bad = "'collections' is not 3 non-negative integers";
  else if (!json_u64x3(m, "collected", got)) bad = "'collected' is not 3 non-negative integers";
  else if (!json_u64x3(m, "uncollectable", unc))
    bad = "'uncollectable' is not 3 non-negative integers";
  else if (!json_u64(m, "young_intervals", &intervals) || intervals != coll[0] + coll[1] + coll[2])
    bad = "'young_intervals' is not the sum of 'collections'";
  else if (!json_u64(m, "run_ns", &run_ns)) bad = "'run_ns' is not a non-negative integer";
  if (bad)
    return BAD("heap-load: %s:3: meta \"mutation\" %s (heap_capture.py writes it; "
               "docs/heap-format.md)", path, bad);
  if (thr[0] > THRESHOLD0_MAX)   /* a round would build that many containers */
    return BAD("heap-load: %s:3: meta \"mutation\": threshold0 %" PRIu64 " is beyond %u", path,
               thr[0], THRESHOLD0_MAX);
  if (!intervals) {
    rates_default(r, "default: the program ran no collection (meta \"mutation\")");
    r->allocs = r->edges = thr[0];
    r->garbage = thr[0] / 10;
    return 0;
  }
  uint64_t collected = got[0] + got[1] + got[2];
  r->allocs = r->edges = thr[0];
  r->garbage = (collected + intervals / 2) / intervals;
  if (r->garbage > r->allocs) r->garbage = r->allocs;
  r->from_file = true;
  snprintf(r->source, sizeof r->source, "file: %" PRIu64 " objects collected over %" PRIu64
           " collections", collected, intervals);
  return 0;
}

/* Pushes o's container edges not seen yet onto *stack (grown as needed).
 * 0, or -1 out of memory. */
static int push_new(ptrset_t *seen, hl_object_t ***stack, size_t *n, size_t *cap, hl_object_t *o) {
  int a = ptrset_add(seen, o);
  if (a <= 0) return a;
  if (*n == *cap) {
    size_t nc = *cap ? 2 * *cap : 4096;
    hl_object_t **ns = realloc(*stack, nc * sizeof *ns);
    if (!ns) return -1;
    *stack = ns;
    *cap = nc;
  }
  (*stack)[(*n)++] = o;
  return 0;
}

/* Every object reachable from `from` (NULL: from the roots) into *seen;
 * containers also onto *out when out is given (new references). */
static int reach(const hp_shared_t *s, hl_object_t *from, ptrset_t *seen, hl_object_t ***out,
                 size_t *nout, uint64_t *containers) {
  hl_object_t **stack = NULL;
  size_t n = 0, cap = 0, outcap = 0;
  int rc = 0;
  for (uint64_t r = 0; rc == 0 && r < (from ? 1 : s->nroots); r++)
    rc = push_new(seen, &stack, &n, &cap, from ? from : s->roots[r]);
  while (rc == 0 && n > 0) {
    hl_object_t *o = stack[--n];
    if (!(o->flags & HL_OF_GC)) continue;
    if (containers) ++*containers;
    if (out) {
      if (*nout == outcap) {
        size_t nc = outcap ? 2 * outcap : 4096;
        hl_object_t **no = realloc(*out, nc * sizeof *no);
        if (!no) {
          rc = -1;
          break;
        }
        *out = no;
        outcap = nc;
      }
      (*out)[(*nout)++] = hl_newref(o);
    }
    for (size_t e = 0, ne = edge_count(o); rc == 0 && e < ne; e++) {
      hl_object_t *c = edge_get(o, e, NULL);
      if (c && c != hl_None) rc = push_new(seen, &stack, &n, &cap, c);
    }
  }
  free(stack);
  return rc;
}

/* The index: every data container the churn may act on (tuple, list,
 * dict, "o" instance), a reference each, so that a uniform draw from it is
 * a uniform draw from the live data (a random walk from the roots would
 * seldom reach a document held through one module global). What the index
 * holds lives: the edges the churn replaces held atoms or None, so that
 * only a rebuild drops containers, and it takes the old subgraph's out of
 * the index (they die unless something else, a sibling link, holds them:
 * then they live on, out of the churn's reach) and puts the copy's in. */
static bool index_wants(const hp_shared_t *s, const hl_object_t *o) {
  switch (o->type->kind) {
  case HL_K_TUPLE: return hl_tuple_size(o) > 0;   /* not the runtime's empty one */
  case HL_K_LIST:
  case HL_K_DICT: return true;
  case HL_K_INSTANCE: return hl_heap_kind_of(s, o) == K_INST;
  default: return false;
  }
}

static int index_add(hp_shared_t *s, hl_object_t *o) {
  if (ptrmap_find(s->index_pos, o)) return 0;
  if (s->nindex == s->index_cap) {
    uint64_t cap = s->index_cap ? 2 * s->index_cap : 4096;
    hl_object_t **ni = realloc(s->index, cap * sizeof *ni);
    if (!ni) return -1;
    s->index = ni;
    s->index_cap = cap;
  }
  if (ptrmap_put(s->index_pos, o, s->nindex) != 0) return -1;
  s->index[s->nindex++] = hl_newref(o);
  return 0;
}

/* The index's reference to o, if it has one, handed to the caller (who
 * drops it when done with o). */
static hl_object_t *index_take(hp_shared_t *s, hl_object_t *o) {
  uint64_t *pos = ptrmap_find(s->index_pos, o);
  if (!pos) return NULL;
  uint64_t i = *pos;
  ptrmap_del(s->index_pos, o);
  hl_object_t *last = s->index[--s->nindex];
  if (i != s->nindex) {
    s->index[i] = last;
    *ptrmap_find(s->index_pos, last) = i;
  }
  return o;
}

static hl_object_t *index_draw(hp_shared_t *s, hl_rand_t *rng) {
  return s->index[hl_rand_below(rng, s->nindex)];
}

void hl_churn_drop_index(hp_shared_t *s) {
  while (s->nindex) hl_clear(&s->index[--s->nindex]);
  if (s->index_pos) ptrmap_free(s->index_pos);
  free(s->index_pos);
  s->index_pos = NULL;
}

/* The roots, each a new reference; then the loader's references dropped.
 * referenced[i]: another record's edge names record i. 0, or -1 out of
 * memory (the loader's references kept). */
int hl_churn_roots(hp_shared_t *s, const uint8_t *referenced) {
  ptrset_t seen = {0};
  int rc = 0;
  if (!(s->roots = malloc(s->made * sizeof *s->roots))) return -1;
  /* pass 0: what no other object refers to; pass 1: the first, in file
   * order, of each group that only its own members reach */
  for (int pass = 0; pass < 2 && rc == 0; pass++)
    for (uint64_t i = 0; i < s->made && rc == 0; i++) {
      hl_object_t *o = s->objs[i];
      if ((pass == 0 && referenced[i]) || ptrset_has(&seen, o) ||
          (o->type->kind == HL_K_TUPLE && hl_tuple_size(o) == 0))   /* the runtime's: target() */
        continue;
      s->roots[s->nroots++] = hl_newref(s->objs[i]);
      rc = reach(s, s->objs[i], &seen, NULL, NULL, NULL);
    }
  ptrmap_free(&seen);
  /* the index, in file order */
  if (rc == 0 && !(s->index_pos = calloc(1, sizeof *s->index_pos))) rc = -1;
  for (uint64_t i = 0; rc == 0 && i < s->made; i++)
    if (index_wants(s, s->objs[i])) rc = index_add(s, s->objs[i]);
  if (rc == 0)
    for (uint64_t i = 0; i < s->made; i++) hl_clear(&s->objs[i]);
  else {
    hl_churn_drop_index(s);
    while (s->nroots) hl_clear(&s->roots[--s->nroots]);
    free(s->roots);
    s->roots = NULL;
  }
  return rc;
}

/* One mutation of each sort; false when TRIES draws found nothing to do it
 * on (counted as missed), or memory ran out (w->error). */
static bool replace_edge(hp_shared_t *s, hl_worker_t *w, uint64_t *sum) {
  for (unsigned t = 0; s->nindex && t < TRIES; t++) {
    /* a rebindable edge that holds an atom or None: an attribute or an item
     * updated, not a structure cut off (that is rebuild's, bounded) */
    hl_object_t *o = index_draw(s, &w->rng), *key = NULL, *old;
    size_t n = edge_count(o);
    if (!n) continue;
    size_t i = hl_rand_below(&w->rng, n);
    if (!rebindable(s, o, i) ||
        ((old = edge_get(o, i, &key)) && old != hl_None && (old->flags & HL_OF_GC)))
      continue;
    /* the new value: a live data container, or one of its edges (an atom,
     * a function, a type ...), as often */
    hl_object_t *v = index_draw(s, &w->rng);
    size_t vn = edge_count(v);
    if (hl_rand_below(&w->rng, 2) && vn) {
      hl_object_t *e = edge_get(v, hl_rand_below(&w->rng, vn), NULL);
      if (e) v = e;
    }
    if (edge_set(o, i, key, v) != 0) {
      hl_worker_fail(w, "out of memory replacing an edge: %s", hl_err_message());
      return false;
    }
    *sum = hl_fnv1a_u64(*sum, 1 | (uint64_t)i << 8 | (uint64_t)t << 32 |
                                  (uint64_t)hl_heap_kind_of(s, v) << 40);
    s->churn.edges_replaced++;
    return true;
  }
  s->churn.edges_missed++;
  return false;
}

static bool rebuild(hp_shared_t *s, hl_worker_t *w, unsigned budget, uint64_t *sum) {
  static sub_t g;   /* 3 KiB: not on the stack */
  for (unsigned t = 0; s->nindex && t < TRIES; t++) {
    /* a data container reached by a rebindable edge of another */
    hl_object_t *parent = index_draw(s, &w->rng), *key = NULL, *child;
    size_t n = edge_count(parent);
    if (!n) continue;
    size_t edge = hl_rand_below(&w->rng, n);
    if (!rebindable(s, parent, edge) || !(child = edge_get(parent, edge, &key)) ||
        !(child->flags & HL_OF_GC) || !is_data(s, child))
      continue;
    sub_collect(s, child, budget < SUB_MAX ? budget : SUB_MAX, &g);
    uint64_t acyclic = sub_acyclic(&g);   /* before the old one may die */
    if (sub_copy(s, &g) != 0) {
      hl_worker_fail(w, "out of memory copying a subgraph: %s", hl_err_message());
      return false;
    }
    /* the old subgraph out of the index (its references held until the
     * copy is in place), the copy in */
    hl_object_t *held[SUB_MAX];
    for (unsigned c = 0; c < g.n; c++) held[c] = index_take(s, g.old[c]);
    int rc = edge_set(parent, edge, key, g.copy[0]);
    for (unsigned c = 0; rc == 0 && c < g.n; c++) rc = index_add(s, g.copy[c]);
    for (unsigned c = 0; c < g.n; c++) hl_xdecref(held[c]);
    if (rc != 0) {
      sub_drop(&g, g.n);
      hl_worker_fail(w, "out of memory attaching a subgraph: %s", hl_err_message());
      return false;
    }
    *sum = hl_fnv1a_u64(*sum, 2 | (uint64_t)g.n << 8 | acyclic << 24 | (uint64_t)t << 32 |
                                  (uint64_t)edge << 40);
    s->churn.rebuilt++;
    s->churn.rebuilt_containers += g.n;
    s->churn.rebuilt_cyclic += g.n > acyclic;
    sub_drop(&g, g.n);
    return true;
  }
  s->churn.rebuilds_missed++;
  return false;
}

/* The garbage's shapes: cyclic subgraphs of the loaded heap (each data
 * container's, breadth first, up to SUB_MAX), copied once before the churn
 * and kept by the workload, as a program keeps the code that builds its
 * structures; up to TEMPLATES of them, found among the first TEMPLATE_SCAN
 * data containers from TEMPLATES points spread over the file. 0, or -1 out
 * of memory. */
int hl_churn_templates(hp_shared_t *s) {
  static sub_t g;
  if (!(s->templates = calloc(TEMPLATES, sizeof *s->templates))) return -1;
  uint64_t examined = 0;
  for (unsigned k = 0; k < TEMPLATES && examined < TEMPLATE_SCAN; k++)
    for (uint64_t i = k * s->made / TEMPLATES; i < s->made && examined < TEMPLATE_SCAN; i++) {
      if (!(s->objs[i]->flags & HL_OF_GC) || !is_data(s, s->objs[i])) continue;
      examined++;
      sub_collect(s, s->objs[i], SUB_MAX, &g);
      if (sub_acyclic(&g) == g.n) continue;
      if (sub_copy(s, &g) != 0) return -1;
      /* the template: its copies as a subgraph of their own */
      sub_t *t = &s->templates[s->ntemplates++];
      memset(t->hkey, 0, sizeof t->hkey);
      t->n = 0;
      for (unsigned c = 0; c < g.n; c++) sub_add(t, g.copy[c]);
      break;
    }
  return 0;
}

/* Without a collector, emptied first: a template's cycles are not the
 * churn's garbage. */
void hl_churn_drop_templates(hp_shared_t *s) {
  for (unsigned k = 0; s->templates && k < s->ntemplates; k++)
    for (unsigned c = 0; c < s->templates[k].n; c++) {
      if (!hl_gc_active()) hl_heap_clear_one(s->templates[k].old[c]);
      hl_clear(&s->templates[k].old[c]);
    }
  s->ntemplates = 0;
}

/* A copy of a random template, held in s->pending until the next round. */
static bool make_garbage(hp_shared_t *s, hl_worker_t *w, uint64_t *sum) {
  static sub_t g;
  if (!s->ntemplates) {
    s->churn.garbage_missed++;
    return false;
  }
  unsigned k = (unsigned)hl_rand_below(&w->rng, s->ntemplates);
  g = s->templates[k];
  if (sub_copy(s, &g) != 0) {
    hl_worker_fail(w, "out of memory copying a subgraph: %s", hl_err_message());
    return false;
  }
  unsigned acyclic = sub_acyclic(&g);
  s->pending[s->npending] = g.copy[0];
  s->pending_cyclic[s->npending++] = g.n - acyclic;
  g.copy[0] = NULL;
  sub_drop(&g, g.n);
  *sum = hl_fnv1a_u64(*sum, 3 | (uint64_t)k << 8 | (uint64_t)g.n << 24);
  s->churn.garbage_made++;
  s->churn.garbage_containers += g.n;
  s->churn.garbage_cyclic += g.n - acyclic;
  return true;
}

/* The previous round's garbage copies dropped: its cyclic containers are
 * the collector's to find. */
static void drop_pending(hp_shared_t *s) {
  uint64_t cyclic = 0;
  for (uint64_t i = 0; i < s->npending; i++) {
    cyclic += s->pending_cyclic[i];
    hl_clear(&s->pending[i]);
  }
  s->npending = 0;
  if (cyclic) hl_gc_note_garbage(cyclic);
}

/* The timed part of a --churn run: cfg->churn rounds. */
void hl_churn_run(hp_shared_t *s, hl_worker_t *w, uint64_t *sum) {
  const hp_rates_t *r = &s->rates;
  /* a round holds at most one garbage copy per container of its budget */
  if (!(s->pending = calloc(r->garbage + 1, sizeof *s->pending)) ||
      !(s->pending_cyclic = calloc(r->garbage + 1, sizeof *s->pending_cyclic))) {
    hl_worker_fail(w, "out of memory for the churn's garbage list");
    return;
  }
  uint64_t rebuild_budget = r->allocs - r->garbage;
  for (uint64_t round = 0; round < w->cfg->churn && !w->error; round++) {
    HL_WORKLOAD_CHECKPOINT();
    hl_worker_tick(w, s->churn.edges_replaced + s->churn.rebuilt + s->churn.garbage_made);
    drop_pending(s);
    /* what is left of each sort, in its units: edges, containers, containers */
    uint64_t left[3] = {r->edges, rebuild_budget, r->garbage};
    while (!w->error && left[0] + left[1] + left[2] > 0) {
      uint64_t x = hl_rand_below(&w->rng, left[0] + left[1] + left[2]);
      if (x < left[0]) {
        replace_edge(s, w, sum);
        left[0]--;
      } else if (x < left[0] + left[1]) {
        uint64_t before = s->churn.rebuilt_containers;
        if (!rebuild(s, w, (unsigned)(left[1] < SUB_MAX ? left[1] : SUB_MAX), sum)) left[1] = 0;
        else left[1] -= s->churn.rebuilt_containers - before;
      } else {
        uint64_t before = s->churn.garbage_containers;
        if (!make_garbage(s, w, sum)) left[2] = 0;
        else left[2] -= s->churn.garbage_containers - before < left[2]
                            ? s->churn.garbage_containers - before : left[2];
      }
      if (((left[0] + left[1] + left[2]) & 255) == 0) HL_WORKLOAD_CHECKPOINT();
    }
    s->churn.rounds++;
  }
  drop_pending(s);
}

/* After the churn, untimed: what is still reachable; with --gc=none every
 * reachable container emptied first, and then what stays allocated is the
 * cyclic garbage reference counting cannot free (the runner's leak check
 * expects exactly that many objects). */
void hl_churn_finish(hp_shared_t *s, hl_worker_t *w) {
  ptrset_t seen = {0};
  hl_object_t **cont = NULL;
  size_t ncont = 0;
  uint64_t containers = 0;
  bool none = !hl_gc_active();
  hl_churn_drop_index(s);
  if (reach(s, NULL, &seen, none ? &cont : NULL, &ncont, &containers) != 0)
    hl_worker_fail(w, "out of memory walking the heap after the churn");
  s->churn.live_objects = seen.n;
  s->churn.live_containers = containers;
  ptrmap_free(&seen);
  if (none) {
    for (size_t i = 0; i < ncont; i++) {
      if ((i & 1023) == 0) HL_WORKLOAD_CHECKPOINT();
      hl_heap_clear_one(cont[i]);
    }
    for (size_t i = 0; i < ncont; i++) hl_decref(cont[i]);
  }
  free(cont);
  for (uint64_t i = 0; i < s->nroots; i++) hl_clear(&s->roots[i]);
  hl_churn_drop_templates(s);
  if (none) {
    hl_obj_stats_t st;
    hl_freelists_clear();   /* a free list's objects count as allocated */
    hl_obj_stats(&st);
    uint64_t live = st.allocated - st.freed;
    w->cyclic_garbage = live > s->live_before ? live - s->live_before : 0;
    s->churn.leaked = w->cyclic_garbage;
  }
}

static json_object *u64j(uint64_t v) { return json_object_new_int64((int64_t)v); }

/* extra.churn: the rates, what the rounds did, and the collector's share
 * of the churn beside CPython's share of the program's run. */
json_object *hl_churn_json(const hp_shared_t *s, const hl_run_result_t *r) {
  const hp_churn_stats_t *c = &s->churn;
  json_object *o = json_object_new_object(), *rt = json_object_new_object(), *v;
  json_object_object_add(rt, "source", json_object_new_string(s->rates.source));
  json_object_object_add(rt, "from_file", json_object_new_boolean(s->rates.from_file));
  json_object_object_add(rt, "allocs_per_round", u64j(s->rates.allocs));
  json_object_object_add(rt, "garbage_per_round", u64j(s->rates.garbage));
  json_object_object_add(rt, "edges_per_round", u64j(s->rates.edges));
  json_object_object_add(o, "rates", rt);
  static const struct { const char *name; size_t off; } f[] = {
#define F_(x) {#x, offsetof(hp_churn_stats_t, x)}
    F_(rounds), F_(edges_replaced), F_(edges_missed), F_(rebuilt), F_(rebuilt_containers),
    F_(rebuilt_cyclic), F_(rebuilds_missed), F_(garbage_made), F_(garbage_containers),
    F_(garbage_cyclic), F_(garbage_missed), F_(allocated), F_(freed), F_(live_objects),
    F_(live_containers), F_(leaked),
#undef F_
  };
  for (size_t i = 0; i < HL_ARRAY_LEN(f); i++)
    json_object_object_add(o, f[i].name, u64j(*(const uint64_t *)((const char *)c + f[i].off)));
  json_object_object_add(o, "roots", u64j(s->nroots));
  if (r->wall_ns)
    json_object_object_add(o, "mutations_per_s",
                           json_object_new_double((double)r->ops * 1e9 / (double)r->wall_ns));
  if (r->gc) {
    const hl_gc_stats_t *g = &r->gc->stats;
    uint64_t got = 0;
    for (int i = 0; i < HL_GC_GENERATIONS; i++) got += g->collected[i];
    json_object_object_add(o, "collected_per_round",
                           json_object_new_double((double)got / (double)c->rounds));
    /* the collector's pauses are wall time: over the churn's wall time */
    if (r->wall_ns)
      json_object_object_add(o, "gc_time_share",
                             json_object_new_double((double)g->pause_ns_total /
                                                    (double)r->wall_ns));
  }
  /* CPython's, over the program's run (the file's "mutation") */
  json_object *m;
  if (json_object_object_get_ex(s->hdr.meta, "mutation", &m) &&
      json_object_is_type(m, json_type_object)) {
    json_object *cp = json_object_new_object();
    uint64_t run = 0, cpu = 0, pt = 0, pc = 0, iv = 0, got[3] = {0, 0, 0};
    json_u64(m, "run_ns", &run);
    json_u64(m, "young_intervals", &iv);
    json_u64x3(m, "collected", got);
    if (json_u64(m, "pause_ns_total", &pt) && run)
      json_object_object_add(cp, "gc_time_share", json_object_new_double((double)pt / (double)run));
    if (json_u64(m, "cpu_ns", &cpu) && json_u64(m, "pause_cpu_ns_total", &pc) && cpu)
      json_object_object_add(cp, "gc_cpu_share", json_object_new_double((double)pc / (double)cpu));
    if (iv)
      json_object_object_add(cp, "collected_per_interval",
                             json_object_new_double((double)(got[0] + got[1] + got[2]) /
                                                    (double)iv));
    static const char *const copied[] = {"pauses", "pause_ns_p50", "pause_ns_p99", "pause_ns_max",
                                         "young_intervals", "containers_allocated_est", "run_ns"};
    for (size_t i = 0; i < HL_ARRAY_LEN(copied); i++)
      if (json_object_object_get_ex(m, copied[i], &v))
        json_object_object_add(cp, copied[i], json_object_get(v));
    json_object_object_add(o, "cpython", cp);
  }
  return o;
}
