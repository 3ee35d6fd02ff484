/* heaplab sweep FILE: a grid of runs, each in its own process.
 *
 * The file declares axes, one per line:
 *     # binary trees in two refcount modes
 *     workload = binary-trees, churn
 *     rc = gil, biased
 *     threads = 1, 2
 *     repeat = 5
 *     timeout-s = 300
 * `workload` and every option name of `heaplab list` take a list of values,
 * separated by commas, or by semicolons where a value has commas in it
 * (`threshold = 700,10,10; 10000,10,10`);
 * `repeat` (default 3) and `timeout-s` (per run, default 600) one number.
 * A line holds at most MAX_LINE - 2 bytes and a value MAX_VALUE: longer is
 * an error, never a line split in two or an argument cut short.
 * The grid is the product of the axes, the last one varying fastest.
 *
 * A set of configurations that is no product (the pool with three thread
 * caches, beside mimalloc and glibc without any) is a union of grids: each
 * `[grid]` line opens one, and the file runs the points of every grid, in
 * the file's order. The lines before the first `[grid]` are common to all
 * of them (`repeat` and `timeout-s` may only be given there); a grid's own
 * line replaces the common line of the same name within that grid:
 *     workload = alloc-random
 *     [grid]
 *     alloc = pool
 *     tcache = none, magazine, heap
 *     [grid]
 *     alloc = mimalloc, system
 * `--set NAME=VALUES` on the command line acts as that line given to every
 * grid (`--set repeat=1 --set duration-s=0.05` shrinks a file to a smoke
 * run). Every point is validated as `heaplab run` would (option, value,
 * combination, availability) before anything runs: bad input exits 2
 * naming the line.
 *
 * Order: repeat 1 of every point, then repeat 2 of every point, ... (A B A B,
 * not A A B B), so that drift of the machine (heat, a neighbour's job)
 * spreads over all configurations instead of biasing one. Unless the grid
 * sets seed, a run's seed is its repeat number.
 *
 * Each run is `heaplab run ...` in a child process (its own process group,
 * killed at the time limit), so that one run's heap, threads or crash cannot
 * disturb the next. The child's JSON line, with a "sweep" object added
 * (file, point, repeat, status ok|failed|crashed|timeout, exit or signal,
 * attempt when a retry), is appended to OUT/runs.jsonl; a run that produced
 * none is recorded by the "sweep" object alone, and the sweep goes on.
 * OUT/runs.csv gets a row per run as it goes, and is rewritten from
 * runs.jsonl at the end; OUT/logs/ holds the stderr of each. OUT defaults
 * to results/sweep-NAME (NAME: the file's base name), so running the same
 * file again resumes: a run is done once a line of runs.jsonl records it
 * ok; one recorded failed, crashed or timed out runs again, its new line
 * superseding the old (which stays). OUT/grid holds the grid's canonical
 * text and OUT/env the HEAPLAB_* variables: a different grid or
 * environment in the same OUT is an error rather than a silent mix.
 *
 * No run outlives the sweep or runs twice at once: the sweep holds
 * flock(OUT/.lock) for its life (a second sweep on OUT exits 2); SIGINT and
 * SIGTERM are forwarded to the running child's group and waited for, the
 * interrupted run left unrecorded; a child dies with the sweep, even by
 * SIGKILL (PR_SET_PDEATHSIG).
 *
 * --list prints one self-contained shell command per run instead of running
 * anything, for GNU parallel or a Slurm array; their outputs concatenate into
 * one JSON-lines file (each line names its machine: machine.hostname).
 *
 * Tests and crash injection: HEAPLAB_SWEEP_BINARY replaces the heaplab that
 * runs each point (default: this executable).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "result.h"

extern char **environ;

#define MAX_AXES 32
#define MAX_VALUES 64
#define MAX_GRIDS 64
#define MAX_SETS 32
#define MAX_LINE 4096
/* The longest value: every option's accepted values are far shorter (the
 * path options cannot be swept), and it bounds run_argv_t's buffer. */
#define MAX_VALUE 256

typedef struct axis {
  char name[64];              /* "workload" or an option name */
  int nvalues;
  char *values[MAX_VALUES];
  int line;                   /* in the file; 0 for --set */
  bool comma_split;           /* its values were separated by commas */
} axis_t;

/* One grid: the product of its axes. Once resolved, the common lines are
 * merged in, so that a grid alone says everything about its points. */
typedef struct grid {
  axis_t axes[MAX_AXES];
  int naxes;
  int workload_axis;          /* index in axes, or -1 */
  bool seed_set;              /* the grid sweeps seed itself */
  int line;                   /* of its [grid] line; 0 for a file without any */
  size_t points;
  size_t first;               /* the file's index of its first point */
} grid_t;

/* Invariant once parsed: grids[i].first == sum of grids[j].points for j < i,
 * and points == the sum over every grid. */
typedef struct sweep {
  char path[PATH_MAX];
  grid_t grids[MAX_GRIDS];
  int ngrids;
  bool explicit_grids;        /* the file has [grid] lines */
  unsigned repeat;
  double timeout_s;
  size_t points;
} sweep_t;

static void trim(char *s) {
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) *--e = '\0';
  char *b = s;
  while (*b == ' ' || *b == '\t') b++;
  if (b != s) memmove(s, b, strlen(b) + 1);
}

static int parse_uint(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v <= 0) return -1;
  *out = v;
  return 0;
}

static void grid_init(grid_t *g) {
  memset(g, 0, sizeof *g);
  g->workload_axis = -1;
}

static void axis_free(axis_t *a) {
  for (int j = 0; j < a->nvalues; j++) free(a->values[j]);
  a->nvalues = 0;
}

static void grid_free(grid_t *g) {
  for (int i = 0; i < g->naxes; i++) axis_free(&g->axes[i]);
  g->naxes = 0;
}

static int axis_find(const grid_t *g, const char *name) {
  for (int i = 0; i < g->naxes; i++)
    if (strcmp(g->axes[i].name, name) == 0) return i;
  return -1;
}

static void axis_copy(axis_t *dst, const axis_t *src) {
  *dst = *src;
  for (int j = 0; j < src->nvalues; j++) {
    dst->values[j] = strdup(src->values[j]);
    if (!dst->values[j]) abort();
  }
}

/* Parses one "name = value, ..." line (comments already cut) into s (repeat,
 * timeout-s) or as an axis of g. where: "FILE:LINE" or "--set"; in_grid:
 * the line is inside a [grid]. 0, or -1 with "WHERE: ..." in err. */
