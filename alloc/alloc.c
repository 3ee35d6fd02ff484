/* The allocator layer's strategy switch (see hl_alloc.h). */
#include "hl_alloc.h"

#include <errno.h>
#include <stdio.h>

hl_alloc_state_t hl_alloc_state;

int hl_alloc_init(const hl_config_t *c, char *err, size_t errlen) {
  switch (c->alloc) {
  case HL_ALLOC_SYSTEM:
    hl_alloc_state.kind = HL_ALLOC_SYSTEM;
    hl_alloc_state.initialized = 1;
    return 0;
  case HL_ALLOC_POOL:
    break;
  }
  snprintf(err, errlen, "alloc=%s is not built in this version; accepted now: system",
           hl_config_choice_name(HL_OPT_ALLOC, (int)c->alloc));
  return -ENOSYS;
}

const char *hl_alloc_name(void) {
  return hl_config_choice_name(HL_OPT_ALLOC, (int)hl_alloc_state.kind);
}
