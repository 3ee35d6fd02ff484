/* replay: a real program's allocations, recorded by libheaplab-trace.so
 * (`heaplab record`), replayed under any --alloc.
 *
 * --input=FILE is a trace (format: docs/trace-format.md, version 1;
 * alloc/hl_trace_format.h). The workload
 *   0. (check, before anything runs) reads and decodes the whole file into
 *      memory, so that a truncated or corrupt trace is bad input (exit 2)
 *      with a message naming the file, the offset and what is wrong, and so
 *      that decoding costs nothing in the timed part. The decoded trace is
 *      kept for setup (the same process; decoded again if the path differs).
 *      --threads must equal the trace's threads: one worker per recorded
 *      thread, each replaying that thread's operations in its order.
 *   1. decodes in the recorded global order (the sequence numbers): each
 *      address is mapped to a block id (an address freed and returned
 *      again is two blocks); a free whose block another thread allocated
 *      is marked to wait. A free of an address the trace never allocated
 *      (a block from before recording began) is dropped; a realloc of one
 *      becomes a malloc. Blocks still live at the end (the program's
 *      leaks, and blocks freed after recording stopped) are freed by their
 *      owner after the timed part.
 *   2. (timed) each worker runs its operations through hl_alloc_*: malloc,
 *      calloc as malloc + memset (no peer entry point for calloc: the same
 *      work under every allocator), realloc, free; memalign and friends
 *      as malloc (the allocators have no aligned entry point here; the
 *      ones asking more than 16 bytes are counted, extra.overaligned). A
 *      free (or realloc) of another thread's block first waits until that
 *      allocation has happened in the replay (it spins on the block's slot,
 *      set with release), so every replay is a valid program: in the
 *      recording the allocation's sequence number was below the free's,
 *      and by induction on sequence numbers no wait can deadlock. A worker
 *      also waits while it is LAG sequence numbers ahead of the slowest
 *      (wait_lag): the trace does not say when an allocation waited for a
 *      free (a bounded queue), and without a bound producers ran ahead of
 *      their consumers, the live heap far past the program's. Each
 *      block of 8 bytes or more gets an 8-byte tag from its id, checked at
 *      its realloc and free: an allocator that hands out overlapping memory
 *      fails the run. Every block is written once per 4 KiB page when it
 *      is made (calloc: its memset), as the program's own writes would
 *      have made it resident: otherwise a large block would cost no RSS.
 *   3. (untimed) the blocks still live are freed.
 * ops = operations replayed. The checksum hashes each thread's (operation,
 * size, block) sequence: it depends on the trace only, so equal checksums
 * say two replays did the same work. Time per operation is the timed
 * part's wall and CPU time over ops: the allocator calls, the tag writes and
 * checks, and the waits for other threads (extra.waits counts the frees that
 * found their block not yet allocated).
 *
 * Memory: setup resets the kernel's RSS high-water mark (/proc/self/
 * clear_refs, 5) after decoding, so the result's peak RSS is the replay's,
 * on top of the decoded trace (extra.rss_base_bytes, read just before);
 * extra.fragmentation = (peak RSS - base) / the trace's peak live bytes
 * (requested sizes, from the decoding).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "hl_trace_format.h"
#include "workload.h"

#define MAX_THREADS 1024u
#define NO_THREAD UINT32_MAX
#define TAG_MUL 0x9e3779b97f4a7c15ull
#define PAGE 4096u
/* How far (in sequence numbers) a worker may run ahead of the slowest:
 * the bound on how much the replay's interleaving, and so its live heap,
 * may stray from the recording's (see rp_work). */
#define LAG 16384u

/* A replayed operation: size_op = size << 8 | flags << 3 | op. For a free,
 * size is the block's (for its tag check); block is the block freed, made,
 * or (realloc) made, and old the block a realloc consumes. */
enum { R_MALLOC = 1, R_CALLOC, R_REALLOC, R_FREE, R_MEMALIGN };
#define F_WAIT 0x08u        /* the block consumed was made by another thread */
#define F_OLD_TAGGED 0x10u  /* realloc: the old block had a tag (8 bytes or more) */
typedef struct rop {
  uint64_t size_op;
  uint32_t block, old;
  uint64_t seq;             /* its place in the global order (realloc: seq2) */
} rop_t;

typedef struct rthread {
  rop_t *ops;
  uint64_t nops;
  uint32_t *leftover;       /* blocks this thread made still live at the end */
  uint64_t nleft, capleft;
} rthread_t;

typedef struct decoded {
  char path[4096];
  struct stat st;           /* the file's, when it was read (check's cache) */
  uint32_t threads;
  uint64_t records, blocks, seq_end;
  rthread_t *t;
  uint64_t unmatched_frees, unmatched_reallocs, stale, overaligned;
  uint64_t cross_thread;     /* frees and reallocs of another thread's block */
  uint64_t peak_live_bytes, live_end_bytes;
  uint64_t op_counts[HL_TRACE_OP_MAX + 1];
  char program[256];
} decoded_t;

/* A worker's next sequence number (UINT64_MAX: it is done), on its own
 * cache line: written by its owner before each operation, read by the
 * others when they run LAG ahead of their last look. */
typedef struct progress { HL_CACHE_ALIGNED uint64_t next; } progress_t;

