#!/usr/bin/env bash
# heaplab sweep and heaplab compare, end to end: a tiny grid; resuming an
# interrupted sweep; a crashing and an overrunning configuration recorded
# and skipped; bad sweep files; compare on synthetic results with a known
# difference and with none; --list run by GNU parallel (when installed).
# Usage: sweep_compare.sh HEAPLAB
set -euo pipefail
heaplab=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
count() { grep -c "$2" "$1" || true; }
jq_lines() {  # FILE PYEXPR -> prints PYEXPR evaluated per line (d = the object)
  /usr/bin/python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l); print(eval(sys.argv[2]))' "$1" "$2"
}

# ---- a tiny grid: 2 workloads x 2 values x 2 repeats
cat > tiny.sweep <<'EOF'
# two workloads, free lists on and off
workload = alloc-lifo, churn   # comments after values too
freelists = on, off
duration-s = 0.05
repeat = 2
EOF
"$heaplab" sweep tiny.sweep --out out1 2> err1 || fail "tiny sweep exited $?: $(cat err1)"
[ "$(wc -l < out1/runs.jsonl)" -eq 8 ] || fail "expected 8 result lines"
[ "$(count out1/runs.jsonl '"status":"ok"')" -eq 8 ] || fail "expected 8 ok runs"
[ "$(wc -l < out1/runs.csv)" -eq 9 ] || fail "expected a CSV header and 8 rows"
# interleaved: repeat 1 of every point before repeat 2 of any
order=$(jq_lines out1/runs.jsonl 'd["sweep"]["repeat"]' | tr -d '\n')
[ "$order" = "11112222" ] || fail "runs not interleaved by repeat: $order"
# the seed is the repeat; the workload and option are the point's
jq_lines out1/runs.jsonl '(d["config"]["seed"] == d["sweep"]["repeat"]) and d["workload"] in ("alloc-lifo", "churn")' \
  | grep -qv True && fail "a run has the wrong seed or workload"
grep -q "8/8 runs" err1 || fail "no progress line"

# scripts/hlresults.py tables the sweep's results (one table for the
# experiment, named after its file, a row per configuration) and draws them
# (one throughput figure for the experiment, a panel per workload)
hlresults=$here/../scripts/hlresults.py
/usr/bin/python3 "$hlresults" report out1 > report.md || fail "hlresults.py report failed"
grep -q "^## tiny$" report.md || fail "no table for the experiment: $(cat report.md)"
[ "$(grep -c '^| alloc-lifo freelists=\|^| churn freelists=' report.md)" -eq 4 ] \
  || fail "expected 4 rows (2 workloads x 2 values): $(cat report.md)"
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  /usr/bin/python3 "$here/../scripts/plots.py" out1 > pngs || fail "plots.py failed"
  grep -q "throughput-tiny.png" pngs && [ -s "out1/plots/throughput-tiny.png" ] || fail "no plot for the sweep"
fi

# ---- resuming: keep 3 whole lines and half of the 4th, as a killed sweep would
head -n 3 out1/runs.jsonl > cut
# (no pipe: with pipefail, head closing it while sed still writes a line
# longer than stdio's buffer is a SIGPIPE, and the script stopped silently)
sed -n 4p out1/runs.jsonl > line4
head -c 40 line4 >> cut
cp cut out1/runs.jsonl
"$heaplab" sweep tiny.sweep --out out1 2> err2 || fail "resume exited $?"
grep -q "resuming: 3 of 8 runs already done" err2 || fail "resume did not count 3 done runs: $(cat err2)"
[ "$(wc -l < out1/runs.jsonl)" -eq 8 ] || fail "after resume: $(wc -l < out1/runs.jsonl) lines, expected 8"
pairs=$(jq_lines out1/runs.jsonl '"%d-%d" % (d["sweep"]["point"], d["sweep"]["repeat"])' | sort | uniq -d)
[ -z "$pairs" ] || fail "runs recorded twice after resume: $pairs"
# the same OUT with another grid is refused
sed 's/repeat = 2/repeat = 3/' tiny.sweep > other.sweep
if "$heaplab" sweep other.sweep --out out1 2> err3; then fail "a different grid in the same OUT was accepted"; fi
grep -q "different grid" err3 || fail "no message for a different grid: $(cat err3)"

# ---- a crashing and an overrunning configuration: recorded, the sweep goes on
# (a generous timeout, so that the healthy 0.05 s run cannot reach it on
# a loaded machine under ASan; the overrunning one sleeps 30 s)
cat > fake-heaplab <<EOF
#!/usr/bin/env bash
for a in "\$@"; do
  case "\$a" in
    --threads=2) kill -SEGV \$\$ ;;
    --threads=3) sleep 30 ;;
  esac
