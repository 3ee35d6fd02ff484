/* heaplab compare A.jsonl B.jsonl: what changed between two sets of results,
 * and whether the change is more than noise.
 *
 * Each file holds result lines (heaplab run, heaplab sweep, scripts/bench).
 * Lines are grouped by configuration: the workload and every option of the
 * "config" object except seed (repeats differ by seed) and trace,
 * trace-format and config (files and their format). Lines of a sweep whose
 * run failed are skipped. For every configuration present in both files,
 * each figure (throughput, wall and CPU time, peak RSS, latency and GC pause
 * percentiles where present) is compared: medians, the relative change, and
 * the two-sided p-value of the Mann-Whitney U test (the test Google
 * Benchmark's tools/compare.py uses; Mann and Whitney, Ann. Math. Statist.
 * 1947), exact for small samples without ties, else the normal
 * approximation with tie and continuity corrections. Written anew; no code
 * from either.
 *
 * A percentile of a histogram without samples (a workload that times no
 * operation, a run without a collection) is no figure: "-" rather than 0,
 * and no test.
 *
 * With fewer than 4 runs a side no difference can reach p < 0.05 (3 against
 * 3: the smallest two-sided p is 0.1), and the table says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "result.h"

#define ALPHA 0.05

typedef struct figure {
  const char *label;
  const char *a, *b, *c;      /* path in the result */
  bool higher_better;
  bool of_hist;               /* a percentile: the path's last name is a field of a
                                 histogram, which may hold no sample */
} figure_t;

static const figure_t figures[] = {
  {"ops/s", "ops_per_s", NULL, NULL, true, false},
  {"wall s", "wall_s", NULL, NULL, false, false},
  {"cpu s", "cpu_s", NULL, NULL, false, false},
  {"peak RSS", "peak_rss_bytes", NULL, NULL, false, false},
  {"latency p50", "latency_ns", "p50", NULL, false, true},
  {"latency p99", "latency_ns", "p99", NULL, false, true},
  {"gc pause p50", "gc", "pause_ns", "p50", false, true},
  {"gc pause p99", "gc", "pause_ns", "p99", false, true},
  {"gc pause max", "gc", "pause_ns", "max", false, true},
};
#define NFIG (sizeof figures / sizeof figures[0])

typedef struct sample {
  double *v;
  size_t n, cap;
} sample_t;

typedef struct group {
  char *key;
  sample_t side[2][NFIG];
  bool seen[NFIG];            /* some run of either side has the figure, sampled or not */
  size_t runs[2];
} group_t;

typedef struct groups {
  group_t *g;
  size_t n, cap;
} groups_t;

static void push(sample_t *s, double v) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 8;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (!s->v) abort();
  }
  s->v[s->n++] = v;
}

static json_object *get(json_object *o, const char *k) {
  json_object *v;
  return k && o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static bool is_num(json_object *v) {
  return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double));
}

/* A result's "config" must be an object of strings and numbers (the driver
 * writes nothing else); NULL, or a message for the caller to place. */
static const char *bad_config(json_object *o, char *buf, size_t len) {
  json_object *cfg;
  if (!json_object_object_get_ex(o, "config", &cfg)) return NULL;   /* skipped, as before */
  if (!json_object_is_type(cfg, json_type_object)) {
    snprintf(buf, len, "'config' is %s; expected an object of option = string or number",
             cfg ? json_type_to_name(json_object_get_type(cfg)) : "null");
    return buf;
  }
  json_object_object_foreach(cfg, name, val) {
    if (val && (json_object_is_type(val, json_type_string) || is_num(val) ||
                json_object_is_type(val, json_type_boolean)))
      continue;
    snprintf(buf, len, "config.%s is %s; expected a string or a number", name,
             val ? json_type_to_name(json_object_get_type(val)) : "null");
    return buf;
  }
  return NULL;
}

/* "workload opt=value opt=value ..." (options in the object's order, which
 * is the option table's). */
static char *group_key(json_object *o) {
  json_object *wl = get(o, "workload"), *cfg = get(o, "config");
  if (!wl || !cfg) return NULL;
  size_t cap = 4096, used = 0;
  char *k = malloc(cap);
  if (!k) abort();
  used += (size_t)snprintf(k, cap, "%s", json_object_get_string(wl));
  json_object_object_foreach(cfg, name, val) {
    if (!strcmp(name, "seed") || !strcmp(name, "trace") || !strcmp(name, "trace-format") ||
        !strcmp(name, "config"))
      continue;
    const char *t = json_object_get_string(val);
    size_t need = strlen(name) + strlen(t) + 3;
    if (used + need >= cap) {
      cap = 2 * (used + need);
      k = realloc(k, cap);
      if (!k) abort();
    }
    used += (size_t)snprintf(k + used, cap - used, " %s=%s", name, t);
  }
  return k;
}

