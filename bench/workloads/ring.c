/* Rings of lists that carry a value between threads (ring.h). */
#include "ring.h"

hl_object_t *hl_ring_wrap(hl_object_t *value, uint64_t n) {
  hl_object_t *head = hl_list_new(0);
  if (!head || hl_list_append(head, value) != 0) goto fail;
  /* built from the head: each new list takes the previous as its item */
  hl_object_t *prev = head;
  hl_incref(prev);
  for (uint64_t j = 1; j < n; j++) {
    hl_object_t *l = hl_list_new(0);
    if (!l) {
      hl_decref(prev);
      goto fail;
    }
    if (hl_list_append(l, prev) != 0) {
      hl_decref(l);
      hl_decref(prev);
      goto fail;
    }
    hl_decref(prev);
    prev = l;
  }
  /* the head holds the last made, which holds the one before, down to
   * the first made, which holds the head: a ring of n */
  int rc = hl_list_append(head, prev);
  hl_decref(prev);
  if (rc != 0) goto fail;
  return head;
fail:
  if (head) {
    hl_ring_break(head);
    hl_decref(head);
  }
  return NULL;
}

hl_object_t *hl_ring_value(hl_object_t *ring) { return hl_list_get_ref(ring, 0); }

void hl_ring_break(hl_object_t *ring) {
  /* the head's link to the rest (its second item), when it has one */
  if (hl_list_size(ring) < 2) return;
  hl_object_t *rest = hl_list_pop(ring);
  hl_xdecref(rest);
}