static int parse_assignment(sweep_t *s, grid_t *g, char *line, const char *where, int lineno,
                            bool in_grid, char *err, size_t errlen) {
  char *eq = strchr(line, '=');
  if (!eq) {
    snprintf(err, errlen, "%s: expected 'name = value, value, ...', got '%.256s'", where, line);
    return -1;
  }
  *eq = '\0';
  char *name = line, *rest = eq + 1;
  trim(name);
  trim(rest);
  if (!*rest) {
    snprintf(err, errlen, "%s: '%.200s' has no value", where, name);
    return -1;
  }
  if (strcmp(name, "repeat") == 0 || strcmp(name, "timeout-s") == 0) {
    double v;
    if (in_grid) {
      snprintf(err, errlen, "%s: '%s' applies to the whole file: give it before the first [grid]",
               where, name);
      return -1;
    }
    bool is_repeat = strcmp(name, "repeat") == 0;
    /* repeat: digits alone (strtod would take 1e3 or 0x10 too) */
    if (parse_uint(rest, &v) != 0 ||
        (is_repeat && (rest[strspn(rest, "0123456789")] != '\0' || v > 10000))) {
      snprintf(err, errlen, "%s: %.64s = '%.200s': expected a positive %s", where, name, rest,
               is_repeat ? "integer up to 10000" : "number of seconds");
      return -1;
    }
    if (is_repeat) s->repeat = (unsigned)v;
    else s->timeout_s = v;
    return 0;
  }
  bool is_workload = strcmp(name, "workload") == 0;
  if (!is_workload && hl_config_find(name) < 0) {
    snprintf(err, errlen,
             "%s: unknown name '%.200s'; accepted: workload, repeat, timeout-s, or an option "
             "of 'heaplab list'",
             where, name);
    return -1;
  }
  if (!is_workload && (strcmp(name, "trace") == 0 || strcmp(name, "config") == 0)) {
    snprintf(err, errlen, "%s: '%.200s' cannot be swept (each run would overwrite the other's)",
             where, name);
    return -1;
  }
  int dup = axis_find(g, name);
  if (dup >= 0) {
    snprintf(err, errlen, "%s: '%.200s' was already given on line %d", where, name,
             g->axes[dup].line);
    return -1;
  }
  if (g->naxes == MAX_AXES) {
    snprintf(err, errlen, "%s: more than %d axes", where, MAX_AXES);
    return -1;
  }
  axis_t *a = &g->axes[g->naxes];
  memset(a, 0, sizeof *a);
  snprintf(a->name, sizeof a->name, "%.63s", name);
  a->line = lineno;
  /* values containing commas (threshold = 700,10,10) are separated by
   * semicolons: a line with any semicolon splits on them alone */
  const char *sep = strchr(rest, ';') ? ";" : ",";
  char *save = NULL;
  for (char *tok = strtok_r(rest, sep, &save); tok; tok = strtok_r(NULL, sep, &save)) {
    trim(tok);
    if (!*tok) continue;
    if (strlen(tok) > MAX_VALUE) {
      snprintf(err, errlen, "%s: a value of '%.200s' is longer than %d bytes: '%.40s...'", where,
               name, MAX_VALUE, tok);
      axis_free(a);
      return -1;
    }
    if (a->nvalues == MAX_VALUES) {
      snprintf(err, errlen, "%s: more than %d values for '%.200s'", where, MAX_VALUES, name);
      axis_free(a);
      return -1;
    }
    a->values[a->nvalues] = strdup(tok);
    if (!a->values[a->nvalues]) abort();
    a->nvalues++;
  }
  if (a->nvalues == 0) {
    snprintf(err, errlen, "%s: '%.200s' has no value", where, name);
    return -1;
  }
  a->comma_split = *sep == ',' && a->nvalues > 1;
  g->naxes++;
  return 0;
}

/* Gives the one axis of `set` to every grid: it replaces the line of that
 * name in the common part and in each grid, or joins the common part. */
static void apply_set(grid_t *common, grid_t *raw, int nraw, const grid_t *set) {
  const axis_t *a = &set->axes[0];
  for (int i = -1; i < nraw; i++) {
    grid_t *g = i < 0 ? common : &raw[i];
    int k = axis_find(g, a->name);
    if (k >= 0) {
      axis_free(&g->axes[k]);
      axis_copy(&g->axes[k], a);
    }
  }
  if (axis_find(common, a->name) < 0 && common->naxes < MAX_AXES)
    axis_copy(&common->axes[common->naxes++], a);
}

/* grids[i] = the common axes (replaced by the grid's own of the same name),
 * then the grid's other axes. */
static int resolve(sweep_t *s, const grid_t *common, const grid_t *raw, char *err, size_t errlen) {
  for (int i = 0; i < s->ngrids; i++) {
    grid_t *g = &s->grids[i];
    const grid_t *own = &raw[i];
    grid_init(g);
    g->line = own->line;
    for (int k = 0; k < common->naxes; k++) {
      int o = axis_find(own, common->axes[k].name);
      axis_copy(&g->axes[g->naxes++], o >= 0 ? &own->axes[o] : &common->axes[k]);
    }
    for (int k = 0; k < own->naxes; k++) {
      if (axis_find(common, own->axes[k].name) >= 0) continue;
      if (g->naxes == MAX_AXES) {
        snprintf(err, errlen, "%.512s:%d: more than %d axes in this grid with the common ones",
                 s->path, g->line, MAX_AXES);
        return -1;
      }
      axis_copy(&g->axes[g->naxes++], &own->axes[k]);
    }
    g->workload_axis = axis_find(g, "workload");
    g->seed_set = axis_find(g, "seed") >= 0;
    if (g->workload_axis < 0) {
      if (s->explicit_grids)
        snprintf(err, errlen, "%.512s:%d: this grid has no 'workload = ...' line, nor has the "
                 "common part; 'heaplab list' shows the workloads", s->path, g->line);
      else
        snprintf(err, errlen,
                 "%.512s: no 'workload = ...' line; 'heaplab list' shows the workloads", s->path);
      return -1;
    }
    g->points = 1;
    for (int k = 0; k < g->naxes; k++) g->points *= (size_t)g->axes[k].nvalues;
    g->first = s->points;
    s->points += g->points;
    if (g->points > 1000000 || s->points > 1000000) {
      snprintf(err, errlen, "%.512s: the grid has more than a million points", s->path);
      return -1;
    }
  }
  return 0;
}

/* Reads the file, then applies the --set lines; 0, or -1 with "FILE:LINE: ..."
 * in err. */
static int sweep_parse_stream(sweep_t *s, FILE *f, const char *path, char *const *sets,
                              int nsets, char *err, size_t errlen);

static int sweep_parse(sweep_t *s, const char *path, char *const *sets, int nsets, char *err,
                       size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    memset(s, 0, sizeof *s);
    snprintf(err, errlen, "%.512s: %s", path, strerror(errno));
    return -1;
  }
  int rc = sweep_parse_stream(s, f, path, sets, nsets, err, errlen);
  fclose(f);
  return rc;
}

