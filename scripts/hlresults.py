#!/usr/bin/python3
"""hlresults: heaplab's results, read and grouped once, shown every way.

usage: scripts/hlresults.py report DIR   scripts/bench's tables (Markdown on stdout;
                                         writes DIR/runs.csv, but in a sweep's --out)
       scripts/hlresults.py plots DIR    PNG figures into DIR/plots (prints their paths)
       scripts/hlresults.py ft DIR       scripts/bench-ft's tables (Markdown on stdout)
       scripts/hlresults.py timeline TRACE [PNG] [--window=START:END]
                                         a timeline from a --trace-format=chrome file

Every table and figure of scripts/bench, scripts/bench-ft,
bench/compare_preload.py and bench/scaling_control.py comes from here, so
that a run is grouped, its medians taken and a missing figure shown the same
way everywhere:

  reading   read_jsonl(path), load_runs(path): result lines (heaplab run or
            heaplab sweep); load_runs drops failed sweep runs
  grouping  experiment_of(run): the sweep file's name (bench/experiments/
            NAME.sweep), else the workload; config_of(run): the options
            without seed, trace, trace-format and config (as heaplab compare groups);
            group(runs, key): {key: [runs]} in first-seen order;
            differing(configs): the options whose values differ
  figures   median(xs) (None when empty), get(obj, *path), hist(run, *path)
            (None when absent or when it holds no sample: a workload that
            records no latency has no p50, not a p50 of 0), paired(a, b,
            value, pair_key) (the median of ratios within a repeat)
  text      fmt(x, spec) ("-" for None), ratio(a, b), table(header, rows)
  tables    experiment_table, collector_table, gc_vs_cpython, micro_table,
            micro_vs_cpython, ft_report, scaling_table, preload_driver_tables,
            preload_python_table; report(dir) puts scripts/bench's together
  plots     plots(dir), timeline(trace, png, window): matplotlib
            (python3-matplotlib), imported only there

Python 3 standard library only, but for the plots.
"""
import csv
import json
import os
import statistics
import sys
from pathlib import Path

# ---- reading ---------------------------------------------------------------------------


def read_jsonl(path):
    """Every JSON object of a JSON-lines file, blank lines skipped."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def load_runs(path):
    """The results in a runs.jsonl that ran: lines of failed sweep runs (which
    hold only their "sweep" object) and lines without workload and config are
    left out."""
    return [r for r in read_jsonl(path)
            if r.get("sweep", {}).get("status", "ok") == "ok" and "config" in r and "workload" in r]


# ---- grouping --------------------------------------------------------------------------

# Options that do not make a configuration: repeats differ by seed; trace,
# trace-format and config are about files (heaplab compare leaves out the
# same four).
NOT_CONFIG = ("seed", "trace", "trace-format", "config")

# Options that only mean something for heaplab's own allocator.
POOL_ONLY = {"geometry", "pool-colour", "pool-requeue", "tcache", "tcache-kib", "alloc-debug",
             "alloc-stats", "arena-keep-kib", "arena-release", "arena-decay-ms"}


def experiment_of(run):
    """The experiment a run belongs to: the name of the sweep file that ran it
    (bench/experiments/alloc-lifo.sweep -> alloc-lifo), else its workload."""
    f = run.get("sweep", {}).get("file")
    if f:
        name = os.path.basename(f)
        return name[:-len(".sweep")] if name.endswith(".sweep") else name
    return run.get("workload", "?")


def config_of(run):
    return {k: v for k, v in run["config"].items() if k not in NOT_CONFIG}


def config_key(run):
    return run["workload"], json.dumps(config_of(run), sort_keys=True)


def group(runs, key=config_key):
    """{key(run): [runs]}, keys in the order first seen."""
    out = {}
    for r in runs:
        out.setdefault(key(r), []).append(r)
    return out


def differing(configs):
    """The options whose values differ between configs (dicts), in the first's order."""
    configs = list(configs)
    if not configs:
        return []
    names = list(configs[0]) + [o for c in configs[1:] for o in c if o not in configs[0]]
    seen = []
    for o in names:
        if o not in seen and len({json.dumps(c.get(o)) for c in configs}) > 1:
            seen.append(o)
    return seen


def label(cfg, opts, workload=None):
    """"workload opt=value ...": the options in opts, less the pool's own where
    the allocator is not the pool."""
    words = [workload] if workload else []
    words += [f"{o}={cfg[o]}" for o in opts
              if o in cfg and not (o in POOL_ONLY and cfg.get("alloc") != "pool")]
    return " ".join(words) or "default"


# ---- figures ---------------------------------------------------------------------------


