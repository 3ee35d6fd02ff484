#!/usr/bin/python3
"""Tables from a results directory written by scripts/bench.

usage: scripts/report.py RESULTS_DIR   (prints Markdown on stdout, writes RESULTS_DIR/runs.csv)

runs.jsonl: one heaplab JSON result per line. Runs are grouped by workload and
by every option except seed; each group reports the median of its runs, the
min-max range, and the ratio of its median throughput to the first group of
the same workload (the baseline configuration).
micro*.json: Google Benchmark's JSON output; where one holds both heaplab_X
and cpython_X benchmarks (heaplab's objects and CPython's C API), a table
sets each pair side by side.
Runs with a JSON "gc" object (object workloads under a collector) and runs of
the collector's workloads under --gc=none get a second table: collections,
pauses, MMU, peak RSS, leaked objects. gc_cpython.jsonl (bench/python/
gc_long_lived.py) sets CPython 3.11's collector beside long-lived's.
"""
import json
import statistics
import sys
from pathlib import Path


def config_key(run):
    cfg = dict(run["config"])
    cfg.pop("seed", None)
    return run["workload"], json.dumps(cfg, sort_keys=True)


# Options that only mean something for heaplab's own allocator.
POOL_ONLY = {"geometry", "pool-colour", "pool-requeue", "tcache", "tcache-kib", "alloc-debug",
             "alloc-stats", "arena-keep-kib", "arena-release", "arena-decay-ms"}


def differing(groups):
    """Options whose values differ between the groups of one workload."""
    cfgs = [json.loads(k[1]) for k in groups]
    return [o for o in cfgs[0] if len({json.dumps(c.get(o)) for c in cfgs}) > 1]


def label(cfg, opts):
    return " ".join(f"{o}={cfg[o]}" for o in opts
                    if not (o in POOL_ONLY and cfg.get("alloc") != "pool"))


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def workloads(path):
    runs = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    by_wl = {}
    for r in runs:
        by_wl.setdefault(r["workload"], {}).setdefault(config_key(r), []).append(r)
    parts = []
    for wl, groups in by_wl.items():
        keys = list(groups)
        opts = differing(keys) or ["threads"]
        base = None
        rows = []
        for k in keys:
            rs = groups[k]
            tput = [r["ops_per_s"] for r in rs]
            med = statistics.median(tput)
            base = base or med
            lat = lambda f: statistics.median(r["latency_ns"][f] for r in rs)
            cfg = json.loads(k[1])
            mem = [r["alloc"] for r in rs if "alloc" in r and "rss_after_free_bytes" in r["alloc"]]
            rss = (f"{statistics.median(a['rss_before_bytes'] for a in mem) / 2**20:.0f}/"
                   f"{statistics.median(a['rss_after_frag_bytes'] for a in mem) / 2**20:.0f}/"
                   f"{statistics.median(a['rss_after_free_bytes'] for a in mem) / 2**20:.0f}"
                   if mem else "-")
            coll = [a["rss_after_collect_bytes"] for a in mem if "rss_after_collect_bytes" in a]
            if coll:
                rss += f"/{statistics.median(coll) / 2**20:.0f}"

            objs = [r["objects"] for r in rs if "objects" in r]
            fl = (f"{statistics.median(100 * o['freelist_hits'] / max(1, o['allocated'] + o['freelist_hits']) for o in objs):.0f}"
                  if objs else "-")
            rows.append([label(cfg, opts),
                         len(rs),
                         f"{med / 1e6:.2f}",
                         f"{min(tput) / 1e6:.2f}-{max(tput) / 1e6:.2f}",
                         f"{med / base:.2f}",
                         f"{lat('p50'):.0f}", f"{lat('p99'):.0f}", f"{lat('p999'):.0f}",
                         f"{statistics.median(r['peak_rss_bytes'] for r in rs) / 2**20:.1f}",
                         rss,
                         f"{statistics.median(r['page_faults_minor'] for r in rs):.0f}",
                         fl])
        m = rs[0]["machine"]
        parts.append(f"## {wl}\n\nmachine: {m['cpu']}, {m['cores']} cores, "
                     f"{m['numa_nodes']} NUMA node(s); commit {rs[0]['commit'][:12]}\n\n" +
                     table(["config", "runs", "Mops/s (median)", "min-max", "ratio",
                            "p50 ns", "p99 ns", "p99.9 ns", "peak RSS MiB",
                            "RSS before/frag/freed[/collected] MiB", "minor faults",
                            "free-list hits %"], rows))
    return "\n\n".join(parts)