/* sweep_parse's reader; the caller closes f. */
static int sweep_parse_stream(sweep_t *s, FILE *f, const char *path, char *const *sets,
                              int nsets, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  s->repeat = 3;
  s->timeout_s = 600;
  snprintf(s->path, sizeof s->path, "%s", path);
  /* the common part, and each grid's own lines */
  grid_t *common = malloc(sizeof *common), *raw = malloc(MAX_GRIDS * sizeof *raw);
  if (!common || !raw) abort();
  grid_init(common);
  int nraw = 0;
  grid_t *cur = common;
  char line[MAX_LINE], where[600];
  int lineno = 0, rc = 0;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    lineno++;
    /* a longer line is an error, never split: its tail read as a line of
     * its own could add an axis (as base/config.c's reader) */
    if (!strchr(line, '\n') && !feof(f)) {
      snprintf(err, errlen, "%.512s:%d: line longer than %d bytes", path, lineno, MAX_LINE - 2);
      rc = -1;
      break;
    }
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    trim(line);
    if (!*line) continue;
    snprintf(where, sizeof where, "%.512s:%d", path, lineno);
    if (line[0] == '[') {
      if (strcmp(line, "[grid]") != 0) {
        snprintf(err, errlen, "%s: expected '[grid]' or 'name = value, ...', got '%.256s'", where,
                 line);
        rc = -1;
      } else if (nraw == MAX_GRIDS) {
        snprintf(err, errlen, "%s: more than %d grids", where, MAX_GRIDS);
        rc = -1;
      } else {
        cur = &raw[nraw++];
        grid_init(cur);
        cur->line = lineno;
        s->explicit_grids = true;
      }
      continue;
    }
    rc = parse_assignment(s, cur, line, where, lineno, cur != common, err, errlen);
  }
  for (int i = 0; rc == 0 && i < nsets; i++) {
    grid_t *one = malloc(sizeof *one);
    if (!one) abort();
    grid_init(one);
    snprintf(line, sizeof line, "%s", sets[i]);
    snprintf(where, sizeof where, "--set '%.500s'", sets[i]);
    rc = parse_assignment(s, one, line, where, 0, false, err, errlen);
    if (rc == 0 && one->naxes == 1) apply_set(common, raw, nraw, one);
    grid_free(one);
    free(one);
  }
  if (rc == 0) {
    if (nraw == 0) {   /* no [grid] line: the file is one grid */
      grid_init(&raw[0]);
      nraw = 1;
    }
    s->ngrids = nraw;
    rc = resolve(s, common, raw, err, errlen);
  }
  grid_free(common);
  for (int i = 0; i < nraw; i++) grid_free(&raw[i]);
  free(common);
  free(raw);
  return rc;
}

static void sweep_free(sweep_t *s) {
  for (int i = 0; i < s->ngrids; i++) grid_free(&s->grids[i]);
}

/* The grid of point p and the value index of each of its axes (the last
 * axis fastest). */
static const grid_t *point_grid(const sweep_t *s, size_t p, int *idx) {
  const grid_t *g = &s->grids[0];
  for (int i = 1; i < s->ngrids && s->grids[i].first <= p; i++) g = &s->grids[i];
  p -= g->first;
  for (int i = g->naxes - 1; i >= 0; i--) {
    idx[i] = (int)(p % (size_t)g->axes[i].nvalues);
    p /= (size_t)g->axes[i].nvalues;
  }
  return g;
}

/* The argv of `heaplab run` for point p, repeat r (NULL-terminated; the
 * strings live in buf). buf holds every argument whole: the binary (a path),
 * "run", and per axis "--NAME=VALUE" (a name of under 64 bytes, a value of
 * at most MAX_VALUE) or the seed; it once held 160 bytes an axis, and a sweep
 * file with longer values made argv point past it (tests/fuzz/fuzz_sweep). */
typedef struct run_argv {
  char *argv[MAX_AXES + 8];
  char buf[PATH_MAX + 8 + (MAX_AXES + 1) * (MAX_VALUE + 72)];
} run_argv_t;

static void build_argv(const sweep_t *s, const char *bin, size_t p, unsigned r, run_argv_t *ra) {
  int idx[MAX_AXES], n = 0;
  size_t used = 0;
  const grid_t *g = point_grid(s, p, idx);
#define PUT(...)                                                                        \
  do {                                                                                  \
    ra->argv[n++] = ra->buf + used;                                                     \
    used += (size_t)snprintf(ra->buf + used, sizeof ra->buf - used, __VA_ARGS__) + 1;   \
    if (used > sizeof ra->buf) used = sizeof ra->buf;                                   \
  } while (0)
  PUT("%s", bin);
  PUT("run");
  PUT("%s", g->axes[g->workload_axis].values[idx[g->workload_axis]]);
  for (int i = 0; i < g->naxes; i++)
    if (i != g->workload_axis) PUT("--%s=%s", g->axes[i].name, g->axes[i].values[idx[i]]);
  if (!g->seed_set) PUT("--seed=%u", r);
#undef PUT
  ra->argv[n] = NULL;
}

/* A line split on commas whose option refused a value (threshold = 0,10,10
 * is three values, 0, 10 and 10): appends the line as it was meant. */
static void comma_hint(const sweep_t *s, size_t p, const char *why, char *err, size_t errlen,
                       size_t used) {
  int idx[MAX_AXES];
  const grid_t *g = point_grid(s, p, idx);
  for (int i = 0; i < g->naxes; i++) {
    const axis_t *a = &g->axes[i];
    char quoted[80];
    snprintf(quoted, sizeof quoted, "'%s'", a->name);
    if (!a->comma_split || !strstr(why, quoted)) continue;
    if (used < errlen)
      used += (size_t)snprintf(err + used, errlen - used,
                               "; use ';' between values that hold commas: %s = ", a->name);
    for (int j = 0; j < a->nvalues && used < errlen; j++)
      used += (size_t)snprintf(err + used, errlen - used, "%s%s", j ? "," : "", a->values[j]);
    if (used < errlen) snprintf(err + used, errlen - used, ";");
    return;
  }
}

/* Validates point p as `heaplab run` does (the environment included). */
static int validate_point(const sweep_t *s, size_t p, char *err, size_t errlen) {
  run_argv_t ra;
  build_argv(s, "heaplab", p, 1, &ra);
  const hl_workload_t *wl = hl_workload_find(ra.argv[2]);
  int argc = 0;
  while (ra.argv[argc]) argc++;
  char why[1024];
  if (!wl) {
    snprintf(why, sizeof why, "unknown workload '%s' (see 'heaplab list')", ra.argv[2]);
  } else {
    hl_config_t c;
    if (hl_config_resolve(&c, argc - 3, ra.argv + 3, environ, why, sizeof why) == 0 &&
        hl_run_check(wl, &c, why, sizeof why) == 0)
      return 0;
  }
  size_t used = (size_t)snprintf(err, errlen, "%s: point %zu (", s->path, p + 1);
  for (int i = 2; ra.argv[i] && used < errlen; i++)
    used += (size_t)snprintf(err + used, errlen - used, "%s%s", i > 2 ? " " : "", ra.argv[i]);
  if (used < errlen) used += (size_t)snprintf(err + used, errlen - used, "): %s", why);
  comma_hint(s, p, why, err, errlen, used);
  return -1;
}

static int sweep_validate(const sweep_t *s, char *err, size_t errlen) {
  for (size_t p = 0; p < s->points; p++)
    if (validate_point(s, p, err, errlen) != 0) return -1;
  return 0;
}

/* The invariants of a parsed sweep (see sweep_t, grid_t, axis_t) and of the
 * argv of point p: hl_die when one fails. */