def median(xs):
    """The median of the values that are not None; None when there are none."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def get(obj, *path):
    for k in path:
        if isinstance(obj, dict):
            obj = obj.get(k)
        elif isinstance(obj, list) and isinstance(k, int) and -len(obj) <= k < len(obj):
            obj = obj[k]
        else:
            return None
    return obj


def hist(run, *path):
    """The histogram at path (heaplab's {"count", "p50", ...}), or None when it
    is absent or holds no sample: its percentiles would read 0."""
    h = get(run, *path)
    return h if isinstance(h, dict) and h.get("count") else None


def hist_median(runs, path, field):
    """The median over runs of one field of a histogram, over the runs that have samples."""
    return median(h[field] for h in (hist(r, *path) for r in runs) if h)


def paired(a_runs, b_runs, value, pair_key):
    """The median over pairs of value(b) / value(a), a pair being the runs of a
    and b with the same pair_key (the same repeat): runs back to back share
    the machine's state more than runs minutes apart. None without a pair."""
    a = {pair_key(r): value(r) for r in a_runs if value(r)}
    return median(value(r) / a[pair_key(r)] for r in b_runs if pair_key(r) in a and value(r) is not None)


# ---- text ------------------------------------------------------------------------------


def fmt(x, spec=".2f", scale=1.0):
    """x / scale formatted, or "-" when there is no figure."""
    return "-" if x is None else format(x / scale, spec)


def ratio(a, b, spec=".2f"):
    return format(a / b, spec) if a and b else "-"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def machine_line(run):
    m = run.get("machine", {})
    return (f"machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
            f"{m.get('numa_nodes', '?')} NUMA node(s); commit {run.get('commit', '?')[:12]}")


MIB = 2**20

# ---- scripts/bench's tables ------------------------------------------------------------


def experiment_table(name, runs):
    """One experiment's table: a row per configuration (medians of its runs),
    the ratio of its median throughput to the first configuration of the same
    workload, latency where the workload records it."""
    groups = group(runs)
    cfgs = {k: config_of(rs[0]) for k, rs in groups.items()}
    workloads = list(dict.fromkeys(k[0] for k in groups))
    opts = differing(cfgs.values()) or ["threads"]
    base, rows = {}, []
    for k, rs in groups.items():
        wl = k[0]
        tput = [r["ops_per_s"] for r in rs]
        med = median(tput)
        base.setdefault(wl, med)
        mem = [r["alloc"] for r in rs if "rss_after_free_bytes" in r.get("alloc", {})]
        rss = "-"
        if mem:
            rss = "/".join(fmt(median(a[f] for a in mem), ".0f", MIB)
                           for f in ("rss_before_bytes", "rss_after_frag_bytes", "rss_after_free_bytes"))
            coll = median(a.get("rss_after_collect_bytes") for a in mem)
            if coll is not None:
                rss += "/" + fmt(coll, ".0f", MIB)
        objs = [r["objects"] for r in rs if "objects" in r]
        hits = median(100 * o["freelist_hits"] / max(1, o["allocated"] + o["freelist_hits"]) for o in objs)
        rows.append([label(cfgs[k], opts, wl if len(workloads) > 1 else None),
                     len(rs),
                     fmt(med, ".2f", 1e6),
                     f"{min(tput) / 1e6:.2f}-{max(tput) / 1e6:.2f}",
                     ratio(med, base[wl]),
                     fmt(hist_median(rs, ("latency_ns",), "p50"), ".0f"),
                     fmt(hist_median(rs, ("latency_ns",), "p99"), ".0f"),
                     fmt(hist_median(rs, ("latency_ns",), "p999"), ".0f"),
                     fmt(median(r["peak_rss_bytes"] for r in rs), ".1f", MIB),
                     rss,
                     fmt(median(r["page_faults_minor"] for r in rs), ".0f"),
                     fmt(hits, ".0f")])
    where = runs[0].get("sweep", {}).get("file")
    return (f"## {name}\n\n" + (f"sweep file {where}; " if where else "") +
            f"{len(runs)} runs. {machine_line(runs[0])}\n\n" +
            table(["config", "runs", "Mops/s (median)", "min-max", "ratio",
                   "p50 ns", "p99 ns", "p99.9 ns", "peak RSS MiB",
                   "RSS before/frag/freed[/collected] MiB", "minor faults",
                   "free-list hits %"], rows))


GC_WORKLOADS = {"cycles", "long-lived", "gc-cpu", "gc-mem", "cyclotron", "trash-loop", "gc-collect",
                "gc-traversal"}


def collector_table(runs):
    """The collector's figures, one row per configuration (medians) of the runs
    under a collector and of the collector's workloads without one."""
    groups = group(r for r in runs if "gc" in r or r["workload"] in GC_WORKLOADS)
    if not groups:
        return None
    rows = []
    for wl, keys in group(groups, key=lambda k: k[0]).items():
        opts = differing(json.loads(k[1]) for k in keys) or ["gc"]
        for k in keys:
            rs = groups[k]
            gs = [r["gc"] for r in rs if "gc" in r]
            pause = lambda f: fmt(hist_median(gs, ("pause_ns",), f), ".0f", 1e3)
            coll = ("/".join(fmt(median(g["collections"][i] for g in gs), ".0f") for i in range(3))
                    if gs else "none")
            mmu = (f"{median(g['mmu']['10ms'] for g in gs):.2f}/{median(g['mmu']['100ms'] for g in gs):.2f}"
                   if gs else "-")
            rows.append([wl, label(json.loads(k[1]), opts), len(rs),
                         fmt(median(r["ops_per_s"] for r in rs), ".2f", 1e6),
                         fmt(median(r["cpu_s"] for r in rs), ".2f"), coll,
                         fmt(median(g["pause_ns"]["total"] for g in gs), ".3f", 1e9),
                         pause("p50"), pause("p99"), pause("max"), mmu,
                         fmt(median(r["peak_rss_bytes"] for r in rs), ".1f", MIB),
                         fmt(median(get(r, "objects", "leaked_objects") for r in rs), ".0f")])
    return ("## the cycle collector (medians; pauses in us; MMU at 10/100 ms; leaked objects: "
            "the cyclic garbage a run without a collector keeps)\n\n" +
            table(["workload", "config", "runs", "Mops/s", "cpu s", "collections g0/g1/g2",
                   "gc s", "pause p50", "p99", "max", "MMU 10/100ms", "peak RSS MiB",
                   "leaked objects"], rows))


def gc_vs_cpython(runs, py):
    """long-lived's timed collections beside CPython's on the same graph
    (py: bench/python/gc_long_lived.py's lines)."""
    lr = [r for r in runs if r["workload"] == "long-lived" and "young_ns_per_obj" in r.get("gc", {})
          and r["config"].get("alloc") == "pool"]
    hl = [r["gc"] for r in lr]
    if not hl or not py:
        return None
    rows = []
    for what, n, v in (("young: gc.collect(0)", "young_objects", "young_ns_per_obj"),
                       ("full: gc.collect()", "full_objects", "full_ns_per_obj")):
        h, c = median(g[v] for g in hl), median(p[v] for p in py)
        rows.append([what, fmt(median(g[n] for g in hl), ".0f"), fmt(h, ".1f"),
                     fmt(median(p[n] for p in py), ".0f"), fmt(c, ".1f"), ratio(h, c)])
    for gen in range(3):
        hp = [g["pause_ns_gen"][gen] for g in hl]
        cp = [p["pause_ns_gen"][gen] for p in py]
        pct = lambda hs: "/".join(fmt(median(x[f] for x in hs if x.get("count")), ".0f", 1e3)
                                  for f in ("p50", "p99", "max"))
        rows.append([f"generation {gen} pauses of the run: count, p50/p99/max us",
                     fmt(median(x["count"] for x in hp), ".0f"), pct(hp),
                     fmt(median(x["count"] for x in cp), ".0f"), pct(cp),
                     ratio(median(x["total"] for x in hp), median(x["total"] for x in cp))])
    scales = sorted({r["config"]["scale"] for r in lr}) + [py[0]["scale"]]
    return (f"## long-lived: heaplab's collector beside CPython {py[0]['python']}'s on the same "
            f"object graph (scale: heaplab {'/'.join(map(str, scales[:-1]))}, CPython "
            f"{scales[-1]}{' (smoke)' if py[0]['heap_objects'] < 100000 else ''}; "
            f"{len(hl)} heaplab and {len(py)} CPython runs, "
            f"medians; ns per examined object; ratio < 1: heaplab faster, for pauses: of the "
            f"total pause time)\n\n" +
            table(["collection", "heaplab objects", "heaplab ns/obj (pauses: us)", "CPython objects",
                   "CPython ns/obj (pauses: us)", "ratio"], rows))


def ns_per_op(b):
    return b["cpu_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]


def micro_table(data):
    """Google Benchmark's JSON output as a table (CPU ns per op)."""
    ctx = data.get("context", {})
    rows = [[b["name"], f"{ns_per_op(b):.2f}", f"{b['iterations']}", b.get("label", "")]
            for b in data["benchmarks"]]
    return (f"## micro-benchmarks, alloc={ctx.get('heaplab_alloc', '?')} (Google Benchmark)\n\n"
            f"{ctx.get('heaplab_cpu', '?')}, commit {ctx.get('heaplab_commit', '?')[:12]}\n\n" +
            table(["benchmark", "ns/op", "iterations", "one op is"], rows))


def micro_vs_cpython(data):
    """heaplab_X beside cpython_X (bench/micro/micro_obj.c, micro_cpython.c)."""
    by = {b["name"].split("/")[0]: b for b in data["benchmarks"]}
    rows = []
    for name, b in by.items():
        if not name.startswith("heaplab_"):
            continue
        py = by.get("cpython_" + name[len("heaplab_"):])
        h = ns_per_op(b)
        c = ns_per_op(py) if py else None
        rows.append([name[len("heaplab_"):], f"{h:.2f}", fmt(c), ratio(h, c), b.get("label", "")])
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


def write_csv(runs, path):
    """The runs as CSV: the experiment, the workload, every option, the main
    figures (a percentile of a histogram without samples is left empty)."""
    opts = list(dict.fromkeys(o for r in runs for o in r.get("config", {})))

    def cell(r, p):
        if p[-1] in ("p50", "p99", "max") and hist(r, *p[:-1]) is None:
            return ""
        v = get(r, *p)
        return "" if v is None else v
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["experiment", "workload"] + opts + [name for name, _ in CSV_FIGURES])
        for r in runs:
            w.writerow([experiment_of(r), r.get("workload", "")] +
                       [r.get("config", {}).get(o, "") for o in opts] +
                       [cell(r, p) for _, p in CSV_FIGURES])


def report(d):
    """scripts/bench's tables for results directory d; writes d/runs.csv too,
    unless d is a sweep's own directory (d/grid), whose runs.csv is the
    sweep's and grows when it resumes."""
    d = Path(d)
    out = ["# heaplab results: " + d.name]
    if (d / "runs.jsonl").exists():
        runs = load_runs(d / "runs.jsonl")
        if not (d / "grid").exists():
            write_csv(runs, d / "runs.csv")
        for name, rs in group(runs, key=experiment_of).items():
            out.append(experiment_table(name, rs))
        py = read_jsonl(d / "gc_cpython.jsonl") if (d / "gc_cpython.jsonl").exists() else []
        out += [p for p in (collector_table(runs), gc_vs_cpython(runs, py)) if p]
    for m in sorted(d.glob("micro*.json")):
        data = json.loads(m.read_text())
        out.append(micro_table(data))
        side = micro_vs_cpython(data)
        if side:
            out.append(side)
    return "\n\n".join(out)


# ---- scripts/bench-ft's tables ---------------------------------------------------------

MODES = ("gil", "atomic", "biased")


def ft_key(r):
    c = r["config"]
    return r["workload"], c["rc"], c["immortal"], c["tcache"], r["threads"]


def ft_figures(rs):
    """Medians of a group; ops_s and ops_cpu per run first. The rc object's
    counters are None where the mode has none (gil has no rc object; only
    biased merges)."""
    return {
        "n": len(rs),
        "wall": median(r["wall_s"] for r in rs),
        "cpu": median(r["cpu_s"] for r in rs),
        "ops_s": median(r["ops"] / r["wall_s"] for r in rs if r["wall_s"] > 0),
        "ops_cpu": median(r["ops"] / r["cpu_s"] for r in rs if r["cpu_s"] > 0),
        "queued": median(get(r, "rc", "merges_queued") for r in rs),
        "merged": median(get(r, "rc", "merges_done") for r in rs),
        "unlocked": median(get(r, "rc", "reads_unlocked") for r in rs),
        "locked": median(get(r, "rc", "reads_locked") for r in rs),
    }


def ft_one_thread(g):
    rows = []
    for wl in ("binary-trees", "churn"):
        for imm in ("off", "on"):
            f = {rc: g.get((wl, rc, imm, "none", 1)) for rc in MODES}
            if not all(f.values()):
                continue
            f = {rc: ft_figures(v) for rc, v in f.items()}
            b = f["gil"]
            rows.append([wl, imm, fmt(b["wall"], ".3f"), fmt(f["atomic"]["wall"], ".3f"),
                         fmt(f["biased"]["wall"], ".3f"), ratio(f["atomic"]["wall"], b["wall"], ".3f"),
                         ratio(f["biased"]["wall"], b["wall"], ".3f"),
                         ratio(f["atomic"]["cpu"], b["cpu"], ".3f"),
                         ratio(f["biased"]["cpu"], b["cpu"], ".3f"), b["n"]])
    return ("## One thread: what each mode costs (median wall and CPU time; ratio to gil)\n\n" +
            table(["workload", "immortal", "gil s", "atomic s", "biased s", "atomic/gil",
                   "biased/gil", "atomic/gil (CPU)", "biased/gil (CPU)", "runs"], rows))


def ft_instructions(path):
    """callgrind's whole-run counts: lines 'WORKLOAD IMMORTAL RC COUNT'."""
    if not os.path.exists(path):
        return None
    n = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[3].isdigit():
                n[(parts[0], parts[1], parts[2])] = int(parts[3])
    rows = []
    for wl in ("binary-trees", "churn"):
        for imm in ("off", "on"):
            v = {rc: n.get((wl, imm, rc)) for rc in MODES}
            if not all(v.values()):
                continue
            rows.append([wl, imm] + [f"{v[rc] / 1e9:.3f} G" for rc in MODES] +
                        [ratio(v["atomic"], v["gil"], ".3f"), ratio(v["biased"], v["gil"], ".3f")])
    return ("## One thread: instructions (callgrind, whole run; ratio to gil)\n\n" +
            table(["workload", "immortal", "gil", "atomic", "biased", "atomic/gil", "biased/gil"], rows))


def ft_scaling(g):
    rows = []
    for imm in ("on", "off"):
        for rc in MODES:
            a, b = g.get(("binary-trees", rc, imm, "heap", 1)), g.get(("binary-trees", rc, imm, "heap", 2))
            if not a or not b:
                continue
            pair = paired(a, b, lambda r: r["ops"] / r["wall_s"] if r["wall_s"] > 0 else None,
                          lambda r: r["config"]["seed"])
            a, b = ft_figures(a), ft_figures(b)
            rows.append([rc, imm, fmt(a["ops_s"], ".2f", 1e6), fmt(b["ops_s"], ".2f", 1e6),
                         ratio(b["ops_s"], a["ops_s"]), fmt(pair),
                         fmt(a["ops_cpu"], ".2f", 1e6), fmt(b["ops_cpu"], ".2f", 1e6),
                         ratio(b["ops_cpu"], a["ops_cpu"])])
    return ("## binary-trees, nothing shared: 1 and 2 threads (tcache=heap)\n\n"
            "speedup: the ratio of the medians; paired: the median of the ratios within "
            "each repeat, whose two runs are adjacent in time.\n\n" +
            table(["rc", "immortal", "1 thread M ops/s", "2 threads M ops/s", "speedup", "paired",
                   "1 thread M ops/CPU s", "2 threads M ops/CPU s", "per-CPU ratio"], rows))


def ft_sharing(g):
    parts = []
    for wl, what in (("shared", "threads read and replace the values of one dict"),
                     ("prodcons", "producers make pairs, consumers drop them")):
        rows = []
        for t in (1, 2, 4):
            base = g.get((wl, "gil", "off", "heap", t))
            base = ft_figures(base) if base else None
            for rc in MODES:
                rs = g.get((wl, rc, "off", "heap", t))
                if not rs:
                    continue
                f = ft_figures(rs)
                rows.append([t, rc, fmt(f["ops_s"], ".2f", 1e6), fmt(f["ops_cpu"], ".2f", 1e6),
                             ratio(f["ops_s"], base["ops_s"]) if base else "-",
                             fmt(f["queued"], ".0f"), fmt(f["merged"], ".0f"),
                             fmt(f["unlocked"], ".0f"), fmt(f["locked"], ".0f")])
        parts.append(f"## {wl}: {what} (tcache=heap)\n\n" +
                     table(["threads", "rc", "M ops/s", "M ops/CPU s", "vs gil", "merges queued",
                            "merges done", "reads without lock", "reads with lock"], rows))
    return "\n\n".join(parts)


def ft_micro(path, cg_path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        data = json.load(f)
    cpu = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        cpu.setdefault(b.get("run_name", b["name"]), []).append(b["cpu_time"])
    names = {
        "heaplab_incref_decref_rc/1": "gil",
        "heaplab_incref_decref_rc/2": "atomic",
        "heaplab_incref_decref_rc/3": "biased, not the owner",
        "heaplab_incref_decref_rc/4": "biased, the owner",
    }
    instr = {}
    if cg_path and os.path.exists(cg_path):
        with open(cg_path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[0] == "pool":
                    instr[parts[1]] = parts[2]
    base = median(cpu.get("heaplab_incref_decref_rc/1", []))
    rows = []
    for n, what in names.items():
        if n in cpu:
            v = median(cpu[n])
            rows.append([what, fmt(v), ratio(v, base), instr.get(n, "-")])
    for n in ("heaplab_incref_decref/0", "heaplab_incref_decref_immortal_on/0",
              "heaplab_incref_decref_immortal_obj/0"):
        if n in instr:
            rows.append([f"gil: {n}", fmt(median(cpu.get(n, []))), "", instr[n]])
    return ("## incref + decref of one float (median CPU ns per pair; instructions from callgrind)\n\n" +
            table(["mode", "ns", "vs gil", "instructions"], rows))


def ft_report(d):
    """scripts/bench-ft's tables for results directory d: DIR/runs.jsonl,
    micro.json, callgrind.txt, callgrind-workloads.txt, control/scaling.md.
    Medians over the repeats; ratios against rc=gil in the same table. "per
    CPU s" divides the operations by the process's CPU time: on a shared
    machine it is steadier than wall time, and for several threads it shows
    how much work each CPU second did (a run that scales has the same ops per
    CPU second at 1 and 2 threads)."""
    d = Path(d)
    g = group(load_runs(d / "runs.jsonl"), key=ft_key)
    parts = [ft_micro(d / "micro.json", d / "callgrind.txt"), ft_one_thread(g),
             ft_instructions(d / "callgrind-workloads.txt"), ft_scaling(g)]
    control = d / "control" / "scaling.md"
    if control.exists():
        parts.append(control.read_text().replace("# ", "## ", 1).rstrip("\n"))
    parts.append(ft_sharing(g))
    return "\n\n".join(p for p in parts if p)


# ---- bench/scaling_control.py's table --------------------------------------------------

CONTROL_VARIANTS = ("1t", "2p", "2t")


def scaling_table(runs, repeats, duration):
    """Lines of scaling_control's table from its runs (each with "control":
    {variant, repeat, config}). Per configuration and repeat: the throughput
    of 1t and 2t, the summed throughput of the two 2p processes, and the CPU
    seconds each got per wall second; ratios are taken within a repeat, then
    their median."""
    rate, cores = {}, {}
    for (c, v, rep), rs in group(runs, key=lambda r: (r["control"]["config"], r["control"]["variant"],
                                                      r["control"]["repeat"])).items():
        wall = max(r["wall_s"] for r in rs)
        rate.setdefault(c, {}).setdefault(v, {})[rep] = sum(r["ops_per_s"] for r in rs)
        cores.setdefault(c, {}).setdefault(v, {})[rep] = sum(r["cpu_s"] for r in rs) / wall
    lines = [
        f"# Two threads beside two processes ({repeats} repeats of {duration:g} s runs; "
        "medians; ratios taken within each repeat)",
        "",
        "| configuration | 1t M ops/s | 2p M ops/s | 2t M ops/s | 2t/1t | 2p/1t | 2t/2p "
        "| CPUs busy 1t / 2p / 2t |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def within(r, x, y):
        return median(r[x][k] / r[y][k] for k in r.get(x, {}) if r.get(y, {}).get(k))
    for c, r in rate.items():
        busy = " / ".join(fmt(median(cores[c].get(v, {}).values())) for v in CONTROL_VARIANTS)
        lines.append(
            f"| {c} | {fmt(median(r.get('1t', {}).values()), '.2f', 1e6)} | "
            f"{fmt(median(r.get('2p', {}).values()), '.2f', 1e6)} | "
            f"{fmt(median(r.get('2t', {}).values()), '.2f', 1e6)} | {fmt(within(r, '2t', '1t'))} | "
            f"{fmt(within(r, '2p', '1t'))} | {fmt(within(r, '2t', '2p'))} | {busy} |")
    lines += [
        "",
        "2t/1t: the speedup of two threads; 2p/1t: what the machine gives two "
        "independent one-thread processes; 2t/2p: two threads against two processes "
        "(1.0: the process adds no cost).",
        "Per-repeat 2t/1t, 2p/1t:",
    ]
    for c, r in rate.items():
        reps = sorted(set(r.get("1t", {})) & set(r.get("2p", {})) & set(r.get("2t", {})))
        pairs = ", ".join(f"{r['2t'][k] / r['1t'][k]:.2f}/{r['2p'][k] / r['1t'][k]:.2f}" for k in reps)
        lines.append(f"- {c}: {pairs}")
    return lines


# ---- bench/compare_preload.py's tables -------------------------------------------------


def preload_driver_tables(lines, allocators, workloads):
    """compare_preload's two driver tables (throughput, memory) from its lines:
    the driver's JSON object with "preload" {allocator, ...} and "repeat", or a
    line with "error" for a run that failed. -> (throughput table, memory table)."""
    groups = group((x for x in lines if "preload" in x and x.get("benchmark") != "cpython"),
                   key=lambda x: (x["workload"], x["threads"], x["preload"]["allocator"]))
    ok = lambda key: [x for x in groups.get(key, []) if "error" not in x]
    tput_rows, mem_rows = [], []
    for wl, threads in workloads:
        med, rss = {}, {}
        tcells, mcells = [wl, threads], [wl, threads]
        for a in allocators:
            runs = ok((wl, threads, a))
            failed = len(groups.get((wl, threads, a), [])) - len(runs)
            if not runs:
                tcells.append("failed" if failed else "-")
                mcells.append("failed" if failed else "-")
                continue
            t = [x["ops_per_s"] / 1e6 for x in runs]
            med[a] = median(t)
            rss[a] = median(x["peak_rss_bytes"] for x in runs)
            tcells.append("%.2f (%.2f-%.2f)%s" % (med[a], min(t), max(t),
                                                  " [%d failed]" % failed if failed else ""))
            mcells.append("%s / %s" % (fmt(rss[a], ".1f", MIB),
                                       fmt(median(x["page_faults_minor"] for x in runs), ".0f")))
        # Time per operation is 1/throughput: time ratio X/Y = tput(Y)/tput(X).
        pair = lambda a, b: fmt(paired(ok((wl, threads, a)), ok((wl, threads, b)),
                                       lambda x: x["ops_per_s"], lambda x: x["repeat"]))
        tcells += ["%s (%s)" % (ratio(med.get("mimalloc"), med.get("heaplab")), pair("heaplab", "mimalloc")),
                   "%s (%s)" % (ratio(med.get("heaplab"), med.get("glibc")), pair("glibc", "heaplab")),
                   ratio(rss.get("heaplab"), rss.get("mimalloc"))]
        tput_rows.append(tcells)
        mem_rows.append(mcells)
    t1 = table(["workload", "threads"] + list(allocators) +
               ["time heaplab/mimalloc", "time glibc/heaplab", "peak RSS heaplab/mimalloc"], tput_rows)
    t2 = table(["workload", "threads"] + list(allocators), mem_rows)
    return t1, t2


def preload_python_table(lines, labels):
    """compare_preload's CPython table from its "benchmark": "cpython" lines, a
    row per label (obmalloc first: the baseline). -> (table, set of checksums)."""
    groups = group((x for x in lines if x.get("benchmark") == "cpython"), key=lambda x: x["config"])
    rows, base = [], None
    for lab in labels:
        runs = [x for x in groups.get(lab, []) if "error" not in x]
        failed = len(groups.get(lab, [])) - len(runs)
        if not runs:
            rows.append([lab, 0] + ["failed" if failed else "-"] * 5)
            continue
        wall = [x["wall_s"] for x in runs]
        rss = median(x["maxrss_kib"] for x in runs) / 1024
        med = median(wall)
        phases = runs[0]["result"]["phases_s"]
        ph = "/".join("%.2f" % median(x["result"]["phases_s"][p] for x in runs) for p in phases)
        if lab == "obmalloc":
            base = (med, rss)
        rows.append([lab, len(runs) if not failed else "%d (+%d failed)" % (len(runs), failed),
                     "%.2f (%.2f-%.2f)" % (med, min(wall), max(wall)), ph, "%.1f" % rss,
                     ratio(med, base[0]) if base else "-", ratio(rss, base[1]) if base else "-"])
    sums = {x["result"]["checksum"] for rs in groups.values() for x in rs if "error" not in x}
    header = ["config", "runs", "wall s, median (min-max)",
              "phases s: trees/dicts/strings/mixed", "max RSS MiB",
              "time / obmalloc", "max RSS / obmalloc"]
    return table(header, rows), sums


# ---- plots -----------------------------------------------------------------------------

PCTS = [("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100)]


def plots(d):
    """PNG figures from results directory d into d/plots; returns their paths.

    From runs.jsonl:
      throughput-EXPERIMENT.png  median Mops/s per configuration, min-max
                                 whiskers, a panel per workload (the table's rows)
      pauses-WORKLOAD.png        collector pause percentiles (p50..max) per
                                 configuration, for workloads run under a collector
      latency-convoy.png         convoy's response-time percentiles per GIL
                                 switch interval
      mmu-WORKLOAD.png           minimum mutator utilisation at 1, 10, 100 ms
    From *.trace.jsonl (heaplab run --trace=FILE): rss-over-time.png, one line
    per trace file, with each full collection marked where the trace records
    them. From *.trace.json (--trace-format=chrome): timeline-NAME.png, as
    timeline() draws it. Every figure has labelled axes with units."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = Path(d)
    outdir = d / "plots"
    outdir.mkdir(exist_ok=True)
    written = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(outdir / name, dpi=110)
        plt.close(fig)
        written.append(outdir / name)

    def percentile_plot(series, title, ylabel, name):
        """series: [(label, {pN: ns})]; x: percentile on a log scale of 1/(1-p)."""
        if not series:
            return
        fig, ax = plt.subplots(figsize=(8, 4.8))
        xs = [1 / (1 - p / 100) if p < 100 else 2000 for _, p in PCTS]
        for name_, h in series:
            ax.plot(xs, [h[k] / 1e6 for k, _ in PCTS], marker="o", label=name_)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(xs, [k for k, _ in PCTS])
        ax.set_xlabel("percentile")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left")
        save(fig, name)

    def median_hist(runs, path):
        hs = [h for h in (hist(r, *path) for r in runs) if h]
        return {k: median(h[k] for h in hs) for k, _ in PCTS} if hs else None

    runs = load_runs(d / "runs.jsonl") if (d / "runs.jsonl").exists() else []
    if runs:
        machine = (f"{runs[0]['machine']['cpu']}, {runs[0]['machine']['cores']} cores, "
                   f"commit {runs[0]['commit'][:10]}")
        # throughput: a figure per experiment, a panel per workload
        for exp, rs in group(runs, key=experiment_of).items():
            panels = group(rs, key=lambda r: r["workload"])
            sizes = [len(group(p)) for p in panels.values()]
            fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                                     figsize=(8, 0.45 * sum(sizes) + 1.1 * len(panels) + 0.6),
                                     gridspec_kw={"height_ratios": [s + 1.5 for s in sizes]})
            for ax, (wl, prs) in zip(axes[:, 0], panels.items()):
                groups = group(prs)
                opts = differing(config_of(g[0]) for g in groups.values())
                meds = [median(r["ops_per_s"] for r in g) / 1e6 for g in groups.values()]
                lo = [m - min(r["ops_per_s"] for r in g) / 1e6 for m, g in zip(meds, groups.values())]
                hi = [max(r["ops_per_s"] for r in g) / 1e6 - m for m, g in zip(meds, groups.values())]
                y = list(range(len(groups)))
                ax.barh(y, meds, xerr=[lo, hi], color="#4C72B0", ecolor="#333333", capsize=3)
                ax.set_yticks(y, [label(config_of(g[0]), opts) for g in groups.values()], fontsize=8)
                ax.invert_yaxis()
                ax.set_xlabel("million operations per second (median; whiskers: min-max)", fontsize=8)
                ax.set_title(f"{wl}: {len(prs)} runs", fontsize=9)
                ax.grid(axis="x", alpha=0.3)
            fig.suptitle(f"{exp}: throughput; {machine}", fontsize=10)
            save(fig, f"throughput-{exp}.png")
        by_wl = group(runs, key=lambda r: r["workload"])
        # pauses and MMU: a figure per workload run under a collector
        for wl, rs in by_wl.items():
            groups = group(rs)
            opts = differing(config_of(g[0]) for g in groups.values())
            series = [(label(config_of(g[0]), opts), h) for g in groups.values()
                      if (h := median_hist(g, ("gc", "pause_ns")))]
            percentile_plot(series, f"{wl}: collector pauses (medians over runs of each percentile)",
                            "pause, ms (log)", f"pauses-{wl}.png")
            wins = [("1ms", 1), ("10ms", 10), ("100ms", 100)]
            lines = [(label(config_of(g[0]), opts),
                      [median(r["gc"]["mmu"][w] for r in g if "mmu" in r.get("gc", {})) for w, _ in wins])
                     for g in groups.values() if any("mmu" in r.get("gc", {}) for r in g)]
            if lines:
                fig, ax = plt.subplots(figsize=(8, 4.8))
                for name_, ys in lines:
                    ax.plot([w for _, w in wins], ys, marker="o", label=name_)
                ax.set_xscale("log")
                ax.set_xticks([w for _, w in wins], [n for n, _ in wins])
                ax.set_ylim(-0.02, 1.02)
                ax.set_xlabel("window (log scale)")
                ax.set_ylabel("minimum mutator utilisation (0..1)")
                ax.set_title(f"{wl}: MMU, the worst share of any window left to the program",
                             fontsize=10)
                ax.grid(alpha=0.3, which="both")
                ax.legend(fontsize=7, loc="upper left")
                save(fig, f"mmu-{wl}.png")
        if "convoy" in by_wl:
            groups = group(by_wl["convoy"])
            opts = differing(config_of(g[0]) for g in groups.values()) or ["switch-interval-us"]
            series = [(label(config_of(g[0]), opts), h) for g in groups.values()
                      if (h := median_hist(g, ("latency_ns",)))]
            percentile_plot(series, "convoy: response time of the I/O thread beside a CPU-bound thread",
                            "response time, ms (log)", "latency-convoy.png")
    traces = sorted(d.glob("*.trace.jsonl"))
    if traces:
        fig, ax = plt.subplots(figsize=(8, 4.8))
        for f in traces:
            ev = read_jsonl(f)
            pts = [(e["t_s"], e["rss_bytes"] / MIB) for e in ev if "rss_bytes" in e]
            if not pts:
                continue
            line, = ax.plot([p[0] for p in pts], [p[1] for p in pts],
                            label=f.name[:-len(".trace.jsonl")])
            colls = [e["t_s"] for e in ev if e.get("event") == "gc_start" and e.get("generation") == 2]
            if colls:
                ys = [min(pts, key=lambda p: abs(p[0] - t))[1] for t in colls]
                ax.plot(colls, ys, "|", color=line.get_color(), markersize=6, alpha=0.5)
        ax.set_xlabel("time since the start of the timed part, s")
        ax.set_ylabel("resident set size, MiB")
        ax.set_title("RSS over time (ticks: full collections, where traced)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        save(fig, "rss-over-time.png")
    for f in sorted(d.glob("*.trace.json")):
        png = outdir / f"timeline-{f.name[:-len('.trace.json')]}.png"
        timeline(f, png)
        written.append(png)
    return written


# Colours and rows of the timeline: (event name prefix, colour, row within
# the lane from its bottom, row height), drawn in this order (later on top).
TIMELINE_KINDS = [
    ("timed part", "#e8e8e8", 0.0, 0.9),
    ("GIL held", "#9ad29a", 0.05, 0.25),
    ("GIL wait", "#f0a030", 0.32, 0.25),
    ("stopping the world", "#8c564b", 0.32, 0.25),
    ("parked (stop the world)", "#7fb3e0", 0.05, 0.25),
    ("world stopped", "#b0b0b0", 0.6, 0.25),
    ("gc gen 0", "#f4a6a6", 0.6, 0.3),
    ("gc gen 1", "#e05555", 0.6, 0.3),
    ("gc gen 2", "#8b0000", 0.6, 0.3),
    ("gc increment", "#7b3fa0", 0.6, 0.3),
]


def load_trace_events(path):
    with open(path) as f:
        doc = json.load(f)
    return doc["traceEvents"] if isinstance(doc, dict) else doc


def timeline(trace, png, window=None):
    """A --trace-format=chrome trace as a PNG: a lane per thread (the main
    thread on top, then the workers) with its collections (red: generation 0
    light to 2 dark; purple: incremental increments), stop-the-world waits
    (brown: stopping it; grey: stopped; blue: parked by another thread's
    stop), GIL holds (green) and waits (orange) and drop requests (ticks);
    below, RSS and the pool's live blocks over time. A bar narrower than a
    pixel is drawn as a hairline, so that microsecond pauses stay visible
    in a run of seconds. window: (start_s, end_s) to zoom in."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = load_trace_events(trace)
    names, order, title = {}, {}, Path(trace).name
    for e in ev:
        if e.get("ph") != "M":
            continue
        if e["name"] == "thread_name":
            names[e["tid"]] = e["args"]["name"]
        elif e["name"] == "thread_sort_index":
            order[e["tid"]] = e["args"]["sort_index"]
        elif e["name"] == "process_name":
            title = e["args"]["name"]
    lo, hi = window if window else (None, None)

    def visible(t0, t1):
        return (lo is None or t1 >= lo) and (hi is None or t0 <= hi)

    bars = {}     # (tid, kind) -> [(start_s, dur_s)]
    ticks = {}    # tid -> [t_s]
    counters = {}  # name -> ([t_s], [value])
    for e in ev:
        ph = e.get("ph")
        if ph == "X":
            t0, dur = e["ts"] / 1e6, e["dur"] / 1e6
            if not visible(t0, t0 + dur):
                continue
            kind = next((k for k, *_ in TIMELINE_KINDS if e["name"].startswith(k)), None)
            if kind:
                bars.setdefault((e["tid"], kind), []).append((t0, dur))
        elif ph == "i" and visible(e["ts"] / 1e6, e["ts"] / 1e6):
            ticks.setdefault(e["tid"], []).append(e["ts"] / 1e6)
        elif ph == "C":   # all of them: the line runs on through a window
            for k, v in e["args"].items():
                xs, ys = counters.setdefault(f"{e['name']} ({k})", ([], []))
                xs.append(e["ts"] / 1e6)
                ys.append(v)
    tids = sorted({t for t, _ in bars} | set(ticks) | set(names),
                  key=lambda t: (order.get(t, 1 << 30), t))
    fig, (ax, axc) = plt.subplots(2, 1, figsize=(11, 1.2 + 0.55 * len(tids) + 2.2), sharex=True,
                                  gridspec_kw={"height_ratios": [max(len(tids), 1) * 0.55, 2.0]})
    for lane, tid in enumerate(reversed(tids)):
        for kind, colour, row, height in TIMELINE_KINDS:
            spans = bars.get((tid, kind))
            if spans:
                ax.broken_barh(spans, (lane + row, height), facecolors=colour, edgecolors=colour,
                               linewidth=0.6, label=kind)
        if tid in ticks:
            ax.plot(ticks[tid], [lane + 0.45] * len(ticks[tid]), "|", color="black", markersize=5,
                    label="GIL drop request")
    ax.set_yticks([lane + 0.45 for lane in range(len(tids))])
    ax.set_yticklabels([names.get(t, f"thread {t}") for t in reversed(tids)], fontsize=8)
    ax.set_ylim(-0.1, len(tids))
    handles, labels = ax.get_legend_handles_labels()
    seen = {}
    for h, l in zip(handles, labels):
        seen.setdefault(l, h)
    ax.legend(seen.values(), seen.keys(), fontsize=7, ncol=min(len(seen), 5), loc="upper center",
              bbox_to_anchor=(0.5, -0.02), frameon=False)
    ax.set_title(f"{title}: a lane per thread", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    rss = counters.get("RSS (MiB)")
    if rss:
        axc.plot(rss[0], rss[1], color="black", label="RSS")
    axc.set_ylabel("RSS, MiB")
    axc.set_ylim(bottom=0)
    live = counters.get("live pool blocks (blocks)")
    if live:
        ax2 = axc.twinx()
        ax2.plot(live[0], [v / 1e6 for v in live[1]], color="#1f77b4", linewidth=0.8,
                 label="live pool blocks")
        ax2.set_ylabel("live pool blocks, millions", color="#1f77b4", fontsize=8)
        ax2.set_ylim(bottom=0)
    axc.set_xlabel("time since the run started, s")
    axc.grid(alpha=0.3)
    if window:
        axc.set_xlim(lo, hi)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


# ---- command line ----------------------------------------------------------------------


def main(argv):
    if argv and argv[0] == "timeline":
        window = None
        rest = [a for a in argv[1:] if not a.startswith("--window=")]
        for a in argv[1:]:
            if a.startswith("--window="):
                try:
                    window = tuple(float(x) for x in a.split("=", 1)[1].split(":"))
                except ValueError:
                    window = ()
        if len(rest) not in (1, 2) or not Path(rest[0]).is_file() or (window is not None
                                                                       and len(window) != 2):
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
        png = rest[1] if len(rest) == 2 else str(Path(rest[0]).with_suffix(".png"))
        print(timeline(rest[0], png, window))
        return 0
    if len(argv) != 2 or argv[0] not in ("report", "plots", "ft") or not Path(argv[1]).is_dir():
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    cmd, d = argv
    if cmd == "report":
        print(report(d))
    elif cmd == "ft":
        print(ft_report(d))
    else:
        for p in plots(d):
            print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
