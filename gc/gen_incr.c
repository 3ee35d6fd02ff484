/* The incremental collector (--gc=incremental, --pause-budget-us=N): the
 * young generations as under stw, and the old generation examined by a
 * scan that runs in increments between the mutator's steps, so that no
 * pause has to look at the whole heap.
 *
 * Why not CPython 3.14's increments. CPython 3.14 (gh-108362, Mark
 * Shannon) collects, at each young collection, the young generation plus
 * an increment of the old one: objects taken from a "pending" space
 * together with everything they reach that has not been visited in this
 * pass, so that a cycle is never split between increments; it marks what
 * the interpreter's roots reach first, to keep the live heap out. heaplab
 * has no roots to enumerate (its mutators are C code holding references
 * on their stacks), and a closure from any object of a large connected
 * heap (long-lived's top list reaches four million objects) is the whole
 * heap: either the increment grows without bound, or it is cut and a
 * cycle larger than the cut is never found. Cutting and then growing the
 * increment when the heap grows is CPython 3.14's escalation in effect,
 * and its memory reports (mypy +45%..2x, gh-129210) are what that costs.
 *
 * What heaplab does instead: a trial deletion spread over the increments
 * and made safe after the fact, in the manner of Bacon and Rajan's
 * concurrent cycle collector ("Concurrent Cycle Collection in Reference
 * Counted Systems", ECOOP 2001), which computes on a graph the mutator
 * keeps changing and frees nothing until a test made with the world still
 * proves it garbage. Here that test is the synchronous trial deletion
 * itself (collect.c) on the candidates only.
 *
 * A scan of the old generation (the objects in it when the scan starts;
 * objects promoted meanwhile wait for the next one) has four phases, each
 * done a piece at a time within each increment's work budget, walking its
 * list in place behind a cursor (cursor_take below):
 *
 *   MARK   every object of the scan gets the scan's mark in the top bits of
 *          its GC head's prev word (HL_GC_PREV_SCAN_MASK, gc_internal.h):
 *          member of this scan (a parity bit, so that marks left by the
 *          previous scan mean nothing), not reached, a count of referrers 0;
 *   COUNT  each object is traversed once, and every member it references
 *          gets one more referrer (saturating at REFS_MAX: an object with
 *          more is taken as rooted, and counted in the statistics);
 *   ROOTS  each object whose reference count exceeds its referrers among
 *          the members is referenced from outside the old generation (a
 *          stack, a global, a young object): it is reached; so is
 *          everything a reached object references (one walk in list order,
 *          as collect.c's move_unreachable); a reached object leaves the
 *          scan, marked for the next one (so the next MARK skips it), and a
 *          tuple or dict that can never be in a cycle is untracked, as a
 *          full collection would;
 *   VALIDATE what was never reached is a candidate. Candidates go through
 *          collect.c's synchronous trial deletion, whole components at a
 *          time (a chunk is the closure of its first candidate over the
 *          candidates), with the GIL held or the world stopped.
 *
 * Safety: nothing the scan computes frees anything. An object is freed
 * only by the trial deletion of VALIDATE, which is CPython's own collection
 * on a set of objects at one instant: an object of the set that anything
 * outside the set references is kept, with everything it reaches. Counts
 * made stale by the mutator between increments (a reference moved from an
 * object counted later to one counted earlier, an object freed after it
 * was counted) can only make a live object a candidate (validation keeps
 * it: a wasted look) or a garbage object reached (found by the next scan).
 *
 * Completeness: cyclic garbage present when a scan starts is found by that
 * scan. Garbage never changes (nothing reaches it; weakrefs to it are only
 * cleared by the validation): its members' reference counts and edges are
 * the same at every increment, so COUNT counts exactly the references
 * among them, none of them is rooted, nothing reached references them, and
 * every one is a candidate. Garbage made during a scan, or still holding a
 * young object when the scan started, is found by the next. A component of
 * any size is found: a million-object cycle costs the scan a million units
 * spread over increments, and its validation, which cannot be split (the
 * trial deletion of part of a cycle keeps the part), is one pause over
 * budget: counted in overrun_units, never hidden. So is a single container
 * whose traversal alone exceeds the budget (a list of a million items).
 * The holes, which make garbage wait for an explicit full collection: an
 * object with REFS_MAX referrers or more, and everything only it keeps.
 *
 * The young generations: generation 0 is collected as under stw, every A
 * allocations; every B young collections generation 1 is collected with
 * it when that is predicted to fit the budget, and otherwise joins the old
 * generation whole (young_collect below says why). gc.collect(n) means
 * what it means under stw; (2) collects everything at once, and the scan
 * starts again.
 *
 * When a scan starts: when stw would collect in full (gen_stw.c), at most
 * once per B x C young collections and when the objects promoted since the
 * last scan started exceed a quarter of that scan's (CPython's
 * long_lived_pending rule, counting a scan's survivors): the scan does a
 * full collection's work at a full collection's rate, so the two cost the
 * same over a run. Two scans in a row that each freed less than 1% of what
 * they looked at double that interval (up to 8x; a scan that frees more
 * resets it): a heap without old garbage (long-lived) is looked at less
 * often, a heap that makes it as often as stw would.
 *
 * How much per increment: the scan's remaining work (its objects at the
 * start times the units per object of the last scan) spread evenly over
 * the young collections left before the next scan is due, so that every
 * window of the mutator's time loses about the same share (the MMU), and
 * never more than the budget: what is left of --pause-budget-us after the
 * young collection, converted to units by the measured nanoseconds per
 * unit, with the clock read every CLOCK_EVERY units to stop at the budget
 * (but MIN_STEP units at least, so that a scan finishes even when every
 * young collection, or every stop of the world, takes the whole budget).
 * With --mmu-target=U (0, the default, is off), never more than the share
 * of the time U leaves the collector (70: at most 3 ms of pauses in any 10
 * ms window, the minimum mutator utilisation of Cheng and Blelloch, "A
 * parallel, real-time garbage collector", PLDI 2001): the pause an
 * increment may take is also what the pauses of the last 10 ms and the
 * young collections expected in the next leave of that share, the
 * time-based scheduling of Metronome (Bacon, Cheng and Rajan, "A real-time
 * garbage collector with low overhead and consistent utilization", POPL
 * 2003) made a rule on each increment (collector.h, hli_mmu_pacer_t, says
 * how and proves the bound). The young collection is inside the same share
 * (its time counts), but is never put off: a young generation left to grow
 * is a walk through cold memory (issue 21's pathology), a longer pause that
 * costs more in all. Where garbage is being made and the scan falls behind,
 * the rule gives way to the budget alone (mmu_yields below says when and
 * why): the MMU target and a bounded backlog cannot both hold when the scan
 * needs more than the share, and memory wins. It is off by default because
 * the collector cannot tell a growing live heap from a growing dead one
 * without the scan the rule slows down (long-lived's build against
 * cyclotron's rings of 1000, papers/incremental-pauses "MMU"): a program
 * that knows its old generation makes little garbage can trade; the default
 * keeps the backlog.
 * A young collection alone over the budget (a threshold far above 700), an
 * indivisible piece (a validated component, one huge container) are
 * overruns: every pause over the budget is counted (overruns, the longest
 * one), and every increment that went past twice its units because of a
 * piece over BIG_PIECE units (overrun_units, the largest piece).
 *
 * The unit of work: one object marked, counted, passed or traversed by a
 * phase: objects examined. The references a traversal visits are not
 * counted (that would cost each visit an instruction or three): a
 * container of a million items is one unit, and the clock, not the units,
 * stops an increment that such a container makes long.
 *
 * Statistics (hl_gc_stats_t): increments (pauses that did scan work; their
 * pauses are recorded as generation 2's, a young collection's as 0's),
 * scans, scan units and their histogram per increment, candidates,
 * overruns. The gc callbacks see the young generation collected (0 or 1)
 * at the start of an increment and 2 at its end when it did scan work;
 * info->full when it completed a scan. Without a GIL each pause stops the world (sync/stw.c) and counts
 * from the stop request, which includes the time to stop.
 */
