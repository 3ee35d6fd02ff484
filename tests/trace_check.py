#!/usr/bin/python3
"""Checks a Trace Event format file (heaplab run --trace-format=chrome)
against the format's rules, and optionally what it must contain.

Usage:
  trace_check.py FILE [--expect NAME]... [--counter NAME]...
  trace_check.py --heaplab PATH [--expect NAME]... [--counter NAME]... -- run WORKLOAD OPTIONS...
      runs heaplab with --trace=TMP --trace-format=chrome added, then checks TMP
  trace_check.py --heaplab PATH --bad-format
      --trace-format=VALUE with a bad value exits 2 naming the option and json, chrome

The rules (Google's "Trace Event Format" document; what Perfetto and
chrome://tracing need to draw tracks):
  - the file is a JSON object with a "traceEvents" list (or a bare list);
  - every event has ph (one of B E X i I C M), name (a string), pid and tid
    (integers); every event but metadata has ts, a number >= 0;
  - timestamps are ordered: the events after the metadata come in
    non-decreasing ts;
  - every begin (B) has its end (E) on the same thread, in stack order (an E
    with a name names its B), and nothing is left open;
  - a complete event (X) has dur >= 0, and on one thread two complete events
    either nest or do not overlap;
  - a counter (C) has args, a non-empty object of numbers (not booleans);
  - an instant (i/I) has scope s in g, p, t when it says one;
  - metadata (M) process_name and thread_name carry args.name, a string;
    every thread that has events has a thread_name.
Exit 0 when every rule holds, 1 naming the first ones broken.
Standard library only.
"""
import json
import os
import subprocess
import sys
import tempfile

PHASES = {"B", "E", "X", "i", "I", "C", "M"}


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check(events, expect=(), counters=()):
    errors = []

    def err(i, msg):
        if len(errors) < 20:
            errors.append(f"event {i}: {msg}")

    last_ts = None
    stacks = {}        # tid -> open B names
    x_stacks = {}      # tid -> ends of the enclosing X events
    named = set()
    with_events = set()
    names = set()
    counter_names = set()
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            err(i, "not an object")
            continue
        ph = e.get("ph")
        if ph not in PHASES:
            err(i, f"ph {ph!r} is not one of {sorted(PHASES)}")
            continue
        if not isinstance(e.get("name"), str):
            err(i, "no name")
        for k in ("pid", "tid"):
            if not isinstance(e.get(k), int) or isinstance(e.get(k), bool):
                err(i, f"{k} is not an integer")
        tid = (e.get("pid"), e.get("tid"))
        if ph == "M":
            if e.get("name") in ("process_name", "thread_name"):
                a = e.get("args")
                if not isinstance(a, dict) or not isinstance(a.get("name"), str):
                    err(i, f"{e.get('name')} without args.name")
                elif e["name"] == "thread_name":
                    named.add(tid)
            continue
        ts = e.get("ts")
        if not is_number(ts) or ts < 0:
            err(i, f"ts {ts!r} is not a number >= 0")
            continue
        if last_ts is not None and ts < last_ts:
            err(i, f"ts {ts} before the previous event's {last_ts}: timestamps not ordered")
        last_ts = ts
        with_events.add(tid)
        names.add(e.get("name"))
        if ph == "B":
            stacks.setdefault(tid, []).append((e.get("name"), i))
        elif ph == "E":
            st = stacks.get(tid)
            if not st:
                err(i, f"end {e.get('name')!r} on thread {tid[1]} without a begin")
            else:
                bname, _ = st.pop()
                if "name" in e and e["name"] != bname:
                    err(i, f"end {e['name']!r} closes begin {bname!r} on thread {tid[1]}")
        elif ph == "X":
            dur = e.get("dur")
            if not is_number(dur) or dur < 0:
                err(i, f"complete event {e.get('name')!r} with dur {dur!r}")
                continue
            # in nanoseconds, as integers: ts + dur in floating point may
            # end a hair after the next event's start
            start, end = round(ts * 1000), round((ts + dur) * 1000)
            st = x_stacks.setdefault(tid, [])
            while st and st[-1][0] <= start:
                st.pop()
            if st and end > st[-1][0]:
                err(i, f"{e.get('name')!r} [{ts}, {ts + dur}] us overlaps {st[-1][1]!r} ending "
                       f"at {st[-1][0] / 1000} on thread {tid[1]} without nesting")
            st.append((end, e.get("name")))
        elif ph == "C":
            a = e.get("args")
            if not isinstance(a, dict) or not a:
                err(i, f"counter {e.get('name')!r} without args")
            elif not all(is_number(v) for v in a.values()):
                err(i, f"counter {e.get('name')!r} with a value that is not a number: {a}")
            counter_names.add(e.get("name"))
        elif ph in ("i", "I"):
            if "s" in e and e["s"] not in ("g", "p", "t"):
                err(i, f"instant with scope {e['s']!r}")
    for tid, st in stacks.items():
        for bname, i in st:
            err(i, f"begin {bname!r} on thread {tid[1]} never ends")
    for tid in sorted(with_events - named, key=str):
        errors.append(f"thread {tid[1]} has events but no thread_name")
    for n in expect:
        if n not in names:
            errors.append(f"no event named {n!r} (names: {sorted(names)})")
    for n in counters:
        if n not in counter_names:
            errors.append(f"no counter named {n!r} (counters: {sorted(counter_names)})")
    return errors