typedef struct rp_shared {
  decoded_t *d;
  progress_t *progress;     /* per worker (several threads only) */
  void **slots;             /* block id -> its address in the replay (0: not yet) */
  uint64_t waits;           /* summed after the timed part */
  int stop;                 /* a worker failed: the others stop waiting */
  uint64_t lag_waits;       /* times a worker looked at the others' progress */
  uint64_t rss_base;
} rp_shared_t;

static decoded_t *kept;     /* check's decoding, for setup */

static void decoded_free(decoded_t *d) {
  if (!d) return;
  for (uint32_t i = 0; d->t && i < d->threads; i++) {
    free(d->t[i].ops);
    free(d->t[i].leftover);
  }
  free(d->t);
  free(d);
}

/* ---- pass 1: the chunks ------------------------------------------------- */

typedef struct chunk {
  uint32_t thread, count;
  uint8_t *raw;
  uint32_t len;
  uint64_t offset;          /* in the file, for messages */
} chunk_t;

typedef struct cursor {     /* a thread's position in its chunks (pass 2) */
  uint32_t *chunks, nchunks, cap, at;
  const uint8_t *p, *end;
  uint64_t prev_seq, prev_addr, left;
  uint64_t off;
  /* a realloc between its two sequence numbers */
  bool pending;
  uint64_t pend_seq2, pend_new, pend_size;
  uint32_t pend_old_block;
  bool pend_old_known, pend_old_tagged, pend_wait;
} cursor_t;

/* One record of [*p, end): 0, or -1 (corrupt). */
typedef struct rec {
  uint8_t op;
  uint64_t seq, seq2, addr, old, size, align;
} rec_t;

static int read_record(const uint8_t **p, const uint8_t *end, uint64_t *prev_seq,
                       uint64_t *prev_addr, rec_t *r) {
  uint64_t d, v;
  if (*p >= end) return -1;
  r->op = *(*p)++;
  if (r->op < 1 || r->op > HL_TRACE_OP_MAX) return -1;
  if (hl_trace_get_varint(p, end, &d) != 0) return -1;
  r->seq = *prev_seq + d;
  r->seq2 = r->size = r->align = r->old = 0;
  switch (r->op) {
  case HL_TRACE_REALLOC:
    if (hl_trace_get_varint(p, end, &d) != 0 || d == 0) return -1;
    r->seq2 = r->seq + d;
    if (hl_trace_get_varint(p, end, &v) != 0) return -1;
    r->old = *prev_addr + (uint64_t)hl_trace_unzigzag(v);
    if (hl_trace_get_varint(p, end, &v) != 0) return -1;
    r->addr = r->old + (uint64_t)hl_trace_unzigzag(v);
    if (hl_trace_get_varint(p, end, &r->size) != 0) return -1;
    *prev_seq = r->seq2;
    break;
  case HL_TRACE_FREE:
    if (hl_trace_get_varint(p, end, &v) != 0) return -1;
    r->addr = *prev_addr + (uint64_t)hl_trace_unzigzag(v);
    *prev_seq = r->seq;
    break;
  default:
    if (hl_trace_get_varint(p, end, &v) != 0) return -1;
    r->addr = *prev_addr + (uint64_t)hl_trace_unzigzag(v);
    if (hl_trace_get_varint(p, end, &r->size) != 0) return -1;
    if (r->op == HL_TRACE_MEMALIGN && hl_trace_get_varint(p, end, &r->align) != 0) return -1;
    *prev_seq = r->seq;
    break;
  }
  if (r->size >> 56) return -1;   /* no request is 2^56 bytes: corrupt */
  *prev_addr = r->addr;
  return 0;
}

/* ---- pass 2: addresses to blocks ---------------------------------------- */

/* Open addressing, linear probing, deletion by backward shift; addr 0 is
 * the empty slot (no allocation returns NULL here). */
typedef struct hent { uint64_t addr, size; uint32_t block, thread; } hent_t;
typedef struct hmap { hent_t *e; uint64_t mask, n; } hmap_t;

static uint64_t hhash(uint64_t a) { return (a >> 4) * TAG_MUL; }

static int hmap_grow(hmap_t *m) {
  uint64_t cap = m->e ? (m->mask + 1) * 2 : 1u << 16;
  hent_t *e = calloc(cap, sizeof *e);
  if (!e) return -1;
  for (uint64_t i = 0; m->e && i <= m->mask; i++)
    if (m->e[i].addr) {
      uint64_t j = hhash(m->e[i].addr) & (cap - 1);
      while (e[j].addr) j = (j + 1) & (cap - 1);
      e[j] = m->e[i];
    }
  free(m->e);
  m->e = e;
  m->mask = cap - 1;
  return 0;
}

static hent_t *hmap_find(hmap_t *m, uint64_t addr) {
  for (uint64_t j = hhash(addr) & m->mask;; j = (j + 1) & m->mask) {
    if (m->e[j].addr == addr) return &m->e[j];
    if (!m->e[j].addr) return NULL;
  }
}

static void hmap_remove(hmap_t *m, hent_t *h) {
  uint64_t i = (uint64_t)(h - m->e), j = i;
  m->e[i].addr = 0;
  for (;;) {
    j = (j + 1) & m->mask;
    if (!m->e[j].addr) break;
    uint64_t k = hhash(m->e[j].addr) & m->mask;
    /* can e[j] move to the hole at i? only if its home k is not in (i, j] */
    if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j)) continue;
    m->e[i] = m->e[j];
    m->e[j].addr = 0;
    i = j;
  }
  m->n--;
}

