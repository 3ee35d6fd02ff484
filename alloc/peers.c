/* Peer allocators: the allocators heaplab is measured against, loaded at run
 * time from their Debian packages so that the same binary, the same workload
 * and the same harness run them all.
 *
 *   alloc=     library (Debian package)                 entry points
 *   obmalloc   libpython3.11.so.1.0 (libpython3.11)     PyObject_Malloc/Free/Realloc
 *   mimalloc   libmimalloc.so.2 (libmimalloc2.0)        mi_malloc/mi_free/mi_realloc
 *   jemalloc   libjemalloc.so.2 (libjemalloc2)          malloc/free/realloc (no prefix)
 *   tcmalloc   libtcmalloc_minimal.so.4 (libtcmalloc-minimal4), else
 *              libtcmalloc.so.4 (libgoogle-perftools4)  tc_malloc/tc_free/tc_realloc
 *
 * Side by side, not instead: dlopen(3) with RTLD_LOCAL keeps the library's
 * symbols out of the global lookup scope, so every other malloc in the
 * process (the C library's, the harness's own tables, json-c, hwloc) still
 * binds to glibc; only the pointers taken here reach the peer. jemalloc,
 * mimalloc and tcmalloc also define the plain malloc/free (they are built to
 * replace glibc's by LD_PRELOAD), and with RTLD_LOCAL those definitions stay
 * invisible too. Mixing is safe as long as each block goes back to the
 * allocator it came from, which holds because hl_alloc_free calls the peer's
 * free only on blocks from the peer's malloc (checked once by hand with
 * jemalloc's mallctl("thread.allocated") and glibc's mallinfo2: a block from
 * the pointer taken here moves the first and not the second).
 *
 * Why the symbol's owner is checked: dlsym(handle, name) searches the
 * library and then its dependencies (dlsym(3)). Debian builds jemalloc
 * without a prefix (jemalloc's INSTALL.md, --with-jemalloc-prefix), so its
 * entry points are the plain "malloc"...; were a future build prefixed,
 * dlsym(handle, "malloc") would quietly return glibc's malloc from the
 * dependency list and the run would measure glibc under jemalloc's name.
 * So every entry point must be defined in the library that was opened.
 *
 * Traps found on Debian 12:
 * - jemalloc keeps 2.6 KiB of thread-local data in the initial-exec model
 *   (readelf -l: a TLS segment of 0xa48 bytes), more than the surplus glibc
 *   reserves for libraries opened later (the rtld.optional_static_tls
 *   tunable, 512 bytes by default): dlopen fails with "cannot allocate
 *   memory in static TLS block". It loads when the process starts with
 *   GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096; the message says so,
 *   and the driver starts itself again with it (hl_alloc_set_static_tls_retry).
 *   tcmalloc's (88 bytes) and mimalloc's (9 bytes) fit.
 * - CPython 3.11's object allocator works before Py_Initialize: its
 *   allocator tables are static initialisers (Objects/obmalloc.c), so
 *   PyMem_GetAllocator(PYMEM_DOMAIN_OBJ) already names pymalloc and
 *   _Py_GetAllocatedBlocks() counts our blocks; the interpreter is never
 *   started. But pymalloc keeps its pools in plain globals and relies on the
 *   GIL: four threads calling PyObject_Malloc at once crashed in every
 *   try. hli_peer_serialize puts one lock around it.
 * - tcmalloc takes its memory with sbrk(2) by default, and so does glibc's
 *   main arena; each serialises its own calls, but not against the other,
 *   and glibc's sbrk is a read-modify-write of the break that two threads
 *   can interleave, both receiving the same range. strace of alloc-frag
 *   with 2 threads: about 250 brk calls per worker thread. With
 *   TCMALLOC_SKIP_SBRK=1, set here before loading unless the user set it,
 *   tcmalloc maps its memory instead. Its first region still comes from
 *   sbrk (a constructor allocates, it seems, before the flag is read), but
 *   that happens inside dlopen, while the process is single-threaded.
 * - Under AddressSanitizer the peers load and run (jemalloc with the
 *   tunable above), but their blocks are invisible to it: no redzones, no
 *   use-after-free detection, only the instrumented code's own accesses.
 *   LeakSanitizer would report tcmalloc's start-up allocation, so what
 *   dlopen allocates is excluded from leak checking.
 * - Under ThreadSanitizer the three thread-safe peers are refused: their
 *   own synchronisation is not instrumented, so a block that one thread
 *   frees and the allocator hands to another looks like a race. tcmalloc
 *   (central free lists) drew 4 to 7 reports per run of alloc-lifo and
 *   alloc-random with 2 threads, and on alloc-lifo TSan spent minutes
 *   comparing racy addresses. A clean run would prove nothing either.
 *   obmalloc stays: its calls go through hli_peer_serialize's lock, which
 *   TSan sees.
 *
 * Libraries are never closed: blocks from them may still be live, and
 * neither jemalloc nor tcmalloc supports being unloaded.
 */