/* Reads one file into the groups; -1 with a message when it cannot be read
 * or holds no result. */
static int load(FILE *f, const char *path, int side, groups_t *gs, char *err, size_t errlen) {
  char *line = NULL;
  size_t cap = 0, used = 0, skipped = 0;
  int lineno = 0;
  while (getline(&line, &cap, f) > 0) {
    lineno++;
    char *t = line;
    while (*t == ' ' || *t == '\t') t++;
    if (*t == '\n' || *t == '\0') continue;
    json_object *o = json_tokener_parse(t);
    if (!o || !json_object_is_type(o, json_type_object)) {
      snprintf(err, errlen, "%s:%d: not a JSON object (expected one result per line)", path, lineno);
      json_object_put(o);
      free(line);
      return -1;
    }
    char why[256];
    if (bad_config(o, why, sizeof why)) {
      snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
      json_object_put(o);
      free(line);
      return -1;
    }
    json_object *sw = get(o, "sweep"), *st = get(sw, "status");
    char *key = (st && strcmp(json_object_get_string(st), "ok") != 0) ? NULL : group_key(o);
    if (!key) {
      skipped++;
      json_object_put(o);
      continue;
    }
    group_t *g = NULL;
    for (size_t i = 0; i < gs->n; i++)
      if (!strcmp(gs->g[i].key, key)) g = &gs->g[i];
    if (!g) {
      if (gs->n == gs->cap) {
        gs->cap = gs->cap ? 2 * gs->cap : 16;
        gs->g = realloc(gs->g, gs->cap * sizeof *gs->g);
        if (!gs->g) abort();
      }
      g = &gs->g[gs->n++];
      memset(g, 0, sizeof *g);
      g->key = key;
    } else {
      free(key);
    }
    g->runs[side]++;
    for (size_t i = 0; i < NFIG; i++) {
      json_object *v = get(o, figures[i].a), *parent = o;
      if (figures[i].b) parent = v, v = get(v, figures[i].b);
      if (figures[i].c) parent = v, v = get(v, figures[i].c);
      if (!is_num(v)) continue;
      g->seen[i] = true;
      /* a histogram without samples (a workload that times no operation,
       * a run without a collection) has no percentile: not a 0 */
      json_object *count = figures[i].of_hist ? get(parent, "count") : NULL;
      if (figures[i].of_hist && !(is_num(count) && json_object_get_int64(count) > 0)) continue;
      push(&g->side[side][i], json_object_get_double(v));
    }
    used++;
    json_object_put(o);
  }
  free(line);
  if (used == 0) {
    snprintf(err, errlen, "%s: no result lines (%zu skipped: failed runs or lines without "
             "workload and config)", path, skipped);
    return -1;
  }
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double hl_median(double *v, size_t n) {
  if (n == 0) return NAN;
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The Mann-Whitney U test of x against y (commands.h). Checked against
 * scipy.stats.mannwhitneyu by tests/mwu_scipy.py. */
hl_mwu_t hl_mann_whitney(const double *x, size_t n1, const double *y, size_t n2) {
  hl_mwu_t res = {NAN, NAN, false};
  if (n1 == 0 || n2 == 0) return res;
  size_t n = n1 + n2;
  struct item { double v; int side; } *all = malloc(n * sizeof *all);
  if (!all) abort();
  for (size_t i = 0; i < n1; i++) all[i] = (struct item){x[i], 0};
  for (size_t i = 0; i < n2; i++) all[n1 + i] = (struct item){y[i], 1};
  /* sort by value (insertion sort: samples are small) */
  for (size_t i = 1; i < n; i++) {
    struct item t = all[i];
    size_t j = i;
    while (j > 0 && all[j - 1].v > t.v) {
      all[j] = all[j - 1];
      j--;
    }
    all[j] = t;
  }
  /* midranks; R1 = rank sum of x; tie term sum(t^3 - t) */
  double r1 = 0, ties = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && all[j + 1].v == all[i].v) j++;
    double rank = (double)(i + j) / 2 + 1, t = (double)(j - i + 1);
    if (t > 1) ties += t * t * t - t;
    for (size_t k = i; k <= j; k++)
      if (all[k].side == 0) r1 += rank;
    i = j + 1;
  }
  free(all);
  double u1 = r1 - (double)n1 * (double)(n1 + 1) / 2;
  double mu = (double)n1 * (double)n2 / 2;
  res.u = u1;
  res.exact = ties == 0 && n1 * n2 <= 2500;
  if (res.exact) {
    /* exact: count[u] = arrangements of n1 x's and n2 y's with U = u,
     * built by the recurrence f(i, j, u) = f(i-1, j, u-j) + f(i, j-1, u) */
    size_t umax = n1 * n2;
    double *f = calloc((n2 + 1) * (umax + 1), sizeof *f), *g = calloc((n2 + 1) * (umax + 1), sizeof *g);
    if (!f || !g) abort();
#define F(a, j, u) (a)[(j) * (umax + 1) + (u)]
    for (size_t j = 0; j <= n2; j++) F(f, j, 0) = 1;   /* i = 0: U is 0 */
    for (size_t i = 1; i <= n1; i++) {
      memset(g, 0, (n2 + 1) * (umax + 1) * sizeof *g);
      for (size_t j = 0; j <= n2; j++)
        for (size_t u = 0; u <= i * j; u++)
          F(g, j, u) = (u >= j ? F(f, j, u - j) : 0) + (j > 0 ? F(g, j - 1, u) : 0);
      double *t = f;
      f = g;
      g = t;
    }
    double total = 0, le = 0, ge = 0;
    size_t u = (size_t)llround(u1);
    for (size_t k = 0; k <= umax; k++) {
      double c = F(f, n2, k);
      total += c;
      if (k <= u) le += c;
      if (k >= u) ge += c;
    }
#undef F
    free(f);
    free(g);
    double p = 2 * fmin(le, ge) / total;
    res.p = p > 1 ? 1 : p;
    return res;
  }
  double sigma2 = (double)n1 * (double)n2 / 12 * ((double)(n + 1) - ties / ((double)n * (double)(n - 1)));
  if (sigma2 <= 0) {   /* every value equal */
    res.p = 1;
    return res;
  }
  double z = (fabs(u1 - mu) - 0.5) / sqrt(sigma2);
  if (z < 0) z = 0;
  res.p = erfc(z / sqrt(2));
  return res;
}