#include "collector.h"
#include "hl_probe.h"

/* The scan's bits of prev (HL_GC_PREV_SCAN_MASK). */
#define MEMBER   ((uintptr_t)1 << 63)   /* in a scan (of the parity below) */
#define PARITY   ((uintptr_t)1 << 62)
#define REACHED  ((uintptr_t)1 << 61)   /* proven referenced from outside */
#define REFS_SHIFT 48
#define REFS_MAX ((uintptr_t)0x1FFF)     /* 13 bits: saturated = taken as rooted */
#define REFS_MASK (REFS_MAX << REFS_SHIFT)
_Static_assert((MEMBER | PARITY | REACHED | REFS_MASK) == HL_GC_PREV_SCAN_MASK, "the scan's bits");

#define MIN_STEP 48        /* units an increment may always spend on a scan under way */
#define STRETCH_MAX 8      /* the longest interval between scans, in stw's */
#define CLOCK_EVERY 128    /* units between two looks at the clock (a cold unit: 0.2 us) */
#define BIG_PIECE 4096     /* an indivisible piece this large is an overrun */
#define WAITER_EVERY 16    /* --gc=concurrent: units between two looks for the lists' waiters */

enum phase { IDLE, MARK, COUNT, ROOTS, VALIDATE };

typedef struct incr_state {
  enum phase phase;
  uintptr_t parity;         /* this scan's PARITY bit (0 or PARITY) */
  hl_gc_head_t tomark;      /* MARK: the old generation as the scan started */
  hl_gc_head_t count;       /* COUNT: marked (MARK's list, whole, when it ends) */
  hl_gc_head_t counted;     /* ROOTS: counted, walked in place */
  hl_gc_head_t tentative;   /* passed by ROOTS unreached: VALIDATE's candidates */
  hl_gc_head_t done;        /* reached and traversed: marked for the next scan */
  hl_gc_head_t cursor;      /* not an object: where the walk of the phase's list is */
  uint64_t scan_objects;    /* in this scan (marked by it, or by the last) */
  uint64_t done_objects;    /* reached by this scan: marked for the next */
  uint64_t tentative_count; /* about the candidates (the dead not subtracted) */
  uint64_t pending_joined;  /* long_lived_pending when promotions last joined */
  uint64_t young_since_start;   /* young collections since the last scan started */
  uint64_t gen1_survivors;  /* survivors put in generation 1 since it last aged */
  double ns_per_young;      /* young collections' time per object examined, measured */
  uint64_t scan_units;      /* spent by this scan */
  double units_per_object;  /* the last scan's */
  uint64_t scan_estimate;   /* objects this scan will have marked (at its start) */
  uint64_t scan_freed;      /* objects its validations collected */
  unsigned stretch;         /* 1, 2, 4, 8: the interval between scans, over stw's */
  unsigned fruitless;       /* scans in a row that freed less than 1% */
  bool fruitful;            /* the last scan freed 1% or more */
  uint64_t young_found;     /* cyclic garbage the young collections found since the scan began */
  bool hand_back;           /* a scan ended: memory to hand back when the budget allows */
  hli_unit_clock_t unit;    /* ns per unit, measured (collector.h) */
  hli_mmu_pacer_t pacer;    /* --mmu-target: the pauses of the last window (collector.h) */
  /* --gc=concurrent (gen_conc.c): MARK, COUNT and ROOTS run on the
   * collector thread in chunks (hli_scan_chunk), not in the increments */
  bool concurrent;
  bool in_chunk;            /* a chunk runs: traversals go through hli_conc_traverse */
  uint64_t chunk_skipped;   /* containers a chunk could not lock: not traversed */
  uint64_t scan_t0;         /* when the scan under way started */
} incr_state_t;
static incr_state_t incr;

