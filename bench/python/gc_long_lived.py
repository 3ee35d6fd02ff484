#!/usr/bin/python3
"""CPython's cycle collector on heaplab's long-lived object graph.

usage: gc_long_lived.py [--scale N] [--churn N] [--seed N] [--smoke]
                        [--threshold A[,B,C] | --gc-off] [--no-probe]
                        [--pause-log]
  --scale N  the heap holds N million objects (default 1), as heaplab's
             `long-lived --scale=N`
  --churn N  churn operations after the heap is built (default 4,000,000 x
             scale, as heaplab's; 0: none)
  --seed N   seed of the churn's random choices (default 42)
  --smoke    a heap of 20,000 objects and 20,000 churn operations
  --threshold A[,B,C]  gc.set_threshold before the heap is built (B and C
             default to 10), as heaplab's --threshold (papers/gc-threshold)
  --gc-off   gc.disable() before the heap is built, as heaplab's --gc=none
  --no-probe skip the timed collections after the churn (papers/gc-threshold
             needs only the collector's own schedule)
  --pause-log  also every collection of the build and churn, in order:
             "pause_log" {"span_ns": the build and churn's length,
             "pauses": [[start ns since the build began, length ns,
             generation], ...]}, from which papers/incremental-pauses
             computes percentiles and the MMU as heaplab's base/mmu.c does

Builds the graph bench/workloads/long_lived.c builds, by the same rules,
with the collector on at its default thresholds: records in chunk lists of
1000, the chunks in one top list; record i is of kind i % 4:
  0  a tuple (I, F, S)                                        4 objects
  1  a Rec instance (__slots__ id = I, tags = [F, S], peer = None)  5 objects
  2  a dict {"id": I, "name": S, "pos": (F, i + 0.75)}         6 objects
  3  a list [I, S]                                             3 objects
with I = 1000 + i, F = i + 0.25, S = "r" + str(i), until scale million
objects are made (the lists counted); then the churn: each operation makes
record i (i counting on) and, by 64 random bits r: r & 7 == 0 puts it in a
random slot of the heap, r & 7 == 1 in a random slot of a young window of
4096, else drops it; and when bits 43..46 of r are 0, a Rec whose peer is
itself is made and dropped (cyclic garbage).

Then, with automatic collection off: gc.collect() once, then 3 timed
gc.collect() (full), then 20 times: 2000 new records in a list and 100
self-cycles dropped, one timed gc.collect(0), the list dropped. The objects
a collection examines are counted before it with gc.get_objects() (all
generations) or gc.get_objects(0). Each figure is the median over the runs
of a run's nanoseconds per object, as heaplab reports it.

Also, at the churn's end, where generation 0's objects lie
("young_placement", as heaplab's long-lived reports it): their count, the
distinct 4 KiB pages they and all tracked objects lie on (id() is the
address in CPython), the young pages that also hold an older object, and
the median and 90th percentile of the distance between consecutive young
objects in generation order. And wall_s, cpu_s (build and churn) and
peak_rss_bytes (read before the placement's lists are made).

Prints one JSON line: the interpreter, the counts, and nanoseconds per
examined object for the young and the full collections (young_ns_per_obj,
full_ns_per_obj), which heaplab's long-lived reports in its JSON "gc".
Also the collections the collector ran by itself while the heap was built
and churned, and their pauses per generation (timed by a gc.callbacks
hook, from "start" to "stop"): "collections" and "pause_ns_gen" (count,
p50, p90, p99, max, total), to set beside heaplab's JSON "gc" figures of
the same names.
"""
import argparse
import gc
import json
import math
import platform
import random
import resource
import statistics
import sys
import time

CHUNK = 1000
YOUNG = 4096
CHURN_PER_SCALE = 4_000_000
FULL_RUNS = 3
YOUNG_RUNS = 20
YOUNG_RECORDS = 2000
YOUNG_CYCLES = 100
KIND_OBJECTS = (4, 5, 6, 3)


class Rec:
    __slots__ = ("id", "tags", "peer")


def record(i):
    big, f, s = 1000 + i, i + 0.25, "r%d" % i
    kind = i & 3
    if kind == 0:
        return (big, f, s)
    if kind == 1:
        r = Rec()
        r.id = big
        r.tags = [f, s]
        r.peer = None
        return r
    if kind == 2:
        return {"id": big, "name": s, "pos": (f, i + 0.75)}
    return [big, s]


def self_cycle(i):
    r = record((i & ~3) | 1)
    r.peer = r


def young_garbage(i):
    """The young generation of one probe round: YOUNG_RECORDS records, kept
    in the list returned, and YOUNG_CYCLES self-cycles dropped; numbered
    from i. Returns the list and the next number."""
    tmp = []
    for _ in range(YOUNG_RECORDS):
        tmp.append(record(i))
        i += 1
    for _ in range(YOUNG_CYCLES):
        self_cycle(i)
        i += 1
    return tmp, i


class PauseLog:
    """Each collection's pause, by generation (a gc.callbacks hook); with
    keep, also each one's (start, length, generation) in order, in spans."""

    def __init__(self, keep=False):
        self.pauses = ([], [], [])
        self.start = 0
        self.spans = [] if keep else None

    def __call__(self, phase, info):
        if phase == "start":
            self.start = time.perf_counter_ns()
        else:
            d = time.perf_counter_ns() - self.start
            self.pauses[info["generation"]].append(d)
            if self.spans is not None:
                self.spans.append((self.start, d, info["generation"]))

    def summary(self):
        out = []
        for p in self.pauses:
            p = sorted(p)
            # the smallest value with at least ceil(f * count) values at or below it
            q = lambda f: p[max(0, math.ceil(f * len(p)) - 1)] if p else 0
            out.append({"count": len(p), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99),
                        "max": p[-1] if p else 0, "total": sum(p)})
        return out


