/* str: immutable byte strings with a cached hash, interning, and the
 * preallocated one-byte strings.
 *
 * Interning (sys.intern, PyUnicode_InternInPlace): a table maps each
 * interned value to its one canonical object, so that equal identifiers
 * compare by address and share memory. Here the table is a heaplab dict
 * whose keys and values are the canonical strings; it holds them until
 * hl_runtime_fini (CPython before 3.12 let interned strings die when their
 * last outside reference went; keeping them is PEP 683's choice, and with
 * --immortal=on they are immortal).
 *
 * The 256 one-byte strings live outside the allocator, like the small ints.
 * The hash is FNV-1a over the bytes, finished with a multiply-xorshift so
 * that the low bits the dict indexes with depend on every byte.
 */
#include <string.h>

#include "gc_internal.h"

/* hl_str_t with room for one byte and the NUL, for the static table. */
typedef struct {
  hl_object_t ob;
  int64_t hash;
  size_t len;
  char data[8];
} str1_t;
_Static_assert(offsetof(str1_t, data) == offsetof(hl_str_t, data), "str1_t mirrors hl_str_t");

/* Each with the word rc=biased keeps in front of an object. */
static struct { uint64_t rc_shared; str1_t s; } one_char_tab[256];
#define one_char(i) (one_char_tab[i].s)
static hl_object_t *interned;     /* dict str -> str, NULL before init */

/* The cached hash is written by whichever thread asks first, and read by
 * any (without a GIL, strings are shared): relaxed atomics, and every
 * writer writes the same value. */
static inline int64_t cached_hash(const hl_str_t *s) {
  return hl_atomic_c11_load_relaxed_i64(&s->hash);
}

int64_t hli_str_hash(hl_object_t *o) {
  hl_str_t *s = (hl_str_t *)o;
  int64_t cached = cached_hash(s);
  if (cached != -1) return cached;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < s->len; i++) {
    h ^= (unsigned char)s->data[i];
    h *= 0x100000001b3ull;
  }
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93ull;
  h ^= h >> 32;
  int64_t r = (int64_t)(h >> 1);
  if (r == -1) r = -2;
  hl_atomic_c11_store_relaxed_i64(&s->hash, r);
  return r;
}

static int str_eq(hl_object_t *a, hl_object_t *b) {
  hl_str_t *x = (hl_str_t *)a, *y = (hl_str_t *)b;
  if (x->len != y->len) return 0;
  int64_t hx = cached_hash(x), hy = cached_hash(y);
  if (hx != -1 && hy != -1 && hx != hy) return 0;
  /* two distinct interned strings are never equal */
  if ((a->flags & HL_OF_INTERNED) && (b->flags & HL_OF_INTERNED)) return 0;
  return memcmp(x->data, y->data, x->len) == 0;
}

static void str_dealloc(hl_object_t *o) {
  HL_ASSERT(!(o->flags & HL_OF_STATIC));
  hli_obj_free(o);
}

const hl_type_t hl_str_type = {
  .name = "str", .flags = HL_TF_BASETYPE | HL_TF_LEAF, .kind = HL_K_STR,
  .dealloc = str_dealloc, .hash = hli_str_hash, .eq = str_eq};

int hli_str_init(void) {
  for (int i = 0; i < 256; i++) {
    hli_obj_init_static(&one_char(i).ob, &hl_str_type);
    one_char(i).hash = -1;
    one_char(i).len = 1;
    one_char(i).data[0] = (char)i;
    one_char(i).data[1] = '\0';
    one_char(i).ob.flags |= HL_OF_INTERNED;
  }
  interned = hl_dict_new();
  return interned ? 0 : -1;
}

/* Frees the interned strings. With --immortal=on their counts never move,
 * so they are freed here directly (strings reference nothing). */
void hli_str_fini(void) {
  if (!interned) return;
  hl_dict_t *d = (hl_dict_t *)interned;
  size_t n = d->keys ? d->keys->nentries : 0;   /* no table before the first interning */
  hl_object_t **immortals = NULL;
  size_t nimm = 0;
  if (hl_rc_config.immortal && n) {
    immortals = hl_alloc_malloc(n * sizeof *immortals);
    if (!immortals) hl_die("out of memory freeing the interned strings");
    for (size_t i = 0; i < n; i++) {
      hl_object_t *k = d->keys->entries[i].key;
      if (k && hl_is_immortal(k) && !(k->flags & HL_OF_STATIC)) immortals[nimm++] = k;
    }
  }
  hl_object_t *t = interned;
  interned = NULL;
  hl_decref(t);
  for (size_t i = 0; i < nimm; i++) hli_obj_free(immortals[i]);
  if (immortals) hl_alloc_free(immortals);
}

hl_object_t *hl_str_new(const char *bytes, size_t len) {
  if (len == 1) return hl_newref(&one_char((unsigned char)bytes[0]).ob);
  if (len > SIZE_MAX / 2) {
    hl_err_set(HL_ERR_VALUE, "str of %zu bytes is too long", len);
    return NULL;
  }
  hl_str_t *s = (hl_str_t *)hli_obj_alloc(&hl_str_type, sizeof(hl_str_t) + len + 1);
  if (HL_UNLIKELY(!s)) return NULL;
  s->hash = -1;
  s->len = len;
  if (len) memcpy(s->data, bytes, len);
  s->data[len] = '\0';
  return &s->ob;
}

hl_object_t *hl_str_from(const char *cstr) { return hl_str_new(cstr, strlen(cstr)); }

/* Without a GIL the table is one lock's (interning is rare: names, keys). */
static hl_spinlock_t intern_lock = HL_SPINLOCK_INITIALIZER;

hl_object_t *hl_str_intern(hl_object_t *s) {
  HL_ASSERT(s->type == &hl_str_type);
  if (s->flags & HL_OF_INTERNED) return s;
  int64_t h = hli_str_hash(s);
  bool ft = hli_nogil();
  if (ft) hl_spinlock_lock(&intern_lock);
  hl_dict_entry_t *e = hli_dict_lookup((hl_dict_t *)interned, s, h);
  if (e) {
    hl_object_t *canon = hl_newref(e->key);
    if (ft) hl_spinlock_unlock(&intern_lock);
    hl_decref(s);
    return canon;
  }
  if (hli_dict_insert((hl_dict_t *)interned, s, h, s) != 0) {
    /* out of memory: s stays as it is, not interned, and the caller
     * succeeds, so the error it absorbed is not left behind */
    if (ft) hl_spinlock_unlock(&intern_lock);
    hl_err_clear();
    return s;
  }
  s->flags |= HL_OF_INTERNED;
  if (hl_rc_config.immortal) hli_make_immortal(s);
  if (ft) hl_spinlock_unlock(&intern_lock);
  return s;
}

hl_object_t *hl_str_intern_cstr(const char *cstr) {
  hl_object_t *s = hl_str_from(cstr);
  return s ? hl_str_intern(s) : NULL;
}

const char *hl_str_data(const hl_object_t *o) {
  HL_ASSERT(o->type == &hl_str_type);
  return ((const hl_str_t *)o)->data;
}

size_t hl_str_len(const hl_object_t *o) {
  HL_ASSERT(o->type == &hl_str_type);
  return ((const hl_str_t *)o)->len;
}