/* The cursor: a phase walks its list in place, objects staying where they
 * are, and between increments the cursor, a GC head of no object linked
 * into the list, keeps its place (the mutator may free any object of the
 * list meanwhile: an unlink relinks the cursor like any neighbour). Fewer
 * list operations per object than moving each object to the next list. */
static hl_gc_head_t *cursor_take(hl_gc_head_t *list) {
  if (!incr.cursor.next) return hli_gc_next(list);
  hl_gc_head_t *first = hli_gc_next(&incr.cursor);
  hli_gc_list_remove(&incr.cursor);
  return first;
}
/* The walk stops before g (g may be the list's head: the walk is done). */
static void cursor_put(hl_gc_head_t *g) {
  /* not hli_gc_list_append(cursor, g), which would write g's prev whole:
   * g's prev holds its marks */
  hl_gc_head_t *c = &incr.cursor, *prev = hli_gc_prev(g);
  c->prev = (uintptr_t)prev;
  hli_gc_set_next(c, (uintptr_t)g);
  hli_gc_set_next(prev, (uintptr_t)c);
  g->prev = (g->prev & HL_GC_PREV_MASK_FLAGS) | (uintptr_t)c;
}
static void cursor_drop(void) {
  if (incr.cursor.next) hli_gc_list_remove(&incr.cursor);
}

static void scan_lists_init(void) {
  hli_gc_list_init(&incr.tomark);
  hli_gc_list_init(&incr.count);
  hli_gc_list_init(&incr.counted);
  hli_gc_list_init(&incr.tentative);
  hli_gc_list_init(&incr.done);
}

/* ---- marks ---------------------------------------------------------------------- */
static inline bool member(const hl_gc_head_t *g) {
  return (g->prev & (MEMBER | PARITY)) == (MEMBER | incr.parity);
}
/* The scan is in the phases --gc=concurrent's thread runs. */
static inline bool thread_phase(void) { return incr.phase >= MARK && incr.phase <= ROOTS; }

/* o's GC head when o is a member of this scan, else NULL. */
static inline hl_gc_head_t *member_head(hl_object_t *o) {
  /* a member is in the shared lists (stripe 0), whose lock a concurrent
   * chunk holds: a young object of a thread's stripe, whose prev its owner
   * may be writing, is not looked at */
  if ((o->flags & (HL_OF_GC | HL_OF_STRIPE_MASK)) != HL_OF_GC) return NULL;
  hl_gc_head_t *g = HL_GC_HEAD(o);
  return member(g) ? g : NULL;
}
static inline void mark(hl_gc_head_t *g, uintptr_t parity) {
  g->prev = (g->prev & ~HL_GC_PREV_SCAN_MASK) | MEMBER | parity;
}
static inline void unmark(hl_gc_head_t *g) { g->prev &= ~HL_GC_PREV_SCAN_MASK; }
static inline uintptr_t refs(const hl_gc_head_t *g) { return (g->prev & REFS_MASK) >> REFS_SHIFT; }

static void unmark_list(hl_gc_head_t *l) {
  for (hl_gc_head_t *g = hli_gc_next(l); g != l; g = hli_gc_next(g)) unmark(g);
}

/* Every list of the scan into `to`; with unmark, their marks cleared (a
 * full collection overwrites them itself). The scan starts again. */
static void scan_abandon(hl_gc_head_t *to, bool clear) {
  cursor_drop();
  hl_gc_head_t *lists[] = {&incr.tomark, &incr.count, &incr.counted, &incr.tentative,
                           &incr.done};
  for (size_t i = 0; i < HL_ARRAY_LEN(lists); i++) {
    if (clear) unmark_list(lists[i]);
    hli_gc_list_merge(lists[i], to);
  }
  incr.phase = IDLE;
  incr.done_objects = 0;
  incr.tentative_count = 0;
  if (incr.concurrent) hli_gc_scanning_set(false);
}

/* ---- the phases, a piece at a time ------------------------------------------------- */
static int visit_count(hl_object_t *o, void *arg) {
  (void)arg;
  hl_gc_head_t *g = member_head(o);
  if (g && refs(g) < REFS_MAX) g->prev += (uintptr_t)1 << REFS_SHIFT;
  return 0;
}

static int visit_reach(hl_object_t *o, void *arg) {
  (void)arg;
  hl_gc_head_t *g = member_head(o);
  if (g && !(g->prev & REACHED)) {
    bool passed = (g->prev & REFS_MASK) == REFS_MASK;   /* a candidate, or saturated */
    g->prev |= REACHED;
    if (passed) {   /* where the walk will come */
      hli_gc_list_move(g, &incr.counted);
      if (incr.tentative_count) incr.tentative_count--;
    }
  }
  return 0;
}

static inline uint32_t refcount(hl_object_t *o) {
  return HL_UNLIKELY(hl_rc_config.mode == HL_RC_BIASED) ? hl_rc_biased_count(o) : hli_rc_load(o);
}

