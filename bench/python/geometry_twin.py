#!/usr/bin/python3
"""Small pyperformance-like programs, and phases that free most of what they
made: what an allocator's geometry changes in CPython (papers/obmalloc-geometry).

usage: geometry_twin.py [--smoke]
  --smoke  sizes divided by about 50: checks the path, measures nothing

Three parts, each timed (process CPU time):
  json     a document of 2,000 records (dicts of strs, ints, floats and a
           list) dumped to text and loaded back, 40 times (pyperformance's
           json_dumps and json_loads, together)
  nbody    the benchmarks game's n-body, 60,000 steps of five bodies:
           every arithmetic result a new float, freed at once
  phase    1.5 M small objects made (a tuple of an int, a float and a
           short str, in a list), then all but 1 in every S dropped, for
           S = 16, 1024, 4096, 65536 in turn (about 160 bytes an item:
           survivors 2.5 KiB, 160 KiB, 640 KiB and 10 MiB apart): the
           memory the allocator gives back depends on how many of its
           arenas a survivor pins, the question bpo-37448's larger arenas
           raise. RSS (/proc/self/statm) before, at the peak, and after
           the drop; "after" is read once the allocator has had 50 ms and
           a little more allocation to decay its empty arenas (heaplab's
           library returns them after HEAPLAB_ARENA_DECAY_MS, default 10,
           on its next call).

Prints one JSON line: each part's seconds, the RSS figures and a checksum
that depends only on the work done.
"""
import gc
import json
import os
import sys
import time

SMOKE = 50
shrink = False


def n(x):
    return max(1, x // SMOKE) if shrink else x


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def part_json():
    doc = [{"id": i, "name": "record-%d" % i, "score": i * 0.25, "tags": ["t%d" % (i % 7), "x"],
            "ok": i % 3 == 0} for i in range(2000)]
    total = 0
    for _ in range(n(40)):
        text = json.dumps(doc)
        back = json.loads(text)
        total += len(text) + len(back)
    return total


def part_nbody():
    pi, days = 3.14159265358979323, 365.24
    sm = 4 * pi * pi
    bodies = [
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], sm],
        [[4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01],
         [1.66007664274403694e-03 * days, 7.69901118419740425e-03 * days,
          -6.90460016972063023e-05 * days], 9.54791938424326609e-04 * sm],
        [[8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01],
         [-2.76742510726862411e-03 * days, 4.99852801234917238e-03 * days,
          2.30417297573763929e-05 * days], 2.85885980666130812e-04 * sm],
        [[1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01],
         [2.96460137564761618e-03 * days, 2.37847173959480950e-03 * days,
          -2.96589568540237556e-05 * days], 4.36624404335156298e-05 * sm],
        [[1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01],
         [2.68067772490389322e-03 * days, 1.62824170038242295e-03 * days,
          -9.51592254519715870e-05 * days], 5.15138902046611451e-05 * sm]]
    pairs = [(bodies[i], bodies[j]) for i in range(5) for j in range(i + 1, 5)]
    dt = 0.01
    for _ in range(n(60_000)):
        for ([x1, y1, z1], v1, m1), ([x2, y2, z2], v2, m2) in pairs:
            dx, dy, dz = x1 - x2, y1 - y2, z1 - z2
            mag = dt * ((dx * dx + dy * dy + dz * dz) ** -1.5)
            b1, b2 = m1 * mag, m2 * mag
            v1[0] -= dx * b2
            v1[1] -= dy * b2
            v1[2] -= dz * b2
            v2[0] += dx * b1
            v2[1] += dy * b1
            v2[2] += dz * b1
        for r, [vx, vy, vz], _m in bodies:
            r[0] += dt * vx
            r[1] += dt * vy
            r[2] += dt * vz
    return int(sum(abs(b[0][0]) for b in bodies) * 1e6)


SPACINGS = (16, 1024, 4096, 65536)


def part_phase(spacing):
    """1.5 M items made, all but every spacing-th dropped: RSS before, at
    the peak and after the drop."""
    before = rss_bytes()
    items = [(i, i * 0.5, "s%d" % (i % 1000)) for i in range(n(1_500_000))]
    peak = rss_bytes()
    kept = items[::spacing]
    del items
    gc.collect()
    time.sleep(0.05)
    nudge = [(i, i) for i in range(1000)]   # an allocator call after the decay delay
    del nudge
    after = rss_bytes()
    del kept
    gc.collect()
    return before, peak, after


def main():
    global shrink
    args = sys.argv[1:]
    if args == ["--smoke"]:
        shrink = True
    elif args:
        print("geometry_twin.py: unknown arguments %r; accepted: --smoke" % args, file=sys.stderr)
        return 2
    out = {"python": sys.version.split()[0],
           "pythonmalloc": os.environ.get("PYTHONMALLOC", ""),
           "ld_preload": os.environ.get("LD_PRELOAD", ""),
           "heaplab_geometry": os.environ.get("HEAPLAB_GEOMETRY", "")}
    check = 0
    for name, fn in (("json", part_json), ("nbody", part_nbody)):
        t = time.process_time()
        check += fn()
        out[name + "_s"] = time.process_time() - t
    t = time.process_time()
    out["phases"] = []
    for spacing in SPACINGS:
        before, peak, after = part_phase(spacing)
        out["phases"].append({"spacing": spacing, "rss_before_bytes": before,
                              "rss_peak_bytes": peak, "rss_after_drop_bytes": after})
    out["phase_s"] = time.process_time() - t
    out["checksum"] = check
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
