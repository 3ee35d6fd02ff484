#!/usr/bin/python3
"""heaplab's malloc library beside its peers, all through LD_PRELOAD.

usage: bench/compare_preload.py [options]   (Python 3 standard library only)

Two measurements, each a set of configurations run in interleaved repeats
(every configuration once, then again, in an order rotated by one each
repeat, so that drift spreads over all of them); medians are reported.

1. The driver, `heaplab run WORKLOAD --alloc=system --threads=T`, whose
   workload calls the C library's malloc, under each allocator put in front
   of it with LD_PRELOAD:
     glibc     nothing preloaded
     heaplab   BUILD/alloc/libheaplab-malloc.so (target heaplab-malloc)
     mimalloc  libmimalloc.so.2          (Debian libmimalloc2.0)
     jemalloc  libjemalloc.so.2          (libjemalloc2)
     tcmalloc  libtcmalloc_minimal.so.4  (libtcmalloc-minimal4), else
               libtcmalloc.so.4          (libgoogle-perftools4)
   Each run lasts --duration seconds (HEAPLAB_DURATION_S) and prints one JSON
   object: throughput (ops_per_s), peak_rss_bytes, page_faults_minor.
2. CPython running bench/python/alloc_heavy.py: with its own obmalloc (the
   default), and with PYTHONMALLOC=malloc under each allocator of
   --python-allocators. Wall time from fork to exit and the child's maximum
   RSS (os.wait4's ru_maxrss) are measured from here.

heaplab's library reads HEAPLAB_* options as the driver does. The
allocator's options (HEAPLAB_TCACHE, HEAPLAB_TCACHE_*, HEAPLAB_ARENA_*,
HEAPLAB_GEOMETRY, HEAPLAB_POOL_*, HEAPLAB_ALLOC_DEBUG, HEAPLAB_ALLOC_STATS,
HEAPLAB_STATS)
are taken from this script's environment and, with --heaplab-env, given to
the heaplab runs only; every other HEAPLAB_* variable is dropped from every
run. The driver reads the same variables, and would reject some with
alloc=system (tcache=magazine needs alloc=pool): it gets each of them as a
flag with its default value instead (`heaplab list`; a flag beats the
environment), so that they configure the library only.

Why not `heaplab sweep`: a sweep runs every point in its own environment,
so each allocator would need a sweep of its own, and the allocators would no
longer interleave run by run, which is what makes their ratios steady on a
shared machine; the CPython half is no heaplab run at all (wall time and
ru_maxrss of an interpreter). The runs are this script's; the tables come
from scripts/hlresults.py (preload_driver_tables, preload_python_table), as
every results table does.

Writes OUT/preload.md (the tables, also printed on stdout), OUT/preload.jsonl
(one line per run: the driver's JSON object, or the CPython run's, with
"preload" naming the allocator, its library and the variables it got; failed
runs carry "error"), OUT/preload.log (every run's stderr).
Exit status: 0 when every run that was attempted succeeded (skipped
allocators and workloads are noted, not failures), 1 when some run failed,
2 bad arguments.
"""
import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import hlresults  # noqa: E402  (the tables, as every results table)

PYTHON = "/usr/bin/python3"
SCRIPT = ROOT / "bench" / "python" / "alloc_heavy.py"