/* A member's traversal by a phase: inline with the world stopped (or the
 * GIL held); in a concurrent chunk through gen_conc.c's, which locks a
 * list or dict (or gives up: false) and reads instance slots atomically. */
static inline bool scan_traverse(hl_object_t *o, hl_visit_fn visit, void *arg) {
  if (HL_UNLIKELY(incr.in_chunk)) {
    if (hli_conc_traverse(o, visit, arg)) return true;
    incr.chunk_skipped++;
    return false;
  }
  hli_gc_traverse(o, visit, arg);
  return true;
}

/* stw's rule for a full collection, as a scan's start: at most one per
 * B x C young collections (the thresholds of generations 1 and 2: stw
 * collects generation 2 every C collections of generation 1, itself every
 * B of generation 0), and only when the objects promoted since the last
 * scan started exceed a quarter of that scan's (the long-lived rule). */
static uint64_t scan_interval(void) {
  return (uint64_t)hli_gc_threshold(1) * hli_gc_threshold(2) * incr.stretch;
}
static bool scan_due(void) {
  return incr.young_since_start >= scan_interval() &&
         hli_gc.long_lived_pending > hli_gc.long_lived_total / 4;
}

static void scan_start(void) {
  incr.scan_estimate = incr.done_objects + hli_gc.long_lived_pending;
  incr.scan_freed = 0;
  incr.young_since_start = 0;
  incr.young_found = 0;
  hli_gc.long_lived_pending = 0;   /* promotions from now wait for the next scan */
  incr.pending_joined = 0;
  incr.parity ^= PARITY;
  /* the objects the last scan reached are marked for this one already */
  hli_gc_list_merge(&incr.done, &incr.count);
  hli_gc_list_merge(&hli_gc.gen[HL_GC_GENERATIONS - 1].head, &incr.tomark);
  incr.scan_objects = incr.done_objects;   /* those that died since included: a pace, not a census */
  incr.done_objects = 0;
  incr.scan_units = 0;
  incr.scan_t0 = hl_now_ns();
  incr.phase = MARK;
}

/* What the increment under way has done (one pause). */
typedef struct step {
  hl_gc_info_t info;
  hl_gc_work_t work;
  uint64_t units;
  uint64_t found;   /* by the validations */
  bool forced;      /* hl_gc_step: a scan starts whether due or not */
  bool assist;      /* --gc=concurrent: the scan is late, the handshake helps its thread */
  bool idle;        /* no scan under way, none due */
  bool scan_done;
} step_t;

static int visit_chunk(hl_object_t *o, void *arg) {
  hl_gc_head_t *g = member_head(o);
  if (g && !(g->prev & REACHED)) {   /* a candidate not in the chunk yet */
    g->prev |= REACHED;
    hli_gc_list_move(g, arg);
  }
  return 0;
}

/* VALIDATE: candidates, whole closures of them, until `room` units are
 * spent, through the trial deletion. */
static void validate(step_t *s, uint64_t room) {
  hl_gc_head_t chunk;
  hli_gc_list_init(&chunk);
  uint64_t units = 0, n = 0;
  if (incr.tentative_count <= room) {
    /* all of them fit: no closure to compute (a count of candidates that
     * counts the dead too: never less than there are) */
    n = units = incr.tentative_count;
    hli_gc_list_merge(&incr.tentative, &chunk);
  }
  while (!hli_gc_list_empty(&incr.tentative) && units < room) {
    hl_gc_head_t *first = hli_gc_next(&incr.tentative);
    first->prev |= REACHED;
    hli_gc_list_move(first, &chunk);
    /* its closure over the candidates: the walk reaches what it appends */
    for (hl_gc_head_t *g = first; g != &chunk; g = hli_gc_next(g)) {
      hli_gc_traverse(HL_GC_OBJ(g), visit_chunk, &chunk);
      units++;
      n++;
    }
  }
  incr.tentative_count = incr.tentative_count > n ? incr.tentative_count - n : 0;
  hl_gc_stats_t *st = hli_gc_stats_mut();
  st->scan_candidates += n;
  s->units += units;
  /* the trial deletion overwrites the marks; survivors are old again */
  hl_gc_info_t info = {.generation = HL_GC_GENERATIONS - 1};
  hl_gc_head_t *old = &hli_gc.gen[HL_GC_GENERATIONS - 1].head;
  hli_gc_collect_list(&chunk, old, &info, true, &s->work);
  hli_gc_list_merge(&chunk, old);
  s->info.collected += info.collected;
  s->info.uncollectable += info.uncollectable;
  s->found += info.collected + info.uncollectable;
  incr.scan_freed += info.collected;
}

/* The scan is over: its figures, the next one's pace. */
static void scan_end(step_t *s) {
  if (incr.scan_objects)
    incr.units_per_object = (double)(incr.scan_units + s->units) / (double)incr.scan_objects;
  hli_gc_stats_mut()->scans++;
  /* the survivors, as stw's rule counts them: garbage in a scan must not
   * put the next one off */
  hli_gc.long_lived_total =
      incr.scan_objects > incr.scan_freed ? incr.scan_objects - incr.scan_freed : 0;
  /* promotions that joined this scan were examined by it: not pending */
  hli_gc.long_lived_pending = hli_gc.long_lived_pending > incr.pending_joined
                                  ? hli_gc.long_lived_pending - incr.pending_joined
                                  : 0;
  incr.fruitful = incr.scan_freed * 100 >= incr.scan_objects;
  if (incr.fruitful) {
    incr.fruitless = 0;
    incr.stretch = 1;
  } else if (++incr.fruitless >= 2 && incr.stretch < STRETCH_MAX) {
    incr.stretch *= 2;   /* two scans in a row found (almost) nothing */
    incr.fruitless = 0;
  }
  s->scan_done = true;
  incr.phase = IDLE;
}