double hl_mann_whitney_p(const double *x, size_t n1, const double *y, size_t n2) {
  return hl_mann_whitney(x, n1, y, n2).p;
}

static void fmt_value(double v, const char *label, char *buf, size_t len) {
  if (isnan(v)) snprintf(buf, len, "-");
  else if (!strcmp(label, "peak RSS")) snprintf(buf, len, "%.1f MiB", v / 1048576);
  else if (!strcmp(label, "ops/s")) snprintf(buf, len, "%.3g M", v / 1e6);
  else if (strstr(label, "latency") || strstr(label, "pause")) {
    if (v >= 1e6) snprintf(buf, len, "%.3g ms", v / 1e6);
    else if (v >= 1e3) snprintf(buf, len, "%.3g us", v / 1e3);
    else snprintf(buf, len, "%.0f ns", v);
  } else snprintf(buf, len, "%.4g", v);
}

/* Whether option token "name=value" of a key takes more than one value
 * over all groups: only those are shown in headings (the rest is common). */
static bool option_varies(const groups_t *gs, const char *tok) {
  const char *eq = strchr(tok, '=');
  size_t nlen = eq ? (size_t)(eq - tok) + 1 : strlen(tok);
  for (size_t i = 0; i < gs->n; i++) {
    const char *p = gs->g[i].key;
    bool found = false;
    while ((p = strchr(p, ' '))) {
      p++;
      if (!strncmp(p, tok, nlen)) {
        size_t vlen = strcspn(p, " ");
        found = vlen == strlen(tok) && !strncmp(p, tok, vlen);
        break;
      }
    }
    if (!found) return true;
  }
  return false;
}

/* The heading of a group: the workload and the options that vary. */
static void group_label(const groups_t *gs, const char *key, char *buf, size_t len) {
  size_t wlen = strcspn(key, " "), used;
  used = (size_t)snprintf(buf, len, "%.*s", (int)wlen, key);
  const char *p = key + wlen;
  char tok[512];
  while (*p == ' ' && used < len) {
    p++;
    size_t tlen = strcspn(p, " ");
    snprintf(tok, sizeof tok, "%.*s", (int)tlen, p);
    if (option_varies(gs, tok)) used += (size_t)snprintf(buf + used, len - used, " %s", tok);
    p += tlen;
  }
}

void hl_compare_usage(FILE *f) {
  fprintf(f,
          "usage: heaplab compare A.jsonl B.jsonl\n"
          "\n"
          "For each configuration (workload + options, seed aside) in both files: medians of\n"
          "A and B, the change from A to B, and the two-sided Mann-Whitney U p-value; a\n"
          "change with p < %.2f is marked as significant. Failed sweep runs are skipped.\n"
          "exit status: 0 compared, 2 bad input (unreadable file, no result, nothing in common)\n",
          ALPHA);
}

