#!/usr/bin/python3
"""Capture a real Python program's live heap as a graph heaplab can load.

usage: heap_capture.py -o FILE [--repeats N] SCRIPT.py [ARGS ...]
       heap_capture.py -o FILE [--repeats N] -m MODULE [ARGS ...]
       heap_capture.py -o FILE [--repeats N] --call MODULE:FUNC [ARGS ...]

Runs the program (a script as __main__, a module as `python -m` would, or
a callable whose return value is kept alive), then, with what it left
alive held:
  1. gc.collect() (the garbage it left is not its heap), then REPEATS
     (default 5) timed gc.collect() calls on that heap: CPython's own full
     collection time, median, per tracked object (len(gc.get_objects()));
     and 20 young collections (gc.collect(0)) each after making 2000 lists
     of two references into the heap, timed per object in generation 0;
  2. walks the live objects: every object gc.get_objects() returns, and the
     closure of gc.get_referents() from them (the untracked atoms and
     containers they reach), in address order (heaplab allocates the
     records in file order: its heap's layout then follows the program's
     roughly, containers and atoms interleaved), except None, True, False, Ellipsis and
     NotImplemented (immortal singletons: edges to them are written as -1)
     and the walk's own bookkeeping (an edge to it is written as -1 too,
     and counted as dropped);
  0. while the program runs: what its collector did, for heap-load --churn
     (the meta line's optional "mutation" object; MutationRecorder says
     what is measured and what is estimated), and CPython's own pauses;
  3. writes the graph in heaplab's heap format, version 1 (docs/heap-format.md):
       heaplab-heap 1
       objects N edges E
       meta {JSON: python version, CPython's timings, counts per kind, ...}
       ID KIND SIZE NEDGES E1 ... En       one line per object, ID = 0..N-1
       end
     KIND: i int, f float, s str (or bytes), t tuple, l list, d dict (its
     edges key, value, key, value ...), o instance of a Python class (its
     referents: the attribute dict or values, and its type), x any other
     object (its referents, in gc.get_referents order). SIZE: a str's or
     bytes' length, an int's bit length, sys.getsizeof for the rest.

Standard library only; meant for /usr/bin/python3 (CPython 3.11).
"""
import gc
import json
import os
import platform
import runpy
import statistics
import sys
import time

FORMAT_VERSION = 1
YOUNG_RUNS = 20
YOUNG_LISTS = 2000
SINGLETONS = (None, True, False, Ellipsis, NotImplemented)
PY_CLASS = {}   # type -> "o" or "x" (kind_of's cache)


def kind_of(o):
    t = type(o)
    if t is int or t is bool:
        return "i"
    if t is float:
        return "f"
    if t is str or t is bytes:
        return "s"
    if t is tuple:
        return "t"
    if t is list:
        return "l"
    if t is dict:
        return "d"
    k = PY_CLASS.get(t)
    if k is None:
        # a class statement's class: a heap type (Py_TPFLAGS_HEAPTYPE) whose own
        # or whose Python bases' dict makes a __dict__ or __slots__ (a C
        # extension's heap types do neither); read from the type, never from
        # the instance, whose managed dict reading __dict__ would materialize
        k = "o" if (t.__flags__ & (1 << 9)) and any(
            "__dict__" in vars(b) or "__slots__" in vars(b) for b in t.__mro__[:-1]) else "x"
        PY_CLASS[t] = k
    return k


def size_of(o, k):
    if k == "s":
        return len(o)
    if k == "i":
        return o.bit_length()
    try:
        return sys.getsizeof(o)
    except Exception:   # a type whose __sizeof__ fails
        return 0


def refs_of(o, k):
    """What the file lists as o's edges: a dict's keys and values (CPython
    3.11 does not traverse the str keys of a str-keyed dict), an atom's
    nothing, anything else's referents."""
    if k == "d":
        refs = []
        for key, val in list(o.items()):
            refs.append(key)
            refs.append(val)
        return refs
    if k in "ifs":
        return []
    return gc.get_referents(o)


