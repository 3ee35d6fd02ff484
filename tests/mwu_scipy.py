#!/usr/bin/python3
"""heaplab compare's Mann-Whitney U test (bench/compare.c, hl_mann_whitney)
against scipy.stats.mannwhitneyu, an implementation written independently
(Debian's python3-scipy; scripts/lib.sh installs it).

heaplab's variant, which scipy is asked for by name: two-sided; U of the
first sample, ties at their midranks; p from U's exact distribution when no
value is tied and n1 * n2 <= 2500 (scipy: method="exact"), else from the
normal approximation with the tie correction of the variance and a
continuity correction of 1/2 (method="asymptotic", use_continuity=True).

Checked for every vector: heaplab chose the method its rule names; U is
scipy's (U is a multiple of 1/2: to 1e-9); p is scipy's to a relative 1e-9
(an absolute 1e-300 for p-values below that). The vectors: small samples,
fully separated samples (one-sided differences, both ways), ties, all-equal
samples, samples of a few hundred, both sides of the 2500 boundary.

A check of the check: for every normal-approximation vector with 0 < p < 1,
scipy's p without the continuity correction is NOT heaplab's to the same
tolerance, so the test tells the two variants apart.

usage: mwu_scipy.py PATH/mwu_calc   (exit 0 pass, 1 fail, 77 no scipy: skipped)
"""
import math
import random
import subprocess
import sys

REL_TOL = 1e-9
ABS_TOL = 1e-300
U_TOL = 1e-9

try:
    import scipy
    from scipy.stats import mannwhitneyu
except ImportError:
    print("mwu_scipy: scipy is missing (Debian package python3-scipy): skipped", file=sys.stderr)
    sys.exit(77)


def vectors():
    """[(name, x, y)], deterministic."""
    rng = random.Random(20240611)
    v = []

    def add(name, x, y):
        v.append((name, [float(a) for a in x], [float(b) for b in y]))

    gauss = lambda n, mu, sd=1.0: [rng.gauss(mu, sd) for _ in range(n)]
    # small samples, no ties: the exact distribution
    add("1 vs 1", [1], [2])
    add("3 vs 3, separated (p = 0.1, the smallest for 3 vs 3)", [1, 2, 3], [4, 5, 6])
    add("1 vs 5", [3.5], [1, 2, 4, 5, 6])
    add("2 vs 9, interleaved", [2.5, 7.5], range(1, 10))
    for n1, n2 in [(2, 3), (4, 4), (5, 7), (8, 8), (10, 3), (12, 15), (20, 20), (3, 40)]:
        add(f"gauss {n1} vs {n2}, shifted 0.5", gauss(n1, 0), gauss(n2, 0.5))
    # one-sided differences: every x below every y, and above
    for n1, n2 in [(4, 4), (5, 5), (8, 8), (12, 9), (25, 25)]:
        lo, hi = [i * 1.25 for i in range(n1)], [100 + i * 0.75 for i in range(n2)]
        add(f"x below y, {n1} vs {n2}", lo, hi)
        add(f"x above y, {n2} vs {n1}", hi, lo)
    # the boundary of the exact distribution: 50 * 50 = 2500 exact, 50 * 51 not
    add("50 vs 50, no ties (exact: n1 n2 = 2500)", gauss(50, 0), gauss(50, 0.3))
    add("50 vs 51, no ties (normal: n1 n2 = 2550)", gauss(50, 0), gauss(51, 0.3))
    add("2500 vs 1, no ties (exact)", gauss(2500, 0), [0.1234567])
    # ties: the normal approximation with the tie correction
    for n1, n2 in [(3, 3), (5, 7), (10, 10), (30, 20), (8, 60)]:
        add(f"integers 0..4, {n1} vs {n2}", [rng.randint(0, 4) for _ in range(n1)],
            [rng.randint(1, 5) for _ in range(n2)])
    add("ties within x only", [1, 1, 2, 3], [4, 5, 6, 7])
    add("one value shared by x and y", [1, 2, 3, 4], [4, 5, 6, 7])
    add("x below y, each constant", [1] * 4, [2] * 4)
    add("two values, 6 vs 6, U at its mean", [1, 2, 1, 2, 1, 2], [2, 1, 2, 1, 2, 1])
    # all equal: no information, p = 1
    add("all equal, 5 vs 6", [7] * 5, [7] * 6)
    add("all equal, 1 vs 1", [3], [3])
    add("all equal, 40 vs 30", [0.5] * 40, [0.5] * 30)
    # a few hundred
    add("300 vs 300, shifted 0.2", gauss(300, 0), gauss(300, 0.2))
    add("300 vs 300, one distribution", gauss(300, 0), gauss(300, 0))
    add("200 vs 400, rounded to 0.1 (many ties)", [round(a, 1) for a in gauss(200, 0)],
        [round(a, 1) for a in gauss(400, 0.1)])
    add("500 vs 500, far apart (p near 1e-160)", gauss(500, 0), gauss(500, 3))
    add("400 vs 300, log-normal", [rng.lognormvariate(0, 1) for _ in range(400)],
        [rng.lognormvariate(0.1, 1) for _ in range(300)])
    add("250 vs 250, throughputs 1% apart", gauss(250, 100, 2), gauss(250, 101, 2))
    return v


