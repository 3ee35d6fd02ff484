#!/usr/bin/python3
"""CPython's cycle collector on heaplab's gc-collect workload: big cyclic
garbage, built and dropped, collected on the collector's own schedule.

usage: gc_collect.py [--scale N] [--smoke]
  --scale N  N x 2,000,000 nodes (default 1), as heaplab's --scale
  --smoke    200,000 nodes (2 rings)

The graph of bench/workloads/gc_collect.c, by the same rules (one thread):
doubly linked rings of 100,000 Node instances (__slots__ next, prev), each
walked by next (checking prev points back) and dropped before the next is
built; automatic collection at the default thresholds (unlike pyperformance's
bm_gc_collect, which times gc.collect() calls). gc.collect() first gives the
generations a clean start. ops = nodes made. Prints one JSON line
(gc_twin.Run): time, ops, peak RSS, collections and pauses per generation.
"""
import argparse
import gc
import json

from gc_twin import Run

RING_NODES = 100_000
NODES_PER_SCALE = 2_000_000


class Node:
    __slots__ = ("next", "prev")


def ring(n):
    first = cur = Node()
    for _ in range(1, n):
        node = Node()
        cur.next = node
        node.prev = cur
        cur = node
    cur.next = first
    first.prev = cur
    return first


def walk(first):
    n, o = 0, first
    while True:
        nxt = o.next
        if nxt.prev is not o:
            return 0
        o = nxt
        n += 1
        if o is first:
            return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    nodes = 2 * RING_NODES if a.smoke else a.scale * NODES_PER_SCALE
    gc.collect()
    with Run() as run:
        made = 0
        while made < nodes:
            n = min(RING_NODES, nodes - made)
            first = ring(n)
            if walk(first) != n:
                raise SystemExit("gc_collect.py: a ring walked wrong")
            del first
            made += n
    print(json.dumps(run.figures("gc-collect", made, ring_nodes=RING_NODES)))


if __name__ == "__main__":
    main()
