#!/usr/bin/python3
"""Tables from a results directory written by scripts/bench.

usage: scripts/report.py RESULTS_DIR   (prints Markdown on stdout)

runs.jsonl: one heaplab JSON result per line. Runs are grouped by workload and
by every option except seed; each group reports the median of its runs, the
min-max range, and the ratio of its median throughput to the first group of
the same workload (the baseline configuration).
micro*.json: Google Benchmark's JSON output; where one holds both heaplab_X
and cpython_X benchmarks (heaplab's objects and CPython's C API), a table
sets each pair side by side.
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
POOL_ONLY = {"geometry", "tcache", "tcache-kib", "alloc-debug", "alloc-stats", "arena-keep-kib",
             "arena-release", "arena-decay-ms"}


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


def main():
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit(__doc__)
    d = Path(sys.argv[1])
    out = ["# heaplab results: " + d.name]
    if (d / "runs.jsonl").exists():
        out.append(workloads(d / "runs.jsonl"))
    for m in sorted(d.glob("micro*.json")):
        out.append(micro(m))
        side = micro_vs_cpython(m)
        if side:
            out.append(side)
    print("\n\n".join(out))


if __name__ == "__main__":
    main()