/* Whether the increment must stop: its units spent, or (every CLOCK_EVERY
 * units) its deadline passed. The conversion of the budget to units is an
 * estimate: the clock has the last word (the tests give a budget in units,
 * no deadline). */
typedef struct budget { uint64_t limit, deadline, clock_at; } budget_t;
static inline bool spent(const step_t *s, budget_t *b) {
  if (s->units >= b->limit) return true;
  /* a concurrent chunk makes way for a mutator waiting for the lists'
   * lock, within WAITER_EVERY units (the mutators go first; a scan that
   * falls behind for it is helped by the handshakes) */
  if (HL_UNLIKELY(incr.in_chunk) && s->units && s->units % WAITER_EVERY == 0 &&
      hl_atomic_load_relaxed_u32(&hli_gc_lists_waiters))
    return true;
  if (b->deadline && s->units >= b->clock_at) {
    if (hl_now_ns() >= b->deadline) return true;
    b->clock_at = s->units + CLOCK_EVERY;
  }
  return false;
}

/* MARK: the old generation's objects get this scan's mark, in place. */
static void do_mark(step_t *s, budget_t *b) {
  hl_gc_head_t *g = cursor_take(&incr.tomark);
  for (; g != &incr.tomark && !spent(s, b); g = hli_gc_next(g)) {
    mark(g, incr.parity);
    s->units++;
    incr.scan_objects++;
  }
  if (g != &incr.tomark) {
    cursor_put(g);
    return;
  }
  hli_gc_list_merge(&incr.tomark, &incr.count);
  incr.phase = COUNT;
}

/* COUNT: each object traversed once; the members it references get a
 * referrer more. */
static void do_count(step_t *s, budget_t *b) {
  hl_gc_head_t *g = cursor_take(&incr.count);
  for (; g != &incr.count && !spent(s, b); g = hli_gc_next(g)) {
    scan_traverse(HL_GC_OBJ(g), visit_count, NULL);
    s->units++;
  }
  if (g != &incr.count) {
    cursor_put(g);
    return;
  }
  hli_gc_list_merge(&incr.count, &incr.counted);
  /* objects that joined meanwhile: marked, then counted, before ROOTS */
  incr.phase = hli_gc_list_empty(&incr.tomark) ? ROOTS : MARK;
}

/* ROOTS: one walk of the counted objects in their order, as collect.c's
 * move_unreachable walks a generation. An object already reached, or whose
 * reference count exceeds its referrers among the members (referenced from
 * outside the old generation: a stack, a global, a young object), is
 * traversed, and what it references is reached: marked, and, if the walk
 * had passed it, moved back to the end of the list, where the walk will
 * come to it. Any other object is tentatively unreachable: to the
 * candidates (its count set to REFS_MAX, which says "passed"). A traversed
 * object is marked for the next scan and stays where it is (the list
 * becomes the next scan's when this one ends); a tuple or dict that can
 * never be in a cycle is untracked instead, as a full collection would. In
 * a heap made parents first, few objects are passed before they are
 * reached: one pass, and about one list operation per candidate. */
static void do_roots(step_t *s, budget_t *b) {
  hl_gc_head_t *g = cursor_take(&incr.counted), *next;
  hl_gc_stats_t *st = hli_gc_stats_mut();
  for (; g != &incr.counted && !spent(s, b); g = next) {
    hl_object_t *o = HL_GC_OBJ(g);
    if (!(g->prev & REACHED)) {
      uintptr_t r = refs(g);
      if (r >= REFS_MAX) {
        st->saturated++;
      } else if (refcount(o) <= r) {
        next = hli_gc_next(g);
        g->prev |= REFS_MASK;
        hli_gc_list_move(g, &incr.tentative);
        incr.tentative_count++;
        s->units++;
        continue;
      }
    }
    bool whole = scan_traverse(o, visit_reach, NULL);
    s->units++;
    next = hli_gc_next(g);   /* after the traversal, which may have appended */
    /* in a chunk only a tuple (it never changes; a dict may be changing) */
    if (hli_gc.untrack && whole && hli_gc_untrackable(o, !incr.in_chunk)) {
      hli_gc_list_remove(g);   /* can never be in a cycle: out of every list */
      st->untracked++;
    } else {
      mark(g, incr.parity ^ PARITY);   /* for the next scan */
      incr.done_objects++;
    }
  }
  if (g != &incr.counted) {
    cursor_put(g);
    return;
  }
  hli_gc_list_merge(&incr.counted, &incr.done);
  incr.phase = VALIDATE;
  /* no traversal until the next scan: instance slots drop at once again */
  if (incr.concurrent) hli_gc_scanning_set(false);
}

/* Scan work until the budget is spent or the scan completes (one scan per
 * increment at most: an empty old generation costs nothing). */