static void check_point(const sweep_t *s, size_t p) {
  run_argv_t ra;
  int idx[MAX_AXES];
  build_argv(s, "heaplab", p, 7, &ra);
  const grid_t *g = point_grid(s, p, idx);
  int n = 0;
  while (ra.argv[n]) n++;
  if (n != 2 + g->naxes + !g->seed_set) hl_die("point %zu: %d arguments", p, n);
  for (int i = 0; i < n; i++)
    if (ra.argv[i] < ra.buf || ra.argv[i] >= ra.buf + sizeof ra.buf ||
        !memchr(ra.argv[i], '\0', (size_t)(ra.buf + sizeof ra.buf - ra.argv[i])))
      hl_die("point %zu: argument %d is not in the argv's buffer", p, i);
  if (strcmp(ra.argv[2], g->axes[g->workload_axis].values[idx[g->workload_axis]]) != 0)
    hl_die("point %zu: workload '%s' cut short", p, ra.argv[2]);
  for (int i = 0, k = 3; i < g->naxes; i++) {
    if (i == g->workload_axis) continue;
    const char *a = ra.argv[k++], *v = g->axes[i].values[idx[i]];
    size_t nl = strlen(g->axes[i].name);
    if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, g->axes[i].name, nl) != 0 || a[2 + nl] != '=' ||
        strcmp(a + 3 + nl, v) != 0)
      hl_die("point %zu: argument '%.100s' is not --%s=%.100s", p, a, g->axes[i].name, v);
  }
}

static void check_parsed(const sweep_t *s) {
  size_t sum = 0;
  if (s->ngrids < 1 || s->ngrids > MAX_GRIDS) hl_die("%d grids", s->ngrids);
  if (s->repeat < 1 || s->repeat > 10000 || !(s->timeout_s > 0)) hl_die("repeat or timeout-s");
  for (int i = 0; i < s->ngrids; i++) {
    const grid_t *g = &s->grids[i];
    if (g->first != sum) hl_die("grid %d: first %zu, expected %zu", i, g->first, sum);
    if (g->naxes < 1 || g->naxes > MAX_AXES || g->workload_axis < 0 || g->workload_axis >= g->naxes)
      hl_die("grid %d: %d axes, workload axis %d", i, g->naxes, g->workload_axis);
    size_t prod = 1;
    for (int k = 0; k < g->naxes; k++) {
      const axis_t *a = &g->axes[k];
      if (a->nvalues < 1 || a->nvalues > MAX_VALUES) hl_die("axis %s: %d values", a->name, a->nvalues);
      if (axis_find(g, a->name) != k) hl_die("grid %d: axis %s twice", i, a->name);
      for (int v = 0; v < a->nvalues; v++) {
        const char *t = a->values[v];
        size_t len = strlen(t);
        if (len == 0 || strchr(" \t", t[0]) || strchr(" \t\r\n", t[len - 1]) || strchr(t, '#'))
          hl_die("axis %s: value '%s' not trimmed", a->name, t);
      }
      prod *= (size_t)a->nvalues;
    }
    if (g->points != prod) hl_die("grid %d: %zu points, the product is %zu", i, g->points, prod);
    sum += g->points;
  }
  if (s->points != sum) hl_die("%zu points, the grids hold %zu", s->points, sum);
}

int hl_sweep_check_stream(FILE *f, const char *path, size_t validate, size_t *points, char *err,
                          size_t errlen) {
  sweep_t *s = malloc(sizeof *s);
  if (!s) abort();
  int rc = sweep_parse_stream(s, f, path, NULL, 0, err, errlen);
  *points = rc == 0 ? s->points : 0;
  if (rc == 0) {
    check_parsed(s);
    /* every point of a small grid, else the first and the last 64 */
    for (size_t p = 0; p < s->points; p++) {
      if (p == 64 && s->points > 128) p = s->points - 64;
      check_point(s, p);
    }
    for (size_t p = 0; rc == 0 && p < s->points && p < validate; p++)
      rc = validate_point(s, p, err, errlen);
  }
  sweep_free(s);
  free(s);
  return rc;
}