class MutationRecorder:
    """The program's rates of change, as cheaply as CPython lets one see them.

    Measured (exact): from gc.get_stats() before and after the run, the
    collections of each generation and the objects they found unreachable
    (collected, uncollectable), explicit gc.collect() calls included; from a
    gc.callbacks pair, each collection's pause (perf_counter_ns from the
    start callback to the stop one: the collection, without the callbacks'
    own cost before and after it), wall (perf_counter_ns) and CPU
    (thread_time_ns), and the run's wall and CPU time.

    Estimated: the containers the program allocated. CPython counts
    allocations of tracked objects minus their deallocations in
    generation 0's count and collects generation 0 when it passes
    threshold 0, resetting it; so young_intervals x threshold0 plus the
    count's change is the net allocation (allocations that outlived the
    next collection), a lower bound of the gross. CPython counts no stores:
    how many edges the program replaced is not known (heap-load assumes
    one per container allocated, and says so)."""

    def __init__(self):
        self.pauses = []
        self.pause_cpu = 0
        self._t0 = self._c0 = None

    def _callback(self, phase, info):
        if phase == "start":
            self._c0 = time.thread_time_ns()
            self._t0 = time.perf_counter_ns()
        elif self._t0 is not None:
            self.pauses.append(time.perf_counter_ns() - self._t0)
            self.pause_cpu += time.thread_time_ns() - self._c0
            self._t0 = None

    def start(self):
        self.threshold = list(gc.get_threshold())
        self.count0 = gc.get_count()[0]
        self.stats0 = gc.get_stats()
        self.blocks0 = sys.getallocatedblocks()
        gc.callbacks.append(self._callback)
        self.cpu0 = time.process_time_ns()
        self.wall0 = time.perf_counter_ns()

    def stop(self):
        wall = time.perf_counter_ns() - self.wall0
        cpu = time.process_time_ns() - self.cpu0
        if self._callback in gc.callbacks:   # the program may have cleared the list
            gc.callbacks.remove(self._callback)
        stats1, count1 = gc.get_stats(), gc.get_count()[0]
        delta = lambda key: [int(b[key] - a[key]) for a, b in zip(self.stats0, stats1)]
        collections = delta("collections")
        intervals = sum(collections)
        p = sorted(self.pauses)
        pct = lambda q: p[min(len(p) - 1, int(q * len(p)))] if p else 0
        return {
            "run_ns": int(wall), "cpu_ns": int(cpu),
            "threshold": self.threshold,
            "collections": collections,
            "collected": delta("collected"),
            "uncollectable": delta("uncollectable"),
            "young_intervals": intervals,
            "containers_allocated_est": max(0, intervals * self.threshold[0] + count1 - self.count0),
            "blocks_net": int(sys.getallocatedblocks() - self.blocks0),
            "pauses": len(p), "pause_ns_total": int(sum(p)),
            "pause_cpu_ns_total": int(self.pause_cpu),
            "pause_ns_p50": int(pct(0.50)), "pause_ns_p99": int(pct(0.99)),
            "pause_ns_max": int(p[-1]) if p else 0,
        }


def cpython_timings(repeats):
    """CPython's collections on the live heap as it is now (median ns),
    automatic collection off so that only the timed calls collect."""
    gc.disable()
    gc.collect()
    tracked = len(gc.get_objects())
    full = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        gc.collect()
        full.append(time.perf_counter_ns() - t0)
    seed = gc.get_objects()
    base = seed[: 2 * YOUNG_LISTS + 2]
    del seed
    young, young_objs = [], []
    for _ in range(YOUNG_RUNS):
        gc.collect(0)
        batch = [[base[2 * k % len(base)], base[(2 * k + 1) % len(base)]]
                 for k in range(YOUNG_LISTS)]
        n0 = gc.get_count()[0]
        t0 = time.perf_counter_ns()
        gc.collect(0)
        dt = time.perf_counter_ns() - t0
        young.append(dt / max(n0, 1))
        young_objs.append(n0)
        del batch
    del base
    full_med = statistics.median(full)
    return {
        "tracked_objects": tracked,
        "full_runs": repeats,
        "full_ns": [int(x) for x in full],
        "full_ns_median": int(full_med),
        "full_ns_per_obj": round(full_med / max(tracked, 1), 3),
        "young_runs": YOUNG_RUNS,
        "young_lists": YOUNG_LISTS,
        "young_objects": int(statistics.median(young_objs)),
        "young_ns_per_obj": round(statistics.median(young), 3),
    }