static void scan_work(step_t *s, uint64_t limit, uint64_t deadline) {
  budget_t b = {limit, deadline, CLOCK_EVERY};
  uint64_t big = 0;
  while (!spent(s, &b)) {
    uint64_t before = s->units;
    /* --gc=concurrent: MARK, COUNT and ROOTS are the collector thread's
     * (hl_gc_step does them here, the world stopped, so that a test can
     * step a scan exactly) */
    if (incr.concurrent && !s->forced && !s->assist && thread_phase()) break;
    switch (incr.phase) {
    case IDLE:
      if (!s->forced && !scan_due()) {
        s->idle = true;
        break;
      }
      scan_start();
      break;
    case MARK: do_mark(s, &b); break;
    case COUNT: do_count(s, &b); break;
    case ROOTS: do_roots(s, &b); break;
    case VALIDATE:
      if (hli_gc_list_empty(&incr.tentative)) {
        scan_end(s);
        break;
      }
      /* the trial deletion costs about three passes more than the closure */
      validate(s, (b.limit - s->units) / 4 + 1);
      if (s->units - before > big) big = s->units - before;
      if (incr.phase != VALIDATE) goto out;   /* abandoned meanwhile (a finalizer) */
      break;
    }
    if (s->scan_done || s->idle) break;
  }
out:
  incr.scan_units += s->units;
  if (s->units > 2 * limit && big > BIG_PIECE) {
    hl_gc_stats_t *st = hli_gc_stats_mut();
    st->overrun_units++;
    if (big > st->overrun_units_max) st->overrun_units_max = big;
  }
}

/* ---- the row ------------------------------------------------------------------------ */
/* The young generations. Generation 0 is collected as under stw, its
 * survivors going to generation 1. Generation 1 is collected with it, as
 * under stw, every B young collections, but only when that collection is
 * predicted to fit the budget (its objects, at most the survivors put in
 * it since, times the measured nanoseconds per object of young
 * collections); otherwise it joins the old generation whole (a list
 * splice), where the scan will look at it. Under stw a collection of
 * generation 1 is a pause about ten young ones long: in a heap whose young
 * objects lie scattered in cold memory that is 2.9 ms at its median
 * (long-lived), which no budget of a millisecond holds, and CPython 3.14
 * dropped its middle generation for it; but where it fits (cycles: tens of
 * microseconds) it frees the cycles that die middle-aged before they reach
 * the old generation, which the scan would find only a scan later (twice
 * the memory in cycles without it). young_generation chooses, before the
 * callbacks; young_collect collects. */
static int young_generation(void) {
  bool due1 = hli_gc.gen[1].count + 1 > hli_gc_threshold(1);
  double predicted = (double)(incr.gen1_survivors + hli_gc.gen[0].count) * incr.ns_per_young;
  return due1 && predicted <= (double)hli_gc.budget_ns ? 1 : 0;
}

static int young_collect(int generation, hl_gc_info_t *info, hl_gc_work_t *work,
                         uint64_t *found) {
  uint64_t t0 = hl_now_ns();
  *found = hli_gc_generations_collect(generation, info, work);
  if (work->visited >= 64)
    incr.ns_per_young = 0.875 * incr.ns_per_young +
                        0.125 * (double)(hl_now_ns() - t0) / (double)work->visited;
  incr.young_since_start++;
  incr.young_found += *found;
  if (generation == 1) {
    incr.gen1_survivors = 0;   /* its survivors were promoted, pending counted them */
    return generation;
  }
  incr.gen1_survivors += work->survivors;
  if (hli_gc.gen[1].count > hli_gc_threshold(1)) {
    hli_gc_list_merge(&hli_gc.gen[1].head, &hli_gc.gen[HL_GC_GENERATIONS - 1].head);
    hli_gc.gen[1].count = 0;
    hli_gc.gen[2].count++;
    hli_gc.long_lived_pending += incr.gen1_survivors;   /* promoted: the scan's pace */
    incr.gen1_survivors = 0;
  }
  return 0;
}

/* Objects promoted while a scan is still marking or counting join it (its
 * later phases need every member counted before they start): they go to
 * MARK's list (a splice), and when COUNT reaches the end of its own with
 * objects waiting there, MARK runs again for them, then COUNT, all within
 * the budgets of the increments. A reference to a joined object from one
 * counted before it joined is not counted: it looks referenced from
 * outside, so it is kept, never freed wrongly, and garbage it belongs to
 * waits for the next scan, as it would have. What joins is found a scan
 * sooner: the backlog of garbage that dies just old is smaller (cyclotron).
 * The promotions (long_lived_pending's growth) join the scan's estimate,
 * so that its pace allows for them. */
static void scan_join(void) {
  hl_gc_head_t *old = &hli_gc.gen[HL_GC_GENERATIONS - 1].head;
  if ((incr.phase != MARK && incr.phase != COUNT) || hli_gc_list_empty(old)) return;
  hli_gc_list_merge(old, &incr.tomark);
  if (hli_gc.long_lived_pending > incr.pending_joined) {
    incr.scan_estimate += hli_gc.long_lived_pending - incr.pending_joined;
    incr.pending_joined = hli_gc.long_lived_pending;
  }
}

/* The budget in units: fixed by hl_gc_set_increment_units, or what is left
 * of --pause-budget-us after the young collection, at the measured
 * nanoseconds per unit (and a deadline, which the clock checks). */
static uint64_t budget_units(uint64_t t0, uint64_t budget_ns, uint64_t *deadline) {
  uint64_t fixed = hl_atomic_c11_load_relaxed_u64(&hli_gc.increment_units);
  *deadline = 0;
  if (fixed) return fixed;
  /* a little short of the budget: the clock is read every CLOCK_EVERY
   * units, and the pause's bookkeeping follows the scan's work */
  *deadline = t0 + budget_ns - budget_ns / 16;
  uint64_t spent = hl_now_ns() - t0;
  if (spent >= budget_ns) return 0;
  return (uint64_t)((double)(budget_ns - spent) / incr.unit.ns_per_unit);
}

/* The scan work this increment may do besides the budget: what is left
 * of the scan under way spread evenly over the young collections left
 * before the next one is due, so that the mutator sees the same small
 * share of every window (its MMU) and the scan still ends in time; a scan
 * is started when due. */