GC_WORKLOADS = {"cycles", "long-lived", "gc-cpu", "gc-mem"}


def med(xs):
    xs = list(xs)
    return statistics.median(xs) if xs else 0


def collector(path):
    """The collector's figures, one row per configuration (medians)."""
    runs = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    groups = {}
    for r in runs:
        if "gc" in r or r["workload"] in GC_WORKLOADS:
            groups.setdefault(config_key(r), []).append(r)
    if not groups:
        return None
    by_wl = {}
    for k in groups:
        by_wl.setdefault(k[0], []).append(k)
    rows = []
    for wl, keys in by_wl.items():
        opts = differing(keys) or ["gc"]
        for k in keys:
            rs = groups[k]
            cfg = json.loads(k[1])
            gs = [r["gc"] for r in rs if "gc" in r]
            us = lambda f: f"{med(g['pause_ns'][f] for g in gs) / 1e3:.0f}" if gs else "-"
            coll = ("/".join(f"{med(g['collections'][i] for g in gs):.0f}" for i in range(3))
                    if gs else "none")
            mmu = (f"{med(g['mmu']['10ms'] for g in gs):.2f}/{med(g['mmu']['100ms'] for g in gs):.2f}"
                   if gs else "-")
            gc_s = f"{med(g['pause_ns']['total'] for g in gs) / 1e9:.3f}" if gs else "-"
            rows.append([wl, label(cfg, opts), len(rs),
                         f"{med(r['ops_per_s'] for r in rs) / 1e6:.2f}",
                         f"{med(r['cpu_s'] for r in rs):.2f}", coll, gc_s,
                         us("p50"), us("p99"), us("max"), mmu,
                         f"{med(r['peak_rss_bytes'] for r in rs) / 2**20:.1f}",
                         f"{med(r.get('objects', {}).get('leaked_objects', 0) for r in rs):.0f}"])
    return ("## the cycle collector (medians; pauses in us; MMU at 10/100 ms; leaked objects: "
            "the cyclic garbage a run without a collector keeps)\n\n" +
            table(["workload", "config", "runs", "Mops/s", "cpu s", "collections g0/g1/g2",
                   "gc s", "pause p50", "p99", "max", "MMU 10/100ms", "peak RSS MiB",
                   "leaked objects"], rows))


def gc_vs_cpython(runs_path, py_path):
    """long-lived's timed collections beside CPython 3.11's on the same graph."""
    runs = [json.loads(l) for l in runs_path.read_text().splitlines() if l.strip()]
    lr = [r for r in runs if r["workload"] == "long-lived" and "young_ns_per_obj" in r.get("gc", {})
          and r["config"].get("alloc") == "pool"]
    hl = [r["gc"] for r in lr]
    py = [json.loads(l) for l in py_path.read_text().splitlines() if l.strip()]
    if not hl or not py:
        return None
    rows = []
    for what, n, v in (("young: gc.collect(0)", "young_objects", "young_ns_per_obj"),
                       ("full: gc.collect()", "full_objects", "full_ns_per_obj")):
        h, c = med(g[v] for g in hl), med(p[v] for p in py)
        rows.append([what, f"{med(g[n] for g in hl):.0f}", f"{h:.1f}",
                     f"{med(p[n] for p in py):.0f}", f"{c:.1f}", f"{h / c:.2f}" if c else "-"])
    for gen in range(3):
        hp = [g["pause_ns_gen"][gen] for g in hl]
        cp = [p["pause_ns_gen"][gen] for p in py]
        rows.append([f"generation {gen} pauses of the run: count, p50/p99/max us",
                     f"{med(x['count'] for x in hp):.0f}",
                     "/".join(f"{med(x[f] for x in hp) / 1e3:.0f}" for f in ("p50", "p99", "max")),
                     f"{med(x['count'] for x in cp):.0f}",
                     "/".join(f"{med(x[f] for x in cp) / 1e3:.0f}" for f in ("p50", "p99", "max")),
                     f"{med(x['total'] for x in hp) / med(x['total'] for x in cp):.2f}"
                     if med(x['total'] for x in cp) else "-"])
    scales = sorted({r["config"]["scale"] for r in lr}) + [py[0]["scale"]]
    return (f"## long-lived: heaplab's collector beside CPython {py[0]['python']}'s on the same "
            f"object graph (scale: heaplab {'/'.join(map(str, scales[:-1]))}, CPython "
            f"{scales[-1]}{' (smoke)' if py[0]['heap_objects'] < 100000 else ''}; "
            f"{len(hl)} heaplab and {len(py)} CPython runs, "
            f"medians; ns per examined object; ratio < 1: heaplab faster, for pauses: of the "
            f"total pause time)\n\n" +
            table(["collection", "heaplab objects", "heaplab ns/obj (pauses: us)", "CPython objects",
                   "CPython ns/obj (pauses: us)", "ratio"], rows))


