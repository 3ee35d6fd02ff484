/* The allocator workloads' block sizes (sizes.h says what each distribution
 * is and cites its sources). */
#include "sizes.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bin {
  uint32_t size;
  uint64_t count;
} bin_t;

static int cmp_bin(const void *a, const void *b) {
  const bin_t *x = a, *y = b;
  return (x->size > y->size) - (x->size < y->size);
}

/* One "SIZE COUNT" line (after '#' stripping); false if it is not one. */
static bool parse_line(const char *line, uint64_t *size, uint64_t *count) {
  const char *p = line;
  for (int k = 0; k < 2; k++) {
    while (*p == ' ' || *p == '\t') p++;
    if (*p < '0' || *p > '9') return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno) return false;
    *(k == 0 ? size : count) = v;
    p = end;
  }
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  return *p == '\0';
}

/* Reads the histogram into bins sorted by size, duplicates merged, clipped
 * to lo..hi when hi != 0. */
static int read_histogram(const char *path, uint32_t lo, uint32_t hi, bin_t **out, uint32_t *nout,
                          char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "size-hist=%s: cannot open it: %s", path, strerror(errno));
    return -1;
  }
  bin_t *bins = NULL;
  size_t n = 0, cap = 0, lineno = 0, len = 0;
  char *line = NULL;
  ssize_t got;
  int rc = -1;
  while ((got = getline(&line, &len, f)) >= 0) {
    lineno++;
    if (memchr(line, '\0', (size_t)got)) {
      snprintf(err, errlen, "size-hist=%s:%zu: a NUL byte; accepted: text lines \"SIZE COUNT\"",
               path, lineno);
      goto out;
    }
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    const char *p = line;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (!*p) continue;
    uint64_t size = 0, count = 0;
    if (!parse_line(line, &size, &count) || size < 1 || size > (1u << 30) ||
        count > (UINT64_C(1) << 48)) {
      snprintf(err, errlen,
               "size-hist=%s:%zu: not a histogram line; accepted: \"SIZE COUNT\" with SIZE in "
               "1..%u and COUNT in 0..2^48, '#' starting a comment",
               path, lineno, 1u << 30);
      goto out;
    }
    if (count == 0 || (hi && (size < lo || size > hi))) continue;
    if (n == cap) {
      size_t ncap = cap ? 2 * cap : 256;
      bin_t *nb = realloc(bins, ncap * sizeof *nb);
      if (!nb) {
        snprintf(err, errlen, "size-hist=%s: out of memory at line %zu", path, lineno);
        goto out;
      }
      bins = nb;
      cap = ncap;
    }
    bins[n++] = (bin_t){(uint32_t)size, count};
  }
  if (ferror(f)) {
    snprintf(err, errlen, "size-hist=%s: read error: %s", path, strerror(errno));
    goto out;
  }
  if (n) qsort(bins, n, sizeof *bins, cmp_bin);   /* bins is NULL when n is 0 */
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (m && bins[m - 1].size == bins[i].size) bins[m - 1].count += bins[i].count;
    else bins[m++] = bins[i];
  }
  if (m == 0) {
    if (hi)
      snprintf(err, errlen, "size-hist=%s: no size with a count in %u..%u (--sizes); accepted: "
               "a histogram with sizes in that range, or --sizes=auto", path, lo, hi);
    else
      snprintf(err, errlen, "size-hist=%s: no \"SIZE COUNT\" line with a count above 0", path);
    goto out;
  }
  if (m > HL_SIZES_HIST_MAX) {
    snprintf(err, errlen, "size-hist=%s: %zu distinct sizes; accepted: at most %u", path, m,
             HL_SIZES_HIST_MAX);
    goto out;
  }
  *out = bins;
  *nout = (uint32_t)m;
  bins = NULL;
  rc = 0;
out:
  free(line);
  free(bins);
  fclose(f);
  return rc;
}