static int hmap_put(hmap_t *m, const hent_t *v) {
  if ((m->n + 1) * 2 > m->mask + 1 && hmap_grow(m) != 0) return -1;
  uint64_t j = hhash(v->addr) & m->mask;
  while (m->e[j].addr) j = (j + 1) & m->mask;
  m->e[j] = *v;
  m->n++;
  return 0;
}

static int add_leftover(rthread_t *t, uint32_t block) {
  if (t->nleft == t->capleft) {
    uint64_t cap = t->capleft ? 2 * t->capleft : 256;
    uint32_t *n = realloc(t->leftover, cap * sizeof *n);
    if (!n) return -1;
    t->leftover = n;
    t->capleft = cap;
  }
  t->leftover[t->nleft++] = block;
  return 0;
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct dec {
  const char *path;
  uint8_t *file;
  size_t size;
  chunk_t *chunks;
  uint64_t nchunks, capchunks;
  cursor_t *cur;
  uint32_t *ev;             /* seq -> thread, NO_THREAD for a gap */
  hmap_t map;
  uint64_t live;
  struct stat st;
  char *err;
  size_t errlen;
} dec_t;

/* The decoding's error: the message into x->err; returns -1. */
HL_PRINTF(2, 3) static int fail(dec_t *x, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->err, x->errlen, fmt, ap);
  va_end(ap);
  return -1;
}

