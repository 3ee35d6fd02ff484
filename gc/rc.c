/* Reference-count modes: the table, and what every mode shares.
 *
 * hl_incref and hl_decref are inline in hl_gc.h; what they do in each mode
 * is described there. Here: the table of rows (one per --rc value, each in
 * its own file: rc_gil.c, rc_atomic.c, rc_biased.c), choosing the row at
 * start-up, the thread tags the inline paths compare with, and the thread
 * hooks, which set those tags and call the row's own.
 *
 * The thread tags (hl_gc.h explains the compare):
 *   hli_rc_owner_x    what a new object's owner field gets, XOR
 *                     HL_OWNER_NONE: the thread's index in a mode without a
 *                     GIL (0, hence NONE, when the thread is not attached),
 *                     0 under the GIL (hli_rc_owner_tag() gives the index);
 *   hl_rc_self       what the thread counts plainly: HL_OWNER_PLAIN (0)
 *                     under the GIL or when not attached; its index in a
 *                     mode whose objects have owners (biased); otherwise
 *                     HL_RC_NOBODY (atomic, or a thread with no index).
 * A thread that owns nothing although it has an index (rc=biased found no
 * memory for its queue at attach) gets the tags of a thread with no index:
 * owner tag 0 (its objects belong to nobody, and it reads shared containers
 * under their locks, as it is not counted a QSBR reader) and HL_RC_NOBODY.
 */
#include <pthread.h>
#include <stdio.h>

#include "gc_internal.h"
#include "hl_sync.h"

struct hl_rc_config hl_rc_config = {HL_RC_GIL, false};
__thread uint16_t hl_rc_self __attribute__((tls_model(HL_TLS_MODEL)));
#if HL_RC_STATS
__thread uint64_t hl_rc_stat_ops[3] __attribute__((tls_model(HL_TLS_MODEL)));
#endif
__thread uint16_t hli_rc_owner_x;
size_t hli_rc_prefix;
bool hli_runtime_nogil;

#define RC_ROW_(ID, name, built, help, why_not) [HL_RC_##ID] = &hli_rc_##name,
static const hli_rc_row_t *const rows[HL_RC_COUNT] = {HL_RC_MODES(RC_ROW_)};
const hli_rc_row_t *hli_rc_row = &hli_rc_gil;

void hli_rc_set_thread_tags(const hl_thread_t *t) {
  const hli_rc_row_t *row = hli_rc_row;
  uint16_t tag = t && !row->gil ? (uint16_t)t->index : 0;
  hli_rc_owner_x = tag ? (uint16_t)(tag ^ HL_OWNER_NONE) : 0;
  if (!t || row->gil) hl_rc_self = HL_OWNER_PLAIN;   /* under the GIL: everything */
  else if (row->owners && t->index) hl_rc_self = (uint16_t)t->index;
  else hl_rc_self = HL_RC_NOBODY;   /* no owners, or no index left: nothing */
  hli_gc_thread_tags();
}

void hli_rc_set_thread_nobody(void) {
  hli_rc_owner_x = 0;
  hl_rc_self = HL_RC_NOBODY;
  hli_gc_thread_tags();
}

/* attach hook: every mode sets the thread's tags, then the row acts. */
static void on_attach(hl_thread_t *t, void *arg) {
  (void)arg;
  /* the thread's free lists and counters go back when it exits */
  if (!hli_tstate.registered) hli_tstate_arm();
  hli_rc_set_thread_tags(t);
  if (hli_rc_row->thread_attach) hli_rc_row->thread_attach(t);
}

/* detach hook: what the thread deferred for a grace period (shared.c) goes
 * first, while it still owns its objects; then the row, which clears the
 * tags. */
static void on_detach(hl_thread_t *t, void *arg) {
  (void)arg;
  if (hli_nogil()) hli_defer_thread_exit();
  if (hli_rc_row->thread_detach) hli_rc_row->thread_detach(t);
  else hli_rc_set_thread_tags(NULL);
}

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static void hooks_register(void) {
  hli_shared_init();
  for (int m = 0; m < HL_RC_COUNT; m++)
    if (rows[m]->process_init) rows[m]->process_init();
  if (hl_thread_hooks_register(on_attach, on_detach, NULL) != 0)
    hl_die("no thread hook left for reference counting");
}

void hli_rc_init(const hl_config_t *c) {
  pthread_once(&hooks_once, hooks_register);
  hli_rc_row = rows[c->rc];
  hl_rc_config.mode = c->rc;
  hl_rc_config.immortal = c->immortal;
  hli_rc_prefix = hli_rc_row->prefix;
  hli_runtime_nogil = !hli_rc_row->gil;
  /* The calling thread's tags, as at attach: it may be attached already (a
   * micro-benchmark restarting the runtime). */
  hli_rc_set_thread_tags(hl_thread_self());
}

void hli_rc_resurrect(hl_object_t *o) { hli_rc_row->resurrect(o); }
bool hli_rc_drop_resurrected(hl_object_t *o) { return hli_rc_row->drop_resurrected(o); }
bool hli_rc_try_incref_other(hl_object_t *o) { return hli_rc_row->try_incref_other(o); }

void hli_rc_set_maybe_weakref(hl_object_t *o) {
  if (hli_rc_row->set_maybe_weakref) hli_rc_row->set_maybe_weakref(o);
}
void hli_rc_disown_stopped(hl_object_t *o) {
  if (hli_rc_row->disown_stopped) hli_rc_row->disown_stopped(o);
}

void hl_rc_merge_queued(void) {
  hl_thread_t *t = hl_thread_self();
  if (hli_rc_row->merge_queued && t) hli_rc_row->merge_queued(t);
}

uint64_t hl_rc_merge_all_stopped(void) {
  return hli_rc_row->merge_all_stopped ? hli_rc_row->merge_all_stopped() : 0;
}