ALLOCATORS = ["glibc", "heaplab", "mimalloc", "jemalloc", "tcmalloc"]
# allocator -> [(library file name, Debian package)], first found wins
PEER_LIBS = {
    "mimalloc": [("libmimalloc.so.2", "libmimalloc2.0")],
    "jemalloc": [("libjemalloc.so.2", "libjemalloc2")],
    "tcmalloc": [("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
                 ("libtcmalloc.so.4", "libgoogle-perftools4")],
}
HEAPLAB_LIB = "alloc/libheaplab-malloc.so"
# The allocator's options, which heaplab's library reads: taken from this
# environment for the heaplab runs only (a name ending in "_" is a prefix).
LIBRARY_OPTIONS = ["HEAPLAB_TCACHE", "HEAPLAB_TCACHE_", "HEAPLAB_ARENA_", "HEAPLAB_GEOMETRY",
                   "HEAPLAB_POOL_", "HEAPLAB_ALLOC_DEBUG", "HEAPLAB_ALLOC_STATS", "HEAPLAB_STATS"]


def library_option(name):
    return any(name.startswith(o) if o.endswith("_") else name == o for o in LIBRARY_OPTIONS)
DEFAULT_WORKLOADS = "alloc-lifo:1,alloc-random:1,alloc-random:2,malloc-churn:2,alloc-xthread:2,alloc-larson:2"
DEFAULT_PYTHON_ALLOCATORS = "glibc,heaplab,mimalloc"
# Per-run start-up beyond --duration (process start, setting up the live set,
# the RSS phases): used for the time estimate only.
DRIVER_OVERHEAD_S = 0.2
PYTHON_RUN_S = 3.0


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bench/compare_preload.py",
        description="heaplab's LD_PRELOAD malloc library beside glibc, mimalloc, jemalloc "
                    "and tcmalloc: the heaplab driver (alloc=system) and CPython "
                    "(PYTHONMALLOC=malloc) under each, medians of interleaved repeats.",
        epilog="Output: OUT/preload.md (also on stdout), OUT/preload.jsonl, OUT/preload.log. "
               "Exit status 0 all attempted runs succeeded, 1 some run failed, 2 bad arguments.")
    p.add_argument("--build-dir", default="build",
                   help="heaplab build directory with heaplab and alloc/libheaplab-malloc.so "
                        "(default build; relative to the current directory, else to the repository)")
    p.add_argument("--out", help="output directory (default results/preload-DATE-TIME)")
    p.add_argument("--repeats", type=int, default=3, help="runs per configuration (default 3)")
    p.add_argument("--duration", type=float, default=1.0,
                   help="seconds per driver run, HEAPLAB_DURATION_S (default 1)")
    p.add_argument("--workloads", default=DEFAULT_WORKLOADS,
                   help="NAME[:THREADS],... (default %(default)s); workloads that "
                        "`heaplab list` does not show are skipped with a note")
    p.add_argument("--allocators", default=",".join(ALLOCATORS),
                   help="for the driver runs, from %s (default all)" % ", ".join(ALLOCATORS))
    p.add_argument("--python-allocators", default=DEFAULT_PYTHON_ALLOCATORS,
                   help="CPython runs with PYTHONMALLOC=malloc under these, beside obmalloc "
                        "(default %(default)s; 'none' runs no CPython part)")
    p.add_argument("--python-scale", type=int, default=1,
                   help="alloc_heavy.py --scale (default 1: about 3 s a run)")
    p.add_argument("--heaplab-env", default="", metavar="K=V,...",
                   help="extra variables for the heaplab runs only, e.g. HEAPLAB_TCACHE=magazine")
    p.add_argument("--heaplab-lib", help="the heaplab library (default BUILD/%s)" % HEAPLAB_LIB)
    p.add_argument("--smoke", action="store_true",
                   help="one repeat, 0.1 s runs, alloc_heavy.py --smoke: checks the path, measures nothing")
    a = p.parse_args(argv)

    def fail(msg):
        p.error(msg)  # exits with status 2

    if a.repeats < 1:
        fail("--repeats %d: expected a positive integer" % a.repeats)
    if not 0 < a.duration <= 3600:
        fail("--duration %g: expected seconds in (0, 3600]" % a.duration)
    if a.python_scale < 1:
        fail("--python-scale %d: expected a positive integer" % a.python_scale)
    a.allocators = split_list(a.allocators)
    a.python_allocators = [] if a.python_allocators.strip() == "none" else split_list(a.python_allocators)
    for name in a.allocators + a.python_allocators:
        if name not in ALLOCATORS:
            fail("allocator '%s': accepted: %s" % (name, ", ".join(ALLOCATORS)))
    a.workloads_spec = []
    for item in split_list(a.workloads):
        name, _, threads = item.partition(":")
        if not name or (threads and (not threads.isdigit() or int(threads) < 1)):
            fail("--workloads item '%s': expected NAME or NAME:THREADS" % item)
        a.workloads_spec.append((name, int(threads or 1)))
    a.heaplab_vars = {}
    for item in split_list(a.heaplab_env):
        key, eq, value = item.partition("=")
        if not eq or not key.startswith("HEAPLAB_"):
            fail("--heaplab-env item '%s': expected HEAPLAB_NAME=VALUE" % item)
        a.heaplab_vars[key] = value
    if a.smoke:
        a.repeats, a.duration = 1, 0.1
    return a


def plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def split_list(s):
    return [x.strip() for x in s.split(",") if x.strip()]


def find_dir(path):
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p.resolve()
    return (ROOT / p).resolve()


def lib_dirs():
    dirs = []
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        dirs += ["/usr/lib/" + multiarch, "/lib/" + multiarch]
    return dirs + ["/usr/lib64", "/usr/lib", "/usr/local/lib"]


