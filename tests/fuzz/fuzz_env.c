/* tests/fuzz/fuzz_env.c: a libFuzzer harness for the environment reader
 * (base/config.c: hl_config_load_env).
 *
 * An input is an environment: one NAME=VALUE entry a line (a NUL byte ends
 * an entry early, as in a real environment). The harness decides on its
 * own, from the option table (hl_config_option_info's env column) and the
 * list of variables other parts read, what the reader must do, and checks
 * it did:
 *   - a variable that starts with HEAPLAB_ and is neither an option's
 *     documented variable nor on that list is refused, whatever its length
 *     or spelling;
 *   - otherwise the environment is refused iff some option's variable holds
 *     a value hl_config_set refuses for that option;
 *   - once accepted, each option set by the environment holds what
 *     hl_config_set makes of its variable's last value, and says so
 *     (source HL_SRC_ENV); every other option keeps its default.
 *
 * Build and run: see tests/fuzz/CMakeLists.txt; replay_env replays
 * tests/fuzz/corpus/env/ in every build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_ENTRIES = 256 };

/* hl_config_resolve's list (base/config.c): read by other parts. */
static const char *const extra_ok[] = {"HEAPLAB_STATS", "HEAPLAB_STATS_FILE",
                                       "HEAPLAB_MICRO_ITERATIONS", "HEAPLAB_SWEEP_BINARY", NULL};

static void fail(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "fuzz_env: ");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  abort();   /* libFuzzer reports a deadly signal and saves the input */
}

static bool is_extra(const char *var, size_t len) {
  for (const char *const *x = extra_ok; *x; x++)
    if (strlen(*x) == len && strncmp(*x, var, len) == 0) return true;
  return false;
}

/* The option whose documented variable is var[0..len), or -1. */
static int option_of(const char *var, size_t len) {
  static const char *env[HL_OPT_COUNT];
  if (!env[0])
    for (int id = 0; id < HL_OPT_COUNT; id++) {
      hl_option_info_t info;
      hl_config_option_info((hl_opt_id_t)id, &info);
      env[id] = info.env;   /* lives as long as the process */
    }
  for (int id = 0; id < HL_OPT_COUNT; id++)
    if (strlen(env[id]) == len && strncmp(env[id], var, len) == 0) return id;
  return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char buf[1 << 16];
  static char *envp[MAX_ENTRIES + 1];
  static int last[HL_OPT_COUNT];         /* per option: its last entry, or -1 */
  static hl_config_t c, want, d;
  if (size >= sizeof buf) return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  int n = 0;
  for (char *p = buf; p && n < MAX_ENTRIES;) {
    char *nl = memchr(p, '\n', (size_t)(buf + size - p));
    if (nl) *nl = '\0';
    envp[n++] = p;
    p = nl ? nl + 1 : NULL;
  }
  envp[n] = NULL;
  int nopt = HL_OPT_COUNT;
  for (int id = 0; id < nopt; id++) last[id] = -1;
  bool unknown = false;
  const char *unknown_var = "";
  for (int i = 0; i < n; i++) {
    const char *eq = strchr(envp[i], '=');
    if (!eq) continue;
    size_t len = (size_t)(eq - envp[i]);
    if (strncmp(envp[i], "HEAPLAB_", 8) != 0 || is_extra(envp[i], len)) continue;
    int id = option_of(envp[i], len);
    if (id < 0 && !unknown) unknown = true, unknown_var = envp[i];
    if (id >= 0) last[id] = i;
  }
  /* what the reader must make of it: the refusal hl_config_set gives a
   * bad value, else each option from its last variable */
  char err[2048] = "", why[2048];
  bool bad_value = false;
  hl_config_defaults(&want);
  for (int i = 0; i < n; i++) {
    const char *eq = strchr(envp[i], '=');
    if (!eq || strncmp(envp[i], "HEAPLAB_", 8) != 0) continue;
    int id = option_of(envp[i], (size_t)(eq - envp[i]));
    if (id < 0) continue;
    hl_option_info_t info;
    hl_config_option_info((hl_opt_id_t)id, &info);
    if (hl_config_set(&want, info.name, eq + 1, HL_SRC_ENV, "env", why, sizeof why) != 0)
      bad_value = true;
  }
  hl_config_defaults(&c);
  int rc = hl_config_load_env(&c, envp, extra_ok, err, sizeof err);
  if (unknown && rc == 0) fail("the unknown variable '%.200s' was accepted%s", unknown_var, "");
  if (rc != 0) {
    if (err[0] == '\0') fail("refused without a message%s%s", "", "");
    if (!unknown && !bad_value) fail("refused an environment of known variables with valid values: %s%s", err, "");
    return 0;
  }
  if (bad_value) fail("accepted a value that hl_config_set refuses%s%s", "", "");
  static char a[8192], b[8192];
  hl_config_defaults(&d);
  for (int id = 0; id < nopt; id++) {
    hl_config_format(&c, (hl_opt_id_t)id, a, sizeof a);
    hl_config_format(&want, (hl_opt_id_t)id, b, sizeof b);
    if (strcmp(a, b) != 0) fail("an option holds '%.200s', its variable says '%.200s'", a, b);
    if ((c.source[id] == HL_SRC_ENV) != (last[id] >= 0))
      fail("an option's source is wrong (value '%.200s'%s)", a, "");
  }
  return 0;
}