def heaplab(calc, vecs):
    text = "".join(" ".join(repr(a) for a in x) + " | " + " ".join(repr(b) for b in y) + "\n"
                   for _, x, y in vecs)
    out = subprocess.run([calc], input=text, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        u, p, method = line.split()
        rows.append((float(u), float(p), method))
    if len(rows) != len(vecs):
        sys.exit(f"mwu_scipy: {calc} answered {len(rows)} lines for {len(vecs)} vectors")
    return rows


def close(a, b):
    return abs(a - b) <= max(REL_TOL * abs(b), ABS_TOL)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    vecs = vectors()
    rows = heaplab(sys.argv[1], vecs)
    failures, worst, told_apart, normal_open = 0, 0.0, 0, 0
    print(f"scipy {scipy.__version__}; tolerance: U {U_TOL}, p relative {REL_TOL} (absolute {ABS_TOL})")
    print(f"{'vector':58} {'n1':>4} {'n2':>4} {'method':6} {'U':>9} {'p heaplab':>24} "
          f"{'p scipy':>24} {'rel diff':>8}")
    for (name, x, y), (u, p, method) in zip(vecs, rows):
        ties = len(set(x + y)) < len(x) + len(y)
        want = "exact" if not ties and len(x) * len(y) <= 2500 else "normal"
        ref = mannwhitneyu(x, y, use_continuity=True, alternative="two-sided",
                           method="exact" if want == "exact" else "asymptotic")
        su, sp = float(ref.statistic), float(ref.pvalue)
        rel = abs(p - sp) / sp if sp else abs(p - sp)
        worst = max(worst, rel if sp >= ABS_TOL else 0.0)
        bad = []
        if method != want:
            bad.append(f"heaplab used the {method} method, its rule names {want}")
        if abs(u - su) > U_TOL:
            bad.append(f"U {u!r} against scipy's {su!r}")
        if not (math.isfinite(p) and close(p, sp)):
            bad.append(f"p {p!r} against scipy's {sp!r}")
        if want == "normal" and 0 < p < 1:
            normal_open += 1
            nc = float(mannwhitneyu(x, y, use_continuity=False, alternative="two-sided",
                                    method="asymptotic").pvalue)
            if not close(p, nc):
                told_apart += 1
            else:
                bad.append(f"p without continuity correction ({nc!r}) is as close: the check cannot "
                           "tell the variants apart")
        print(f"{name[:58]:58} {len(x):>4} {len(y):>4} {method:6} {u:>9g} {p:>24.17g} {sp:>24.17g} "
              f"{rel:>8.1e}{'  FAIL: ' + '; '.join(bad) if bad else ''}")
        failures += bool(bad)
    print(f"mwu_scipy: {len(vecs)} vectors, {failures} failed; largest relative p difference "
          f"{worst:.1e}; without the continuity correction scipy differs on {told_apart} of "
          f"{normal_open} normal-approximation vectors with 0 < p < 1")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
