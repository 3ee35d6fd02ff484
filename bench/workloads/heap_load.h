/* heap-load's shared parts (bench/workloads/heap_load.c, the loader;
 * heap_churn.c, --churn's mutation phase): the state one run keeps, and
 * what each file asks of the other. docs/heap-format.md describes both.
 *
 * The main types:
 *   hp_shared_t     one run: the file's header and counts, the loaded
 *                   objects (the loader's references until the churn), and
 *                   --churn's roots, index, templates and figures
 *   hp_rates_t      what one round of --churn does, from the file's meta
 *                   "mutation" object or the defaults
 *   hp_churn_stats_t what the rounds did (extra.churn)
 */
#ifndef HL_HEAP_LOAD_H
#define HL_HEAP_LOAD_H

#include <json-c/json.h>
#include <stdio.h>

#include "workload.h"

#define BAD(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* The kinds, in the file's letters; o and x both become instances. */
enum { K_INT, K_FLOAT, K_STR, K_TUPLE, K_LIST, K_DICT, K_INST, K_OTHER, K_COUNT };

typedef struct hp_counts {
  uint64_t objects[K_COUNT], edges[K_COUNT];
} hp_counts_t;

/* One pass over a heap file. */
typedef struct reader {
  const char *path;
  FILE *f;
  char *line;
  size_t cap;
  uint64_t lineno;
  uint64_t objects, edges;      /* the header's */
  json_object *meta;            /* the header's meta line (owned) */
} reader_t;

/* One record, its edges parsed in place (pass 2) or skipped. */
typedef struct record {
  uint64_t id, size, n;
  int kind;
  const char *edges;            /* the text after NEDGES */
} record_t;

/* What one round of --churn does (hl_churn_rates). */
typedef struct hp_rates {
  uint64_t allocs;              /* containers built: threshold0, a young interval's net */
  uint64_t garbage;             /* of them, dropped as cyclic garbage (CPython's collected) */
  uint64_t edges;               /* edges replaced: one per container allocated (assumed) */
  bool from_file;
  char source[128];
} hp_rates_t;

typedef struct hp_churn_stats {
  uint64_t rounds;
  uint64_t edges_replaced, edges_missed;
  uint64_t rebuilt, rebuilt_containers, rebuilt_cyclic, rebuilds_missed;
  uint64_t garbage_made, garbage_containers, garbage_cyclic, garbage_missed;
  uint64_t allocated, freed;    /* objects, over the timed churn */
  uint64_t live_objects, live_containers;   /* reachable after it */
  uint64_t leaked;              /* --gc=none: cyclic garbage left allocated */
} hp_churn_stats_t;

typedef struct hp_shared {
  const char *path;
  reader_t hdr;                 /* the header, read in setup */
  hp_counts_t file, loaded;
  uint64_t singleton_edges;
  uint64_t keys_synthesized;
  hl_object_t **objs;           /* every object, the loader's reference */
  uint64_t made;
  hl_type_t **classes[2];       /* by slot count: o, x */
  uint64_t nclasses[2];
  hl_run_gc_probe_t probe;
  bool checked;                 /* step 2 passed */
  /* --churn */
  hp_rates_t rates;
  hl_object_t **roots;          /* the loader's references during the churn */
  uint64_t nroots;
  struct ptrmap *index_pos;     /* the data containers, where mutations act: */
  hl_object_t **index;          /* new references, index[index_pos(o)] == o */
  uint64_t nindex, index_cap;
  struct sub *templates;        /* copies of cyclic subgraphs of the loaded heap */
  unsigned ntemplates;
  hl_object_t **pending;        /* this round's garbage copies (new references) */
  uint64_t *pending_cyclic;     /* their containers in or under a cycle */
  uint64_t npending;
  uint64_t live_before;         /* objects allocated and not freed before the load */
  bool no_empty_tuple;          /* --churn: edges to the empty tuple are None */
  hp_churn_stats_t churn;
} hp_shared_t;

/* ---- the loader's (heap_load.c), for the churn ---------------------------------------- */
/* o's kind, in the file's terms (K_*). */
int hl_heap_kind_of(const hp_shared_t *s, const hl_object_t *o);
/* The class of instances with n slots (o: which = 0, x: 1), made once; NULL
 * without memory. */
hl_type_t *hl_heap_class_for(hp_shared_t *s, int which, uint64_t n);
/* Whether the collector may see x (a container, a tuple only while tracked). */
bool hl_heap_may_be_tracked(const hl_object_t *x);
/* Empties a container, so that no cycle stays through it (--gc=none). */
void hl_heap_clear_one(hl_object_t *o);

/* ---- the churn's (heap_churn.c), for the loader --------------------------------------- */
/* The meta line's optional "mutation" object, checked, into *r (the
 * defaults without it): 0, or -1 with what is wrong. */
int hl_churn_rates(json_object *meta, const char *path, hp_rates_t *r, char *err, size_t errlen);
/* Before the timed part, the loaded objects all there: the garbage's
 * templates, then the roots and the index, the loader's references dropped.
 * referenced[i]: another record's edge names record i. 0, or -1 without
 * memory (then the loader still holds every object). */
int hl_churn_templates(hp_shared_t *s);
int hl_churn_roots(hp_shared_t *s, const uint8_t *referenced);
/* The timed part: cfg->churn rounds; *sum the checksum. */
void hl_churn_run(hp_shared_t *s, hl_worker_t *w, uint64_t *sum);
/* After it, untimed: what is reachable; everything let go (with --gc=none,
 * what stays allocated into w->cyclic_garbage). */
void hl_churn_finish(hp_shared_t *s, hl_worker_t *w);
/* What the churn holds, let go (the loader's step 4 after a failure). */
void hl_churn_drop_templates(hp_shared_t *s);
void hl_churn_drop_index(hp_shared_t *s);
/* extra.churn. */
json_object *hl_churn_json(const hp_shared_t *s, const hl_run_result_t *r);

#endif /* HL_HEAP_LOAD_H */
