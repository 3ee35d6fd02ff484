#!/usr/bin/env bash
# heaplab sweep never loses, doubles or hides a run: an interrupted sweep
# leaves no `heaplab run` behind (SIGKILL, SIGTERM, SIGINT of the sweep);
# two sweeps on one OUT are refused.
# Usage: sweep_robust.sh HEAPLAB
set -euo pipefail
heaplab=$(realpath "$1")
tmp=$(mktemp -d)
children() { pgrep -f "$tmp/hl-child run" || true; }
cleanup() { local p; for p in $(children); do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
# the children run as $tmp/hl-child, a name no other process has
ln -s "$heaplab" hl-child
export HEAPLAB_SWEEP_BINARY=$tmp/hl-child
wait_slow() {  # until the slow run runs (5 s at most)
  for _ in $(seq 50); do pgrep -f "$tmp/hl-child run.*--duration-s=30" > /dev/null && return 0; sleep 0.1; done
  fail "the slow run did not start"
}
no_orphan() {  # WHAT: no child left after a moment (3 s at most)
  for _ in $(seq 30); do [ -z "$(children)" ] && return 0; sleep 0.1; done
  fail "$1: heaplab run left behind: $(children | xargs -r ps -o pid,ppid,args -p)"
}

# ---- a quick run, then a slow one: the sweep is stopped during the slow one
cat > slow.sweep <<'EOF2'
workload = malloc-churn
threads = 1
duration-s = 0.05, 30
repeat = 1
EOF2
# SIGKILL of the sweep: nothing can be forwarded, the child dies with it
"$heaplab" sweep slow.sweep --out outk 2> errk &
sp=$!
wait_slow
kill -9 "$sp"
wait "$sp" 2>/dev/null || true
no_orphan "SIGKILL of the sweep"
# SIGTERM and SIGINT: forwarded to the child, waited for; the sweep exits
# 128+signal with the finished run recorded and the interrupted one not
for sig in TERM INT; do
  "$heaplab" sweep slow.sweep --out "out$sig" 2> "err$sig" &
  sp=$!
  wait_slow
  kill -"$sig" "$sp"
  rc=0; wait "$sp" || rc=$?
  want=$((128 + $(kill -l "$sig")))
  [ "$rc" -eq "$want" ] || fail "SIG$sig: the sweep exited $rc, expected $want: $(cat "err$sig")"
  no_orphan "SIG$sig of the sweep"
  [ "$(wc -l < "out$sig/runs.jsonl")" -eq 1 ] || fail "SIG$sig: expected the one finished run recorded"
  grep -q '"status":"ok"' "out$sig/runs.jsonl" || fail "SIG$sig: the finished run is not ok"
  grep -q "stopped by SIG$sig" "err$sig" || fail "SIG$sig: no message: $(cat "err$sig")"
done

# ---- two sweeps on one OUT: the second is refused, nothing recorded twice
"$heaplab" sweep slow.sweep --out outL 2> errL1 &
sp=$!
wait_slow
rc=0; "$heaplab" sweep slow.sweep --out outL 2> errL2 || rc=$?
[ "$rc" -eq 2 ] || fail "a second sweep on one OUT exited $rc, expected 2: $(cat errL2)"
grep -q "another sweep is running on outL" errL2 || fail "no message for a second sweep: $(cat errL2)"
kill -TERM "$sp"; wait "$sp" || true
[ "$(wc -l < outL/runs.jsonl)" -eq 1 ] || fail "two sweeps on one OUT: $(wc -l < outL/runs.jsonl) lines, expected 1"
no_orphan "SIGTERM of the locked sweep"
# the lock goes with its sweep
if command -v flock > /dev/null; then flock -n outL/.lock true || fail "the lock outlived its sweep"; fi

echo "sweep_robust: ok"
