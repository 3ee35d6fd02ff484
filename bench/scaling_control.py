#!/usr/bin/python3
"""How far two threads scale, beside what this machine gives two processes.

usage: bench/scaling_control.py [options]   (Python 3 standard library only)

A two-thread speedup measured on a shared machine mixes two things: what
the software does when its threads run together (a lock, a shared counter,
a cache line that both write, the kernel's mm lock taken by mmap, munmap
and page faults), and what the machine gives two busy threads (a second
core that is really a hyperthread, a host that runs other guests). This
script separates them with a control: two independent processes, each
running the one-thread configuration. They share no address space, no
lock and no cache line, so their summed throughput is what the machine
gives two threads of this work when the software adds nothing.

For each configuration (the arguments of `heaplab run`, after any NAME=VALUE
words, which go to its environment: LD_PRELOAD=... puts an allocator under
the driver's --alloc=system), every repeat runs,
back to back and in an order rotated by one each repeat:
  1t   one process, --threads=1
  2p   two processes at once, each --threads=1; throughput summed
  2t   one process, --threads=2
each for --duration seconds (a fixed time, not a fixed amount of work, so
that a thread the host slowed does not keep the other waiting).

Reported, as medians over the repeats of the ratios within each repeat
(the three runs of a repeat are adjacent in time, so they share the host's
state more than runs minutes apart do):
  2t/1t   the speedup the issues' goals name
  2p/1t   the machine's: what two independent jobs get
  2t/2p   the software's efficiency: 1.0 means two threads in one process
          do as well as two processes; below it, the process itself costs
          (sharing, locks, the kernel's per-process locks)
and the CPU time each run got per second of wall time (2.0 is two whole
cores), which shows when the host took a core away.

The table is scripts/hlresults.py's scaling_table, which reads it back from
the runs. Writes OUT/scaling.md (also printed), OUT/scaling.jsonl (every run's JSON
object with "control" naming the variant and the repeat) and OUT/scaling.log.
Exit status: 0, 1 when a run failed, 2 bad arguments.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

# the peers' library names and where Debian puts them, and the interleaving
from compare_preload import HEAPLAB_LIB, PEER_LIBS, lib_dirs, rotated

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import hlresults  # noqa: E402  (the table, as every results table)

DEFAULT_CONFIGS = [
    "binary-trees --rc=gil --immortal=on --tcache=heap --gc=none",
    "binary-trees --rc=atomic --immortal=on --tcache=heap --gc=none",
    "binary-trees --rc=biased --immortal=on --tcache=heap --gc=none",
    "alloc-random --alloc=pool --tcache=heap",
]
VARIANTS = ["1t", "2p", "2t"]


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="bench/scaling_control.py",
        description="two threads in one process beside two one-thread processes",
        epilog="A configuration is the arguments of `heaplab run` after the "
        "command, without --threads and --duration-s (this script sets them). "
        "Default configurations: " + "; ".join(DEFAULT_CONFIGS) + "; and "
        "alloc-random --alloc=system with heaplab's library (BUILD/" + HEAPLAB_LIB +
        ") and mimalloc's preloaded, where they exist.",
    )
    ap.add_argument("--config", action="append", metavar="ARGS",
                    help="a configuration (repeatable; default: the list below)")
    ap.add_argument("--repeats", type=int, default=7, help="repeats (default 7)")
    ap.add_argument("--duration", type=float, default=1.0,
                    help="seconds per run (default 1.0)")
    ap.add_argument("--build", default=str(ROOT / "build"),
                    help="the build folder holding heaplab (default build/)")
    ap.add_argument("--out", required=True, help="folder for the results")
    a = ap.parse_args(argv)
    if a.repeats < 1:
        ap.error(f"--repeats {a.repeats}: expected a positive integer")
    if not 0.05 <= a.duration <= 600:
        ap.error(f"--duration {a.duration}: expected seconds in 0.05..600")
    if not a.config:
        # alloc-random through the C library's malloc, under heaplab's
        # library and mimalloc's
        a.config = list(DEFAULT_CONFIGS)
        mimalloc = [d + "/" + f for d in lib_dirs() for f, _ in PEER_LIBS["mimalloc"]
                    if os.path.isfile(d + "/" + f)]
        for lib in [str(Path(a.build).resolve() / HEAPLAB_LIB)] + mimalloc[:1]:
            if os.path.isfile(lib):
                a.config.append(f"LD_PRELOAD={lib} alloc-random --alloc=system")
    a.split = {c: split_env(c) for c in a.config}
    for c, (env, words) in a.split.items():
        for name, value in env.items():
            if name == "LD_PRELOAD" and not Path(value).is_file():
                ap.error(f"--config '{c}': LD_PRELOAD names no file: {value}")
        if not words:
            ap.error("--config '': expected a workload and its flags")
        bad = [w for w in words if w.startswith(("--threads", "--duration-s"))]
        if bad:
            ap.error(f"--config '{c}': {bad[0]} is set by this script; leave it out")
    a.heaplab = Path(a.build) / "heaplab"
    if not os.access(a.heaplab, os.X_OK):
        ap.error(f"--build {a.build}: no executable heaplab there "
                 "(build it first: cmake --build build)")
    return a


def split_env(config):
    """The NAME=VALUE words that open config, as a dict, and the rest."""
    words, env = shlex.split(config), {}
    while words and "=" in words[0] and not words[0].startswith("-"):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return env, words


def start(a, config, threads, seed, log):
    env, words = a.split[config]
    cmd = [str(a.heaplab), "run", *words, f"--threads={threads}",
           f"--duration-s={a.duration}", f"--seed={seed}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**os.environ, **env})
    return [f"{k}={v}" for k, v in env.items()] + cmd, proc


def finish(cmd, proc):
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {shlex.join(cmd)}")
    return json.loads(out)


def run_variant(a, config, variant, rep, log):
    """The runs' JSON objects: one, or two started at once for 2p."""
    if variant == "2p":
        started = [start(a, config, 1, rep * 2 + k, log) for k in range(2)]
        return [finish(*s) for s in started]
    return [finish(*start(a, config, 2 if variant == "2t" else 1, rep * 2, log))]


def main(argv):
    a = parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(c, v) for c in a.config for v in VARIANTS]
    total, n, done = len(jobs) * a.repeats, 0, []
    with open(out / "scaling.jsonl", "w") as jl, open(out / "scaling.log", "w") as log:
        for rep in range(a.repeats):
            for c, v in rotated(jobs, rep):
                n += 1
                print(f"== {n}/{total}: {v} {c} (repeat {rep + 1})", file=sys.stderr, flush=True)
                log.write(f"== {v} {c} (repeat {rep + 1})\n")
                log.flush()
                try:
                    runs = run_variant(a, c, v, rep + 1, log)
                except (RuntimeError, json.JSONDecodeError) as e:
                    print(f"scaling_control: run failed: {e} (see {out}/scaling.log)",
                          file=sys.stderr)
                    return 1
                for run in runs:
                    run["control"] = {"variant": v, "repeat": rep + 1, "config": c}
                    jl.write(json.dumps(run) + "\n")
                done += runs
    # configurations in the order given (the first repeat's order is theirs)
    text = "\n".join(hlresults.scaling_table(done, a.repeats, a.duration)) + "\n"
    (out / "scaling.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