def placement():
    """Where generation 0's objects lie (the docstring; heaplab's long-lived
    reports the same figures)."""
    young = [id(o) for o in gc.get_objects(0)]
    every = sorted(id(o) for o in gc.get_objects())
    if len(young) < 2:
        return None
    gaps = sorted(abs(b - a) for a, b in zip(young, young[1:]))
    pages_all = {}
    for x in every:
        pages_all[x >> 12] = pages_all.get(x >> 12, 0) + 1
    pages_young = {}
    for x in young:
        pages_young[x >> 12] = pages_young.get(x >> 12, 0) + 1
    return {"young_objects": len(young), "young_pages": len(pages_young),
            "young_pages_shared_with_old": sum(1 for p, n in pages_young.items() if pages_all.get(p, 0) > n),
            "tracked_objects": len(every), "tracked_pages": len(pages_all),
            "gap_median_bytes": gaps[(len(gaps) - 1) // 2], "gap_p90_bytes": gaps[(len(gaps) - 1) * 9 // 10]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--churn", type=int, default=None)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--threshold", default=None)
    ap.add_argument("--gc-off", action="store_true")
    ap.add_argument("--no-probe", action="store_true")
    ap.add_argument("--pause-log", action="store_true")
    a = ap.parse_args()
    if a.threshold is not None:
        t = [int(x) for x in a.threshold.split(",")] + [10, 10]
        gc.set_threshold(*t[:3])
    if a.gc_off:
        gc.disable()
    heap_objects = 20_000 if a.smoke else a.scale * 1_000_000
    churn = a.churn if a.churn is not None else (20_000 if a.smoke else a.scale * CHURN_PER_SCALE)
    rng = random.Random(a.seed)

    log = PauseLog(keep=a.pause_log)
    gc.callbacks.append(log)
    c0 = time.process_time()
    t0_ns = time.perf_counter_ns()
    t0 = t0_ns / 1e9
    top, young = [], [None] * YOUNG
    made, i = 2, 0
    while made < heap_objects:
        chunk = []
        top.append(chunk)
        made += 1
        k = 0
        while k < CHUNK and made < heap_objects:
            chunk.append(record(i))
            made += KIND_OBJECTS[i & 3]
            i += 1
            k += 1
    t1 = time.perf_counter()
    nchunks = len(top)
    getrandbits = rng.getrandbits
    for _ in range(churn):
        r = getrandbits(64)
        where = r & 7
        r >>= 3
        o = record(i)
        if where == 0:
            chunk = top[r % nchunks]
            chunk[(r >> 20) % len(chunk)] = o
        elif where == 1:
            young[r % YOUNG] = o
        if (r >> 40) & 15 == 0:
            self_cycle(i)
        i += 1
    del o
    t2_ns = time.perf_counter_ns()
    t2 = t2_ns / 1e9
    c2 = time.process_time()
    gc.callbacks.remove(log)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # before placement's lists
    place = placement()
    out = {
        "python": platform.python_version(), "implementation": sys.implementation.name,
        "scale": a.scale, "heap_objects": made, "records": i, "chunks": nchunks, "churn": churn,
        "threshold": list(gc.get_threshold()), "gc_enabled": gc.isenabled(),
        "build_s": round(t1 - t0, 3), "churn_s": round(t2 - t1, 3),
        "wall_s": round(t2 - t0, 6), "cpu_s": round(c2 - c0, 6),
        "peak_rss_bytes": peak_rss,
        "collections": [len(p) for p in log.pauses], "pause_ns_gen": log.summary(),
        "young_placement": place,
    }
    if a.pause_log:
        out["pause_log"] = {"span_ns": t2_ns - t0_ns,
                            "pauses": [[s - t0_ns, d, g] for s, d, g in log.spans]}
    if a.no_probe:
        print(json.dumps(out))
        return

    # result lists made before the first collection, holding floats and
    # ints only: they add nothing to the young generation
    full_ns, full_n, young_ns, young_n = [], [], [], []
    gc.disable()
    gc.collect()
    for _ in range(FULL_RUNS):
        n = len(gc.get_objects())
        s = time.perf_counter_ns()
        gc.collect()
        full_ns.append((time.perf_counter_ns() - s) / max(1, n))
        full_n.append(n)
    for _ in range(YOUNG_RUNS):
        tmp, i = young_garbage(i)
        n = len(gc.get_objects(0))
        s = time.perf_counter_ns()
        gc.collect(0)
        young_ns.append((time.perf_counter_ns() - s) / max(1, n))
        young_n.append(n)
        del tmp
    gc.enable()
    out.update({
        "full_runs": FULL_RUNS, "full_objects": int(statistics.median(full_n)),
        "full_ns_per_obj": statistics.median(full_ns),
        "young_runs": YOUNG_RUNS, "young_objects": int(statistics.median(young_n)),
        "young_ns_per_obj": statistics.median(young_ns),
    })
    print(json.dumps(out))


if __name__ == "__main__":
    main()