/* Vose's construction of Walker's alias table. */
static int build_alias(hl_sizes_t *s, const bin_t *bins, uint32_t n) {
  s->value = malloc(n * sizeof *s->value);
  s->alias = malloc(n * sizeof *s->alias);
  s->keep = malloc(n * sizeof *s->keep);
  double *p = malloc(n * sizeof *p);
  uint32_t *small = malloc(n * sizeof *small), *large = malloc(n * sizeof *large);
  int rc = -1;
  if (!s->value || !s->alias || !s->keep || !p || !small || !large) goto out;
  double total = 0, sum = 0;
  for (uint32_t i = 0; i < n; i++) total += (double)bins[i].count;
  uint32_t ns = 0, nl = 0;
  for (uint32_t i = 0; i < n; i++) {
    s->value[i] = bins[i].size;
    s->alias[i] = i;
    p[i] = (double)bins[i].count * n / total;
    sum += (double)bins[i].count * bins[i].size;
    if (p[i] < 1.0) small[ns++] = i;
    else large[nl++] = i;
  }
  s->mean = sum / total;
  while (ns && nl) {
    uint32_t a = small[--ns], b = large[nl - 1];
    s->keep[a] = (uint64_t)ldexp(p[a], 32);
    s->alias[a] = b;
    p[b] -= 1.0 - p[a];
    if (p[b] < 1.0) {
      nl--;
      small[ns++] = b;
    }
  }
  /* what is left is 1 up to rounding: always its own value */
  while (nl) s->keep[large[--nl]] = UINT64_C(1) << 32;
  while (ns) s->keep[small[--ns]] = UINT64_C(1) << 32;
  s->n = n;
  rc = 0;
out:
  free(p);
  free(small);
  free(large);
  return rc;
}

/* The inverse distribution function of density ~ x^-1.5 on [min, max + 1),
 * at 4096 quantiles: piece i spans edges[i]..edges[i + 1]. */
static int build_power_law(hl_sizes_t *s) {
  s->edges = malloc((HL_SIZES_PIECES + 1) * sizeof *s->edges);
  if (!s->edges) return -1;
  double a = 1.0 / sqrt((double)s->min), b = 1.0 / sqrt((double)s->max + 1.0), sum = 0;
  for (uint32_t i = 0; i <= HL_SIZES_PIECES; i++) {
    double u = (double)i / HL_SIZES_PIECES, y = a - u * (a - b);
    double x = 1.0 / (y * y);
    uint32_t e = x >= (double)s->max ? s->max : (uint32_t)x;
    if (e < s->min) e = s->min;
    if (i && e < s->edges[i - 1]) e = s->edges[i - 1];
    s->edges[i] = e;
  }
  s->edges[HL_SIZES_PIECES] = s->max;
  for (uint32_t i = 0; i < HL_SIZES_PIECES; i++)
    sum += ((double)s->edges[i] + s->edges[i + 1]) / 2;
  s->mean = sum / HL_SIZES_PIECES;
  return 0;
}

int hl_sizes_init(hl_sizes_t *s, const hl_config_t *c, uint32_t def_min, uint32_t def_max,
                  uint32_t limit, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  bool given = c->sizes[0] != 0;
  s->min = given ? c->sizes[0] : def_min;
  s->max = given ? c->sizes[1] : def_max;
  s->dist = c->size_dist;
  switch (s->dist) {
  case HL_SIZE_DIST_UNIFORM: s->mean = ((double)s->min + s->max) / 2; break;
  case HL_SIZE_DIST_POWER_LAW:
    if (build_power_law(s) != 0) goto oom;
    break;
  case HL_SIZE_DIST_HISTOGRAM: {
    bin_t *bins;
    uint32_t n;
    if (read_histogram(c->size_hist, given ? s->min : 0, given ? s->max : 0, &bins, &n, err,
                       errlen) != 0)
      return -1;
    s->min = bins[0].size;
    s->max = bins[n - 1].size;
    int rc = build_alias(s, bins, n);
    free(bins);
    if (rc != 0) goto oom;
    break;
  }
  }
  if (limit && s->max > limit) {
    snprintf(err, errlen, "sizes: blocks up to %u B asked for, but this workload records sizes "
             "up to %u B; accepted: --sizes=MIN..MAX with MAX <= %u", s->max, limit, limit);
    return -1;
  }
  return 0;
oom:
  snprintf(err, errlen, "sizes: out of memory for the size table");
  return -1;
}

void hl_sizes_fini(hl_sizes_t *s) {
  free(s->edges);
  free(s->value);
  free(s->alias);
  free(s->keep);
  memset(s, 0, sizeof *s);
}

int hl_sizes_check(const hl_config_t *c, uint32_t def_min, uint32_t def_max, uint32_t limit,
                   char *err, size_t errlen) {
  hl_sizes_t s;
  int rc = hl_sizes_init(&s, c, def_min, def_max, limit, err, errlen);
  hl_sizes_fini(&s);
  return rc;
}

uint32_t hl_sizes_scale_slots(const hl_sizes_t *s, uint32_t slots, uint32_t def_min,
                              uint32_t def_max, uint32_t floor) {
  double bytes = (double)slots * ((double)def_min + def_max) / 2;
  double n = bytes / (s->mean > 1 ? s->mean : 1);
  if (n >= slots) return slots;
  return n < floor ? floor : (uint32_t)n;
}