done
exec "$heaplab" "\$@"
EOF
chmod +x fake-heaplab
cat > crash.sweep <<'EOF'
workload = malloc-churn
threads = 1, 2, 3
duration-s = 0.05
repeat = 1
timeout-s = 6
EOF
rc=0
HEAPLAB_SWEEP_BINARY=$tmp/fake-heaplab "$heaplab" sweep crash.sweep --out out2 2> err4 || rc=$?
[ "$rc" -eq 1 ] || fail "a sweep with failed runs exited $rc, expected 1"
[ "$(wc -l < out2/runs.jsonl)" -eq 3 ] || fail "expected 3 lines, one per run"
st=$(jq_lines out2/runs.jsonl 'd["sweep"]["status"] + ":" + str(d["sweep"].get("signal", 0))' | tr '\n' ' ')
[ "$st" = "ok:0 crashed:11 timeout:9 " ] || fail "statuses: $st"

# ---- values with commas in them, separated by semicolons
cat > thr.sweep <<'EOF'
workload = gc-cpu
threshold = 700,10,10; 10000,10,10
duration-s = 0.05
repeat = 1
EOF
"$heaplab" sweep thr.sweep --out out4 2> err5 || fail "threshold sweep exited $?: $(cat err5)"
thr=$(jq_lines out4/runs.jsonl 'd["config"]["threshold"]' | tr '\n' ' ')
[ "$thr" = "700,10,10 10000,10,10 " ] || fail "thresholds run: $thr"

# ---- a union of grids: the common lines, each [grid]'s own (which replace
# them), the points in the file's order; --set reaches every grid
cat > union.sweep <<'EOF'
workload = alloc-lifo
duration-s = 0.05
repeat = 2
[grid]
alloc = pool
tcache = none, heap
[grid]            # glibc, no thread cache
alloc = system
[grid]
workload = churn
EOF
"$heaplab" sweep union.sweep --out out5 --set repeat=1 --set duration-s=0.02 2> err6 \
  || fail "union sweep exited $?: $(cat err6)"
got=$(jq_lines out5/runs.jsonl '"%s/%s/%s/%g" % (d["workload"], d["config"]["alloc"], d["config"]["tcache"], d["config"]["duration-s"])' | tr '\n' ' ')
[ "$got" = "alloc-lifo/pool/none/0.02 alloc-lifo/pool/heap/0.02 alloc-lifo/system/none/0.02 churn/pool/none/0.02 " ] \
  || fail "union of grids ran: $got"
head -n 1 out5/runs.csv | grep -q "^point,repeat,status,workload,duration-s,alloc,tcache,seed,ops," \
  || fail "union CSV header: $(head -n 1 out5/runs.csv)"
sed -n 4p out5/runs.csv | grep -q "^3,1,ok,alloc-lifo,0.02,system,,1," || fail "union CSV row: $(sed -n 4p out5/runs.csv)"
grep -q "^\[grid\]" out5/grid || fail "the grid text lacks its grids"
"$heaplab" sweep union.sweep --out out5 --set repeat=2 --set duration-s=0.02 2> err7 && fail "another --set accepted in the same OUT"
grep -q "different grid" err7 || fail "no message for a different --set: $(cat err7)"