static void groups_free(groups_t *gs) {
  for (size_t i = 0; i < gs->n; i++) {
    for (int s = 0; s < 2; s++)
      for (size_t k = 0; k < NFIG; k++) free(gs->g[i].side[s][k].v);
    free(gs->g[i].key);
  }
  free(gs->g);
}

int hl_cmd_compare(int argc, char **argv) {
  if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
    hl_compare_usage(stdout);
    return 0;
  }
  if (argc != 2) {
    hl_compare_usage(stderr);
    return 2;
  }
  char err[1024];
  FILE *f[2] = {NULL, NULL};
  int rc = 2;
  for (int i = 0; i < 2; i++)
    if (!(f[i] = fopen(argv[i], "r"))) {
      snprintf(err, sizeof err, "%s: %s", argv[i], strerror(errno));
      goto out;
    }
  rc = hl_compare_streams(f[0], argv[0], f[1], argv[1], stdout, err, sizeof err);
out:
  if (rc != 0) fprintf(stderr, "heaplab compare: %s\n", err);
  for (int i = 0; i < 2; i++)
    if (f[i]) fclose(f[i]);
  return rc;
}

int hl_compare_streams(FILE *fa, const char *name_a, FILE *fb, const char *name_b, FILE *out,
                       char *err, size_t errlen) {
  groups_t gs = {0};
  if (load(fa, name_a, 0, &gs, err, errlen) != 0 || load(fb, name_b, 1, &gs, err, errlen) != 0) {
    groups_free(&gs);
    return 2;
  }
  size_t common = 0, only[2] = {0, 0};
  for (size_t i = 0; i < gs.n; i++) {
    if (gs.g[i].runs[0] && gs.g[i].runs[1]) common++;
    else only[gs.g[i].runs[0] ? 0 : 1]++;
  }
  if (common == 0) {
    snprintf(err, errlen,
             "no configuration is in both files (%zu only in A, %zu only in B); "
             "a configuration is the workload and every option but seed",
             only[0], only[1]);
    groups_free(&gs);
    return 2;
  }
  fprintf(out, "# heaplab compare\n\nA: %s\nB: %s\n\n", name_a, name_b);
  fprintf(out, "Medians; change = B vs A; p: two-sided Mann-Whitney U; * marks p < %.2f.\n", ALPHA);
  fprintf(out, "Headings name the workload and the options that differ between configurations;\n"
         "every configuration shares the rest (see the files' config objects).\n");
  if (only[0] || only[1])
    fprintf(out, "%zu configuration(s) only in A and %zu only in B are not shown.\n", only[0], only[1]);
  for (size_t i = 0; i < gs.n; i++) {
    group_t *g = &gs.g[i];
    if (!g->runs[0] || !g->runs[1]) continue;
    char label[2048];
    group_label(&gs, g->key, label, sizeof label);
    fprintf(out, "\n## %s\n\nruns: A %zu, B %zu%s\n\n", label, g->runs[0], g->runs[1],
           g->runs[0] < 4 || g->runs[1] < 4
               ? " (under 4 a side, no change can reach significance: repeat more)"
               : "");
    fprintf(out, "| figure | A | B | change | p | verdict |\n|---|---|---|---|---|---|\n");
    for (size_t k = 0; k < NFIG; k++) {
      sample_t *a = &g->side[0][k], *b = &g->side[1][k];
      if (!g->seen[k]) continue;   /* no run has it: nothing to say */
      /* "-" for a side without samples: no median, no change, no test */
      double ma = hl_median(a->v, a->n), mb = hl_median(b->v, b->n);
      double change = a->n && b->n && ma != 0 ? (mb - ma) / fabs(ma) * 100 : NAN;
      char sa[32], sb[32], sc[32], sp[32];
      fmt_value(ma, figures[k].label, sa, sizeof sa);
      fmt_value(mb, figures[k].label, sb, sizeof sb);
      if (isnan(change)) snprintf(sc, sizeof sc, "-");
      else snprintf(sc, sizeof sc, "%+.1f%%", change);
      const char *verdict = "-";
      snprintf(sp, sizeof sp, "-");
      if (a->n && b->n) {
        double p = hl_mann_whitney_p(a->v, a->n, b->v, b->n);
        snprintf(sp, sizeof sp, "%.3g", p);
        verdict = "same (noise)";
        if (p < ALPHA && mb != ma) {
          bool better = figures[k].higher_better ? mb > ma : mb < ma;
          verdict = better ? "better *" : "worse *";
        }
      }
      fprintf(out, "| %s | %s | %s | %s | %s | %s |\n", figures[k].label, sa, sb, sc, sp, verdict);
    }
  }
  groups_free(&gs);
  return 0;
}
