/* The driver's commands beyond list and run (bench/main.c dispatches). */
#ifndef HL_COMMANDS_H
#define HL_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* argv: what follows the command name. Exit status: 0, 1 (a run failed),
 * 2 (bad input). */
int hl_cmd_sweep(int argc, char **argv);
int hl_cmd_compare(int argc, char **argv);
int hl_cmd_record(int argc, char **argv);   /* record.c: a program's allocations into a trace */
/* Their --help texts (also printed into docs/cli.md by 'heaplab list --markdown'). */
void hl_sweep_usage(FILE *f);
void hl_compare_usage(FILE *f);
void hl_record_usage(FILE *f);

/* For the fuzzers (tests/fuzz/): the parsers of `sweep` and `compare` on
 * streams. hl_sweep_check_stream parses a sweep file from f (path names it
 * in messages) as `heaplab sweep FILE` does, checks the parsed grid's
 * invariants and each point's `heaplab run` argv (hl_die when one fails:
 * a bug), and validates the first `validate` points as `heaplab run` would:
 * 0 with *points set, or -1 with the message in err. hl_compare_streams is
 * `heaplab compare` on two open streams (a and b name them), its report
 * written to out: 0, or 2 with the message in err. Neither closes a stream. */
int hl_sweep_check_stream(FILE *f, const char *path, size_t validate, size_t *points, char *err,
                          size_t errlen);
int hl_compare_streams(FILE *a, const char *name_a, FILE *b, const char *name_b, FILE *out,
                       char *err, size_t errlen);

/* Statistics compare.c uses, exposed for tests: the median (sorts v), and
 * the Mann-Whitney U test of x against y. */
double hl_median(double *v, size_t n);

typedef struct hl_mwu {
  double u;       /* U of x: the pairs (x_i, y_j) with x_i > y_j, a tie counting 1/2 */
  double p;       /* two-sided p-value; NAN when a sample is empty */
  bool exact;     /* p from U's exact distribution (no ties and n1 * n2 <= 2500), else
                     from the normal approximation with tie and continuity corrections */
} hl_mwu_t;
hl_mwu_t hl_mann_whitney(const double *x, size_t n1, const double *y, size_t n2);
double hl_mann_whitney_p(const double *x, size_t n1, const double *y, size_t n2);

#endif /* HL_COMMANDS_H */