static uint64_t allowance(void) {
  if (incr.phase == IDLE) return scan_due() ? MIN_STEP : 0;
  uint64_t every = scan_interval();
  if (incr.young_since_start >= every) return UINT64_MAX;   /* late: the budget decides */
  double estimate = (double)incr.scan_estimate * incr.units_per_object;
  double left = estimate - (double)incr.scan_units;
  if (left < estimate / 16) left = estimate / 16;   /* the estimate was short: keep going */
  return (uint64_t)(left / (double)(every - incr.young_since_start)) + MIN_STEP;
}

/* Whether --mmu-target gives way to the budget alone. When the scan needs
 * more than the share, a rule held fast lets old garbage grow without
 * bound (cyclotron 10 beside a live heap: no scan ended in 0.9 s, 540 MiB
 * against 114); memory wins, and the pauses are as without the rule:
 *   - the scan under way is late (the objects promoted since it began
 *     would make the next one due under stw's rule) while garbage is being
 *     made (the young collections have found cycles since it began, or the
 *     last scan freed 1% or more);
 *   - or the objects promoted since it began are four times the old
 *     generation's survivors, whatever the evidence: rings of 1000 die old,
 *     where no young collection sees them, and a scan of a growing heap
 *     that the rule starves never ends to say it was fruitful (cyclotron
 *     1000 beside a live heap kept every one of its 4 M dead nodes without
 *     this bound). A doubling instead kept the backlog smaller (694,000
 *     against 2,264,000 dead nodes, one run each) but gave the rule up in
 *     long-lived's build too (MMU at 10 ms in CPU time 0.12 against 0.38).
 * Without garbage being made and without such growth (long-lived's churn)
 * a scan a little late costs nothing but time: the MMU wins. */
static bool mmu_yields(void) {
  if (incr.phase == IDLE) return false;
  uint64_t promoted = hli_gc.long_lived_pending, old = hli_gc.long_lived_total;
  return promoted > 4 * old || (promoted > old / 4 && (incr.young_found || incr.fruitful));
}

/* One pause: a young collection (generation 0), then scan
 * work within the budget. forced: hl_gc_step (a scan starts whether due or
 * not, and the increment spends its whole budget). */
static int64_t increment(uint64_t stopped_at, bool forced) {
  hli_gc_store_bool(&hli_gc.collecting, true);
  int generation = young_generation();
  step_t s = {.info = {.generation = generation}, .forced = forced};
  hli_gc_callbacks_run(true, &s.info);
  uint64_t t0 = stopped_at ? stopped_at : hl_now_ns();
  /* the pause this increment may take: the budget, or less where the last
   * window's pauses leave less of --mmu-target's share */
  uint64_t budget_ns = hli_gc.budget_ns, room = hli_mmu_pacer_room(&incr.pacer, t0);
  if (room < budget_ns && !forced && !mmu_yields()) budget_ns = room;
  hli_gc_stopped_prepare();
  uint64_t found;
  young_collect(generation, &s.info, &s.work, &found);
  uint64_t young_ns = hl_now_ns() - t0;   /* with the time to stop the world */
  scan_join();
  /* promotions earn the scan its pace (gen_stw.c's full-collection rate) */
  uint64_t deadline;
  uint64_t limit = budget_units(t0, budget_ns, &deadline);
  if (forced && !limit) limit = 1;
  /* --gc=concurrent: an increment only starts a scan that is due and
   * validates one that its thread has finished, as fast as the budget
   * allows (the backlog waits on it), and at least MIN_STEP units */
  if (!forced && incr.concurrent) {
    /* A scan its thread has not finished by the time the next one would be
     * due is helped by the handshakes, within their budget (Go's mutator
     * assists, with the world stopped): the thread competes for the cores
     * with the mutators, and garbage must not pile up behind it. */
    s.assist = thread_phase() && hli_scan_late();
    bool work = s.assist || incr.phase == VALIDATE || (incr.phase == IDLE && scan_due());
    limit = !work ? 0 : limit < MIN_STEP ? MIN_STEP : limit;
  } else if (!forced) {
    uint64_t pace = allowance();
    if (pace < limit) limit = pace;
    /* A young collection (or, without a GIL, the time to stop the world)
     * that used the whole budget still leaves the scan MIN_STEP units:
     * otherwise a program whose every pause starts late would never
     * finish a scan, and its old garbage would never be found. */
    if (limit < MIN_STEP && pace) limit = MIN_STEP;
  }
  hli_gc_stats_mut()->budget_units = limit;
  if (limit) {
    uint64_t t1 = hl_now_ns();
    scan_work(&s, limit, deadline);
    uint64_t t2 = hl_now_ns();
    /* the conversion from the budget's time to units (collector.h: without
     * samples gathered over increments, one slow increment once locked the
     * estimate at 4,399 ns a unit against a real 60-220, and cycles under
     * gil grew from 6 to 127 MiB in 14 s while the scan crawled) */
    hli_unit_clock_add(&incr.unit, t2 - t1, s.units);
    if (s.assist && s.units) hli_gc_stats_mut()->conc_assists++;
    hli_gc_increment_record(s.units);
    HL_PROBE(gc_increment, s.units, limit, (int)s.scan_done);
  }
  /* --gc=concurrent: a scan marking, counting or finding roots is its
   * thread's; the barrier goes up here, with the world stopped (no slot
   * write is under way, and every one from now on sees it), before the
   * thread may look. A scan hl_gc_step started and steps needs neither. */
  if (incr.concurrent && !forced && thread_phase()) {
    if (!hli_gc_scanning()) hli_gc_scanning_set(true);
    hli_conc_wake();
  }
  /* After a scan, as after stw's full collection, the free lists and the
   * allocator's cached memory go back; the hand-back (munmap) takes as long
   * as the memory it returns, so it waits for an increment with half its
   * budget left. */
  if (s.scan_done) incr.hand_back = true;
  if (incr.hand_back && (forced || hl_now_ns() - t0 < budget_ns / 2)) {
    hl_freelists_clear();
    hl_alloc_collect();
    incr.hand_back = false;
  }
  s.info.full = s.scan_done;
  int recorded = s.units ? HL_GC_GENERATIONS - 1 : generation;
  s.info.generation = recorded;
  uint64_t t3 = hl_now_ns();
  if (!forced) hli_mmu_pacer_add(&incr.pacer, t0, t3, young_ns);
  hli_gc_pause_record(recorded, &s.info, &s.work, t0, t3);
  hli_gc_store_bool(&hli_gc.collecting, false);
  hli_gc_callbacks_run(false, &s.info);
  return (int64_t)(found + s.found);
}