# ---- bad sweep files: exit 2, naming the line and what is accepted
bad() {  # TEXT EXPECTED-MESSAGE
  printf '%s\n' "$1" > bad.sweep
  local rc=0
  "$heaplab" sweep bad.sweep --out outbad 2> errb || rc=$?
  [ "$rc" -eq 2 ] || fail "bad file '$1' exited $rc, expected 2"
  grep -q -- "$2" errb || fail "bad file '$1': message '$(cat errb)' lacks '$2'"
}
bad $'workload = churn\ntimeout-s = nan' "timeout-s = 'nan': expected a positive number of seconds"
bad $'workload = churn\ntimeout-s = inf' "timeout-s = 'inf': expected a positive number of seconds"
bad $'workload = churn\nrepeat = 1e3' "repeat = '1e3': expected a positive integer up to 10000"
bad $'workload = gc-cpu\nthreshold = 0,10,10' "use ';' between values that hold commas: threshold = 0,10,10;"
bad $'workload = churn\nrcc = gil' "bad.sweep:2: unknown name 'rcc'"
bad $'workload = churn\nrc = gil, bogus' "accepted: gil, atomic, biased"
bad 'rc = gil' "no 'workload = ...' line"
bad $'workload = nosuch' "unknown workload 'nosuch'"
bad $'workload = malloc-churn\nalloc = system\ntcache = magazine' "impossible combination"
bad $'workload = churn\nrepeat = 0' "repeat = '0': expected a positive integer"
bad $'workload = churn\nthreads 2' "expected 'name = value, value, ...'"
bad $'workload = churn\n[grid]\nrepeat = 2' "bad.sweep:3: 'repeat' applies to the whole file"
bad $'workload = churn\n[grids]' "bad.sweep:2: expected '\\[grid\\]'"
bad $'rc = gil\n[grid]\nworkload = churn\n[grid]\nthreads = 2' "bad.sweep:4: this grid has no 'workload = ...' line"
bad $'workload = churn\n[grid]\nrc = gil\nrc = biased' "bad.sweep:4: 'rc' was already given on line 3"
rc=0; "$heaplab" sweep tiny.sweep --out outbad --set rcc=gil 2> errb || rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--set 'rcc=gil': unknown name 'rcc'" errb || fail "a bad --set: exit $rc, $(cat errb)"
[ ! -e outbad/runs.jsonl ] || fail "a bad sweep file ran something"

# ---- compare: synthetic results with a known difference and with none
mk() {  # FILE ALLOC MEAN N
  /usr/bin/python3 - "$@" <<'EOF'
import json, sys
path, alloc, mean, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
with open(path, "a") as f:
    for i in range(n):
        v = mean * (1 + 0.005 * (i - 3.5))   # +-2%, distinct, deterministic
        f.write(json.dumps({"workload": "w", "config": {"alloc": alloc, "seed": i + 1},
                            "ops_per_s": v, "wall_s": 1 / v, "peak_rss_bytes": 1 << 20}) + "\n")
EOF
}
mk a.jsonl pool 100 8; mk a.jsonl system 50 8
mk b.jsonl pool 130 8; mk b.jsonl system 50 8
"$heaplab" compare a.jsonl b.jsonl > cmp.md || fail "compare exited $?"
grep -A6 "^## w alloc=pool" cmp.md | grep "^| ops/s" | grep -q "better \*" || fail "a 30% gain not found significant: $(cat cmp.md)"
grep -A6 "^## w alloc=pool" cmp.md | grep "^| ops/s" | grep -q "+30.0%" || fail "the change is not +30%"
grep -A6 "^## w alloc=system" cmp.md | grep "^| ops/s" | grep -q "same (noise)" || fail "identical samples called different"
grep -A8 "^## w alloc=system" cmp.md | grep "^| peak RSS" | grep -q "same (noise)" || fail "equal RSS called different"
# exact p of 8 against 8 fully separated: 2 / C(16, 8) = 1.55e-4
grep -A6 "^## w alloc=pool" cmp.md | grep "^| ops/s" | grep -q "| 0.000155 |" || fail "wrong exact p: $(grep 'ops/s' cmp.md)"
rc=0; "$heaplab" compare a.jsonl nosuch.jsonl 2> errc || rc=$?
[ "$rc" -eq 2 ] && grep -q "nosuch.jsonl" errc || fail "a missing file: exit $rc"
mk c.jsonl other 1 4
rc=0; "$heaplab" compare a.jsonl c.jsonl 2> errc || rc=$?
[ "$rc" -eq 2 ] && grep -q "no configuration is in both" errc || fail "nothing in common: exit $rc"

# ---- --list: one self-contained command per run, run here by GNU parallel
"$heaplab" sweep tiny.sweep --out out3 --list > cmds
[ "$(wc -l < cmds)" -eq 8 ] || fail "--list printed $(wc -l < cmds) commands, expected 8"
[ ! -e out3/runs.jsonl ] || fail "--list ran something"
if command -v parallel >/dev/null; then
  parallel -j2 < cmds
  cat out3/*.json > merged.jsonl
  [ "$(wc -l < merged.jsonl)" -eq 8 ] || fail "parallel produced $(wc -l < merged.jsonl) results"
  jq_lines merged.jsonl 'd["machine"]["hostname"] != ""' | grep -qv True && fail "a line lacks its machine"
  "$heaplab" compare out1/runs.jsonl merged.jsonl > /dev/null || fail "compare of sweep and parallel results"
else
  echo "note: GNU parallel is not installed: the --list commands were not run" >&2
fi
echo "sweep_compare: ok"
