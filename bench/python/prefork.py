#!/usr/bin/python3
"""prefork in CPython: the twin of bench/workloads/prefork.c, built by the
same rules (that file's top comment explains the design and its sources).

usage: prefork.py [--prefork-gc MODE] [--workers K] [--scale F] [--touch-pct P]
                  [--seed N] [--smoke]
  --prefork-gc MODE  on (default), off (gc.disable() in the master before
                     it forks), freeze (gc.freeze() just before the fork);
                     freeze-immortal is refused (exit 2): CPython 3.11 has
                     no immortal objects (PEP 683 came in 3.12, and makes
                     only the runtime's own objects immortal; nothing in
                     3.12-3.14 makes a program's heap immortal)
  --workers K        worker processes (default 2)
  --scale F          in heaplab's unit: 10,000 requests per worker (default 1)
  --touch-pct P      requests read the first P % of the records (default 100)
  --smoke            scale 0.1

The master builds 50,000 Record instances (__slots__ id, name, tags, attrs:
an int, a str, a list of two interned tag strs, a float and an int, a dict
{"score", "rank", "group"}: 9 objects a record), an index dict by name and a
dict of 64 tag lists, collects once, applies the mode and forks. A worker
serves requests (4 records looked up by a formatted name, a response list
of one dict per record with a copy of its tags, a Context and a Handler
pointing at each other, the response cached in a 4,096-slot dict) and
samples /proc/self/smaps_rollup and /proc/self/pagemap (which pages holding
the master's object headers it has copied: mapped by it alone) at 21
points of its run; it sends its figures to the master through a pipe.

Prints one JSON object: workload, runtime, config, ops, checksum, wall_s
and `extra` with the same fields as heaplab's prefork result.
"""
import argparse
import array
import gc
import json
import os
import random
import resource
import struct
import sys
import time

HEAP_RECORDS = 50_000
TAGS = 64
REQUEST_RECORDS = 4
CACHE_SLOTS = 4096
REQUEST_UNIT = 10_000
SAMPLES = 20
LATENCY_EVERY = 8
PAGE = os.sysconf("SC_PAGE_SIZE")
HAVE_GC = 1 << 14          # Py_TPFLAGS_HAVE_GC: a PyGC_Head precedes the object
SMAPS = (("rss_kib", "Rss:"), ("pss_kib", "Pss:"), ("shared_clean_kib", "Shared_Clean:"),
         ("shared_dirty_kib", "Shared_Dirty:"), ("private_clean_kib", "Private_Clean:"),
         ("private_dirty_kib", "Private_Dirty:"))
MODES = ("on", "off", "freeze", "freeze-immortal")


class Record:
    __slots__ = ("id", "name", "tags", "attrs")


class Context:
    __slots__ = ("resp", "handler")


class Handler:
    __slots__ = ("ctx",)


# ---- the master's heap ----------------------------------------------------------

