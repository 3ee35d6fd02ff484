/* bench/trace.c: --trace=FILE, in --trace-format=json (JSON lines) or chrome
 * (the Trace Event format). One run per process, so one trace: the calls
 * take no handle. The runner's main thread opens, begins, samples, ends and
 * closes it; every worker names its own track (hl_trace_thread). */
#ifndef HL_TRACE_H
#define HL_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "hl_config.h"

/* Opens c->trace (nothing when it is empty). 0, or -1 with a message. */
int hl_trace_open(const hl_config_t *c, const char *workload, char *err, size_t errlen);
bool hl_trace_on(void);
/* The run starts at t0: the "start" event, and the hooks (gc callbacks when
 * a collector runs; with gil, the GIL's switches; chrome: sync's observer). */
void hl_trace_begin(uint64_t t0, bool gc, bool gil);
/* The calling thread's track is worker `index` (chrome; json: nothing). */
void hl_trace_thread(unsigned index);
/* The monitor's sample: ops done, progress 0..1, RSS. */
void hl_trace_sample(uint64_t ops, double frac);
/* The workers are gone: no hook runs from here. */
void hl_trace_unhook(void);
/* The "end" event; t_begin..t_end is the timed part (chrome: a slice). */
void hl_trace_end(uint64_t ops, uint64_t t_begin, uint64_t t_end);
/* Writes what is left and closes the file. -1 with a message when the
 * trace could not be written in full (report it only when ok: a run that
 * failed already says why). */
int hl_trace_close(bool ok, char *err, size_t errlen);

#endif /* HL_TRACE_H */
