/* --gil=handoff: a thread back from blocking gets the GIL at the holder's
 * next checkpoint.
 *
 * In the spirit of the priority requests proposed on bpo-7946 ("Convoy
 * effect with I/O bound threads and New GIL": Beazley's report, and the
 * patches there that let a thread coming back from I/O ask for the GIL
 * with priority instead of waiting out the switch interval). A thread that
 * takes the GIL in hl_thread_block_end asks the holder to drop it at once
 * and has it reserved (sync/gil.c: `handoff_to`): the holder drops it at
 * its next checkpoint, forced switching keeps the holder from taking it
 * straight back, and no other waiter may take it first. Attaching and the
 * holder's own retake after a yield keep CPython's rule (an interval
 * without a switch), so two CPU-bound threads still share the GIL by
 * intervals, and the thread just handed the GIL may itself be asked to
 * drop it after one interval if it keeps it.
 *
 * What it costs: one switch, and the CPU-bound holder's wait until it gets
 * the GIL back, per wake-up of a blocking thread, instead of one per
 * interval. */
#include "sync_internal.h"

static bool on_wake(hli_take_reason_t why) { return why == HLI_TAKE_WAKE; }

const hli_gil_policy_t hli_gil_policy_handoff = {
  .name = "handoff",
  .priority = on_wake,
};
