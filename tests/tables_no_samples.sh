#!/usr/bin/env bash
# A figure a workload does not measure is "-" in every table, not 0:
# binary-trees times no operation (its latency histogram holds no sample),
# churn with --threshold=0,10,10 never collects (no pause). Checked where
# tables are printed: the driver's summary, heaplab compare, the sweep's CSV,
# scripts/hlresults.py's tables and CSV; alloc-lifo, which times its
# operations, keeps its numbers.
# Usage: tables_no_samples.sh HEAPLAB SRC
set -euo pipefail
heaplab=$(realpath "$1")
src=$(realpath "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
cell() {  # FILE ROW-PREFIX COLUMN -> the cell (1-based, trimmed) of the first table row starting so
  awk -F'|' -v p="| $2" -v c="$3" 'index($0, p) == 1 { gsub(/^ +| +$/, "", $(c + 1)); print $(c + 1); exit }' "$1"
}

# ---- the driver's summary
"$heaplab" run churn --threshold=0,10,10 --duration-s=0.05 2> churn.err > /dev/null
grep -q "pause p50 -, p99 -, max -," churn.err || fail "no-pause summary: $(grep gc churn.err)"
"$heaplab" run binary-trees --duration-s=0.05 2> bt.err > /dev/null
grep -q "latency" bt.err && fail "binary-trees' summary shows a latency: $(grep latency bt.err)"
"$heaplab" run alloc-lifo --duration-s=0.05 2> lifo.err > /dev/null
grep -Eq "latency +p50 [0-9]+ ns" lifo.err || fail "alloc-lifo's summary lacks its latency: $(cat lifo.err)"

# ---- a sweep of the three
cat > nosamples.sweep <<'EOS'
duration-s = 0.05
repeat = 2
[grid]
workload = binary-trees, alloc-lifo
[grid]
workload = churn
threshold = 0,10,10;   # one value with commas: a ";" makes ";" the separator
EOS
"$heaplab" sweep nosamples.sweep --out out 2> sweep.err || fail "sweep exited $?: $(cat sweep.err)"
py() { /usr/bin/python3 -c "$@"; }
csv_cell() {  # FILE WORKLOAD COLUMN
  py 'import csv, sys
print(next(r[sys.argv[3]] for r in csv.DictReader(open(sys.argv[1])) if r["workload"] == sys.argv[2]))' "$@"
}
[ -z "$(csv_cell out/runs.csv binary-trees latency_p50_ns)" ] || fail "sweep CSV: binary-trees has a latency"
[ -z "$(csv_cell out/runs.csv churn gc_pause_p99_ns)" ] || fail "sweep CSV: churn has a pause"
[ -n "$(csv_cell out/runs.csv alloc-lifo latency_p50_ns)" ] || fail "sweep CSV: alloc-lifo lacks its latency"

# ---- heaplab compare
"$heaplab" compare out/runs.jsonl out/runs.jsonl > cmp.md || fail "compare exited $?"
sect() { awk -v h="## $1" 'index($0, h) == 1 { on = 1; next } /^## / { on = 0 } on' cmp.md; }
sect binary-trees | grep -q '^| latency p50 | - | - | - | - | - |$' || fail "compare, binary-trees: $(sect binary-trees)"
sect churn | grep -q '^| gc pause p99 | - | - | - | - | - |$' || fail "compare, churn: $(sect churn)"
sect alloc-lifo | grep -Eq '^\| latency p50 \| [0-9]+ ns \| [0-9]+ ns \| \+0\.0% \| 1 \| same' \
  || fail "compare, alloc-lifo: $(sect alloc-lifo)"

# ---- scripts/hlresults.py: the experiment's table, the collector's, its CSV
/usr/bin/python3 "$src/scripts/hlresults.py" report out > report.md || fail "hlresults.py report failed"
for c in 6 7 8; do   # p50, p99, p99.9 ns
  [ "$(cell report.md "binary-trees " $c)" = "-" ] || fail "table, binary-trees column $c: $(cat report.md)"
  [ "$(cell report.md "alloc-lifo " $c)" != "-" ] || fail "table, alloc-lifo column $c: $(cat report.md)"
done
for c in 8 9 10; do  # pause p50, p99, max
  [ "$(cell report.md "churn | gc=stw " $c)" = "-" ] || fail "collector table, churn column $c: $(cat report.md)"
done
mkdir gathered && cp out/runs.jsonl gathered/   # as scripts/bench gathers its experiments
/usr/bin/python3 "$src/scripts/hlresults.py" report gathered > /dev/null || fail "hlresults.py report failed"
[ -z "$(csv_cell gathered/runs.csv binary-trees latency_p99_ns)" ] || fail "hlresults CSV: binary-trees has a latency"
[ -n "$(csv_cell gathered/runs.csv alloc-lifo latency_p99_ns)" ] || fail "hlresults CSV: alloc-lifo lacks its latency"
echo "tables_no_samples: ok"