/* ---- output directory and resuming ---------------------------------------------- */
static int mkdirs(const char *path) {
  char tmp[PATH_MAX];
  if (strlen(path) >= sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(tmp, path, strlen(path) + 1);
  for (char *q = tmp + 1; *q; q++)
    if (*q == '/') {
      *q = '\0';
      if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
      *q = '/';
    }
  return mkdir(tmp, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* The canonical text of the grids (a file without [grid] lines keeps the
 * text it always had, so that its old results still resume). */
static void grid_text(const sweep_t *s, char *buf, size_t len) {
  size_t used = (size_t)snprintf(buf, len, "repeat = %u\n", s->repeat);
  for (int k = 0; k < s->ngrids && used < len; k++) {
    const grid_t *g = &s->grids[k];
    if (s->explicit_grids) used += (size_t)snprintf(buf + used, len - used, "[grid]\n");
    for (int i = 0; i < g->naxes && used < len; i++) {
      used += (size_t)snprintf(buf + used, len - used, "%s =", g->axes[i].name);
      for (int j = 0; j < g->axes[i].nvalues && used < len; j++)
        used += (size_t)snprintf(buf + used, len - used, "%s %s", j ? "," : "",
                                 g->axes[i].values[j]);
      if (used < len) used += (size_t)snprintf(buf + used, len - used, "\n");
    }
  }
}

/* Checks OUT/grid against this grid (writing it when new). */
static int check_grid(const sweep_t *s, const char *out, char *err, size_t errlen) {
  char path[PATH_MAX + 16], want[16384], have[16384];
  grid_text(s, want, sizeof want);
  snprintf(path, sizeof path, "%s/grid", out);
  FILE *f = fopen(path, "r");
  if (f) {
    size_t n = fread(have, 1, sizeof have - 1, f);
    have[n] = '\0';
    fclose(f);
    if (strcmp(have, want) != 0) {
      snprintf(err, errlen,
               "%.512s holds the results of a different grid (see %.520s); give another --out, or "
               "remove it to start again",
               out, path);
      return -1;
    }
    return 0;
  }
  f = fopen(path, "w");
  if (!f || fputs(want, f) < 0 || fclose(f) != 0) {
    snprintf(err, errlen, "cannot write %.520s: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

/* The HEAPLAB_* variables of the environment but HEAPLAB_SWEEP_BINARY (which
 * picks the program, not its configuration), one "NAME=VALUE" line each,
 * sorted. */
static int env_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void env_text(char *buf, size_t len) {
  size_t n = 0, used = 0;
  for (char **e = environ; *e; e++) n++;
  char **v = malloc((n + 1) * sizeof *v);
  if (!v) abort();
  n = 0;
  for (char **e = environ; *e; e++)
    if (strncmp(*e, "HEAPLAB_", 8) == 0 && strncmp(*e, "HEAPLAB_SWEEP_BINARY=", 21) != 0)
      v[n++] = *e;
  qsort(v, n, sizeof *v, env_cmp);
  buf[0] = '\0';
  for (size_t i = 0; i < n && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s\n", v[i]);
  free(v);
}

/* The value of NAME in an env_text, or NULL. */
static const char *env_value(const char *text, const char *name, char *buf, size_t len) {
  size_t nl = strlen(name);
  for (const char *l = text; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
    if (strncmp(l, name, nl) == 0 && l[nl] == '=') {
      snprintf(buf, len, "%.*s", (int)strcspn(l + nl + 1, "\n"), l + nl + 1);
      return buf;
    }
  return NULL;
}

/* Checks OUT/env against this environment (writing it when new: a results
 * directory from before OUT/env adopts the environment of its first resume):
 * the HEAPLAB_* variables reach every run, so a resume under others would
 * mix two configurations under one grid. */
static int check_env(const char *out, char *err, size_t errlen) {
  char path[PATH_MAX + 16], want[16384], have[16384];
  env_text(want, sizeof want);
  snprintf(path, sizeof path, "%s/env", out);
  FILE *f = fopen(path, "r");
  if (!f) {
    f = fopen(path, "w");
    if (!f || fputs(want, f) < 0 || fclose(f) != 0) {
      snprintf(err, errlen, "cannot write %.520s: %s", path, strerror(errno));
      return -1;
    }
    return 0;
  }
  size_t n = fread(have, 1, sizeof have - 1, f);
  have[n] = '\0';
  fclose(f);
  if (strcmp(have, want) == 0) return 0;
  /* the first variable, in either text, whose value differs */
  for (int side = 0; side < 2; side++)
    for (const char *l = side ? want : have; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0)) {
      char name[128], a[512], b[512];
      snprintf(name, sizeof name, "%.*s", (int)strcspn(l, "=\n"), l);
      const char *va = env_value(have, name, a, sizeof a), *vb = env_value(want, name, b, sizeof b);
      if (va && vb && strcmp(va, vb) == 0) continue;
      snprintf(err, errlen,
               "%.512s was made with %s%s%.200s, and this sweep has %s%s%.200s (%.520s holds the "
               "variables); run it with the same HEAPLAB_* variables, or give another --out",
               out, name, va ? "=" : " unset", va ? va : "", name, vb ? "=" : " unset",
               vb ? vb : "", path);
      return -1;
    }
  snprintf(err, errlen, "%.512s: %.520s differs from this environment", out, path);
  return -1;
}

/* The run a line of runs.jsonl records: its index (repeat-major, as the
 * sweep runs them) and whether it succeeded; false for a line of no run of
 * this grid. A line without a status is a success (heaplab run's own). */
static bool line_run(json_object *o, size_t points, unsigned repeat, size_t *k, bool *ok,
                     const char **status) {
  json_object *sw, *pt, *rp, *st;
  if (!o || !json_object_object_get_ex(o, "sweep", &sw) ||
      !json_object_object_get_ex(sw, "point", &pt) ||
      !json_object_object_get_ex(sw, "repeat", &rp))
    return false;
  int64_t p = json_object_get_int64(pt), r = json_object_get_int64(rp);
  if (p < 1 || (size_t)p > points || r < 1 || r > repeat) return false;
  *k = (size_t)(r - 1) * points + (size_t)(p - 1);
  *status = json_object_object_get_ex(sw, "status", &st) ? json_object_get_string(st) : "ok";
  *ok = strcmp(*status, "ok") == 0;
  return true;
}

/* Marks done[] from OUT/runs.jsonl: a run is done once a line records it
 * ok; a failed, crashed or timed-out one is not, and runs again (tries[]
 * counts its lines). A last line cut short by an interrupted sweep is cut
 * off the file. Returns how many runs are done. */
static size_t load_done(const char *jsonl, size_t points, unsigned repeat, bool *done,
                        unsigned char *tries) {
  FILE *f = fopen(jsonl, "r+");
  if (!f) return 0;
  size_t ndone = 0;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  long good_end = 0;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] != '\n') break;   /* the cut line */
    good_end = ftell(f);
    json_object *o = json_tokener_parse(line);
    size_t k;
    bool ok;
    const char *status;
    if (line_run(o, points, repeat, &k, &ok, &status)) {
      if (tries[k] < UCHAR_MAX) tries[k]++;
      if (ok && !done[k]) {
        ndone++;
        done[k] = true;
      }
    }
    json_object_put(o);
  }
  free(line);
  if (ftruncate(fileno(f), good_end) != 0) { /* nothing lost: the line is rerun */ }
  fclose(f);
  return ndone;
}

/* ---- one run ---------------------------------------------------------------------- */
typedef struct outcome {
  const char *status;         /* ok, failed, crashed, timeout; interrupted: not recorded */
  int exit_code;              /* -1 when killed */
  int signal;
  double wall_s;
} outcome_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* SIGINT or SIGTERM received by the sweep: forwarded to the running child,
 * which is in a process group of its own and so out of the terminal's reach;
 * the sweep then stops without recording the interrupted run. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

static void catch_stop_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/* How long an interrupted child may take to exit before SIGKILL. */
#define STOP_GRACE_S 5.0

static outcome_t run_child(char *const *argv, const char *out_path, const char *err_path,
                           double timeout_s) {
  outcome_t oc = {"failed", -1, 0, 0};
  double t0 = now_s();
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    oc.status = "failed";
    return oc;
  }
  if (pid == 0) {
    /* die with the sweep, even by SIGKILL, which it cannot forward; a parent
     * gone before prctl leaves us adopted: getppid() then differs */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
    setpgid(0, 0);
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    int fi = open("/dev/null", O_RDONLY);
    if (fo < 0 || fe < 0 || fi < 0) _exit(127);
    dup2(fi, 0);
    dup2(fo, 1);
    dup2(fe, 2);
    execv(argv[0], argv);
    fprintf(stderr, "heaplab sweep: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);
  int status = 0;
  bool killed = false;
  int forwarded = 0;
  double t_stop = 0;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (stop_signal && !forwarded) {
      forwarded = stop_signal;
      kill(-pid, forwarded);
      t_stop = now_s();
    } else if (forwarded && !killed && now_s() - t_stop > STOP_GRACE_S) {
      kill(-pid, SIGKILL);
      killed = true;
    }
    if (!killed && now_s() - t0 > timeout_s) {
      kill(-pid, SIGKILL);
      killed = true;
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  oc.wall_s = now_s() - t0;
  if (forwarded) {
    oc.status = "interrupted";
  } else if (killed) {
    oc.status = "timeout";
    oc.signal = SIGKILL;
  } else if (WIFSIGNALED(status)) {
    oc.status = "crashed";
    oc.signal = WTERMSIG(status);
  } else if (WIFEXITED(status)) {
    oc.exit_code = WEXITSTATUS(status);
    oc.status = oc.exit_code == 0 ? "ok" : "failed";
  }
  return oc;
}

/* The last line of a file that parses as a JSON object, or NULL. */
static json_object *read_result(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  json_object *last = NULL;
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    json_object *o = json_tokener_parse(line);
    if (o && json_object_is_type(o, json_type_object)) {
      json_object_put(last);
      last = o;
    } else {
      json_object_put(o);
    }
  }
  free(line);
  fclose(f);
  return last;
}

/* The last non-empty line of a file, for a failed run's reason. */
static void last_line(const char *path, char *buf, size_t len) {
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    char *cr = strrchr(line, '\r');   /* progress lines: the text after the last \r */
    char *t = cr ? cr + 1 : line;
    trim(t);
    if (*t) snprintf(buf, len, "%.400s", t);
  }
  fclose(f);
}

/* ---- CSV -------------------------------------------------------------------------- */
static json_object *path_get(json_object *o, const char *a, const char *b) {
  json_object *x, *y;
  if (!json_object_object_get_ex(o, a, &x)) return NULL;
  if (!b) return x;
  return json_object_object_get_ex(x, b, &y) ? y : NULL;
}

static void csv_num(FILE *f, json_object *v) {
  if (v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
    fprintf(f, ",%.9g", json_object_get_double(v));
  else
    fputs(",", f);
}

/* The CSV's option columns: every axis name of every grid, in the order
 * first met; then "seed" unless a grid sweeps it (its column then holds the
 * repeat number for the grids that do not). */
typedef struct csv_cols {
  const char *name[MAX_GRIDS * MAX_AXES];
  int n;
  bool seed_axis;
} csv_cols_t;

static void csv_columns(const sweep_t *s, csv_cols_t *c) {
  c->n = 0;
  c->seed_axis = false;
  for (int k = 0; k < s->ngrids; k++)
    for (int i = 0; i < s->grids[k].naxes; i++) {
      const char *name = s->grids[k].axes[i].name;
      int j = 0;
      while (j < c->n && strcmp(c->name[j], name) != 0) j++;
      if (j == c->n) c->name[c->n++] = name;
      if (strcmp(name, "seed") == 0) c->seed_axis = true;
    }
}

static void csv_header(FILE *f, const sweep_t *s) {
  csv_cols_t c;
  csv_columns(s, &c);
  fputs("point,repeat,status", f);
  for (int i = 0; i < c.n; i++) fprintf(f, ",%s", c.name[i]);
  if (!c.seed_axis) fputs(",seed", f);
  fputs(",ops,ops_per_s,wall_s,cpu_s,peak_rss_bytes,page_faults_minor,latency_p50_ns,"
        "latency_p99_ns,gc_pause_p50_ns,gc_pause_p99_ns,gc_pause_max_ns,checksum,hostname,"
        "commit\n",
        f);
}

/* A histogram with no sample has no percentiles: empty cells, not 0. */
static json_object *hist_sampled(json_object *h) {
  json_object *n = h ? path_get(h, "count", NULL) : NULL;
  return n && json_object_get_int64(n) > 0 ? h : NULL;
}

static void csv_row(FILE *f, const sweep_t *s, size_t p, unsigned r, const char *status,
                    json_object *res) {
  int idx[MAX_AXES];
  const grid_t *g = point_grid(s, p, idx);
  csv_cols_t c;
  csv_columns(s, &c);
  fprintf(f, "%zu,%u,%s", p + 1, r, status);
  for (int i = 0; i < c.n; i++) {
    int k = axis_find(g, c.name[i]);
    if (k >= 0) fprintf(f, ",%s", g->axes[k].values[idx[k]]);
    else if (strcmp(c.name[i], "seed") == 0) fprintf(f, ",%u", r);
    else fputs(",", f);
  }
  if (!c.seed_axis) fprintf(f, ",%u", r);
  csv_num(f, res ? path_get(res, "ops", NULL) : NULL);
  csv_num(f, res ? path_get(res, "ops_per_s", NULL) : NULL);
  csv_num(f, res ? path_get(res, "wall_s", NULL) : NULL);
  csv_num(f, res ? path_get(res, "cpu_s", NULL) : NULL);
  csv_num(f, res ? path_get(res, "peak_rss_bytes", NULL) : NULL);
  csv_num(f, res ? path_get(res, "page_faults_minor", NULL) : NULL);
  json_object *lat = hist_sampled(res ? path_get(res, "latency_ns", NULL) : NULL);
  csv_num(f, lat ? path_get(lat, "p50", NULL) : NULL);
  csv_num(f, lat ? path_get(lat, "p99", NULL) : NULL);
  json_object *pause = hist_sampled(res ? path_get(res, "gc", "pause_ns") : NULL);
  csv_num(f, pause ? path_get(pause, "p50", NULL) : NULL);
  csv_num(f, pause ? path_get(pause, "p99", NULL) : NULL);
  csv_num(f, pause ? path_get(pause, "max", NULL) : NULL);
  json_object *ck = res ? path_get(res, "checksum", NULL) : NULL;
  json_object *host = res ? path_get(res, "machine", "hostname") : NULL;
  json_object *commit = res ? path_get(res, "commit", NULL) : NULL;
  fprintf(f, ",%s,%s,%s\n", ck ? json_object_get_string(ck) : "",
          host ? json_object_get_string(host) : "", commit ? json_object_get_string(commit) : "");
}

/* Rewrites OUT/runs.csv from OUT/runs.jsonl: a row per run of the grid, in
 * the order of the lines, from its first ok line, else from its last line
 * (a run that failed on every attempt); so a row cut by a killed sweep, or
 * the row of an attempt that a retry superseded, does not survive. Written
 * aside and renamed over: the old CSV stays whole until the new one is. */
static int rebuild_csv(const sweep_t *s, const char *jsonl, const char *csv) {
  size_t total = s->points * s->repeat;
  long *pick = malloc((total ? total : 1) * sizeof *pick);
  bool *pick_ok = calloc(total ? total : 1, sizeof *pick_ok);
  char tmp[PATH_MAX + 32];
  snprintf(tmp, sizeof tmp, "%s.tmp", csv);
  FILE *in = fopen(jsonl, "r"), *fo = NULL;
  int rc = -1;
  if (!pick || !pick_ok || !in) goto done;
  for (size_t k = 0; k < total; k++) pick[k] = -1;
  char *line = NULL;
  size_t cap = 0;
  for (int pass = 0; pass < 2; pass++) {
    rewind(in);
    long i = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) > 0) {
      if (line[len - 1] != '\n') break;
      json_object *o = json_tokener_parse(line);
      size_t k;
      bool ok;
      const char *status;
      if (line_run(o, s->points, s->repeat, &k, &ok, &status)) {
        if (pass == 0 && !pick_ok[k]) {
          pick[k] = i;
          pick_ok[k] = ok;
        } else if (pass == 1 && pick[k] == i) {
          csv_row(fo, s, k % s->points, (unsigned)(k / s->points) + 1, status, o);
        }
      }
      json_object_put(o);
      i++;
    }
    if (pass == 0) {
      fo = fopen(tmp, "w");
      if (!fo) break;
      csv_header(fo, s);
    }
  }
  free(line);
  if (fo && fclose(fo) == 0 && rename(tmp, csv) == 0) rc = 0;
  else if (fo) unlink(tmp);
done:
  if (in) fclose(in);
  free(pick);
  free(pick_ok);
  return rc;
}

/* ---- progress ------------------------------------------------------------------------ */
static void fmt_dur(double s, char *buf, size_t len) {
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else if (t >= 60) snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
  else snprintf(buf, len, "%lds", t);
}

static void progress(size_t done, size_t total, double elapsed, size_t ran, const char *what,
                     bool tty) {
  char el[32], left[32] = "?";
  fmt_dur(elapsed, el, sizeof el);
  if (ran > 0) fmt_dur(elapsed / (double)ran * (double)(total - done), left, sizeof left);
  int width = 24, fill = total ? (int)(width * done / total) : width;
  char bar[32];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = '\0';
  fprintf(stderr, "%s[%s] %zu/%zu runs, %s elapsed, ~%s left: %.80s%s", tty ? "\r\033[K" : "",
          bar, done, total, el, left, what, tty ? "" : "\n");
  fflush(stderr);
}

/* ---- --list ---------------------------------------------------------------------------- */
/* Prints a followed by b as one word for the shell: in single quotes, each
 * ' as '\'' (the one character single quotes cannot hold). */
static void put_quoted(const char *a, const char *b) {
  fputc('\'', stdout);
  for (int i = 0; i < 2; i++)
    for (const char *c = i ? b : a; *c; c++)
      if (*c == '\'') fputs("'\\''", stdout);
      else fputc(*c, stdout);
  fputc('\'', stdout);
}

/* ---- the command ----------------------------------------------------------------------- */
void hl_sweep_usage(FILE *f) {
  fprintf(f,
          "usage: heaplab sweep FILE [--out DIR] [--set NAME=VALUES ...] [--list]\n"
          "\n"
          "Runs the grid FILE declares (one 'name = value, value, ...' line per option or\n"
          "'workload', values separated by ';' instead where they hold commas;\n"
          "'repeat = N' (default 3); 'timeout-s = S' per run (default 600); '#' comments),\n"
          "each run in its own process, interleaved (A B A B). A '[grid]' line opens\n"
          "another grid: the file runs the union of its grids, each of them the lines\n"
          "before the first '[grid]' and its own (which replace those of the same name).\n"
          "  --out DIR   results: DIR/runs.jsonl, DIR/runs.csv, DIR/logs/ (default\n"
          "              results/sweep-NAME); running the same sweep again resumes it\n"
          "              and runs again what failed; one sweep at a time per DIR, and\n"
          "              under the HEAPLAB_* variables it began with (DIR/env)\n"
          "  --set NAME=VALUES  as the line 'NAME = VALUES' given to every grid\n"
          "              (repeatable; e.g. --set repeat=1 --set duration-s=0.05)\n"
          "  --list      print one self-contained shell command per run and run nothing\n"
          "              (for GNU parallel or a Slurm array; concatenate their outputs)\n"
          "SIGINT or SIGTERM stops the run in progress (left for the resume) and the sweep.\n"
          "exit status: 0 every run ok, 1 some run failed (recorded), 2 bad input or\n"
          "another sweep running on DIR, 128+N stopped by signal N\n");
}

int hl_cmd_sweep(int argc, char **argv) {
  const char *file = NULL, *out_opt = NULL;
  char *sets[MAX_SETS];
  int nsets = 0;
  bool list = false;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      hl_sweep_usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--list") == 0) {
      list = true;
    } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
      out_opt = argv[++i];
    } else if (strncmp(argv[i], "--out=", 6) == 0) {
      out_opt = argv[i] + 6;
    } else if ((strcmp(argv[i], "--set") == 0 && i + 1 < argc) ||
               strncmp(argv[i], "--set=", 6) == 0) {
      if (nsets == MAX_SETS) {
        fprintf(stderr, "heaplab sweep: more than %d --set\n", MAX_SETS);
        return 2;
      }
      sets[nsets++] = argv[i][5] == '=' ? argv[i] + 6 : argv[++i];
    } else if (argv[i][0] == '-') {
      fprintf(stderr,
              "heaplab sweep: unknown argument '%s'; accepted: FILE, --out DIR, --set NAME=VALUES, "
              "--list, --help\n",
              argv[i]);
      return 2;
    } else if (file) {
      fprintf(stderr, "heaplab sweep: one FILE only ('%s' and '%s')\n", file, argv[i]);
      return 2;
    } else {
      file = argv[i];
    }
  }
  if (!file) {
    hl_sweep_usage(stderr);
    return 2;
  }
  sweep_t *s = calloc(1, sizeof *s);
  char err[2048];
  if (!s) return 1;
  if (sweep_parse(s, file, sets, nsets, err, sizeof err) != 0 ||
      sweep_validate(s, err, sizeof err) != 0) {
    fprintf(stderr, "heaplab sweep: %s\n", err);
    sweep_free(s);
    free(s);
    return 2;
  }
  int rc = 0, lock_fd = -1;
  bool *done = NULL;
  unsigned char *tries = NULL;
  FILE *fj = NULL, *fc = NULL;
  char bin[PATH_MAX] = "";
  const char *bin_env = getenv("HEAPLAB_SWEEP_BINARY");
  if (bin_env && *bin_env) {
    snprintf(bin, sizeof bin, "%s", bin_env);
  } else {
    ssize_t n = readlink("/proc/self/exe", bin, sizeof bin - 1);
    if (n <= 0) {
      fprintf(stderr, "heaplab sweep: cannot find this executable: %s\n", strerror(errno));
      rc = 1;
      goto out;
    }
    bin[n] = '\0';
  }
  char out[PATH_MAX];
  if (out_opt) {
    snprintf(out, sizeof out, "%s", out_opt);
  } else {
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int len = (int)strcspn(base, ".");
    snprintf(out, sizeof out, "results/sweep-%.*s", len ? len : (int)strlen(base), base);
  }
  size_t total = s->points * s->repeat;
  if (list) {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
    run_argv_t ra;
    for (unsigned r = 1; r <= s->repeat; r++)
      for (size_t p = 0; p < s->points; p++) {
        build_argv(s, bin, p, r, &ra);
        fputs("cd ", stdout);
        put_quoted(cwd, "");
        fputs(" && mkdir -p ", stdout);
        put_quoted(out, "");
        fputs(" &&", stdout);
        for (int i = 0; ra.argv[i]; i++) {
          fputc(' ', stdout);
          put_quoted(ra.argv[i], "");
        }
        char tail[64];
        snprintf(tail, sizeof tail, "/run-r%u-p%zu.json", r, p + 1);
        fputs(" > ", stdout);
        put_quoted(out, tail);
        snprintf(tail, sizeof tail, "/run-r%u-p%zu.err", r, p + 1);
        fputs(" 2> ", stdout);
        put_quoted(out, tail);
        fputc('\n', stdout);
      }
    goto out;
  }
  char logs[PATH_MAX + 8], jsonl[PATH_MAX + 16], csv[PATH_MAX + 16];
  snprintf(logs, sizeof logs, "%s/logs", out);
  snprintf(jsonl, sizeof jsonl, "%s/runs.jsonl", out);
  snprintf(csv, sizeof csv, "%s/runs.csv", out);
  if (mkdirs(logs) != 0) {
    fprintf(stderr, "heaplab sweep: cannot create %s: %s\n", logs, strerror(errno));
    rc = 1;
    goto out;
  }
  /* one sweep per OUT: two would both run and record the same runs; the
   * lock dies with the sweep (kill -9 included), and O_CLOEXEC keeps it out
   * of the children, which could outlive it */
  char lockp[PATH_MAX + 16];
  snprintf(lockp, sizeof lockp, "%s/.lock", out);
  lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (lock_fd < 0) {
    fprintf(stderr, "heaplab sweep: cannot open %s: %s\n", lockp, strerror(errno));
    rc = 1;
    goto out;
  }
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      fprintf(stderr, "heaplab sweep: another sweep is running on %s (it holds %s)\n", out, lockp);
    else
      fprintf(stderr, "heaplab sweep: cannot lock %s: %s\n", lockp, strerror(errno));
    rc = 2;
    goto out;
  }
  if (check_grid(s, out, err, sizeof err) != 0 || check_env(out, err, sizeof err) != 0) {
    fprintf(stderr, "heaplab sweep: %s\n", err);
    rc = 2;
    goto out;
  }
  done = calloc(total, sizeof *done);
  tries = calloc(total, sizeof *tries);
  if (!done || !tries) abort();
  size_t ndone = load_done(jsonl, s->points, s->repeat, done, tries), nretry = 0;
  for (size_t k = 0; k < total; k++) nretry += !done[k] && tries[k];
  bool csv_new = access(csv, F_OK) != 0;
  fj = fopen(jsonl, "a");
  fc = fopen(csv, "a");
  if (!done || !fj || !fc) {
    fprintf(stderr, "heaplab sweep: cannot open %s: %s\n", !fj ? jsonl : csv, strerror(errno));
    rc = 1;
    goto out;
  }
  if (csv_new) csv_header(fc, s);
  fflush(fc);
  bool tty = isatty(STDERR_FILENO);
  fprintf(stderr, "heaplab sweep: %zu points x %u repeats = %zu runs into %s%s\n", s->points,
          s->repeat, total, out, ndone ? "" : "");
  if (nretry)
    fprintf(stderr, "heaplab sweep: resuming: %zu of %zu runs already done, %zu failed before, "
            "to run again\n", ndone, total, nretry);
  else if (ndone)
    fprintf(stderr, "heaplab sweep: resuming: %zu of %zu runs already done\n", ndone, total);
  double t0 = now_s();
  size_t ran = 0, failed = 0;
  run_argv_t ra;
  catch_stop_signals();
  for (unsigned r = 1; r <= s->repeat && !stop_signal; r++) {
    for (size_t p = 0; p < s->points && !stop_signal; p++) {
      size_t k = (size_t)(r - 1) * s->points + p;
      if (done[k]) continue;
      build_argv(s, bin, p, r, &ra);
      char what[512];
      size_t used = 0;
      for (int i = 2; ra.argv[i] && used < sizeof what; i++)
        used += (size_t)snprintf(what + used, sizeof what - used, "%s%s", i > 2 ? " " : "", ra.argv[i]);
      progress(ndone, total, now_s() - t0, ran, what, tty);
      char outp[PATH_MAX + 64], errp[PATH_MAX + 64];
      snprintf(outp, sizeof outp, "%s/run-r%u-p%zu.out", logs, r, p + 1);
      snprintf(errp, sizeof errp, "%s/run-r%u-p%zu.err", logs, r, p + 1);
      outcome_t oc = run_child(ra.argv, outp, errp, s->timeout_s);
      if (strcmp(oc.status, "interrupted") == 0) break;   /* not recorded: a resume reruns it */
      json_object *res = strcmp(oc.status, "ok") == 0 ? read_result(outp) : NULL;
      if (strcmp(oc.status, "ok") == 0 && !res) oc.status = "failed";   /* no JSON line */
      json_object *sw = json_object_new_object();
      json_object_object_add(sw, "file", json_object_new_string(s->path));
      json_object_object_add(sw, "point", json_object_new_int64((int64_t)p + 1));
      json_object_object_add(sw, "repeat", json_object_new_int64(r));
      json_object_object_add(sw, "status", json_object_new_string(oc.status));
      /* a retry of a run whose earlier lines say failed: its line supersedes them */
      if (tries[k]) json_object_object_add(sw, "attempt", json_object_new_int(tries[k] + 1));
      if (oc.exit_code >= 0) json_object_object_add(sw, "exit", json_object_new_int(oc.exit_code));
      if (oc.signal) json_object_object_add(sw, "signal", json_object_new_int(oc.signal));
      json_object_object_add(sw, "run_wall_s", json_object_new_double(oc.wall_s));
      json_object *args = json_object_new_array();
      for (int i = 2; ra.argv[i]; i++) json_object_array_add(args, json_object_new_string(ra.argv[i]));
      json_object_object_add(sw, "args", args);
      if (!res) {
        char reason[512];
        last_line(errp, reason, sizeof reason);
        if (strcmp(oc.status, "timeout") == 0)
          snprintf(reason, sizeof reason, "killed after the %.0f s limit (timeout-s)", s->timeout_s);
        json_object_object_add(sw, "reason", json_object_new_string(reason));
        res = json_object_new_object();
        json_object_object_add(res, "workload", json_object_new_string(ra.argv[2]));
        failed++;
        fprintf(stderr, "%sheaplab sweep: run %s: %s (%s; stderr in %s)\n", tty ? "\r\033[K" : "",
                what, oc.status, reason, errp);
      }
      json_object_object_add(res, "sweep", sw);
      /* one write per line: an interrupted sweep leaves whole lines, or a cut
       * last line that the next start removes */
      const char *text = json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN);
      fprintf(fj, "%s\n", text);
      fflush(fj);
      csv_row(fc, s, p, r, oc.status, res);
      fflush(fc);
      json_object_put(res);
      done[k] = true;
      ndone++;
      ran++;
    }
  }
  /* the CSV from runs.jsonl, the record: a row per run, a cut row gone */
  fclose(fc);
  fc = NULL;
  if (rebuild_csv(s, jsonl, csv) != 0) {
    fprintf(stderr, "heaplab sweep: cannot rewrite %s from %s: %s\n", csv, jsonl, strerror(errno));
    rc = 1;
  }
  if (stop_signal) {
    fprintf(stderr, "%sheaplab sweep: stopped by %s after %zu runs (%zu failed); %zu of %zu runs "
            "done in %s; run the same command again to resume\n", tty ? "\r\033[K" : "",
            stop_signal == SIGINT ? "SIGINT" : "SIGTERM", ran, failed, ndone, total, jsonl);
    rc = 128 + stop_signal;
    goto out;
  }
  progress(ndone, total, now_s() - t0, ran ? ran : 1, "done", tty);
  if (tty) fputc('\n', stderr);
  fprintf(stderr, "heaplab sweep: %zu runs this time, %zu failed; results in %s\n", ran, failed,
          jsonl);
  if (failed) rc = 1;
out:
  if (lock_fd >= 0) close(lock_fd);
  if (fj) fclose(fj);
  if (fc) fclose(fc);
  free(done);
  free(tries);
  sweep_free(s);
  free(s);
  return rc;
}
