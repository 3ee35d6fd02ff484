#!/usr/bin/python3
"""PNG plots from a results directory written by scripts/bench.

usage: scripts/plots.py RESULTS_DIR   (writes RESULTS_DIR/plots/*.png, prints their names)

From runs.jsonl (one heaplab result per line; runs grouped by workload and
every option but seed, as scripts/report.py groups them):
  throughput-WORKLOAD.png  median Mops/s per configuration, min-max whiskers
  pauses-WORKLOAD.png      collector pause percentiles (p50..max) per
                           configuration, for workloads run under a collector
  latency-convoy.png       convoy's response-time percentiles per GIL
                           switch interval
  mmu-WORKLOAD.png         minimum mutator utilisation at 1, 10, 100 ms
From *.trace.jsonl (heaplab run --trace=FILE): rss-over-time.png, one line
per trace file, with each full collection marked where the trace records them.

Needs /usr/bin/python3 with python3-matplotlib (Debian's; scripts/bench
installs it). Every figure has labelled axes with units.
"""
import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PCTS = [("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100)]


def load_runs(path):
    runs = []
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if r.get("sweep", {}).get("status", "ok") == "ok" and "config" in r:
                runs.append(r)
    return runs


def groups_by_workload(runs):
    """workload -> {config key: [runs]}, in first-seen order."""
    out = {}
    for r in runs:
        cfg = dict(r["config"])
        cfg.pop("seed", None)
        out.setdefault(r["workload"], {}).setdefault(json.dumps(cfg, sort_keys=True), []).append(r)
    return out


def differing(keys):
    cfgs = [json.loads(k) for k in keys]
    return [o for o in cfgs[0] if len({json.dumps(c.get(o)) for c in cfgs}) > 1]


def label(key, opts):
    cfg = json.loads(key)
    return " ".join(f"{o}={cfg[o]}" for o in opts) or "default"


def save(fig, path, written):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)


def throughput(by_wl, outdir, written, machine):
    for wl, groups in by_wl.items():
        keys = list(groups)
        opts = differing(keys)
        labels = [label(k, opts) for k in keys]
        meds = [statistics.median(r["ops_per_s"] for r in groups[k]) / 1e6 for k in keys]
        lo = [m - min(r["ops_per_s"] for r in groups[k]) / 1e6 for m, k in zip(meds, keys)]
        hi = [max(r["ops_per_s"] for r in groups[k]) / 1e6 - m for m, k in zip(meds, keys)]
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(keys) + 1.6))
        y = range(len(keys))
        ax.barh(list(y), meds, xerr=[lo, hi], color="#4C72B0", ecolor="#333333", capsize=3)
        ax.set_yticks(list(y), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("throughput, million operations per second (median; whiskers: min-max)")
        runs = sum(len(v) for v in groups.values())
        ax.set_title(f"{wl}: {runs} runs, {machine}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        save(fig, outdir / f"throughput-{wl}.png", written)


def percentile_plot(series, title, ylabel, path, written):
    """series: [(label, {pN: ns})]; x: percentile on a log scale of 1/(1-p)."""
    if not series:
        return
    fig, ax = plt.subplots(figsize=(8, 4.8))
    xs = [1 / (1 - p / 100) if p < 100 else 2000 for _, p in PCTS]
    for name, h in series:
        ys = [h.get(k, float("nan")) / 1e6 for k, _ in PCTS]
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(xs, [k for k, _ in PCTS])
    ax.set_xlabel("percentile")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left")
    save(fig, path, written)


def median_hist(runs, get):
    hs = [get(r) for r in runs]
    hs = [h for h in hs if h and h.get("count")]
    if not hs:
        return None
    return {k: statistics.median(h[k] for h in hs) for k, _ in PCTS}


def pauses(by_wl, outdir, written):
    """One figure per workload that ran under a collector."""
    for wl, groups in by_wl.items():
        opts = differing(list(groups))
        series = []
        for k, rs in groups.items():
            h = median_hist(rs, lambda r: r.get("gc", {}).get("pause_ns"))
            if h:
                series.append((label(k, opts), h))
        percentile_plot(series, f"{wl}: collector pauses (medians over runs of each percentile)",
                        "pause, ms (log)", outdir / f"pauses-{wl}.png", written)


def convoy(by_wl, outdir, written):
    groups = by_wl.get("convoy")
    if not groups:
        return
    opts = differing(list(groups)) or ["switch-interval-us"]
    series = []
    for k, rs in groups.items():
        h = median_hist(rs, lambda r: r.get("latency_ns"))
        if h:
            series.append((label(k, opts), h))
    percentile_plot(series, "convoy: response time of the I/O thread beside a CPU-bound thread",
                    "response time, ms (log)", outdir / "latency-convoy.png", written)


def mmu(by_wl, outdir, written):
    """One figure per workload that ran under a collector."""
    wins = [("1ms", 1), ("10ms", 10), ("100ms", 100)]
    for wl, groups in by_wl.items():
        opts = differing(list(groups))
        lines = []
        for k, rs in groups.items():
            ms = [r["gc"]["mmu"] for r in rs if "mmu" in r.get("gc", {})]
            if ms:
                lines.append((label(k, opts), [statistics.median(m[w] for m in ms) for w, _ in wins]))
        if not lines:
            continue
        fig, ax = plt.subplots(figsize=(8, 4.8))
        for name, ys in lines:
            ax.plot([w for _, w in wins], ys, marker="o", label=name)
        ax.set_xscale("log")
        ax.set_xticks([w for _, w in wins], [n for n, _ in wins])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("window (log scale)")
        ax.set_ylabel("minimum mutator utilisation (0..1)")
        ax.set_title(f"{wl}: MMU, the worst share of any window left to the program",
                     fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper left")
        save(fig, outdir / f"mmu-{wl}.png", written)


def traces(d, outdir, written):
    files = sorted(d.glob("*.trace.jsonl"))
    if not files:
        return
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for f in files:
        ev = [json.loads(l) for l in f.read_text().splitlines() if l.strip()]
        pts = [(e["t_s"], e["rss_bytes"] / 2**20) for e in ev if "rss_bytes" in e]
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
    save(fig, outdir / "rss-over-time.png", written)


def main():
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit(__doc__)
    d = Path(sys.argv[1])
    outdir = d / "plots"
    outdir.mkdir(exist_ok=True)
    written = []
    if (d / "runs.jsonl").exists():
        runs = load_runs(d / "runs.jsonl")
        if runs:
            m = runs[0]["machine"]
            machine = f"{m['cpu']}, {m['cores']} cores, commit {runs[0]['commit'][:10]}"
            by_wl = groups_by_workload(runs)
            throughput(by_wl, outdir, written, machine)
            pauses(by_wl, outdir, written)
            convoy(by_wl, outdir, written)
            mmu(by_wl, outdir, written)
    traces(d, outdir, written)
    for p in written:
        print(p)


if __name__ == "__main__":
    main()
