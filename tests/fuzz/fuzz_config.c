/* tests/fuzz/fuzz_config.c: a libFuzzer harness for the config file parser
 * (base/config.c: hl_config_load_stream, the reader of hl_config_load_file,
 * and through it hl_config_set for every option type).
 *
 * An input is the text of a config file, read through fmemopen. Beyond
 * "no crash": a refusal carries a message; and after a file that loads,
 * every option's value round-trips: hl_config_format's text, given to
 * hl_config_set on a fresh configuration, is accepted and formats back to
 * the same text, and duration-s (the one number with a fraction) comes back
 * as the same double. The result files record the formatted text, so a
 * value that does not round-trip is a run that cannot be reproduced from
 * its record.
 *
 * Build and run: see tests/fuzz/CMakeLists.txt; replay_config replays
 * tests/fuzz/corpus/config/ in every build.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *name, const char *a, const char *b) {
  fprintf(stderr, "fuzz_config: option '%s': %s ('%s', '%s')\n", name, what, a, b);
  abort();   /* libFuzzer reports a deadly signal and saves the input */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;   /* fmemopen refuses an empty buffer */
  FILE *f = fmemopen((void *)data, size, "r");
  if (!f) abort();
  static hl_config_t c, d;
  char err[1024] = "";
  hl_config_defaults(&c);
  int rc = hl_config_load_stream(&c, f, "fuzz.conf", err, sizeof err);
  fclose(f);
  if (rc != 0) {
    if (rc != -1 || err[0] == '\0') fail("refused without a message", "", "", "");
    return 0;
  }
  static char text[8192], again[8192];
  for (int id = 0; id < (int)hl_config_option_count(); id++) {
    hl_option_info_t info;
    hl_config_option_info((hl_opt_id_t)id, &info);
    hl_config_format(&c, (hl_opt_id_t)id, text, sizeof text);
    hl_config_defaults(&d);
    if (hl_config_set(&d, info.name, text, HL_SRC_FILE, "round trip", err, sizeof err) != 0)
      fail("its formatted value is refused", info.name, text, err);
    hl_config_format(&d, (hl_opt_id_t)id, again, sizeof again);
    if (strcmp(text, again) != 0) fail("formats back differently", info.name, text, again);
    if (id == HL_OPT_DURATION_S && c.duration_s != d.duration_s) {
      snprintf(text, sizeof text, "%.17g", c.duration_s);
      snprintf(again, sizeof again, "%.17g", d.duration_s);
      fail("its formatted value is another number", info.name, text, again);
    }
  }
  return 0;
}
