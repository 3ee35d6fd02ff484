#!/usr/bin/python3
"""gc-cpu and gc-mem in CPython: the threshold-tuning pair of
bench/workloads/gc_tuning.c, built by the same rules.

usage: gc_tuning.py WORKLOAD [--scale F] [--seed N] [--threshold A[,B,C] | --gc-off] [--smoke]
  WORKLOAD   gc-cpu or gc-mem
  --scale F  in heaplab's unit: gc-cpu 4,000,000 containers, gc-mem
             500,000 cycles (default 1)
  --threshold A[,B,C]  gc.set_threshold (B and C default to 10)
  --gc-off   gc.disable(), as heaplab's --gc=none
  --smoke    scale 0.01

gc-cpu: every operation makes one container (a tuple (I, F), a list [I, S],
a Rec instance of 3 slots holding I, or a dict {"v": I}: 30/30/20/20 %, by
a seeded random draw) and appends it to a batch; a batch of 50,000 is
walked (each record's I) and dropped. Collections find nothing.
gc-mem: every operation makes two Rec instances pointing at each other,
one holding a list of 8 floats, the other a 256-character str, and drops
them (14 objects): only a collection frees them.

Prints one JSON line: wall_s and cpu_s of the work, peak_rss_bytes
(ru_maxrss), the collections and pauses per generation (gc_twin.Run).
"""
import argparse
import gc
import json
import random
import time

from gc_twin import Run

BATCH = 50_000
PAYLOAD_FLOATS = 8
PAYLOAD_STR = 256


class Rec:
    __slots__ = ("id", "tags", "peer")


def gc_cpu(ops, rng):
    done, total = 0, 0
    rand = rng.randrange
    while done < ops:
        n = min(BATCH, ops - done)
        batch = []
        for k in range(n):
            i = done + k
            kind = rand(100)
            I = 1000 + i
            if kind < 30:
                o = (I, i * 0.5)
            elif kind < 60:
                o = [I, "s%d" % i]
            elif kind < 80:
                o = Rec()
                o.id = I
            else:
                o = {"v": I}
            batch.append(o)
        for o in batch:
            if type(o) is tuple or type(o) is list:
                total += o[0]
            elif type(o) is Rec:
                total += o.id
            else:
                total += o["v"]
        done += len(batch)
        del batch, o
    return total


def gc_mem(ops, rng):
    total = 0
    rand = rng.randrange
    for i in range(ops):
        r = rand(26)
        a, b = Rec(), Rec()
        a.id, b.id = 1000 + 2 * i, 1001 + 2 * i
        a.tags = [float(i + k) for k in range(PAYLOAD_FLOATS)]
        b.tags = chr(97 + r) * PAYLOAD_STR
        a.peer, b.peer = b, a
        total += r
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workload", choices=("gc-cpu", "gc-mem"))
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threshold", default=None)
    ap.add_argument("--gc-off", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    scale = 0.01 if a.smoke else a.scale
    if a.threshold is not None:
        t = [int(x) for x in a.threshold.split(",")] + [10, 10]
        gc.set_threshold(*t[:3])
    if a.gc_off:
        gc.disable()
    ops = int((4_000_000 if a.workload == "gc-cpu" else 500_000) * scale)
    rng = random.Random(a.seed)
    gc.collect()
    c0 = time.process_time()
    with Run() as run:
        total = (gc_cpu if a.workload == "gc-cpu" else gc_mem)(ops, rng)
    cpu = time.process_time() - c0
    print(json.dumps(run.figures(a.workload, ops, cpu_s=round(cpu, 6), checksum=total,
                                 threshold=list(gc.get_threshold()), gc_enabled=gc.isenabled(),
                                 seed=a.seed)))


if __name__ == "__main__":
    main()