#define _GNU_SOURCE  /* dladdr1, dlinfo: glibc declares them only for GNU sources */
#include "peers.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl_lock.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* What a library allocates from its constructors while dlopen runs them
 * (tcmalloc registers its MallocExtension with an operator new it never
 * frees) is its own business; LeakSanitizer would fail every run for it. */
#define LEAKS_IGNORED_BEGIN() __lsan_disable()
#define LEAKS_IGNORED_END() __lsan_enable()
#else
#define LEAKS_IGNORED_BEGIN() ((void)0)
#define LEAKS_IGNORED_END() ((void)0)
#endif

typedef struct peer_lib {
  const char *soname;
  const char *package;
} peer_lib_t;

typedef struct peer_desc {
  hl_alloc_kind_t kind;
  const char *name;
  peer_lib_t libs[2];           /* tried in order; the first is preferred */
  const char *sym_malloc, *sym_free, *sym_realloc;
  const char *sym_collect;      /* see hli_peer_collect; NULL: none */
  bool thread_safe;
  const char *env_name, *env_value;  /* set before loading, unless the user set it */
} peer_desc_t;

/* tcmalloc_minimal first: the full library adds the heap profiler and leak
 * checker hooks (and libunwind) to every allocation path, which is not the
 * allocator being compared. */
static const peer_desc_t peers[] = {
  {HL_ALLOC_OBMALLOC, "obmalloc", {{"libpython3.11.so.1.0", "libpython3.11"}, {NULL, NULL}},
   "PyObject_Malloc", "PyObject_Free", "PyObject_Realloc", NULL, false, NULL, NULL},
  {HL_ALLOC_MIMALLOC, "mimalloc", {{"libmimalloc.so.2", "libmimalloc2.0"}, {NULL, NULL}},
   "mi_malloc", "mi_free", "mi_realloc", "mi_collect", true, NULL, NULL},
  {HL_ALLOC_JEMALLOC, "jemalloc", {{"libjemalloc.so.2", "libjemalloc2"}, {NULL, NULL}},
   "malloc", "free", "realloc", "mallctl", true, NULL, NULL},
  {HL_ALLOC_TCMALLOC, "tcmalloc",
   {{"libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"}, {"libtcmalloc.so.4", "libgoogle-perftools4"}},
   "tc_malloc", "tc_free", "tc_realloc", "MallocExtension_ReleaseFreeMemory", true,
   "TCMALLOC_SKIP_SBRK", "1"},
};

static const peer_desc_t *find_peer(hl_alloc_kind_t kind) {
  for (size_t i = 0; i < HL_ARRAY_LEN(peers); i++)
    if (peers[i].kind == kind) return &peers[i];
  return NULL;
}

/* The address of `name` if the library behind `handle` itself defines it;
 * NULL (with a reason) if it is missing or only a dependency has it. */
static void *own_symbol(void *handle, const char *name, const char **why) {
  dlerror();
  void *sym = dlsym(handle, name);
  if (!sym) {
    *why = "not exported";
    return NULL;
  }
  struct link_map *lib = NULL, *owner = NULL;
  Dl_info info;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &lib) != 0 ||
      !dladdr1(sym, &info, (void **)&owner, RTLD_DL_LINKMAP) || owner != lib) {
    *why = "found only in a library it depends on";
    return NULL;
  }
  return sym;
}

/* ISO C has no conversion from void * to a function pointer; POSIX
 * guarantees the representation, so copy the bytes. */
#define SET_FN(dst, sym) memcpy(&(dst), &(sym), sizeof(dst))

static void (*static_tls_retry)(void);
void hl_alloc_set_static_tls_retry(void (*fn)(void)) { static_tls_retry = fn; }