static int read_file(dec_t *x) {
  int fd = open(x->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(x, "%s: cannot open: %s", x->path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return fail(x, "%s: not a regular file", x->path);
  }
  x->st = st;
  x->size = (size_t)st.st_size;
  x->file = malloc(x->size ? x->size : 1);
  if (!x->file) {
    close(fd);
    return fail(x, "%s: out of memory for %zu bytes", x->path, x->size);
  }
  for (size_t off = 0; off < x->size;) {
    ssize_t n = read(fd, x->file + off, x->size - off);
    if (n <= 0) {
      close(fd);
      return fail(x, "%s: cannot read: %s", x->path, n ? strerror(errno) : "file shrank");
    }
    off += (size_t)n;
  }
  close(fd);
  return 0;
}

static int parse_chunks(dec_t *x, decoded_t *d) {
  const uint8_t *f = x->file;
  if (x->size < HL_TRACE_HEADER_BYTES || memcmp(f, HL_TRACE_MAGIC, 8) != 0)
    return fail(x, "%s: not a heaplab trace (bad magic: the file must start with \"HLTRACE\\0\", "
                "as libheaplab-trace.so writes it)", x->path);
  uint32_t ver = hl_trace_get_u32(f + 8), hb = hl_trace_get_u32(f + 12);
  if (ver != HL_TRACE_VERSION)
    return fail(x, "%s: trace format version %u; this heaplab reads version %u only",
                x->path, ver, HL_TRACE_VERSION);
  if (hb != HL_TRACE_HEADER_BYTES)
    return fail(x, "%s: header of %u bytes; version 1 has %u", x->path, hb, HL_TRACE_HEADER_BYTES);
  uint64_t off = hb, records = 0, opchunks = 0;
  bool ended = false;
  /* per thread, the least sequence number its next record may have
   * (0: no record yet, since a record's is at least 0 and sets it above) */
  uint64_t *next_min = calloc(MAX_THREADS, sizeof *next_min);
  if (!next_min) return fail(x, "out of memory");
  int rc = -1;
  while (off < x->size) {
    if (ended) {
      fail(x, "%s: %" PRIu64 " bytes after the end chunk (offset %" PRIu64 ")", x->path,
           (uint64_t)x->size - off, off);
      goto out;
    }
    if (x->size - off < HL_TRACE_CHUNK_BYTES) {
      fail(x, "%s: truncated: a chunk header at offset %" PRIu64 " is cut short (the program "
           "did not exit normally, or the file was cut)", x->path, off);
      goto out;
    }
    const uint8_t *h = f + off;
    uint32_t kind = h[4], thread = hl_trace_get_u32(h + 8), count = hl_trace_get_u32(h + 12),
             raw = hl_trace_get_u32(h + 16), stored = hl_trace_get_u32(h + 20);
    if (hl_trace_get_u32(h) != HL_TRACE_CHUNK_MAGIC || kind < HL_TRACE_CHUNK_OPS ||
        kind > HL_TRACE_CHUNK_END) {
      fail(x, "%s: corrupt: no chunk header at offset %" PRIu64 " (magic or kind wrong)",
           x->path, off);
      goto out;
    }
    off += HL_TRACE_CHUNK_BYTES;
    if (stored > x->size - off) {
      fail(x, "%s: truncated: the chunk at offset %" PRIu64 " announces %u bytes, %" PRIu64
           " are left", x->path, off - HL_TRACE_CHUNK_BYTES, stored, (uint64_t)x->size - off);
      goto out;
    }
    if (kind == HL_TRACE_CHUNK_PROGRAM) {
      size_t n = stored < sizeof d->program - 1 ? stored : sizeof d->program - 1;
      memcpy(d->program, f + off, n);
      for (size_t i = 0; i < n; i++)
        if (d->program[i] == '\0') d->program[i] = ' ';
      d->program[n] = '\0';
    } else if (kind == HL_TRACE_CHUNK_END) {
      if (stored != HL_TRACE_END_BYTES) {
        fail(x, "%s: corrupt: end chunk of %u bytes, not %u", x->path, stored, HL_TRACE_END_BYTES);
        goto out;
      }
      uint64_t er = hl_trace_get_u64(f + off), ec = hl_trace_get_u64(f + off + 8);
      d->seq_end = hl_trace_get_u64(f + off + 16);
      uint64_t et = hl_trace_get_u64(f + off + 24);
      if (er != records || ec != opchunks || et > MAX_THREADS) {
        fail(x, "%s: corrupt: the end chunk says %" PRIu64 " records in %" PRIu64 " chunks of %"
             PRIu64 " threads; the file holds %" PRIu64 " in %" PRIu64, x->path, er, ec, et,
             records, opchunks);
        goto out;
      }
      d->threads = (uint32_t)et;
      ended = true;
    } else {
      if (thread >= MAX_THREADS || raw > HL_TRACE_CHUNK_RAW_MAX || count == 0 || count > raw) {
        fail(x, "%s: corrupt: chunk at offset %" PRIu64 ": thread %u, %u records in %u bytes "
             "(accepted: thread < %u, 1 .. raw records, raw <= %u)", x->path,
             off - HL_TRACE_CHUNK_BYTES, thread, count, raw, MAX_THREADS, HL_TRACE_CHUNK_RAW_MAX);
        goto out;
      }
      unsigned long long fs = ZSTD_getFrameContentSize(f + off, stored);
      uint8_t *buf = malloc(raw);
      size_t got = buf && fs == raw ? ZSTD_decompress(buf, raw, f + off, stored) : 0;
      if (!buf || fs != raw || ZSTD_isError(got) || got != raw) {
        fail(x, "%s: corrupt: the ops chunk at offset %" PRIu64 " does not decompress to its %u "
             "bytes (%s)", x->path, off - HL_TRACE_CHUNK_BYTES, raw,
             !buf ? "out of memory" : fs != raw ? "bad zstd frame header"
             : ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
        free(buf);
        goto out;
      }
      if (x->nchunks == x->capchunks) {
        uint64_t cap = x->capchunks ? 2 * x->capchunks : 64;
        chunk_t *n = realloc(x->chunks, cap * sizeof *n);
        if (!n) {
          free(buf);
          fail(x, "out of memory");
          goto out;
        }
        x->chunks = n;
        x->capchunks = cap;
      }
      x->chunks[x->nchunks++] = (chunk_t){thread, count, buf, raw, off - HL_TRACE_CHUNK_BYTES};
      /* every record parses, in this chunk's bounds; seqs increase per thread */
      const uint8_t *p = buf, *end = buf + raw;
      uint64_t ps = 0, pa = 0;
      for (uint32_t i = 0; i < count; i++) {
        rec_t r;
        if (read_record(&p, end, &ps, &pa, &r) != 0 || r.seq < next_min[thread]) {
          fail(x, "%s: corrupt: record %u of the ops chunk at offset %" PRIu64 " is malformed "
               "or out of order", x->path, i, off - HL_TRACE_CHUNK_BYTES);
          goto out;
        }
        next_min[thread] = (r.seq2 ? r.seq2 : r.seq) + 1;
        d->op_counts[r.op]++;
      }
      if (p != end) {
        fail(x, "%s: corrupt: the ops chunk at offset %" PRIu64 " has %" PRIu64 " bytes after "
             "its %u records", x->path, off - HL_TRACE_CHUNK_BYTES, (uint64_t)(end - p), count);
        goto out;
      }
      records += count;
      opchunks++;
    }
    off += stored;
  }
  if (!ended) {
    fail(x, "%s: truncated: no end chunk after %" PRIu64 " records (the program did not exit "
         "normally, or the file was cut)", x->path, records);
    goto out;
  }
  for (uint32_t t = 0; t < MAX_THREADS; t++)
    if (next_min[t] && (t >= d->threads || next_min[t] > d->seq_end)) {
      fail(x, "%s: corrupt: thread %u has sequence numbers up to %" PRIu64 ", beyond the end "
           "chunk's (%u threads, seq_end %" PRIu64 ")", x->path, t, next_min[t] - 1, d->threads,
           d->seq_end);
      goto out;
    }
  /* two per realloc at most, and the few a failed realloc or the end skip:
   * far beyond that, seq_end is corrupt (and would size a huge table) */
  if (d->seq_end > 2 * records + (1u << 20)) {
    fail(x, "%s: corrupt: the end chunk's seq_end %" PRIu64 " is implausible for %" PRIu64
         " records", x->path, d->seq_end, records);
    goto out;
  }
  d->records = records;
  rc = 0;
out:
  free(next_min);
  return rc;
}

static int next_of(dec_t *x, cursor_t *c, rec_t *r) {
  while (!c->left) {
    if (c->at == c->nchunks) return -1;
    const chunk_t *k = &x->chunks[c->chunks[c->at++]];
    c->p = k->raw;
    c->end = k->raw + k->len;
    c->left = k->count;
    c->prev_seq = c->prev_addr = 0;
    c->off = k->offset;
  }
  c->left--;
  return read_record(&c->p, c->end, &c->prev_seq, &c->prev_addr, r);
}

/* An allocation (or a realloc's new half) at address a by thread t. */
static int made(dec_t *x, decoded_t *d, uint32_t t, uint64_t a, uint64_t size, uint32_t *block) {
  hent_t *h = hmap_find(&x->map, a);
  if (h) {   /* freed outside the trace (after recording stopped in its thread?): keep it */
    d->stale++;
    if (add_leftover(&d->t[h->thread], h->block) != 0) return -1;
    x->live -= h->size;
    hmap_remove(&x->map, h);
  }
  *block = (uint32_t)d->blocks++;
  if (d->blocks > UINT32_MAX) return -1;
  hent_t v = {a, size, *block, t};
  if (hmap_put(&x->map, &v) != 0) return -1;
  x->live += size;
  if (x->live > d->peak_live_bytes) d->peak_live_bytes = x->live;
  return 0;
}

static int order(dec_t *x, decoded_t *d) {
  uint64_t nt = d->threads;
  x->cur = calloc(nt ? nt : 1, sizeof *x->cur);
  d->t = calloc(nt ? nt : 1, sizeof *d->t);
  if (!x->cur || !d->t) return fail(x, "out of memory");
  uint64_t *per = calloc(nt ? nt : 1, sizeof *per);
  if (!per) return fail(x, "out of memory");
  for (uint64_t i = 0; i < x->nchunks; i++) {
    cursor_t *c = &x->cur[x->chunks[i].thread];
    if (c->nchunks == c->cap) {
      uint32_t cap = c->cap ? 2 * c->cap : 16;
      uint32_t *n = realloc(c->chunks, cap * sizeof *n);
      if (!n) {
        free(per);
        return fail(x, "out of memory");
      }
      c->chunks = n;
      c->cap = cap;
    }
    c->chunks[c->nchunks++] = (uint32_t)i;
    per[x->chunks[i].thread] += x->chunks[i].count;
  }
  for (uint32_t t = 0; t < nt; t++) {
    d->t[t].ops = malloc((per[t] ? per[t] : 1) * sizeof(rop_t));
    if (!d->t[t].ops) {
      free(per);
      return fail(x, "out of memory for the decoded trace (%" PRIu64 " operations)", d->records);
    }
  }
  free(per);
  /* the global order: seq -> thread (both halves of a realloc) */
  x->ev = malloc((d->seq_end ? d->seq_end : 1) * sizeof *x->ev);
  if (!x->ev) return fail(x, "out of memory for %" PRIu64 " sequence numbers", d->seq_end);
  memset(x->ev, 0xff, (d->seq_end ? d->seq_end : 1) * sizeof *x->ev);
  for (uint64_t i = 0; i < x->nchunks; i++) {
    const chunk_t *k = &x->chunks[i];
    const uint8_t *p = k->raw, *end = k->raw + k->len;
    uint64_t ps = 0, pa = 0;
    for (uint32_t j = 0; j < k->count; j++) {
      rec_t r;
      read_record(&p, end, &ps, &pa, &r);   /* checked by parse_chunks */
      uint64_t s[2] = {r.seq, r.seq2};
      for (int h = 0; h < (r.op == HL_TRACE_REALLOC ? 2 : 1); h++) {
        if (x->ev[s[h]] != NO_THREAD)
          return fail(x, "%s: corrupt: sequence number %" PRIu64 " appears twice (chunk at "
                      "offset %" PRIu64 ")", x->path, s[h], k->offset);
        x->ev[s[h]] = k->thread;
      }
    }
  }
  if (hmap_grow(&x->map) != 0) return fail(x, "out of memory");
  for (uint64_t s = 0; s < d->seq_end; s++) {
    uint32_t t = x->ev[s];
    if (t == NO_THREAD) continue;
    cursor_t *c = &x->cur[t];
    rthread_t *rt = &d->t[t];
    if (c->pending && c->pend_seq2 == s) {   /* the realloc's allocation half */
      c->pending = false;
      uint32_t b;
      if (made(x, d, t, c->pend_new, c->pend_size, &b) != 0) return fail(x, "out of memory");
      rop_t *o = &rt->ops[rt->nops++];
      o->seq = s;
      if (c->pend_old_known) {
        o->size_op = c->pend_size << 8 | R_REALLOC | (c->pend_wait ? F_WAIT : 0) |
                     (c->pend_old_tagged ? F_OLD_TAGGED : 0);
        o->old = c->pend_old_block;
      } else {
        o->size_op = c->pend_size << 8 | R_MALLOC;
        o->old = 0;
      }
      o->block = b;
      continue;
    }
    rec_t r;
    if (next_of(x, c, &r) != 0 || r.seq != s)
      return fail(x, "%s: corrupt: thread %u's records disagree with the global order at "
                  "sequence number %" PRIu64, x->path, t, s);
    if (r.op == HL_TRACE_FREE || r.op == HL_TRACE_REALLOC) {
      uint64_t a = r.op == HL_TRACE_FREE ? r.addr : r.old;
      hent_t *h = hmap_find(&x->map, a);
      bool known = h != NULL;
      uint32_t ob = 0;
      bool wait = false, tagged = false;
      uint64_t osize = 0;
      if (known) {
        ob = h->block;
        wait = h->thread != t;
        d->cross_thread += wait;
        osize = h->size;
        tagged = osize >= 8;
        x->live -= h->size;
        hmap_remove(&x->map, h);
      }
      if (r.op == HL_TRACE_FREE) {
        if (!known) {
          d->unmatched_frees++;
          continue;
        }
        rop_t *o = &rt->ops[rt->nops++];
        o->seq = s;
        o->size_op = osize << 8 | R_FREE | (wait ? F_WAIT : 0);
        o->block = ob;
        o->old = 0;
      } else {
        if (!known) d->unmatched_reallocs++;
        c->pending = true;
        c->pend_seq2 = r.seq2;
        c->pend_new = r.addr;
        c->pend_size = r.size;
        c->pend_old_block = ob;
        c->pend_old_known = known;
        c->pend_old_tagged = tagged && r.size >= 8;
        c->pend_wait = wait;
      }
      continue;
    }
    uint32_t b;
    if (made(x, d, t, r.addr, r.size, &b) != 0) return fail(x, "out of memory");
    rop_t *o = &rt->ops[rt->nops++];
    o->seq = s;
    uint8_t op = r.op == HL_TRACE_CALLOC ? R_CALLOC : r.op == HL_TRACE_MEMALIGN ? R_MEMALIGN
                                                                                 : R_MALLOC;
    if (r.op == HL_TRACE_MEMALIGN && r.align > 16) d->overaligned++;
    o->size_op = r.size << 8 | op;
    o->block = b;
    o->old = 0;
  }
  for (uint32_t t = 0; t < nt; t++)
    if (x->cur[t].pending)
      return fail(x, "%s: corrupt: thread %u's last realloc has no allocation half", x->path, t);
  d->live_end_bytes = x->live;
  for (uint64_t i = 0; i <= x->map.mask; i++)
    if (x->map.e[i].addr && add_leftover(&d->t[x->map.e[i].thread], x->map.e[i].block) != 0)
      return fail(x, "out of memory");
  return 0;
}

static decoded_t *decode(const char *path, char *err, size_t errlen) {
  dec_t x = {.path = path, .err = err, .errlen = errlen};
  decoded_t *d = calloc(1, sizeof *d);
  int rc = -1;
  if (!d) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  snprintf(d->path, sizeof d->path, "%s", path);
  if (read_file(&x) == 0 && parse_chunks(&x, d) == 0) {
    d->st = x.st;
    free(x.file);   /* the chunks hold what pass 2 needs */
    x.file = NULL;
    rc = order(&x, d);
  }
  free(x.file);
  for (uint64_t i = 0; i < x.nchunks; i++) free(x.chunks[i].raw);
  free(x.chunks);
  for (uint32_t t = 0; x.cur && t < d->threads; t++) free(x.cur[t].chunks);
  free(x.cur);
  free(x.ev);
  free(x.map.e);
  if (rc != 0) {
    decoded_free(d);
    return NULL;
  }
  return d;
}

/* ---- the workload ---------------------------------------------------------- */

static int rp_check(const hl_config_t *c, char *err, size_t errlen) {
  if (!c->input[0]) {
    snprintf(err, errlen, "workload replay needs --input=FILE: a trace recorded by 'heaplab "
             "record -o FILE -- PROGRAM' (docs/trace-format.md)");
    return -1;
  }
  /* `heaplab sweep` checks every point before it runs: the points of one
   * trace share its decoding while the file stays the same */
  struct stat st;
  if (kept && (strcmp(kept->path, c->input) != 0 || stat(c->input, &st) != 0 ||
               st.st_size != kept->st.st_size || st.st_mtim.tv_sec != kept->st.st_mtim.tv_sec ||
               st.st_mtim.tv_nsec != kept->st.st_mtim.tv_nsec || st.st_ino != kept->st.st_ino)) {
    decoded_free(kept);
    kept = NULL;
  }
  if (!kept) kept = decode(c->input, err, errlen);
  if (!kept) return -1;
  if (c->threads != kept->threads) {
    snprintf(err, errlen, "option 'threads': %u; %s was recorded with %u threads, and replay runs "
             "one worker per recorded thread; accepted: --threads=%u", c->threads, c->input,
             kept->threads, kept->threads);
    return -1;
  }
  return 0;
}

static int rp_setup(const hl_config_t *c, void **shared, char *err, size_t errlen) {
  rp_shared_t *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  if (kept && strcmp(kept->path, c->input) == 0) {
    s->d = kept;
    kept = NULL;
  } else if (!(s->d = decode(c->input, err, errlen))) {
    free(s);
    return -EINVAL;
  }
  s->slots = calloc(s->d->blocks ? s->d->blocks : 1, sizeof *s->slots);
  if (!s->slots) {
    snprintf(err, errlen, "out of memory for %" PRIu64 " block slots", s->d->blocks);
    decoded_free(s->d);
    free(s);
    return -ENOMEM;
  }
  if (s->d->threads > 1) {
    s->progress = aligned_alloc(HL_CACHE_LINE, s->d->threads * sizeof *s->progress);
    if (!s->progress) {
      snprintf(err, errlen, "out of memory");
      free(s->slots);
      decoded_free(s->d);
      free(s);
      return -ENOMEM;
    }
    for (uint32_t k = 0; k < s->d->threads; k++)
      s->progress[k].next = s->d->t[k].nops ? s->d->t[k].ops[0].seq : UINT64_MAX;
  }
  /* the slots made resident here, not in the timed part (a memset after
   * calloc is one the compiler may drop) */
  for (size_t off = 0; off < (s->d->blocks ? s->d->blocks : 1) * sizeof *s->slots; off += PAGE)
    ((volatile char *)s->slots)[off] = 0;
  s->rss_base = hl_rss_current_bytes();
  /* the high-water mark from here: the replay's peak, not the decoding's */
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)!write(fd, "5", 1);
    close(fd);
  }
  *shared = s;
  return 0;
}