def build_heap(seed):
    """The module state, and the pages of every heap object's header:
    {page: holds a container's header}."""
    rng = random.Random(seed)
    pages = {}

    def made(o):
        a = id(o)
        gcobj = bool(type(o).__flags__ & HAVE_GC)
        first = (a - 16 if gcobj else a) // PAGE
        for p in range(first, (a + 15) // PAGE + 1):
            pages[p] = pages.get(p, False) or gcobj
        return o

    tags = [sys.intern("tag-%02d" % t) for t in range(TAGS)]
    for t in tags:
        made(t)
    records, index = made([]), made({})
    groups = made({})
    for t in tags:
        groups[t] = made([])
    module = made({"records": records, "index": index, "groups": groups})
    for i in range(HEAP_RECORDS):
        rec = made(Record())
        rec.id = made(100000 + i)
        rec.name = made("user%06d" % i)
        g1, g2 = tags[rng.randrange(TAGS)], tags[rng.randrange(TAGS)]
        rec.tags = made([g1, g2, made(i / 7.0), made(1000 + i % 5000)])
        rec.attrs = made({"score": made(rng.randrange(100000) / 100.0),
                          "rank": made(1000 + rng.randrange(1000000)), "group": g1})
        records.append(rec)
        index[rec.name] = rec
        groups[g1].append(rec)
    return module, pages


def page_runs(pages):
    """The pages as runs of consecutive ones: (starts, lengths, flags), flat
    arrays and bytes, so that reading them in a worker writes into no old
    object (a list per run would be increfed on every sample, and lists
    share the master's pools with the heap's lists)."""
    starts, lengths, flags = array.array("Q"), array.array("H"), bytearray()
    for p in sorted(pages):
        if starts and starts[-1] + lengths[-1] == p and lengths[-1] < 512:
            lengths[-1] += 1
        else:
            starts.append(p)
            lengths.append(1)
        flags.append(1 if pages[p] else 0)
    return starts, lengths, bytes(flags)


# ---- what a worker samples ------------------------------------------------------

def read_smaps():
    out = {k: 0 for k, _ in SMAPS}
    with open("/proc/self/smaps_rollup") as f:
        text = f.read()
    for line in text.splitlines():
        for k, key in SMAPS:
            if line.startswith(key):
                out[k] = int(line.split()[1])
    return out


def read_pagemap(runs):
    starts, lengths, flags = runs
    copied = copied_gc = 0
    at = 0
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        for first, n in zip(starts, lengths):
            data = os.pread(fd, 8 * n, first * 8)
            for i, e in enumerate(struct.unpack("%dQ" % (len(data) // 8), data)):
                if (e >> 63) & 1 and (e >> 56) & 1:   # present and exclusively mapped
                    copied += 1
                    copied_gc += flags[at + i]
            at += n
    finally:
        os.close(fd)
    return copied, copied_gc


def sample(runs, t0, requests):
    s = {"t_s": (time.monotonic_ns() - t0) / 1e9, "requests": requests,
         "minor_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt}
    s.update(read_smaps())
    s["heap_pages_copied"], s["heap_gc_pages_copied"] = read_pagemap(runs)
    return s


# ---- a worker -------------------------------------------------------------------

def worker(module, runs, k, target, seed, touched):
    index = module["index"]
    rng = random.Random(seed * 0x100000001b3 + 1 + k)
    rnd = rng.randrange
    t0, c0 = time.monotonic_ns(), time.process_time_ns()
    stats0 = gc.get_stats()
    samples = [sample(runs, t0, 0)]
    cache = {}
    lat = []
    acc = k
    n = 0
    while True:
        while len(samples) <= SAMPLES and n * SAMPLES >= len(samples) * target:
            samples.append(sample(runs, t0, n))
        if n >= target:
            break
        for _ in range(min(16, target - n)):
            timed = n % LATENCY_EVERY == 0
            s0 = time.perf_counter_ns() if timed else 0
            resp = []
            for _r in range(REQUEST_RECORDS):
                rec = index["user%06d" % rnd(touched)]
                attrs = rec.attrs
                copy = [t for t in rec.tags]
                resp.append({"id": rec.id, "name": rec.name, "score": attrs["score"],
                             "tags": copy})
                acc = ((acc * 1000003) ^ rec.id ^ (attrs["rank"] << 20)) & 0xFFFFFFFFFFFFFFFF
            ctx, handler = Context(), Handler()
            ctx.resp, ctx.handler, handler.ctx = resp, handler, ctx
            cache[1000 + n % CACHE_SLOTS] = resp
            del ctx, handler, resp
            if timed:
                lat.append(time.perf_counter_ns() - s0)
            n += 1
    wall, cpu = time.monotonic_ns() - t0, time.process_time_ns() - c0
    stats = gc.get_stats()
    lat.sort()

    def q(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0
    return {"requests": n, "checksum": acc, "wall_s": wall / 1e9, "cpu_s": cpu / 1e9,
            "requests_per_s": n / (wall / 1e9) if wall else 0,
            "requests_per_cpu_s": n / (cpu / 1e9) if cpu else 0,
            "minor_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt,
            "collections": [s["collections"] - s0["collections"] for s, s0 in zip(stats, stats0)],
            "gc_collected": sum(s["collected"] - s0["collected"] for s, s0 in zip(stats, stats0)),
            "latency_ns": {"count": len(lat), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99),
                           "max": lat[-1] if lat else 0},
            "samples": samples}


# ---- the master -----------------------------------------------------------------

def at_share(reports, share, field):
    vals = [r["samples"][min(len(r["samples"]) - 1, int(share * SAMPLES + 0.5))][field]
            for r in reports if r.get("samples")]
    return sum(vals) / len(vals) if vals else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefork-gc", default="on")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--touch-pct", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.prefork_gc not in MODES:
        print(f"prefork.py: --prefork-gc: invalid value '{a.prefork_gc}'; accepted: "
              "on, off, freeze", file=sys.stderr)
        sys.exit(2)
    if a.prefork_gc == "freeze-immortal":
        print("prefork.py: --prefork-gc=freeze-immortal: CPython 3.11 has no immortal objects "
              "(PEP 683 is 3.12, and makes only the runtime's own objects immortal); "
              "accepted: on, off, freeze", file=sys.stderr)
        sys.exit(2)
    if not 1 <= a.workers <= 64:
        print(f"prefork.py: --workers: invalid value '{a.workers}'; accepted: 1..64",
              file=sys.stderr)
        sys.exit(2)
    if not 1 <= a.touch_pct <= 100:
        print(f"prefork.py: --touch-pct: invalid value '{a.touch_pct}'; accepted: 1..100",
              file=sys.stderr)
        sys.exit(2)
    scale = 0.1 if a.smoke else a.scale
    per_worker = max(1, int(REQUEST_UNIT * scale))
    touched = max(1, HEAP_RECORDS * a.touch_pct // 100)

    module, pages = build_heap(a.seed)
    runs = page_runs(pages)
    gc.collect()
    frozen = -1
    if a.prefork_gc == "off":
        gc.disable()
    elif a.prefork_gc == "freeze":
        gc.freeze()
        frozen = gc.get_freeze_count()
    master = sample(runs, time.monotonic_ns(), 0)
    t0 = time.monotonic_ns()
    sys.stdout.flush()
    sys.stderr.flush()
    kids = []
    for k in range(a.workers):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 0
            try:
                rep = worker(module, runs, k, per_worker, a.seed, touched)
            except BaseException as e:      # reported, never propagated into the master's code
                rep, code = {"error": repr(e)}, 1
            data = json.dumps(rep).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
            os._exit(code)
        os.close(w)
        kids.append((pid, r))
    reports = []
    failed = []
    for k, (pid, r) in enumerate(kids):
        chunks = []
        while True:
            b = os.read(r, 1 << 16)
            if not b:
                break
            chunks.append(b)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        try:
            rep = json.loads(b"".join(chunks) or b"{}")
        except json.JSONDecodeError:
            rep = {}
        rep["exit_status"] = code
        if code != 0 or "requests" not in rep:
            failed.append(f"worker {k} exited {code}: {rep.get('error', 'no report')}")
        reports.append(rep)
    wall = (time.monotonic_ns() - t0) / 1e9
    if failed:
        print("prefork.py: " + "; ".join(failed), file=sys.stderr)
        sys.exit(1)
    checksum = 0
    for rep in reports:
        checksum = ((checksum * 1000003) ^ rep.pop("checksum")) & 0xFFFFFFFFFFFFFFFF
    extra = {"workers": a.workers, "prefork_gc": a.prefork_gc, "heap_records": HEAP_RECORDS,
             "records_read": touched, "heap_objects": HEAP_RECORDS * 9 + 4 + TAGS,
             "heap_pages": len(pages), "heap_gc_pages": sum(1 for v in pages.values() if v),
             "page_size": PAGE, "frozen": frozen, "immortalized": -1, "master_at_fork": master,
             "requests_per_s": sum(r["requests_per_s"] for r in reports),
             "requests_per_cpu_s": sum(r["requests_per_cpu_s"] for r in reports)}
    for field in ("private_dirty_kib", "shared_dirty_kib", "pss_kib", "heap_pages_copied",
                  "heap_gc_pages_copied"):
        extra[field] = {name: at_share(reports, share, field)
                        for name, share in (("0", 0), ("10", 0.1), ("50", 0.5), ("100", 1))}
    extra["worker"] = reports
    print(json.dumps({"workload": "prefork", "runtime": "cpython",
                      "python": sys.version.split()[0],
                      "config": {"prefork-gc": a.prefork_gc, "workers": a.workers,
                                 "scale": scale, "touch-pct": a.touch_pct, "seed": a.seed,
                                 "threshold": ",".join(map(str, gc.get_threshold()))},
                      "ops": sum(r["requests"] for r in reports), "checksum": "%016x" % checksum,
                      "wall_s": wall, "extra": extra}))


if __name__ == "__main__":
    main()
