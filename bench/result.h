/* Results as JSON (json-c), shared by the driver and heaplab-micro. */
#ifndef HL_RESULT_H
#define HL_RESULT_H

#include <json-c/json.h>

#include "hl_config.h"
#include "hl_measure.h"
#include "hl_sync.h"
#include "workload.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Generated at build time (cmake/build_info.cmake). */
extern const char hl_build_commit[];
extern const int hl_build_dirty;
extern const char hl_build_type[];
extern const char hl_build_sanitize[];
extern const char hl_build_compiler[];

json_object *hl_json_hist(const hl_hist_t *h);
/* Adds the pool allocator's statistics (HL_ALLOC_STAT_FIELDS) to a. */
void hl_json_pool_stats(json_object *a, const hl_alloc_stats_t *s, const hl_alloc_stats_t *after);
json_object *hl_json_machine(const hl_machine_t *m);
/* Every effective option: integers and numbers as JSON numbers, the rest as
 * the text the flag accepts. */
json_object *hl_json_config(const hl_config_t *c);
/* Where each option that is not at its default came from. */
json_object *hl_json_config_origin(const hl_config_t *c);
json_object *hl_json_build(void);
/* The cycle collector over a run (the "gc" object). */
json_object *hl_json_gc(const hl_run_gc_t *g);
/* The whole result of one run (the contract: docs/results.md). */
json_object *hl_json_result(const hl_workload_t *wl, const hl_config_t *c,
                            const hl_machine_t *m, const hl_run_result_t *r);

#ifdef __cplusplus
}
#endif
#endif /* HL_RESULT_H */