static inline uint64_t tag_of(uint32_t b) { return ((uint64_t)b + 1) * TAG_MUL; }

/* One round of waiting for another worker: spin a little, then yield, then
 * sleep, doubling up to 256 us. A waiter must not burn the CPU: the replay
 * reports CPU time, and a worker whose next operation comes much later in
 * the recorded order (a thread that slept in the program) waits through
 * most of the replay, beside the workers that run it. */
static void backoff(unsigned round) {
  if (round < 64) {
    hl_cpu_relax();
  } else if (round < 72) {
    sched_yield();
  } else {
    unsigned us = round - 72 < 8 ? 1u << (round - 72) : 256u;
    struct timespec ts = {0, (long)us * 1000};
    nanosleep(&ts, NULL);
  }
}

static inline void *wait_for(rp_shared_t *s, uint32_t b, uint64_t *waits) {
  /* acquire: pairs with the release store of the allocating worker, so
   * that the block and its tag are visible here */
  void *p = __atomic_load_n(&s->slots[b], __ATOMIC_ACQUIRE);
  if (HL_LIKELY(p != NULL)) return p;
  (*waits)++;
  for (unsigned round = 0; !(p = __atomic_load_n(&s->slots[b], __ATOMIC_ACQUIRE)); round++) {
    if (__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) return NULL;
    backoff(round);
  }
  return p;
}

