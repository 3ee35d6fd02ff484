/* prodcons: producer threads make objects, consumer threads drop them
 * (cross-thread frees and biased merges).
 *
 * Worker i is a producer when i is even and a consumer when i is odd; each
 * producer feeds one channel, a list, which the consumer after it drains
 * (with an odd thread count the last producer drains its own channel: one
 * thread alone does both, alternately). A producer makes a pair (a tuple of a float and an
 * int outside the small-int cache), appends it and drops its own
 * reference; a consumer pops it and drops it, the last reference. A channel
 * holds at most 4,096 items: a producer that finds it full, or a consumer
 * that finds its channels empty, passes a checkpoint and yields.
 *
 *   rc=gil      producers and consumers take turns under the GIL;
 *   rc=atomic   the consumer's decrement frees the pair in the consumer's
 *               thread: memory made in one thread, freed in another;
 *   rc=biased   the pair's count is the producer's local count, so the
 *               consumer's decrement takes the shared count below zero:
 *               every pair is queued to its producer, which merges and frees
 *               it at its next checkpoint (JSON "rc": merges_queued and
 *               merges_done are about one per pair).
 *
 * --pass-cycles=on: each pair rides in a ring of --cycle-size lists
 * (ring.h), and the consumer's drop leaves the ring, made by the producer,
 * in cyclic garbage: the collector, not the count, frees what crosses
 * threads (noted with hl_gc_note_garbage: the JSON's gc.backlog).
 *
 * A channel is a shared list, so a popped item's reference from the list is
 * dropped after a QSBR grace period (gc/shared.c); the consumer gets its
 * own. One operation is one pair consumed. The checksum sums the values
 * consumed: with a fixed amount of work it depends on the seed and the
 * thread count only.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "ring.h"
#include "workload.h"

#define CHANNEL_MAX 4096u
#define BATCH 64u

typedef struct prodcons {
  uint64_t ring;                  /* lists per ring with --pass-cycles, else 0 */
  unsigned nchan;                 /* one per producer */
  hl_object_t **chan;             /* lists */
  uint32_t producers_left;        /* producers still producing */
} prodcons_t;

static unsigned producers(unsigned threads) { return (threads + 1) / 2; }

static void pc_teardown(void *p, hl_result_alloc_t *alloc) {
  (void)alloc;
  prodcons_t *s = p;
  if (!s) return;
  for (unsigned i = 0; s->chan && i < s->nchan; i++) hl_xdecref(s->chan[i]);
  free(s->chan);
  free(s);
}

static int pc_setup(const hl_config_t *c, void **out, char *err, size_t errlen) {
  prodcons_t *s = calloc(1, sizeof *s);
  if (!s) goto nomem;
  s->ring = c->pass_cycles ? c->cycle_size : 0;
  s->nchan = producers(c->threads);
  s->producers_left = s->nchan;
  if (!(s->chan = calloc(s->nchan, sizeof *s->chan))) goto nomem;
  for (unsigned i = 0; i < s->nchan; i++)
    if (!(s->chan[i] = hl_list_new(0))) goto nomem;
  *out = s;
  return 0;
nomem:
  snprintf(err, errlen, "out of memory");
  pc_teardown(s, NULL);
  return -ENOMEM;
}

/* Nothing to do: let the others run (under the GIL, without it). */
static void idle(void) {
  HL_WORKLOAD_CHECKPOINT();
  hl_thread_block_begin();
  sched_yield();
  hl_thread_block_end();
}

/* Objects a dropped ring leaves in cyclic garbage: its lists and the pair
 * (a tuple, a float, an int above the small-int cache). */
#define PAIR_OBJECTS 3u

/* Pops up to BATCH items from channel ch; returns how many. */
static uint64_t consume(hl_worker_t *w, const prodcons_t *s, hl_object_t *ch, uint64_t *sum) {
  uint64_t n = 0;
  for (; n < BATCH; n++) {
    hl_object_t *o = hl_list_pop(ch);
    if (!o) {
      hl_err_clear();   /* empty */
      break;
    }
    hl_object_t *pair = s->ring ? hl_ring_value(o) : o;
    if (!pair) {
      hl_decref(o);
      hl_worker_fail(w, "reading a ring: %s", hl_err_message());
      break;
    }
    *sum += (uint64_t)hl_int_value(hl_tuple_get(pair, 1));
    if (s->ring) {
      hl_decref(pair);
      w->cyclic_garbage += s->ring + PAIR_OBJECTS;
      hl_gc_note_garbage(s->ring);
    }
    hl_decref(o);
  }
  return n;
}