def load(path):
    with open(path) as f:
        doc = json.load(f)
    if isinstance(doc, dict):
        ev = doc.get("traceEvents")
        if not isinstance(ev, list):
            raise ValueError("no traceEvents list")
        return ev
    if isinstance(doc, list):
        return doc
    raise ValueError("neither an object with traceEvents nor a list")


def main(argv):
    expect, counters, heaplab, bad_format, run_args, path = [], [], None, False, None, None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            run_args = argv[i + 1:]
            break
        if a in ("--expect", "--counter", "--heaplab"):
            if i + 1 >= len(argv):
                print(f"trace_check: {a} needs a value", file=sys.stderr)
                return 2
            {"--expect": expect, "--counter": counters}.get(a, []).append(argv[i + 1])
            if a == "--heaplab":
                heaplab = argv[i + 1]
            i += 2
            continue
        if a == "--bad-format":
            bad_format = True
        else:
            path = a
        i += 1
    if bad_format:
        p = subprocess.run([heaplab, "run", "convoy", "--trace=/dev/null", "--trace-format=xml"],
                           capture_output=True, text=True)
        if p.returncode != 2 or "'trace-format'" not in p.stderr or "json, chrome" not in p.stderr:
            print(f"trace_check: --trace-format=xml: exit {p.returncode}, expected 2 with a "
                  f"message naming 'trace-format' and json, chrome: {p.stderr}", file=sys.stderr)
            return 1
        print("trace_check: --trace-format=xml refused (exit 2)")
        return 0
    tmpdir = None
    if run_args is not None:
        tmpdir = tempfile.mkdtemp(prefix="hl_trace_")
        path = os.path.join(tmpdir, "trace.json")
        cmd = [heaplab] + run_args + [f"--trace={path}", "--trace-format=chrome"]
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            print(f"trace_check: {' '.join(cmd)}: exit {p.returncode}\n{p.stderr}", file=sys.stderr)
            return 1
    try:
        events = load(path)
    except (OSError, ValueError) as e:
        print(f"trace_check: {path}: {e}", file=sys.stderr)
        return 1
    errors = check(events, expect, counters)
    if tmpdir and not errors:
        os.remove(path)
        os.rmdir(tmpdir)
    if errors:
        print(f"trace_check: {path}: {len(errors)} rule(s) broken:", file=sys.stderr)
        for e in errors:
            print("  " + e, file=sys.stderr)
        return 1
    print(f"trace_check: {path}: {len(events)} events, every rule holds")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
