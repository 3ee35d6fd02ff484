/* heaplab compare's Mann-Whitney U test as a filter, for tests/mwu_scipy.py:
 * each input line "x1 x2 ... | y1 y2 ..." gives one output line
 * "U P METHOD" (U of x, the two-sided p-value, exact or normal), with every
 * digit a double holds.
 *
 * usage: mwu_calc < vectors
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

/* Reads the numbers of s into v (at most cap); returns how many. */
static size_t parse(char *s, double *v, size_t cap) {
  size_t n = 0;
  for (char *tok = strtok(s, " \t\n"); tok && n < cap; tok = strtok(NULL, " \t\n")) {
    char *end;
    v[n] = strtod(tok, &end);
    if (*end) {
      fprintf(stderr, "mwu_calc: not a number: '%s'\n", tok);
      exit(2);
    }
    n++;
  }
  return n;
}

int main(void) {
  enum { CAP = 100000 };
  static char line[4 << 20];
  static double x[CAP], y[CAP];
  while (fgets(line, sizeof line, stdin)) {
    char *bar = strchr(line, '|');
    if (!bar) {
      fprintf(stderr, "mwu_calc: expected 'x1 x2 ... | y1 y2 ...'\n");
      return 2;
    }
    *bar = '\0';
    size_t n1 = parse(line, x, CAP), n2 = parse(bar + 1, y, CAP);
    hl_mwu_t r = hl_mann_whitney(x, n1, y, n2);
    printf("%.17g %.17g %s\n", r.u, r.p, r.exact ? "exact" : "normal");
  }
  return 0;
}