/* Waits until no worker's next sequence number is below seq - LAG, and
 * returns the new bound (the slowest's + LAG). The slowest worker never
 * waits here, and a free it waits for belongs to a lower sequence number,
 * which would make its thread the slowest: so the replay always moves. */
static uint64_t wait_lag(rp_shared_t *s, uint64_t seq, uint64_t *lags) {
  uint64_t min;
  (*lags)++;
  for (unsigned spin = 0;; spin++) {
    min = UINT64_MAX;
    for (uint32_t k = 0; k < s->d->threads; k++) {
      uint64_t v = __atomic_load_n(&s->progress[k].next, __ATOMIC_RELAXED);
      if (v < min) min = v;
    }
    if (min == UINT64_MAX || seq <= min + LAG) break;
    if (__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) break;
    backoff(spin);
  }
  return min == UINT64_MAX ? UINT64_MAX : min + LAG;
}

static void rp_work(hl_worker_t *w) {
  rp_shared_t *s = w->shared;
  rthread_t *t = &s->d->t[w->index];
  uint64_t sum = HL_FNV_OFFSET, waits = 0, lags = 0, i = 0, bound = 0;
  progress_t *me = s->progress ? &s->progress[w->index] : NULL;
  w->target_ops = t->nops;
  hl_worker_begin(w);
  for (; i < t->nops; i++) {
    if ((i & 1023) == 0) hl_worker_tick(w, i);
    const rop_t *o = &t->ops[i];
    if (me) {
      /* relaxed: a bound on memory, not an order the operations need (the
       * slots give that) */
      __atomic_store_n(&me->next, o->seq, __ATOMIC_RELAXED);
      if (o->seq > bound) bound = wait_lag(s, o->seq, &lags);
    }
    unsigned op = (unsigned)(o->size_op & 7);
    size_t size = (size_t)(o->size_op >> 8);
    void *p;
    switch (op) {
    case R_FREE:
      p = o->size_op & F_WAIT ? wait_for(s, o->block, &waits) : s->slots[o->block];
      if (!p) goto stopped;
      if (size >= 8 && memcmp(p, &(uint64_t){tag_of(o->block)}, 8) != 0) goto bad_tag;
      hl_alloc_free(p);
      break;
    case R_REALLOC: {
      void *q = o->size_op & F_WAIT ? wait_for(s, o->old, &waits) : s->slots[o->old];
      if (!q) goto stopped;
      if ((o->size_op & F_OLD_TAGGED) && memcmp(q, &(uint64_t){tag_of(o->old)}, 8) != 0) {
        p = q;
        goto bad_tag;
      }
      p = hl_alloc_realloc(q, size);
      /* realloc(q, 0) frees q and may return NULL (glibc): a minimal block
       * then stands for the one the recorded allocator returned */
      if (!p && !size) p = hl_alloc_malloc(0);
      if (!p) goto oom;
      if ((o->size_op & F_OLD_TAGGED) && memcmp(p, &(uint64_t){tag_of(o->old)}, 8) != 0)
        goto bad_tag;
      goto made;
    }
    default:
      p = hl_alloc_malloc(size);
      if (!p) goto oom;
      if (op == R_CALLOC) memset(p, 0, size);
    made:
      if (size >= 8) memcpy(p, &(uint64_t){tag_of(o->block)}, 8);
      else if (size) *(volatile char *)p = 1;
      /* one byte a page, as the program's own writes would have made them
       * resident (calloc's memset did already) */
      if (size > PAGE && op != R_CALLOC) {
        for (size_t off = PAGE; off < size; off += PAGE) ((volatile char *)p)[off] = 1;
        ((volatile char *)p)[size - 1] = 1;
      }
      /* release: pairs with wait_for's acquire in the thread that frees it */
      __atomic_store_n(&s->slots[o->block], p, __ATOMIC_RELEASE);
      break;
    }
    sum = hl_fnv1a_u64(sum, o->size_op ^ ((uint64_t)o->block << 32));
  }
  goto done;
oom:
  hl_worker_fail(w, "out of memory: the allocator returned NULL for %" PRIu64 " bytes (operation "
                 "%" PRIu64 " of thread %u)", t->ops[i].size_op >> 8, i, w->index);
  __atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
  goto done;
bad_tag:
  hl_worker_fail(w, "block %u's first 8 bytes changed before its free or realloc (operation %"
                 PRIu64 " of thread %u): the allocator handed out overlapping memory",
                 (t->ops[i].size_op & 7) == R_REALLOC ? t->ops[i].old : t->ops[i].block, i,
                 w->index);
  __atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
  goto done;
stopped:   /* another worker failed: the block waited for will never come */
  hl_worker_fail(w, "stopped: another thread of the replay failed");
done:
  if (me) __atomic_store_n(&me->next, UINT64_MAX, __ATOMIC_RELAXED);
  w->ops = i;
  w->checksum = sum;
  hl_worker_end(w);
  __atomic_fetch_add(&s->waits, waits, __ATOMIC_RELAXED);
  __atomic_fetch_add(&s->lag_waits, lags, __ATOMIC_RELAXED);
  /* after every worker's timed part (hl_worker_end waits for all): the
   * blocks still live, each freed by the thread that made it */
  if (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED))
    for (uint64_t k = 0; k < t->nleft; k++) {
      void *p = s->slots[t->leftover[k]];
      if (p) hl_alloc_free(p);
    }
}

