#!/usr/bin/python3
"""CPython's cycle collector on heaplab's trash-loop workload: the iterations
at which full collections happen in a loop that makes cyclic trash while
its heap grows.

usage: trash_loop.py [--scale N] [--iterations N] [--seed N] [--smoke]
  --scale N       N x 200,000 iterations (default 1), as heaplab's --scale
  --iterations N  this many iterations instead
  --seed N        seed of the records' random ints (default 42)
  --smoke         20,000 iterations

The loop of bench/workloads/trash_loop.c, by the same rules (one thread):
each iteration i makes a ring of 4 Trash instances (__slots__ next) and drops
it, then appends 4 records [1000 + a random number below 10^6, n + 0.5] (n
counting the records) to a heap of chunk lists of 1000 in one top list. A
gc.collect() first gives the generations a clean start. A
gc.callbacks hook notes, at the "start" of each collection of generation 2,
the iteration in progress. Prints one JSON line (gc_twin.Run): time, ops,
peak RSS, collections and pauses per generation, and full_collections and
full_at (the first 64 iterations noted) beside heaplab's JSON "extra".
"""
import argparse
import json
import random

import gc

from gc_twin import Run

RING = 4
GROW = 4
CHUNK = 1000
FULL_LOG = 64
ITERATIONS_PER_SCALE = 200_000


class Trash:
    __slots__ = ("next",)


def trash():
    first = cur = Trash()
    for _ in range(1, RING):
        n = Trash()
        cur.next = n
        cur = n
    cur.next = first


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    iterations = (a.iterations if a.iterations is not None
                  else 20_000 if a.smoke else a.scale * ITERATIONS_PER_SCALE)
    rng = random.Random(a.seed)
    randrange = rng.randrange

    full_at = []
    i = 0

    def on_collection(phase, info):
        if phase == "start" and info["generation"] == 2:
            full_at.append(i)

    top, chunk, records = [], None, 0
    # a clean start, as heaplab's runtime has: the generations' counts at 0
    # and the interpreter's own objects (counted in the output) in the oldest
    gc.collect()
    interpreter_objects = len(gc.get_objects())
    gc.callbacks.append(on_collection)
    with Run() as run:
        for i in range(iterations):
            trash()
            for _ in range(GROW):
                if records % CHUNK == 0:
                    chunk = []
                    top.append(chunk)
                chunk.append([1000 + randrange(1_000_000), records + 0.5])
                records += 1
    gc.callbacks.remove(on_collection)
    print(json.dumps(run.figures(
        "trash-loop", iterations, full_collections=len(full_at), full_at=full_at[:FULL_LOG],
        ring=RING, grow=GROW, interpreter_objects=interpreter_objects)))


if __name__ == "__main__":
    main()