int hli_peer_load(hl_alloc_kind_t kind, hl_alloc_peer_t *out, char *err, size_t errlen) {
  const peer_desc_t *d = find_peer(kind);
  if (!d) {
    snprintf(err, errlen, "%s is not a peer allocator",
             hl_config_choice_name(HL_OPT_ALLOC, (int)kind));
    return -1;
  }
  if (HL_ATOMIC_TSAN && d->thread_safe) {
    snprintf(err, errlen,
             "%s is not instrumented for ThreadSanitizer, which would report its internal "
             "hand-offs of blocks between threads as races; use a build without TSan",
             d->name);
    return -1;
  }
  /* Remember why the preferred library failed: that is the message worth
   * showing when the fallback fails too. */
  char first[256] = "";
  /* read by the library's static constructors, so before dlopen; the
   * caller is single-threaded here (setenv is not thread-safe) */
  if (d->env_name) setenv(d->env_name, d->env_value, 0);
  for (size_t i = 0; i < HL_ARRAY_LEN(d->libs) && d->libs[i].soname; i++) {
    const peer_lib_t *lib = &d->libs[i];
    char why[256];
    LEAKS_IGNORED_BEGIN();
    void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    LEAKS_IGNORED_END();
    if (!h) {
      const char *e = dlerror();
      snprintf(why, sizeof why, "%s", e ? e : "dlopen failed");
    } else {
      const char *reason = NULL, *missing = NULL;
      void *m = own_symbol(h, d->sym_malloc, &reason);
      void *f = m ? own_symbol(h, d->sym_free, &reason) : NULL;
      void *r = f ? own_symbol(h, d->sym_realloc, &reason) : NULL;
      if (r) {
        memset(out, 0, sizeof *out);
        out->name = d->name;
        out->library = lib->soname;
        SET_FN(out->malloc, m);
        SET_FN(out->free, f);
        SET_FN(out->realloc, r);
        if (d->sym_collect) out->collect = own_symbol(h, d->sym_collect, &reason);
        return 0;
      }
      missing = !m ? d->sym_malloc : !f ? d->sym_free : d->sym_realloc;
      snprintf(why, sizeof why, "%s: symbol %s %s", lib->soname, missing, reason);
      /* no dlclose: a library that ran its constructors may have started
       * threads or registered handlers that outlive an unload */
    }
    if (!first[0]) snprintf(first, sizeof first, "%s", why);
  }

  /* Short enough for a 256-byte buffer: the caller prefixes the option. */
  if (strstr(first, "static TLS")) {
    if (static_tls_retry) static_tls_retry();   /* returns only when it cannot */
    snprintf(err, errlen,
             "%s is installed, but dlopen cannot give it the initial-exec thread-local storage it "
             "needs: start heaplab with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096",
             d->libs[0].soname);
  } else {
    size_t n = (size_t)snprintf(err, errlen, "cannot load %s (%s): install the Debian package %s",
                                d->libs[0].soname, first, d->libs[0].package);
    if (d->libs[1].soname && n < errlen)
      snprintf(err + n, errlen - n, " (or %s for %s)", d->libs[1].package, d->libs[1].soname);
  }
  return -1;
}

bool hli_peer_thread_safe(hl_alloc_kind_t kind) {
  const peer_desc_t *d = find_peer(kind);
  return !d || d->thread_safe;
}

/* ---- one lock around a peer that relies on the GIL ----------------------
 * A spinlock, as in the rest of heaplab for short critical sections: a
 * pymalloc call is tens of nanoseconds, except the rare arena mmap, and
 * hl_spinlock yields when the holder is descheduled. The originals live in
 * file statics because the wrappers have the plain malloc signature; one
 * serialised peer per process, which is what hl_alloc_init sets up. */
static hl_spinlock_t serial_lock = HL_SPINLOCK_INITIALIZER;
static hl_alloc_peer_t serial_inner;

static void *serial_malloc(size_t n) {
  hl_spinlock_lock(&serial_lock);
  void *p = serial_inner.malloc(n);
  hl_spinlock_unlock(&serial_lock);
  return p;
}

static void serial_free(void *p) {
  hl_spinlock_lock(&serial_lock);
  serial_inner.free(p);
  hl_spinlock_unlock(&serial_lock);
}

static void *serial_realloc(void *p, size_t n) {
  hl_spinlock_lock(&serial_lock);
  void *q = serial_inner.realloc(p, n);
  hl_spinlock_unlock(&serial_lock);
  return q;
}

void hli_peer_serialize(hl_alloc_peer_t *p) {
  if (p->malloc == serial_malloc) return;  /* already wrapped */
  serial_inner = *p;
  p->malloc = serial_malloc;
  p->free = serial_free;
  p->realloc = serial_realloc;
}

/* The peer's "give memory back" call, each with its own signature. */
void hli_peer_collect(hl_alloc_kind_t kind, const hl_alloc_peer_t *p) {
  if (!p->collect) return;
  switch (kind) {
  case HL_ALLOC_MIMALLOC: {
    void (*fn)(bool);
    SET_FN(fn, p->collect);
    fn(true);   /* mi_collect(force) */
    break;
  }
  case HL_ALLOC_JEMALLOC: {
    int (*fn)(const char *, void *, size_t *, void *, size_t);
    SET_FN(fn, p->collect);
    /* MALLCTL_ARENAS_ALL is 4096: every arena */
    (void)fn("arena.4096.purge", NULL, NULL, NULL, 0);
    break;
  }
  case HL_ALLOC_TCMALLOC: {
    void (*fn)(void);
    SET_FN(fn, p->collect);
    fn();
    break;
  }
  default:
    break;
  }
}