def micro(path):
    data = json.loads(path.read_text())
    alloc = data.get("context", {}).get("heaplab_alloc", "?")
    rows = []
    for b in data["benchmarks"]:
        ns = b["cpu_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
        rows.append([b["name"], f"{ns:.2f}", f"{b['iterations']}", b.get("label", "")])
    ctx = data.get("context", {})
    return (f"## micro-benchmarks, alloc={alloc} (Google Benchmark)\n\n{ctx.get('heaplab_cpu', '?')}, "
            f"commit {ctx.get('heaplab_commit', '?')[:12]}\n\n" +
            table(["benchmark", "ns/op", "iterations", "one op is"], rows))


def ns_per_op(b):
    return b["cpu_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]


def micro_vs_cpython(path):
    """heaplab_X beside cpython_X (bench/micro/micro_obj.c, micro_cpython.c)."""
    data = json.loads(path.read_text())
    by = {b["name"].split("/")[0]: b for b in data["benchmarks"]}
    rows = []
    for name, b in by.items():
        if not name.startswith("heaplab_"):
            continue
        op = name[len("heaplab_"):]
        py = by.get("cpython_" + op)
        h = ns_per_op(b)
        rows.append([op, f"{h:.2f}", f"{ns_per_op(py):.2f}" if py else "-",
                     f"{h / ns_per_op(py):.2f}" if py else "-", b.get("label", "")])
    if not any(r[2] != "-" for r in rows):
        return None
    ctx = data.get("context", {})
    return (f"## objects: heaplab beside CPython {ctx.get('cpython', '?')} "
            f"(alloc={ctx.get('heaplab_alloc', '?')}, freelists={ctx.get('heaplab_freelists', '?')}, "
            f"immortal={ctx.get('heaplab_immortal', '?')}; CPU ns per op; ratio < 1: heaplab faster)\n\n" +
            table(["operation", "heaplab ns", "CPython ns", "ratio", "heaplab op"], rows))


CSV_FIGURES = [("ops", ("ops",)), ("ops_per_s", ("ops_per_s",)), ("wall_s", ("wall_s",)),
               ("cpu_s", ("cpu_s",)), ("peak_rss_bytes", ("peak_rss_bytes",)),
               ("page_faults_minor", ("page_faults_minor",)),
               ("latency_p50_ns", ("latency_ns", "p50")), ("latency_p99_ns", ("latency_ns", "p99")),
               ("gc_pause_p50_ns", ("gc", "pause_ns", "p50")),
               ("gc_pause_p99_ns", ("gc", "pause_ns", "p99")),
               ("gc_pause_max_ns", ("gc", "pause_ns", "max")),
               ("gil_switches", ("gil", "switches")), ("checksum", ("checksum",)),
               ("hostname", ("machine", "hostname")), ("commit", ("commit",))]


def write_csv(jsonl, csv_path):
    """runs.jsonl as CSV: the workload, every option, the main figures."""
    import csv
    runs = [json.loads(l) for l in jsonl.read_text().splitlines() if l.strip()]
    opts = []
    for r in runs:
        for o in r.get("config", {}):
            if o not in opts:
                opts.append(o)

    def get(r, path):
        for k in path:
            if not isinstance(r, dict) or k not in r:
                return ""
            r = r[k]
        return r
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload"] + opts + [name for name, _ in CSV_FIGURES])
        for r in runs:
            w.writerow([r.get("workload", "")] + [r.get("config", {}).get(o, "") for o in opts] +
                       [get(r, path) for _, path in CSV_FIGURES])


def main():
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit(__doc__)
    d = Path(sys.argv[1])
    out = ["# heaplab results: " + d.name]
    if (d / "runs.jsonl").exists():
        write_csv(d / "runs.jsonl", d / "runs.csv")
        out.append(workloads(d / "runs.jsonl"))
        for part in (collector(d / "runs.jsonl"),
                     gc_vs_cpython(d / "runs.jsonl", d / "gc_cpython.jsonl")
                     if (d / "gc_cpython.jsonl").exists() else None):
            if part:
                out.append(part)
    for m in sorted(d.glob("micro*.json")):
        out.append(micro(m))
        side = micro_vs_cpython(m)
        if side:
            out.append(side)
    print("\n\n".join(out))


if __name__ == "__main__":
    main()