def peer_library(name):
    """The path of peer allocator name's library (PEER_LIBS, first found), or None."""
    for file, _ in PEER_LIBS[name]:
        found = [d + "/" + file for d in lib_dirs() if os.path.isfile(d + "/" + file)]
        if found:
            return found[0]
    return None


def locate_libraries(args, build):
    """allocator -> library path (None for glibc); and notes for the missing."""
    libs, notes = {"glibc": None}, []
    heaplab = Path(args.heaplab_lib) if args.heaplab_lib else build / HEAPLAB_LIB
    if heaplab.is_file():
        libs["heaplab"] = str(heaplab.resolve())
    else:
        notes.append("heaplab skipped: %s does not exist (build the heaplab-malloc target: "
                     "cmake --build %s --target heaplab-malloc)" % (heaplab, build))
    for name, candidates in PEER_LIBS.items():
        lib = peer_library(name)
        if lib:
            libs[name] = lib
        else:
            notes.append("%s skipped: no %s (Debian package %s)" % (
                name, " or ".join(f for f, _ in candidates), " or ".join(p for _, p in candidates)))
    return libs, notes


def heaplab_list(heaplab):
    """-> (workload names, {HEAPLAB_NAME: (flag name, default)}) from `heaplab list`:
    its lines '  NAME  description' under 'workloads:' and '  --NAME  default VALUE ...'."""
    out = subprocess.run([str(heaplab), "list"], capture_output=True, text=True, check=True).stdout
    names, options, section = set(), {}, None
    for line in out.splitlines():
        if line and not line.startswith(" "):
            section = line.split()[0]
        elif section == "workloads:" and line.startswith("  ") and not line.startswith("   "):
            names.add(line.split()[0])
        elif line.startswith("  --"):
            words = line.split()
            if len(words) >= 3 and words[1] == "default":
                name = words[0][2:]
                options["HEAPLAB_" + name.upper().replace("-", "_")] = (name, words[2])
    return names, options


def driver_flags(pre, options):
    """Flags that keep the driver at its defaults for the library's variables in PRE."""
    return ["--%s=%s" % options[k] for k in sorted(pre) if k in options and not options[k][1].startswith("(")]


def base_env():
    """This environment less LD_PRELOAD, PYTHONMALLOC and every HEAPLAB_* variable."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("HEAPLAB_") and k not in ("LD_PRELOAD", "PYTHONMALLOC")}


def preload_vars(allocator, libs, heaplab_vars):
    """The variables that put ALLOCATOR in front: LD_PRELOAD and, for heaplab, its options."""
    env = {}
    if libs.get(allocator):
        env["LD_PRELOAD"] = libs[allocator]
    if allocator == "heaplab":
        env.update({k: v for k, v in os.environ.items() if library_option(k)})
        env.update(heaplab_vars)
    return env


class Runner:
    """Runs children one at a time; their stderr goes to the log."""

    def __init__(self, log_path, total):
        self.log = open(log_path, "a")
        self.total, self.n = total, 0
        self.tty = sys.stderr.isatty()

    def progress(self, what):
        self.n += 1
        line = "== run %d/%d: %s" % (self.n, self.total, what)
        if self.tty:
            sys.stderr.write("\r" + line[:110].ljust(110))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self):
        if self.tty and self.n:
            sys.stderr.write("\n")
        self.log.close()

    def run(self, argv, env, what, timeout_s):
        """-> (exit code or None on timeout, stdout, wall seconds, ru_maxrss KiB, stderr)."""
        self.progress(what)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            child = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            # Wait without reaping (WNOWAIT) so that the timer can never kill
            # a reused pid; reap with wait4 afterwards for the child's rusage.
            lock, state = threading.Lock(), {"exited": False, "killed": False}

            def kill():
                with lock:
                    if not state["exited"]:
                        state["killed"] = True
                        os.kill(child.pid, 9)
            timer = threading.Timer(timeout_s, kill)
            timer.start()
            os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
            wall = time.perf_counter() - t0
            with lock:
                state["exited"] = True
            timer.cancel()
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = code = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        self.last_usage = usage   # the child's whole rusage, for callers that want CPU time
        self.log.write("== %s (exit %s, %.3f s)\n%s" % (what, code, wall, stderr))
        if "cannot be preloaded" in stderr:
            code = code or 127
            stdout = ""
        return (None if state["killed"] else code), stdout, wall, usage.ru_maxrss, stderr


def last_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else ""


def outcome(code):
    if code is None:
        return "timed out"
    return "killed by signal %d" % -code if code < 0 else "exit %d" % code


def error_line(stderr):
    """ld.so's complaint, else the driver's last 'heaplab: ...' message, else stderr's last line."""
    lines = [l for l in stderr.splitlines() if "cannot be preloaded" in l]
    lines = lines or [l for l in stderr.splitlines() if l.startswith("heaplab: ")]
    return lines[-1] if lines else last_line(stderr) or "no output"


