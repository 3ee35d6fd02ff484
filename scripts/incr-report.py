#!/usr/bin/python3
"""Issue 21's comparison table: the incremental collector beside stop-the-world.

usage: scripts/incr-report.py RESULTS_DIR [RESULTS_DIR...]

Reads the runs.jsonl of sweeps made from bench/experiments/incr/*.sweep
(heaplab sweep FILE --out DIR) and prints, in Markdown:

  - per workload, the median over the repeats of each configuration's CPU
    seconds (the steadier figure on a shared machine; wall seconds beside
    it), peak RSS and garbage backlog, and the incremental collector's
    ratios to stop-the-world at 700,10,10 and to the two controls that only
    raise the thresholds (2000,10,10 and 10000,10,10);
  - the geometric mean of the time ratios over the workloads;
  - per workload and scale, the pauses (p99, p99.9, max, counted over every
    run's histogram: the medians of the runs' own figures) and the MMU at
    10 ms.

Medians of interleaved runs (the sweep runs A B C D A B C D ...): each
configuration saw the same machine load.
"""
import json
import math
import statistics
import sys
from collections import defaultdict


def label(r):
    c = r["config"]
    if c["gc"] == "incremental":
        return "incremental" if c["pause-budget-us"] == 1000 else f"incr-{c['pause-budget-us']}us"
    return f"{c['gc']} {c['threshold']}"


def load(dirs):
    runs = []
    for d in dirs:
        with open(f"{d}/runs.jsonl") as f:
            for line in f:
                r = json.loads(line)
                if r.get("sweep", {}).get("status", "ok") == "ok" and "wall_s" in r:
                    runs.append(r)
    return runs


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    runs = load(sys.argv[1:])
    by = defaultdict(list)   # (workload, scale, label) -> runs
    for r in runs:
        by[(r["workload"], r["config"]["scale"], label(r))].append(r)
    keys = sorted({(w, s) for (w, s, _) in by})
    labels = ["stw 700,10,10", "stw 2000,10,10", "stw 10000,10,10", "incremental"]
    base = "stw 700,10,10"

    print("| workload | scale | config | runs | cpu s | wall s | peak RSS MiB | backlog max | "
          "cpu vs stw 700 | RSS vs stw 700 | backlog vs stw 700 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ratios = defaultdict(list)
    for (w, s) in keys:
        ref = by.get((w, s, base))
        for lab in labels:
            rs = by.get((w, s, lab))
            if not rs:
                continue
            cpu = med([r["cpu_s"] for r in rs])
            wall = med([r["wall_s"] for r in rs])
            rss = med([r["peak_rss_bytes"] for r in rs]) / 2**20
            bl = med([r["gc"]["backlog"]["max"] for r in rs])
            row = [w, str(s), lab, str(len(rs)), f"{cpu:.3f}", f"{wall:.3f}", f"{rss:.1f}",
                   f"{bl:.0f}"]
            if ref:
                rcpu = med([r["cpu_s"] for r in ref])
                rrss = med([r["peak_rss_bytes"] for r in ref]) / 2**20
                rbl = med([r["gc"]["backlog"]["max"] for r in ref])
                row += [f"{cpu / rcpu:.3f}", f"{rss / rrss:.3f}",
                        f"{bl / rbl:.2f}" if rbl else "-"]
                if all(by.get((w, s, l)) for l in labels):   # the comparison's workloads
                    ratios[lab].append(cpu / rcpu)
            else:
                row += ["-", "-", "-"]
            print("| " + " | ".join(row) + " |")
    print()
    print("| config | geometric mean of cpu time vs stw 700,10,10 (workloads run in all four) | slowest workload |")
    print("| --- | --- | --- |")
    for lab in labels:
        xs = ratios.get(lab)
        if xs:
            g = math.exp(sum(math.log(x) for x in xs) / len(xs))
            print(f"| {lab} | {g:.3f} ({len(xs)} workloads) | {max(xs):.3f} |")
    print()
    print("| workload | scale | config | pauses | p50 us | p99 us | p99.9 us | max us | "
          "over budget | MMU 10 ms | MMU 100 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (w, s) in keys:
        for lab in labels:
            rs = by.get((w, s, lab))
            if not rs:
                continue
            p = lambda k: med([r["gc"]["pause_ns"][k] for r in rs]) / 1e3
            n = med([r["gc"]["pause_ns"]["count"] for r in rs])
            over = med([r["gc"].get("overruns", 0) for r in rs])
            mmu10 = med([r["gc"]["mmu"]["10ms"] for r in rs])
            mmu100 = med([r["gc"]["mmu"]["100ms"] for r in rs])
            print(f"| {w} | {s} | {lab} | {n:.0f} | {p('p50'):.0f} | {p('p99'):.0f} | "
                  f"{p('p999'):.0f} | {p('max'):.0f} | {over:.0f} | {mmu10:.2f} | {mmu100:.2f} |")


if __name__ == "__main__":
    main()