/* Appends up to n pairs to channel ch (fewer when it is full). */
static uint64_t produce(hl_worker_t *w, const prodcons_t *s, hl_object_t *ch, uint64_t n,
                        uint64_t *made) {
  uint64_t k = 0;
  for (; k < n && hl_list_size(ch) < CHANNEL_MAX; k++) {
    uint64_t r = hl_rand_next(&w->rng);
    hl_object_t *t = hl_tuple_new(2);
    hl_object_t *f = t ? hl_float_new((double)(r >> 11)) : NULL;
    hl_object_t *i = f ? hl_int_new(1000 + (int64_t)(r % 1000000)) : NULL;
    if (!i) {
      hl_xdecref(f);
      hl_xdecref(t);
      hl_worker_fail(w, "out of memory making a pair");
      break;
    }
    hl_tuple_set(t, 0, f);
    hl_tuple_set(t, 1, i);
    if (s->ring) {   /* the pair rides in a ring */
      hl_object_t *r = hl_ring_wrap(t, s->ring);
      hl_decref(t);
      if (!(t = r)) {
        hl_worker_fail(w, "out of memory making a ring");
        break;
      }
    }
    if (hl_list_append(ch, t) != 0) {
      hl_decref(t);
      hl_worker_fail(w, "out of memory appending to a channel");
      break;
    }
    hl_decref(t);
    (*made)++;
  }
  return k;
}

static void pc_work(hl_worker_t *w) {
  prodcons_t *s = w->shared;
  unsigned threads = w->cfg->threads, id = w->index;
  /* producers: even indexes, channel id / 2; consumers: odd indexes, the
   * channel of the producer before them; an odd thread out (the last, or a
   * lone thread) consumes its own channel */
  bool is_producer = id % 2 == 0;
  bool is_consumer = id % 2 == 1 || id == threads - 1;
  hl_object_t *out = is_producer ? s->chan[id / 2] : NULL;
  hl_object_t *in = is_consumer ? s->chan[id / 2] : NULL;
  uint64_t made = 0, ops = 0, sum = 0;
  bool producing = is_producer;
  hl_worker_begin(w);
  /* a fixed run: each producer makes target_ops pairs; with a deadline (set
   * by hl_worker_begin), producers make pairs until it passes */
  uint64_t to_make = w->deadline_ns ? UINT64_MAX : w->target_ops;
  for (;;) {
    bool progress = false;
    if (producing) {
      uint64_t want = to_make - made < BATCH ? to_make - made : BATCH;
      if (produce(w, s, out, want, &made) > 0) progress = true;
      if (w->error || made >= to_make || (w->deadline_ns && hl_now_ns() >= w->deadline_ns)) {
        producing = false;
        hl_atomic_faa_u32(&s->producers_left, (uint32_t)-1);
      }
    }
    if (in) {
      uint64_t n = consume(w, s, in, &sum);
      ops += n;
      if (n) progress = true;
    }
    hl_atomic_store_relaxed_u64(&w->progress, made + ops);
    if (w->error) break;
    /* done: nothing left to make, and (a consumer) every producer done and
     * the channel drained */
    if (!producing && (!in || (hl_atomic_load_acquire_u32(&s->producers_left) == 0 &&
                                hl_list_size(in) == 0)))
      break;
    if (!progress) idle();
    HL_WORKLOAD_CHECKPOINT();
  }
  w->ops = ops;
  w->checksum = sum;
  hl_worker_end(w);
}

const hl_workload_t hl_workload_prodcons = {
  .name = "prodcons",
  .summary = "producer threads (even) make pairs (float, int) into channel lists, consumer "
             "threads (odd) pop and drop them: cross-thread frees, biased merges; "
             "--pass-cycles: each pair in a ring of --cycle-size lists (cross-thread cyclic "
             "garbage)",
  .unit = "1,000,000 pairs per producer",
  .uses = HL_RUNNER_USES | HL_OBJ_USES | HL_OPT_BIT(HL_OPT_PASS_CYCLES) |
          HL_OPT_BIT(HL_OPT_CYCLE_SIZE),
  .ops_per_scale = 1000000,
  .setup = pc_setup,
  .work = pc_work,
  .teardown = pc_teardown,
};
