#!/usr/bin/python3
"""CPython's cycle collector on heaplab's gc-traversal workload: a large live
tree that survives every collection, beside a small steady allocation of
short-lived containers.

usage: gc_traversal.py [--scale N] [--containers N] [--seed N] [--smoke]
  --scale N       a tree of N million objects and N x 4,000,000 containers
                  (default 1), as heaplab's --scale
  --containers N  this many short-lived containers instead
  --seed N        seed of the containers' random choices (default 42)
  --smoke         a tree of 20,000 objects and 100,000 containers

The graph of bench/workloads/gc_traversal.c, by the same rules (one thread):
  1. untimed: a 4-ary tree of Node instances (__slots__ kids, val), node i
     with val = 1000 + i and, once it has children, kids = a list of nodes
     4i+1 .. 4i+4, added in order until the objects made (Nodes, ints,
     lists) reach the size;
  2. timed: containers in batches of 1000 in a list then dropped, each a
     list [I] or a Node with val = I by a random bit r & 1, I = 1000 +
     (r >> 1) % 10^6 for 64 random bits r; every 64th container also a Node
     whose kids is itself, dropped (cyclic garbage).
gc.collect() after step 1 moves the tree into the oldest generation, as
heaplab's full collection there does (tracked_at_start: the tracked objects
then, the tree's Nodes and lists and the interpreter's own).
ops = containers made in step 2. Prints one JSON line (gc_twin.Run): time,
ops, peak RSS, collections, collected and pauses per generation, and
tree_objects.
"""
import argparse
import gc
import json
import random

from gc_twin import Run

BATCH = 1000
CYCLE_EVERY = 64
CONTAINERS_PER_SCALE = 4_000_000


class Node:
    __slots__ = ("kids", "val")

    def __init__(self, val):
        self.kids = None
        self.val = val


def build_tree(objects):
    nodes, made = [], 0
    while made < objects:
        n = len(nodes)
        node = Node(1000 + n)
        if n:
            parent = nodes[(n - 1) // 4]
            if parent.kids is None:
                parent.kids = []
                made += 1
            parent.kids.append(node)
        nodes.append(node)
        made += 2
    return nodes, made


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--containers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    tree_objects = 20_000 if a.smoke else a.scale * 1_000_000
    containers = (a.containers if a.containers is not None
                  else 100_000 if a.smoke else a.scale * CONTAINERS_PER_SCALE)
    rng = random.Random(a.seed)
    getrandbits = rng.getrandbits

    nodes, made = build_tree(tree_objects)
    root = nodes[0]
    del nodes   # the tree holds itself; the index is heaplab's C array
    gc.collect()
    tracked = len(gc.get_objects())
    with Run() as run:
        ops = 0
        while ops < containers:
            batch = []
            for k in range(min(BATCH, containers - ops)):
                r = getrandbits(64)
                v = 1000 + (r >> 1) % 1_000_000
                batch.append(Node(v) if r & 1 else [v])
                if (ops + k) % CYCLE_EVERY == CYCLE_EVERY - 1:
                    c = Node(v)
                    c.kids = c
                    del c
            ops += len(batch)
            del batch
    print(json.dumps(run.figures("gc-traversal", ops, tree_objects=made,
                                 tracked_at_start=tracked)))
    del root


if __name__ == "__main__":
    main()
