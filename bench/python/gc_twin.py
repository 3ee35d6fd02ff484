"""What the collector workloads' Python twins share: CPython's own figures
for a run, as heaplab's JSON gives them.

The twins (cyclotron.py, trash_loop.py, gc_collect.py, gc_traversal.py)
build the graph of the heaplab workload of the same name by the same rules
with the collector on at its default thresholds, and print one JSON line.
The collections and pauses per generation come from gc_long_lived.PauseLog
(a gc.callbacks hook); peak RSS from resource.getrusage (ru_maxrss, KiB on
Linux, as bytes); CPython's collected count per generation from
gc.get_stats(), so that "collected" sits beside heaplab's gc.collected.
"""
import gc
import platform
import resource
import sys
import time

from gc_long_lived import PauseLog


class Run:
    """Times the part of a twin that heaplab times, with the pause log on."""

    def __init__(self):
        self.log = PauseLog()
        self.t0 = self.t1 = 0.0
        self.stats0 = None

    def __enter__(self):
        self.stats0 = gc.get_stats()
        gc.callbacks.append(self.log)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.t1 = time.perf_counter()
        gc.callbacks.remove(self.log)
        return False

    def figures(self, workload, ops, **extra):
        """The JSON line's fields: the workload's own after the common ones."""
        stats1 = gc.get_stats()
        wall = self.t1 - self.t0
        out = {
            "python": platform.python_version(), "implementation": sys.implementation.name,
            "workload": workload, "ops": ops, "wall_s": round(wall, 6),
            "ops_per_s": round(ops / wall, 1) if wall > 0 else 0.0,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "collections": [len(p) for p in self.log.pauses],
            "collected": [b["collected"] - a["collected"] for a, b in zip(self.stats0, stats1)],
            "pause_ns_gen": self.log.summary(),
        }
        out.update(extra)
        return out