def rotated(items, r):
    k = r % len(items) if items else 0
    return items[k:] + items[:k]


def measure_driver(args, heaplab, libs, workloads, options, runner, sink, notes):
    """Runs every (workload, threads) x allocator, interleaved; -> the lines
    written (the driver's object, or the run's "error")."""
    lines = []
    disabled = {}
    env0 = base_env()
    env0["HEAPLAB_DURATION_S"] = repr(args.duration)
    for r in range(1, args.repeats + 1):
        for (wl, threads) in workloads:
            for alloc in rotated([a for a in args.allocators if a in libs], r - 1):
                if alloc in disabled:
                    continue
                pre = preload_vars(alloc, libs, args.heaplab_vars)
                env = dict(env0, **pre)
                argv = [str(heaplab), "run", wl, "--alloc=system", "--threads=%d" % threads,
                        "--seed=%d" % r] + driver_flags(pre, options)
                what = "%s threads=%d under %s (repeat %d)" % (wl, threads, alloc, r)
                code, out, wall, maxrss, err = runner.run(argv, env, what, args.duration * 20 + 60)
                line = {"preload": {"allocator": alloc, "library": libs[alloc], "env": pre},
                        "repeat": r, "child_maxrss_kib": maxrss}
                try:
                    obj = json.loads(last_line(out)) if code == 0 else None
                except ValueError:
                    obj = None
                if obj is None:
                    reason = outcome(code) + ": " + error_line(err)
                    line.update({"workload": wl, "threads": threads, "error": reason})
                    sink.write(json.dumps(line) + "\n")
                    lines.append(line)
                    if code == 2:  # bad input: every later run would say the same
                        disabled[alloc] = reason
                        notes.append("%s skipped after its first run: %s" % (alloc, reason))
                    else:
                        notes.append("failed: %s: %s" % (what, reason))
                    continue
                obj.update(line)
                sink.write(json.dumps(obj) + "\n")
                lines.append(obj)
    return lines


def python_configs(args, libs, notes):
    """[(label, allocator or None, PYTHONMALLOC or None)]; obmalloc first (the baseline)."""
    configs = [("obmalloc", None, None)]
    for alloc in args.python_allocators:
        if alloc in libs:
            configs.append(("malloc+" + alloc, alloc, "malloc"))
        elif not any(n.startswith(alloc + " skipped") for n in notes):
            notes.append("%s skipped for CPython: no library" % alloc)
    return configs


def measure_python(args, libs, configs, runner, sink, notes):
    lines = []
    argv = [PYTHON, str(SCRIPT), "--scale", str(args.python_scale)] + (["--smoke"] if args.smoke else [])
    for r in range(1, args.repeats + 1):
        for label, alloc, pymalloc in rotated(configs, r - 1):
            pre = preload_vars(alloc, libs, args.heaplab_vars) if alloc else {}
            if pymalloc:
                pre["PYTHONMALLOC"] = pymalloc
            env = dict(base_env(), **pre)
            what = "CPython alloc_heavy.py, %s (repeat %d)" % (label, r)
            code, out, wall, maxrss, err = runner.run(argv, env, what, 120 * args.python_scale)
            line = {"benchmark": "cpython", "script": "bench/python/alloc_heavy.py", "config": label,
                    "python": sys.version.split()[0] if PYTHON == sys.executable else PYTHON,
                    "preload": {"allocator": alloc or "obmalloc", "library": libs.get(alloc), "env": pre},
                    "repeat": r, "wall_s": round(wall, 4), "maxrss_kib": maxrss}
            try:
                line["result"] = json.loads(last_line(out)) if code == 0 else None
            except ValueError:
                line["result"] = None
            if line["result"] is None:
                line["error"] = outcome(code) + ": " + error_line(err)
                notes.append("failed: %s: %s" % (what, line["error"]))
            sink.write(json.dumps(line) + "\n")
            lines.append(line)
    return lines


