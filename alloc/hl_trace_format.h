/* heaplab alloc/: the allocation trace file, version 1 (docs/trace-format.md).
 *
 * Written by libheaplab-trace.so (alloc/trace_record.c) from a program run
 * under LD_PRELOAD, read by the replay workload (bench/workloads/replay.c).
 * Shared here so that writer and reader agree on every constant; the page
 * docs/trace-format.md is the description a third tool would read.
 *
 *   file   = header chunk* end
 *   header = "HLTRACE\0" u32 version u32 header_bytes(32) u64 pid u64 start_unix_ns
 *   chunk  = u32 "HLTC" u8 kind u8 0 u16 0 u32 thread u32 count u32 raw_bytes
 *            u32 stored_bytes, then stored_bytes of payload
 *     kind 1 ops:     a zstd frame (content checksum on) of raw_bytes bytes
 *                     holding count records of one thread (below)
 *     kind 2 program: the program's /proc/self/cmdline, raw (stored = raw)
 *     kind 3 end:     32 bytes: u64 records, u64 op chunks, u64 seq_end,
 *                     u64 threads; count = 0. The last chunk of the file.
 * All integers little-endian.
 *
 * A record, with the delta state (prev_seq, prev_addr) reset to 0 at each
 * chunk's start:
 *   u8 op, varint seq - prev_seq, then
 *     malloc, calloc   zigzag(addr - prev_addr), varint size (calloc: n x size)
 *     memalign         zigzag(addr - prev_addr), varint size, varint alignment
 *     free             zigzag(addr - prev_addr)
 *     realloc          varint seq2 - seq, zigzag(old - prev_addr),
 *                      zigzag(new - old), varint size
 *   then prev_seq = seq (seq2 for realloc), prev_addr = addr (new).
 * varint: LEB128 (7 bits a byte, low first); zigzag: (d << 1) ^ (d >> 63).
 *
 * seq is one process-wide counter, taken after the real allocation returned
 * (malloc, calloc, memalign) and before the real free began (free), so that
 * an address freed by one thread and returned by malloc in another has its
 * free's seq below the malloc's. realloc takes both: seq before (its free
 * half), seq2 after (its allocation half). Within a thread, seqs increase.
 */
#ifndef HL_TRACE_FORMAT_H
#define HL_TRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define HL_TRACE_MAGIC "HLTRACE"     /* 8 bytes with its NUL */
#define HL_TRACE_VERSION 1u
#define HL_TRACE_HEADER_BYTES 32u
#define HL_TRACE_CHUNK_MAGIC 0x43544c48u   /* "HLTC" read as a little-endian u32 */
#define HL_TRACE_CHUNK_BYTES 24u
#define HL_TRACE_END_BYTES 32u
/* The raw bytes of one ops chunk: a record never crosses a chunk. */
#define HL_TRACE_CHUNK_RAW_MAX (64u * 1024u)
#define HL_TRACE_RECORD_MAX 52u          /* 1 + 5 varints of at most 10 bytes + 1 */

enum { HL_TRACE_CHUNK_OPS = 1, HL_TRACE_CHUNK_PROGRAM = 2, HL_TRACE_CHUNK_END = 3 };

enum {
  HL_TRACE_MALLOC = 1,
  HL_TRACE_CALLOC = 2,
  HL_TRACE_REALLOC = 3,
  HL_TRACE_FREE = 4,
  HL_TRACE_MEMALIGN = 5,   /* posix_memalign, aligned_alloc, memalign, valloc, pvalloc */
  HL_TRACE_OP_MAX = 5
};

static inline uint8_t *hl_trace_put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

static inline uint64_t hl_trace_zigzag(int64_t d) {
  return ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
}

static inline int64_t hl_trace_unzigzag(uint64_t z) {
  return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

/* Reads a varint from [*p, end): 0, or -1 when it runs past end or past
 * 10 bytes (a corrupt record). */
static inline int hl_trace_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    if (*p >= end) return -1;
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

static inline void hl_trace_put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void hl_trace_put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t hl_trace_get_u32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
  return v;
}
static inline uint64_t hl_trace_get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

#endif /* HL_TRACE_FORMAT_H */
