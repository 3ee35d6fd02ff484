#!/usr/bin/env bash
# heaplab sweep never loses, doubles or hides a run: an interrupted sweep
# leaves no `heaplab run` behind (SIGKILL, SIGTERM, SIGINT of the sweep);
# two sweeps on one OUT are refused.
# Usage: sweep_robust.sh HEAPLAB
set -euo pipefail
heaplab=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
for v in $(compgen -e | grep "^HEAPLAB_" || true); do unset "$v"; done   # OUT/env is compared
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

# ---- a resume runs again what failed; the tables count the run once
jq_lines() {  # FILE PYEXPR -> PYEXPR per line (d = the object)
  /usr/bin/python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l); print(eval(sys.argv[2]))' "$1" "$2"
}
cat > flaky <<EOF2
#!/usr/bin/env bash
# threads=2 fails (exit 3), then crashes, until $tmp/healed exists
for a in "\$@"; do
  if [ "\$a" = --threads=2 ] && [ ! -e "$tmp/healed" ]; then
    [ -e "$tmp/failed-once" ] && kill -SEGV \$\$
    touch "$tmp/failed-once"; echo "flaky: failing" >&2; exit 3
  fi
done
exec "$heaplab" "\$@"
EOF2
chmod +x flaky
cat > flaky.sweep <<'EOF2'
workload = malloc-churn
threads = 1, 2
duration-s = 0.02
repeat = 1
EOF2
rc=0; HEAPLAB_SWEEP_BINARY=$tmp/flaky "$heaplab" sweep flaky.sweep --out outF 2> errF1 || rc=$?
[ "$rc" -eq 1 ] || fail "flaky sweep exited $rc, expected 1: $(cat errF1)"
rc=0; HEAPLAB_SWEEP_BINARY=$tmp/flaky "$heaplab" sweep flaky.sweep --out outF 2> errF2 || rc=$?
[ "$rc" -eq 1 ] || fail "resume of a still failing run exited $rc, expected 1: $(cat errF2)"
grep -q "resuming: 1 of 2 runs already done, 1 failed before, to run again" errF2 || fail "resume message: $(cat errF2)"
grep -q "1 runs this time, 1 failed" errF2 || fail "the failed run was not run again: $(cat errF2)"
[ "$(wc -l < outF/runs.csv)" -eq 3 ] || fail "CSV: $(wc -l < outF/runs.csv) lines, expected a header and 2 rows"
grep -q "^2,1,crashed," outF/runs.csv || fail "the CSV row of a failing run is not its last attempt: $(cat outF/runs.csv)"
touch healed
rc=0; HEAPLAB_SWEEP_BINARY=$tmp/flaky "$heaplab" sweep flaky.sweep --out outF 2> errF3 || rc=$?
[ "$rc" -eq 0 ] || fail "the resume that succeeds exited $rc: $(cat errF3)"
st=$(jq_lines outF/runs.jsonl '"%d:%s:%s" % (d["sweep"]["point"], d["sweep"]["status"], d["sweep"].get("attempt", 1))' | tr '\n' ' ')
[ "$st" = "1:ok:1 2:failed:1 2:crashed:2 2:ok:3 " ] || fail "runs.jsonl after the retries: $st"
[ "$(wc -l < outF/runs.csv)" -eq 3 ] && [ "$(grep -c ',ok,' outF/runs.csv)" -eq 2 ] \
  || fail "CSV after the retries: $(cat outF/runs.csv)"
# every reader counts the ok runs alone: two configurations of one run each
/usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import hlresults
runs = hlresults.load_runs(sys.argv[2]); assert len(runs) == 2, runs' "$here/../scripts" outF/runs.jsonl \
  || fail "scripts/hlresults.py counts $(cat outF/runs.jsonl | wc -l) lines"
"$heaplab" compare outF/runs.jsonl outF/runs.jsonl > cmpF 2>&1 || fail "compare: $(cat cmpF)"
[ "$(grep -c '^runs: A 1, B 1 ' cmpF)" -eq 2 ] || fail "heaplab compare counts the failed attempts: $(cat cmpF)"
# nothing left to do: nothing runs, exit 0
rc=0; HEAPLAB_SWEEP_BINARY=$tmp/flaky "$heaplab" sweep flaky.sweep --out outF 2> errF4 || rc=$?
[ "$rc" -eq 0 ] && grep -q "0 runs this time, 0 failed" errF4 || fail "a done sweep: exit $rc, $(cat errF4)"

# ---- runs.csv is rebuilt from runs.jsonl: a cut row does not survive
cp outF/runs.csv full.csv
head -c -20 full.csv > outF/runs.csv
"$heaplab" sweep flaky.sweep --out outF 2> errF5 || fail "resume: $(cat errF5)"
cmp -s full.csv outF/runs.csv || fail "the cut CSV was not rebuilt: $(cat outF/runs.csv)"

# ---- a resume under other HEAPLAB_* variables is refused, naming the variable
"$heaplab" sweep flaky.sweep --out outE 2> errE1 || fail "sweep: $(cat errE1)"
[ -f outE/env ] || fail "no OUT/env"
rc=0; HEAPLAB_ALLOC=system "$heaplab" sweep flaky.sweep --out outE 2> errE2 || rc=$?
[ "$rc" -eq 2 ] || fail "a resume under HEAPLAB_ALLOC=system exited $rc, expected 2: $(cat errE2)"
grep -q "made with HEAPLAB_ALLOC unset, and this sweep has HEAPLAB_ALLOC=system" errE2 \
  || fail "message for another environment: $(cat errE2)"
HEAPLAB_ALLOC=system "$heaplab" sweep flaky.sweep --out outE2 2> errE3 || fail "sweep: $(cat errE3)"
rc=0; "$heaplab" sweep flaky.sweep --out outE2 2> errE4 || rc=$?
[ "$rc" -eq 2 ] && grep -q "made with HEAPLAB_ALLOC=system, and this sweep has HEAPLAB_ALLOC unset" errE4 \
  || fail "a resume without the variable: exit $rc, $(cat errE4)"
[ "$(wc -l < outE2/runs.jsonl)" -eq 2 ] || fail "a refused resume ran something"
# a results directory from before OUT/env still resumes (and adopts this environment)
rm outE/env
"$heaplab" sweep flaky.sweep --out outE 2> errE5 || fail "an old directory did not resume: $(cat errE5)"
[ -f outE/env ] || fail "OUT/env not written on resume"

# ---- --list quotes for the shell: an OUT with a quote and a space, run by bash
q="$tmp/it's here"
"$heaplab" sweep flaky.sweep --out "$q" --list > cmdsQ
[ "$(wc -l < cmdsQ)" -eq 2 ] || fail "--list printed $(wc -l < cmdsQ) commands, expected 2"
while IFS= read -r c; do (cd / && bash -c "$c") || fail "a listed command failed: $c"; done < cmdsQ
[ "$(cat "$q"/run-r1-p*.json | grep -c '"workload":"malloc-churn"')" -eq 2 ] \
  || fail "the listed commands wrote no results in '$q': $(ls -la "$q")"

# (bad numbers and a value with commas: sweep_compare.sh's bad files)
[ ! -e outbad/runs.jsonl ] || fail "a bad sweep file ran something"

echo "sweep_robust: ok"
