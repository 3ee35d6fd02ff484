#!/usr/bin/python3
"""An allocation-heavy CPython program: the interpreter's own allocator at work.

usage: alloc_heavy.py [--scale N] [--smoke]
  --scale N  rounds of every phase, in multiples of the default (1: about 3 s
             on the 2-core development machine under CPython's obmalloc)
  --smoke    sizes divided by about 100: checks the path, measures nothing

Four phases, each of them mostly small objects that die young or all at once,
the traffic obmalloc was built for:
  trees    binary trees of tuples (the benchmarks game's binary-trees: a
           long-lived tree of depth 17, then many short-lived ones of depth
           4..16) and of instances with a __dict__ (depth 15)
  dicts    lists of small dicts with a string and a list inside, sorted,
           filtered, then dropped
  strings  string building with str.join over many pieces and with +=
           (CPython resizes the string in place when it holds the only
           reference: realloc traffic)
  mixed    a dict of lists of tuples grown and emptied again

Prints one JSON line: the seconds of each phase and a checksum that depends
only on the work done, so that runs under different allocators can be
checked to have done the same thing. Used by bench/compare_preload.py, which
runs it under obmalloc and under PYTHONMALLOC=malloc with several LD_PRELOAD
allocators.
"""
import json
import sys
import time


def tuple_tree(depth):
    if depth == 0:
        return (None, None)
    depth -= 1
    return (tuple_tree(depth), tuple_tree(depth))


def tuple_check(node):
    left, right = node
    if left is None:
        return 1
    return 1 + tuple_check(left) + tuple_check(right)


class Node:
    def __init__(self, depth):
        self.value = depth
        if depth > 0:
            self.left = Node(depth - 1)
            self.right = Node(depth - 1)
        else:
            self.left = self.right = None

    def check(self):
        if self.left is None:
            return self.value + 1
        return self.value + self.left.check() + self.right.check()


# Sizes; --smoke divides the counts by SMOKE and takes DEPTH_CUT off the depths.
SMOKE, DEPTH_CUT = 100, 7
shrink = False


def count(n):
    return max(1, n // SMOKE) if shrink else n


def sized_depth(d):
    return max(1, d - DEPTH_CUT) if shrink else d


def trees(scale):
    total = tuple_check(tuple_tree(sized_depth(18)))  # stretch tree, freed at once
    long_lived = tuple_tree(sized_depth(17))
    min_depth, max_depth = 4, sized_depth(16)
    for depth in range(min_depth, max_depth + 1, 2):
        iterations = 2 ** (max_depth - depth + min_depth - 1) * scale
        for _ in range(iterations):
            total += tuple_check(tuple_tree(depth))
    total += tuple_check(long_lived)
    for _ in range(2 * scale):
        total += Node(sized_depth(15)).check()
    return total


def dicts(scale):
    total = 0
    for rnd in range(3 * scale):
        rows = [{"id": i, "name": "row%d" % i, "tags": [i % 7, i % 11, rnd]}
                for i in range(count(150_000))]
        rows.sort(key=lambda r: (r["tags"][0], -r["id"]))
        keep = [dict(r, score=r["id"] * 3 % 101) for r in rows if r["tags"][1] < 5]
        total += len(keep) + sum(r["score"] for r in keep[:1000]) + rows[0]["id"]
        del rows, keep
    return total


def concat(n):
    # A plain local, not one a comprehension captures: a cell variable would
    # lose the in-place resize and make the loop quadratic copying.
    s = ""
    for i in range(n):
        s += "ab" if i % 3 else str(i)
    return s


def strings(scale):
    total = 0
    for rnd in range(6 * scale):
        pieces = ["%d:%s" % (i, "x" * (i % 13)) for i in range(count(300_000))]
        joined = ",".join(pieces)
        total += len(joined) + len(joined.split(",")[rnd])
        del pieces, joined
        s = concat(count(300_000))
        words = [s[i:i + 8] for i in range(0, len(s), 8)]
        total += len(s) + len(" ".join(w.upper() for w in words))
    return total


def mixed(scale):
    total = 0
    for rnd in range(4 * scale):
        table = {}
        for i in range(count(300_000)):
            table.setdefault(i % 5003, []).append((i, rnd, i * 0.5))
        total += sum(len(v) for v in table.values()) + len(table)
        for key in list(table)[::2]:
            del table[key]
        total += len(table)
    return total


def main():
    global shrink
    scale = 1
    args = sys.argv[1:]
    while args:
        if args[0] == "--scale" and len(args) > 1 and args[1].isdigit() and int(args[1]) > 0:
            scale = int(args[1])
            args = args[2:]
        elif args[0] == "--smoke":
            shrink = True
            args = args[1:]
        else:
            sys.exit("usage: alloc_heavy.py [--scale N] [--smoke]")
    result = {"scale": scale, "smoke": shrink, "phases_s": {}}
    checksum = 0
    for phase in (trees, dicts, strings, mixed):
        t = time.perf_counter()
        checksum = (checksum * 1_000_003 + phase(scale)) % (1 << 61)
        result["phases_s"][phase.__name__] = round(time.perf_counter() - t, 4)
    result["checksum"] = "%016x" % checksum
    print(json.dumps(result))


if __name__ == "__main__":
    main()
