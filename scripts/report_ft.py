#!/usr/bin/env python3
"""scripts/report_ft.py DIR: the tables of scripts/bench-ft (the refcount
modes side by side), from DIR/runs.jsonl, DIR/micro.json and
DIR/callgrind.txt. Medians over the repeats; ratios are against rc=gil in
the same table. "per CPU s" divides the operations by the process's CPU
time: on a shared machine it is steadier than wall time, and for several
threads it shows how much work each CPU second did (a run that scales has
the same ops per CPU second at 1 and 2 threads)."""
import json
import os
import statistics
import sys
from collections import defaultdict

MODES = ("gil", "atomic", "biased")


def load_runs(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    return runs


def key(r):
    c = r["config"]
    return (r["workload"], c["rc"], c["immortal"], c["tcache"], r["threads"])


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def group(runs):
    g = defaultdict(list)
    for r in runs:
        g[key(r)].append(r)
    return g


def figures(rs):
    ops = [r["ops"] for r in rs]
    wall = [r["wall_s"] for r in rs]
    cpu = [r["cpu_s"] for r in rs]
    rc = [r.get("rc", {}) for r in rs]
    return {
        "n": len(rs),
        "wall": med(wall),
        "cpu": med(cpu),
        "ops_s": med([o / w for o, w in zip(ops, wall) if w > 0]),
        "ops_cpu": med([o / c for o, c in zip(ops, cpu) if c > 0]),
        "queued": med([x.get("merges_queued", 0) for x in rc]),
        "merged": med([x.get("merges_done", 0) for x in rc]),
        "unlocked": med([x.get("reads_unlocked", 0) for x in rc]),
        "locked": med([x.get("reads_locked", 0) for x in rc]),
        "ops": med(ops),
    }


def m(x):
    return f"{x / 1e6:.2f}"


def one_thread(g):
    print("## One thread: what each mode costs (median wall and CPU time; ratio to gil)\n")
    print("| workload | immortal | gil s | atomic s | biased s | atomic/gil | biased/gil | "
          "atomic/gil (CPU) | biased/gil (CPU) | runs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for wl in ("binary-trees", "churn"):
        for imm in ("off", "on"):
            f = {rc: g.get((wl, rc, imm, "none", 1)) for rc in MODES}
            if not all(f.values()):
                continue
            f = {rc: figures(v) for rc, v in f.items()}
            base = f["gil"]
            print(f"| {wl} | {imm} | {base['wall']:.3f} | {f['atomic']['wall']:.3f} | "
                  f"{f['biased']['wall']:.3f} | {f['atomic']['wall'] / base['wall']:.3f} | "
                  f"{f['biased']['wall'] / base['wall']:.3f} | "
                  f"{f['atomic']['cpu'] / base['cpu']:.3f} | {f['biased']['cpu'] / base['cpu']:.3f} | "
                  f"{base['n']} |")
    print()


def instructions(path):
    if not os.path.exists(path):
        return
    n = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[3].isdigit():
                n[(parts[0], parts[1], parts[2])] = int(parts[3])
    print("## One thread: instructions (callgrind, whole run; ratio to gil)\n")
    print("| workload | immortal | gil | atomic | biased | atomic/gil | biased/gil |")
    print("|---|---|---|---|---|---|---|")
    for wl in ("binary-trees", "churn"):
        for imm in ("off", "on"):
            v = {rc: n.get((wl, imm, rc)) for rc in MODES}
            if not all(v.values()):
                continue
            print(f"| {wl} | {imm} | {v['gil'] / 1e9:.3f} G | {v['atomic'] / 1e9:.3f} G | "
                  f"{v['biased'] / 1e9:.3f} G | {v['atomic'] / v['gil']:.3f} | "
                  f"{v['biased'] / v['gil']:.3f} |")
    print()


def paired(one, two):
    """The median over the repeats of two's throughput over one's, each pair
    taken from the same repeat (the same --seed): the two runs are adjacent
    in time, so they share the host's state more than runs minutes apart."""
    by_seed = {r["config"]["seed"]: r["ops"] / r["wall_s"] for r in one if r["wall_s"] > 0}
    return med([r["ops"] / r["wall_s"] / by_seed[r["config"]["seed"]]
                for r in two if r["wall_s"] > 0 and r["config"]["seed"] in by_seed])


def scaling(g):
    print("## binary-trees, nothing shared: 1 and 2 threads (tcache=heap)\n")
    print("speedup: the ratio of the medians; paired: the median of the ratios within "
          "each repeat, whose two runs are adjacent in time.\n")
    print("| rc | immortal | 1 thread M ops/s | 2 threads M ops/s | speedup | paired | "
          "1 thread M ops/CPU s | 2 threads M ops/CPU s | per-CPU ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for imm in ("on", "off"):
        for rc in MODES:
            a, b = g.get(("binary-trees", rc, imm, "heap", 1)), g.get(("binary-trees", rc, imm, "heap", 2))
            if not a or not b:
                continue
            pair = paired(a, b)
            a, b = figures(a), figures(b)
            print(f"| {rc} | {imm} | {m(a['ops_s'])} | {m(b['ops_s'])} | {b['ops_s'] / a['ops_s']:.2f} | "
                  f"{pair:.2f} | "
                  f"{m(a['ops_cpu'])} | {m(b['ops_cpu'])} | {b['ops_cpu'] / a['ops_cpu']:.2f} |")
    print()


def sharing(g):
    for wl, what in (("shared", "threads read and replace the values of one dict"),
                     ("prodcons", "producers make pairs, consumers drop them")):
        print(f"## {wl}: {what} (tcache=heap)\n")
        print("| threads | rc | M ops/s | M ops/CPU s | vs gil | merges queued | merges done | "
              "reads without lock | reads with lock |")
        print("|---|---|---|---|---|---|---|---|---|")
        for t in (1, 2, 4):
            base = g.get((wl, "gil", "off", "heap", t))
            base = figures(base) if base else None
            for rc in MODES:
                rs = g.get((wl, rc, "off", "heap", t))
                if not rs:
                    continue
                f = figures(rs)
                vs = f"{f['ops_s'] / base['ops_s']:.2f}" if base else "-"
                print(f"| {t} | {rc} | {m(f['ops_s'])} | {m(f['ops_cpu'])} | {vs} | "
                      f"{f['queued']:.0f} | {f['merged']:.0f} | {f['unlocked']:.0f} | {f['locked']:.0f} |")
        print()


def micro(path, cg_path):
    if not os.path.exists(path):
        return
    with open(path) as f:
        data = json.load(f)
    cpu = defaultdict(list)
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        cpu[name].append(b["cpu_time"])
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
    print("## incref + decref of one float (median CPU ns per pair; instructions from callgrind)\n")
    print("| mode | ns | vs gil | instructions |")
    print("|---|---|---|---|")
    base = med(cpu.get("heaplab_incref_decref_rc/1", []))
    for n, label in names.items():
        if n not in cpu:
            continue
        v = med(cpu[n])
        print(f"| {label} | {v:.2f} | {v / base:.2f} | {instr.get(n, '-')} |")
    for n in ("heaplab_incref_decref/0", "heaplab_incref_decref_immortal_on/0",
              "heaplab_incref_decref_immortal_obj/0"):
        if n in instr:
            print(f"| gil: {n} | {med(cpu.get(n, [])):.2f} | | {instr[n]} |")
    print()


def main():
    if len(sys.argv) != 2:
        print("usage: report_ft.py DIR", file=sys.stderr)
        return 2
    d = sys.argv[1]
    g = group(load_runs(os.path.join(d, "runs.jsonl")))
    micro(os.path.join(d, "micro.json"), os.path.join(d, "callgrind.txt"))
    one_thread(g)
    instructions(os.path.join(d, "callgrind-workloads.txt"))
    scaling(g)
    control = os.path.join(d, "control", "scaling.md")
    if os.path.exists(control):
        with open(control) as f:
            print(f.read().replace("# ", "## ", 1))
    sharing(g)
    return 0


if __name__ == "__main__":
    sys.exit(main())