def main(argv):
    args = parse_args(argv)
    build = find_dir(args.build_dir)
    heaplab = build / "heaplab"
    if not os.access(heaplab, os.X_OK):
        print("compare_preload: no driver %s; build it first (cmake --build %s)" % (heaplab, build),
              file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else ROOT / "results" / time.strftime("preload-%Y%m%d-%H%M%S", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)

    libs, notes = locate_libraries(args, build)
    available, options = heaplab_list(heaplab)
    workloads = []
    for wl, threads in args.workloads_spec:
        if wl in available:
            workloads.append((wl, threads))
        elif not any(n.startswith("workload %s " % wl) for n in notes):
            notes.append("workload %s skipped: `heaplab list` does not show it" % wl)
    allocs = [a for a in args.allocators if a in libs]
    configs = python_configs(args, libs, notes)
    if len(configs) == 1 and not args.python_allocators:
        configs = []
    n_driver = len(workloads) * len(allocs) * args.repeats
    n_python = len(configs) * args.repeats
    est = n_driver * (args.duration + DRIVER_OVERHEAD_S) + n_python * (
        0.1 if args.smoke else PYTHON_RUN_S * args.python_scale)
    print("== LD_PRELOAD comparison: %d driver runs of %g s, %d CPython runs, about %.0f s; "
          "output in %s" % (n_driver, args.duration, n_python, est, out), file=sys.stderr)
    for n in notes:
        print("== note: " + n, file=sys.stderr)

    start = time.time()
    runner = Runner(out / "preload.log", n_driver + n_python)
    with open(out / "preload.jsonl", "a") as sink:
        driver = measure_driver(args, heaplab, libs, workloads, options, runner, sink, notes)
        python = measure_python(args, libs, configs, runner, sink, notes)
    runner.done()
    elapsed = time.time() - start

    first = next((x for x in driver if "error" not in x), None)
    md = ["# heaplab's malloc library beside its peers, through LD_PRELOAD", ""]
    if first:
        m = first["machine"]
        md.append("machine: %s, %d cores, %d NUMA node(s); commit %s%s; %s, interleaved; %.0f s in all"
                  % (m["cpu"], m["cores"], m["numa_nodes"], first["commit"][:12],
                     " (dirty)" if first["build"].get("dirty") else "", plural(args.repeats, "repeat"),
                     elapsed))
    else:
        md.append("%s, interleaved; %.0f s in all" % (plural(args.repeats, "repeat"), elapsed))
    heaplab_env = preload_vars("heaplab", {}, args.heaplab_vars)
    md.append("heaplab library: %s; its variables: %s" % (
        libs.get("heaplab", "missing"),
        ", ".join("%s=%s" % kv for kv in sorted(heaplab_env.items())) or "none (defaults)"))
    md.append("")
    if workloads and allocs:
        t1, t2 = hlresults.preload_driver_tables(driver, args.allocators, workloads)
        md += ["## `heaplab run WORKLOAD --alloc=system` under each allocator",
               "",
               "Mops/s, median (min-max) of %s of %g s each. Time ratios are of time per "
               "operation (the inverse of throughput): above 1 the first is slower. Each is "
               "the ratio of the medians, then in parentheses the median of the ratios within "
               "each repeat, whose runs are back to back (steadier on a shared machine)." % (
                   plural(args.repeats, "run"), args.duration),
               "", t1, "",
               "Peak RSS MiB / minor page faults (medians):", "", t2, ""]
    if configs:
        t3, sums = hlresults.preload_python_table(python, [label for label, _, _ in configs])
        md += ["## CPython %s running bench/python/alloc_heavy.py%s" % (
                   sys.version.split()[0] if PYTHON == sys.executable else PYTHON,
                   " --scale %d" % args.python_scale if args.python_scale > 1 else ""),
               "",
               "obmalloc: the interpreter's default; malloc+X: PYTHONMALLOC=malloc with X preloaded "
               "(glibc: nothing). Wall time from start to exit and the child's max RSS "
               "(ru_maxrss), medians of %s; phase times as the script reports them." % plural(
                   args.repeats, "run"),
               "", t3, ""]
        if len(sums) > 1:
            notes.append("CPython checksums differ between runs: %s" % ", ".join(sorted(sums)))
    if notes:
        md += ["Notes:", ""] + ["- " + n for n in notes] + [""]
    text = "\n".join(md)
    (out / "preload.md").write_text(text)
    print(text)
    failed = any(n.startswith("failed") or " skipped after its first run" in n for n in notes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