static void trigger(void) {
  uint64_t stopped_at = hli_gc_world_stop();
  if (!hli_nogil() ||
      (hli_gc_load_bool(&hli_gc.enabled) && !hli_gc_load_bool(&hli_gc.collecting)))
    increment(stopped_at, false);
  hli_gc_world_resume(stopped_at);
}

static int64_t step(uint64_t stopped_at) { return increment(stopped_at, true); }

/* gc.collect(generation): as under stw (no scan work); 2 collects
 * everything at once, and the scan starts again (its marks are
 * overwritten by the collection). */
static int64_t collect(int generation, uint64_t stopped_at) {
  if (generation == HL_GC_GENERATIONS - 1)
    scan_abandon(&hli_gc.gen[HL_GC_GENERATIONS - 1].head, false);
  if (generation >= 1) incr.gen1_survivors = 0;   /* generation 1 is collected */
  return hli_gc_stw_collect(generation, stopped_at);
}

/* Before the gc module walks or moves the lists (freeze, get_objects,
 * get_referrers, shut-down): the scan is given up, its marks cleared, its
 * objects old again; the next increment starts a new scan. */
static void gather(void) {
  hli_gc_gather_stripes(false);
  scan_abandon(&hli_gc.gen[HL_GC_GENERATIONS - 1].head, true);
}

static int init_(const hl_config_t *c, bool concurrent) {
  /* the scan's marks take prev's top 16 bits: pointers must fit below */
  void *probe = hl_alloc_malloc(64);
  uintptr_t high = (uintptr_t)probe | (uintptr_t)&incr;
  hl_alloc_free(probe);
  if (high & HL_GC_PREV_SCAN_MASK) {
    hl_err_set(HL_ERR_VALUE, "addresses above 2^48 (%p): the scan's marks need the top 16 "
               "bits of a pointer", (void *)high);
    return -1;
  }
  incr = (incr_state_t){0};
  scan_lists_init();
  incr.phase = IDLE;
  incr.units_per_object = 6.0;   /* until a scan has measured it */
  incr.stretch = 1;
  incr.ns_per_young = 100.0;     /* until young collections have measured it */
  incr.unit.ns_per_unit = 10.0;       /* likewise, until increments have */
  hli_gc.budget_ns = c->pause_budget_us * 1000;
  hli_mmu_pacer_init(&incr.pacer, HLI_MMU_WINDOW_NS, (unsigned)c->mmu_target);
  incr.concurrent = concurrent;
  return 0;
}
static int init(const hl_config_t *c) { return init_(c, false); }

static void fini(void) { gather(); }

/* ---- the engine, for --gc=concurrent (gen_conc.c; collector.h) -------------------- */
int hli_scan_init(const hl_config_t *c) { return init_(c, true); }
int64_t hli_scan_increment(uint64_t stopped_at, bool forced) {
  return increment(stopped_at, forced);
}
int64_t hli_scan_collect(int generation, uint64_t stopped_at) {
  return collect(generation, stopped_at);
}
void hli_scan_gather(void) { gather(); }

bool hli_scan_concurrent_work(void) { return thread_phase(); }

/* The scan under way is late: the next one would be due already. */
bool hli_scan_late(void) { return incr.young_since_start >= scan_interval(); }

uint64_t hli_scan_chunk(uint64_t limit, uint64_t deadline, uint64_t *skipped) {
  step_t s = {0};
  budget_t b = {limit, deadline, CLOCK_EVERY};
  hl_gc_stats_t *st = hli_gc_stats_mut();
  incr.in_chunk = true;
  incr.chunk_skipped = 0;
  uint64_t t = hl_now_ns();
  while (!spent(&s, &b) && thread_phase()) {
    enum phase p = incr.phase;
    switch (p) {
    case MARK: do_mark(&s, &b); break;
    case COUNT: do_count(&s, &b); break;
    default: do_roots(&s, &b); break;
    }
    uint64_t now = hl_now_ns();
    st->conc_phase_ns[p - MARK] += now - t;
    t = now;
    if (p == ROOTS && incr.phase == VALIDATE && now - incr.scan_t0 > st->conc_scan_wall_max_ns)
      st->conc_scan_wall_max_ns = now - incr.scan_t0;
  }
  incr.in_chunk = false;
  incr.scan_units += s.units;
  *skipped = incr.chunk_skipped;
  return s.units;
}

const hli_collector_t hli_collector_incremental = {
  .name = "incremental",
  .tracks = true,
  .init = init,
  .fini = fini,
  .trigger = trigger,
  .step = step,
  .collect = collect,
  .gather = gather,
};