static void rp_teardown(void *shared, hl_result_alloc_t *alloc) {
  (void)alloc;
  rp_shared_t *s = shared;
  decoded_free(s->d);
  free(s->slots);
  free(s->progress);
  free(s);
}

static void rp_report(void *shared, hl_run_result_t *r) {
  rp_shared_t *s = shared;
  const decoded_t *d = s->d;
  json_object *o = json_object_new_object(), *ops = json_object_new_object();
  static const char *const names[] = {"", "malloc", "calloc", "realloc", "free", "memalign"};
  json_object_object_add(o, "input", json_object_new_string(d->path));
  json_object_object_add(o, "format", json_object_new_int(HL_TRACE_VERSION));
  json_object_object_add(o, "program", json_object_new_string(d->program));
  json_object_object_add(o, "records", json_object_new_int64((int64_t)d->records));
  for (int k = 1; k <= HL_TRACE_OP_MAX; k++)
    json_object_object_add(ops, names[k], json_object_new_int64((int64_t)d->op_counts[k]));
  json_object_object_add(o, "recorded_ops", ops);
  json_object_object_add(o, "blocks", json_object_new_int64((int64_t)d->blocks));
  json_object_object_add(o, "unmatched_frees", json_object_new_int64((int64_t)d->unmatched_frees));
  json_object_object_add(o, "unmatched_reallocs",
                         json_object_new_int64((int64_t)d->unmatched_reallocs));
  json_object_object_add(o, "stale_blocks", json_object_new_int64((int64_t)d->stale));
  json_object_object_add(o, "overaligned", json_object_new_int64((int64_t)d->overaligned));
  json_object_object_add(o, "cross_thread", json_object_new_int64((int64_t)d->cross_thread));
  json_object_object_add(o, "waits", json_object_new_int64((int64_t)s->waits));
  json_object_object_add(o, "lag_checks", json_object_new_int64((int64_t)s->lag_waits));
  json_object_object_add(o, "peak_live_bytes", json_object_new_int64((int64_t)d->peak_live_bytes));
  json_object_object_add(o, "live_end_bytes", json_object_new_int64((int64_t)d->live_end_bytes));
  json_object_object_add(o, "rss_base_bytes", json_object_new_int64((int64_t)s->rss_base));
  uint64_t over = r->peak_rss_bytes > s->rss_base ? r->peak_rss_bytes - s->rss_base : 0;
  json_object_object_add(o, "rss_replay_peak_bytes", json_object_new_int64((int64_t)over));
  if (d->peak_live_bytes)
    json_object_object_add(o, "fragmentation",
                           json_object_new_double((double)over / (double)d->peak_live_bytes));
  if (r->ops) {
    json_object_object_add(o, "ns_per_op", json_object_new_double((double)r->wall_ns / (double)r->ops));
    json_object_object_add(o, "cpu_ns_per_op",
                           json_object_new_double((double)r->cpu_ns / (double)r->ops));
  }
  r->extra = o;
}

const hl_workload_t hl_workload_replay = {
  .name = "replay",
  .summary = "a real program's allocations recorded by 'heaplab record' (--input), replayed "
             "with the recorded threads (--threads must match) under --alloc: time per "
             "operation, peak RSS against the trace's peak live bytes",
  .unit = "the trace's operations (scale has no effect)",
  .uses = HL_RUNNER_USES | HL_ALLOC_USES | HL_OPT_BIT(HL_OPT_INPUT),
  .ops_per_scale = 1,
  .check = rp_check,
  .setup = rp_setup,
  .work = rp_work,
  .teardown = rp_teardown,
  .report = rp_report,
};
