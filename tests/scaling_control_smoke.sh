#!/usr/bin/env bash
# bench/scaling_control.py end to end, at the smallest sizes (measures
# nothing): the table has a row per configuration with the three variants'
# throughput, every run's JSON object carries its variant, and bad arguments
# exit 2 naming what is wrong. Usage: scaling_control_smoke.sh SRC BUILD
set -u
src=$1 build=$2 out=$(mktemp -d) failures=0
trap 'rm -rf "$out"' EXIT
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; failures=$((failures + 1)); fi; }
script="/usr/bin/python3 $src/bench/scaling_control.py --build $build"

$script --repeats 1 --duration 0.05 --config 'alloc-lifo --scale=1' \
  --config 'TZ=UTC churn --rc=biased' --out "$out/a" >"$out/a.txt" 2>"$out/a.err"
check "a smoke run exits 0" '[ $? -eq 0 ]'
check "one row per configuration" \
  '[ "$(grep -c "^| alloc-lifo --scale=1 |\|^| TZ=UTC churn" "$out/a.txt")" = 2 ]'
check "every variant ran (1t, 2 x 2p, 2t per configuration)" \
  '[ "$(wc -l <"$out/a/scaling.jsonl")" = 8 ]'
check "each run names its variant" \
  '[ "$(grep -c "\"variant\": \"2p\"" "$out/a/scaling.jsonl")" = 4 ]'
check "two threads where asked" \
  '[ "$(grep "\"variant\": \"2t\"" "$out/a/scaling.jsonl" | grep -c "\"threads\": 2")" = 2 ]'

$script --repeats 0 --out "$out/b" 2>"$out/b.err"
check "--repeats 0 is refused with 2" '[ $? -eq 2 ] && grep -q "positive integer" "$out/b.err"'
$script --config 'alloc-lifo --threads=4' --out "$out/c" 2>"$out/c.err"
check "--threads in a configuration is refused" \
  '[ $? -eq 2 ] && grep -q "set by this script" "$out/c.err"'
$script --config 'LD_PRELOAD=/no/such.so alloc-lifo' --out "$out/d" 2>"$out/d.err"
check "a missing LD_PRELOAD library is refused" '[ $? -eq 2 ] && grep -q "names no file" "$out/d.err"'
$script --repeats 1 --duration 0.05 --config 'alloc-lifo --no-such-flag' --out "$out/e" \
  >/dev/null 2>"$out/e.err"
check "a failing run exits 1 and says which" '[ $? -eq 1 ] && grep -q "run failed" "$out/e.err"'

[ $failures = 0 ] && echo "scaling_control_smoke: every check passed"
exit $((failures > 0))