def capture(out, meta):
    """Steps 2 and 3: the walk and the file."""
    gc.collect()
    book = {}                 # id -> index: the walk's own bookkeeping
    order = []
    own = {id(book), id(order), id(meta), id(PY_CLASS)}
    singles = {id(s) for s in SINGLETONS}
    own.add(id(singles))
    own.add(id(own))
    roots = gc.get_objects()
    own.add(id(roots))
    for o in roots:
        i = id(o)
        if i not in own and i not in singles and i not in book:
            book[i] = len(order)
            order.append(o)
    del roots
    # the closure: untracked objects reachable from the tracked ones
    k = 0
    while k < len(order):
        o = order[k]
        for r in refs_of(o, kind_of(o)):
            i = id(r)
            if i not in book and i not in own and i not in singles:
                book[i] = len(order)
                order.append(r)
        k += 1
    # records in address order (CPython's id): heaplab allocates them in
    # file order, so that its heap interleaves containers and atoms about
    # as the program's memory did, rather than containers first
    order.sort(key=id)
    for n, o in enumerate(order):
        book[id(o)] = n
    counts = {c: 0 for c in "ifstldox"}
    edges = singleton_edges = dropped = 0
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        body = []
        for n, o in enumerate(order):
            kd = kind_of(o)
            counts[kd] += 1
            ids = []
            for r in refs_of(o, kd):
                i = id(r)
                j = book.get(i)
                if j is not None:
                    ids.append(j)
                elif i in singles:
                    ids.append(-1)
                    singleton_edges += 1
                else:   # the walk's own bookkeeping: None in its place (a dict's
                    ids.append(-1)   # pairs stay pairs)
                    dropped += 1
            edges += len(ids)
            body.append("%d %s %d %d%s%s\n" % (n, kd, size_of(o, kd), len(ids),
                                               " " if ids else "", " ".join(map(str, ids))))
            if len(body) >= 4096:
                f.write("".join(body))
                body.clear()
        meta["counts"] = counts
        meta["edges"] = edges
        meta["singleton_edges"] = singleton_edges
        meta["dropped_edges"] = dropped
        f.write("".join(body))
        f.write("end\n")
    # the header last: its counts are known now
    with open(out, "w") as g, open(tmp) as f:
        g.write("heaplab-heap %d\n" % FORMAT_VERSION)
        g.write("objects %d edges %d\n" % (len(order), edges))
        g.write("meta %s\n" % json.dumps(meta, sort_keys=True))
        for line in f:
            g.write(line)
    os.unlink(tmp)
    return len(order), edges


def main():
    argv = sys.argv[1:]
    out, repeats, mode, target = None, 5, None, None
    while argv:
        a = argv.pop(0)
        if a == "-o" and argv:
            out = argv.pop(0)
        elif a == "--repeats" and argv:
            v = argv.pop(0)
            if not v.isdigit():
                sys.stderr.write("heap_capture.py: --repeats wants a positive integer, not %r\n" % v)
                return 2
            repeats = int(v)
        elif a == "-m" and argv:
            mode, target = "module", argv.pop(0)
            break
        elif a == "--call" and argv:
            mode, target = "call", argv.pop(0)
            break
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            mode, target = "script", a
            break
    if not out or not target or repeats < 1:
        sys.stderr.write("usage: heap_capture.py -o FILE [--repeats N] "
                         "(SCRIPT.py | -m MODULE | --call MODULE:FUNC) [ARGS ...]\n")
        return 2
    sys.argv = [target] + argv
    mod, _, func = target.partition(":")
    if mode == "call" and not func:
        sys.stderr.write("heap_capture.py: --call wants MODULE:FUNC, not %r\n" % target)
        return 2
    t0 = time.perf_counter()
    exited = None
    rec = MutationRecorder()
    rec.start()
    try:
        if mode == "script":
            sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
            kept = runpy.run_path(target, run_name="__main__")
        elif mode == "module":
            kept = runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            import importlib
            kept = getattr(importlib.import_module(mod), func)()
    except SystemExit as e:   # the heap at its exit: what the modules still hold
        kept, exited = None, e.code
    mutation = rec.stop()
    del rec   # its lists are not the program's heap
    run_s = time.perf_counter() - t0
    meta = {"format": FORMAT_VERSION, "program": " ".join([mode, target] + argv),
            "python": platform.python_version(),
            "implementation": sys.implementation.name, "run_s": round(run_s, 3)}
    if exited is not None:
        meta["exit"] = str(exited)
    meta["mutation"] = mutation
    meta["cpython"] = cpython_timings(repeats)   # leaves automatic collection off:
    # the walk's bookkeeping is not the program's heap
    n, e = capture(out, meta)
    del kept
    sys.stderr.write("heap_capture.py: %s: %d objects, %d edges; CPython full collection "
                     "%.1f ns/object over %d tracked\n"
                     % (out, n, e, meta["cpython"]["full_ns_per_obj"],
                        meta["cpython"]["tracked_objects"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
