#!/usr/bin/python3
"""CPython's cycle collector on heaplab's cyclotron workload.

usage: cyclotron.py [--scale N] [--cycle-size N] [--cycle-payload none|ints]
                    [--live-heap-m M] [--seed N] [--smoke]
  --scale N           N x 2,000,000 ring nodes (default 1), as heaplab's --scale
  --cycle-size N      nodes per ring (default 10)
  --cycle-payload P   none (default), or ints: each node holds a list of 8 ints
  --live-heap-m M     M million live objects built first and kept (default 0)
  --seed N            seed of the payloads' random bases (default 42)
  --smoke             20,000 ring nodes

The graph of bench/workloads/cyclotron.c, by the same rules (one thread):
  1. untimed: the live heap, records in chunk lists of 1000 in one top list;
     record i is a Rec (__slots__ id = 1000 + i, tags = [i + 0.25]), until
     M million objects are made (the lists counted); then gc.collect()
     (heaplab makes a full collection there too);
  2. timed: rings of N Node instances (__slots__ next, payload), the last's
     next the first; ring r goes into slot r % K of a window of
     K = max(2, ceil(2048 / N)) slots, which drops ring r - K (cyclic
     garbage); with ints, node k's payload is [1000 + b + 8k + j for j in
     0..7] for a random base b below 10^6 per ring. The window is dropped
     at the end.
ops = rings made. Prints one JSON line (gc_twin.Run): time, ops, peak RSS,
collections and pauses per generation, and live_heap_objects beside heaplab's
JSON "extra".
"""
import argparse
import gc
import json
import random

from gc_twin import Run

CHUNK = 1000
RING_NODES = 2_000_000
WINDOW_NODES = 2048
RECORD_OBJECTS = 4
RECORD_CONTAINERS = 2


class Node:
    __slots__ = ("next", "payload")

    def __init__(self):
        self.next = None
        self.payload = None


class Rec:
    __slots__ = ("id", "tags")


def build_heap(objects):
    top, made, containers, i = [], 1, 1, 0
    while made < objects:
        chunk = []
        top.append(chunk)
        made += 1
        containers += 1
        k = 0
        while k < CHUNK and made < objects:
            r = Rec()
            r.id = 1000 + i
            r.tags = [i + 0.25]
            chunk.append(r)
            made += RECORD_OBJECTS
            containers += RECORD_CONTAINERS
            i += 1
            k += 1
    return top, made, containers


def make_ring(size, ints, base):
    first = cur = Node()
    if ints:
        first.payload = [1000 + base + j for j in range(8)]
    for k in range(1, size):
        n = Node()
        if ints:
            b = 1000 + base + 8 * k
            n.payload = [b + j for j in range(8)]
        cur.next = n
        cur = n
    cur.next = first
    return first


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--cycle-size", type=int, default=10)
    ap.add_argument("--cycle-payload", choices=("none", "ints"), default="none")
    ap.add_argument("--live-heap-m", type=int, default=0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.cycle_size < 2:
        ap.error("--cycle-size: at least 2")
    size, ints = a.cycle_size, a.cycle_payload == "ints"
    nodes = 20_000 if a.smoke else a.scale * RING_NODES
    rings = -(-nodes // size)
    window_n = max(2, -(-WINDOW_NODES // size))
    rng = random.Random(a.seed)

    heap, heap_objects, heap_containers = (build_heap(a.live_heap_m * 1_000_000)
                                           if a.live_heap_m else (None, 0, 0))
    # the heap old before the rings, as heaplab's full collection after it
    gc.collect()
    window = [None] * window_n
    with Run() as run:
        for r in range(rings):
            window[r % window_n] = make_ring(size, ints, rng.randrange(1_000_000))
        del window
    print(json.dumps(run.figures(
        "cyclotron", rings, ring_size=size, payload=a.cycle_payload, window_rings=window_n,
        live_heap_objects=heap_objects, live_heap_containers=heap_containers,
        ring_containers=size * (2 if ints else 1))))
    del heap


if __name__ == "__main__":
    main()
