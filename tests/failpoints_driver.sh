#!/usr/bin/env bash
# heaplab run under fault injection (base/hl_failpoint.h): a sample of
# object failpoints of one short workload, counted from hl_runtime_init,
# each failing in turn, and random failures: the run fails cleanly (exit 1,
# "heaplab: run failed: ... out of memory ..."), never with a signal or an
# assertion. mmap failures: the pools fall back to the system allocator, so
# the run succeeds with the unfaulted checksum (or fails cleanly).
# Usage: failpoints_driver.sh HEAPLAB
set -uo pipefail
heaplab=$1
for v in $(compgen -e | grep "^HEAPLAB_" || true); do unset "$v"; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
run() {  # WHAT ENV...: runs churn with ENV; sets rc, out
  local what=$1; shift
  env "$@" timeout 120 "$heaplab" run churn --scale=1 > "$tmp/out" 2> "$tmp/err"
  rc=$?
  out=$(cat "$tmp/out" "$tmp/err")
  echo "$what: exit $rc: $(grep -v '^{' <<< "$out" | tail -1 | cut -c1-160)"
}
sum() { grep -o '"checksum":"[0-9a-f]*"' <<< "$1" | head -1; }
run "no failure"
[ "$rc" = 0 ] || { echo "FAIL: the unfaulted run failed"; exit 1; }
want=$(sum "$out")
for at in 1 2 3 50 700 5000 100000 1000000; do
  run "object failpoint $at" HEAPLAB_FAIL_AT=$at
  if [ "$rc" != 1 ] || ! grep -q "heaplab: run failed: .*out of memory" <<< "$out"; then
    echo "FAIL: HEAPLAB_FAIL_AT=$at: exit $rc, not a clean failure"; bad=1
  fi
done
run "object p=0.0001" HEAPLAB_FAIL_P=0.0001 HEAPLAB_FAIL_SEED=3
[ "$rc" = 1 ] || { echo "FAIL: HEAPLAB_FAIL_P: exit $rc"; bad=1; }
for e in "HEAPLAB_FAIL_AT=1" "HEAPLAB_FAIL_AT=4" "HEAPLAB_FAIL_P=1" "HEAPLAB_FAIL_P=0.5"; do
  run "mmap $e" HEAPLAB_FAIL_KIND=mmap $e
  if [ "$rc" = 0 ]; then
    [ "$(sum "$out")" = "$want" ] || { echo "FAIL: mmap $e: another checksum"; bad=1; }
  elif [ "$rc" != 1 ]; then
    echo "FAIL: mmap $e: exit $rc"; bad=1
  fi
done
run "a bad value" HEAPLAB_FAIL_AT=0
if [ "$rc" = 0 ] || ! grep -q "HEAPLAB_FAIL_AT=0" <<< "$out"; then
  echo "FAIL: HEAPLAB_FAIL_AT=0 was not refused by name"; bad=1
fi
exit $bad
