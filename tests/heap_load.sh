#!/usr/bin/env bash
# heap-load end to end (docs/heap-format.md): bench/python/heap_capture.py
# captures a small heap with known cycles (tests/heap/known_graph.py); heaplab
# rebuilds it under every collector built, and its counts per kind must equal
# the file's (the run fails otherwise, and then the result says so too); the
# runner's leak check after the loader drops the graph proves the cycles
# collected (--gc=none: the loader clears the containers first). Then corrupt
# files: each must be refused with exit 2 and a message naming the file and
# what is wrong; so are a missing file, no --input and --threads other than 1.
# usage: heap_load.sh SOURCE_DIR HEAPLAB "GC ..." "GC:RC ..." (or CMake lists):
# the collectors, and the refcount modes each runs with (the concurrent
# collector refuses rc=gil); a collector runs in its first one
set -uo pipefail
src=$1
heaplab=$2
gcs=${3//;/ }   # a CMake list or words
pairs=" ${4//;/ } "
runs_with() { [[ "$pairs" == *" $1:$2 "* ]]; }
first_rc() { for rc in gil atomic biased; do runs_with "$1" "$rc" && { echo "$rc"; return; }; done; }
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
heap=$tmp/known.heap
if ! $py "$src/bench/python/heap_capture.py" -o "$heap" --repeats 1 "$src/tests/heap/known_graph.py"; then
  echo "FAIL heap_capture.py"
  exit 1
fi
for gc in $gcs; do
  if ! "$heaplab" run heap-load --input="$heap" --gc="$gc" --rc="$(first_rc "$gc")" \
      >"$tmp/r.json" 2>"$tmp/err"; then
    echo "FAIL heap-load --gc=$gc: $(cat "$tmp/err")"
    fail=1
    continue
  fi
  if ! $py - "$tmp/r.json" "$heap" "$gc" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
e = r["extra"]
assert e["counts_equal"] is True, e
assert e["file"] == e["loaded"], (e["file"], e["loaded"])
with open(sys.argv[2]) as f:
    f.readline()
    objects, edges = int(f.readline().split()[1]), 0
    meta = json.loads(f.readline()[5:])
assert e["file"]["objects"] == objects == r["ops"], (e["file"]["objects"], objects, r["ops"])
assert e["file"]["edges"] == meta["edges"]
kinds = {"int": "i", "float": "f", "str": "s", "tuple": "t", "list": "l", "dict": "d",
         "instance": "o", "other": "x"}
for name, letter in kinds.items():
    assert e["file"]["objects_per_kind"][name] == meta["counts"][letter], name
# the known graph: 50 Node instances at least, the list that holds itself
assert e["loaded"]["objects_per_kind"]["instance"] >= 50
assert e["cpython"]["full_runs"] == 1 and e["cpython"]["tracked_objects"] > 0
if sys.argv[3] != "none":
    assert r["gc"]["full_runs"] > 0 and r["gc"]["full_objects"] > 0
PY
  then echo "FAIL heap-load --gc=$gc: $(head -c 2000 "$tmp/r.json")"; fail=1; continue; fi
  echo "ok heap-load --gc=$gc"
done

# --churn (docs/heap-format.md, "--churn"): every collector built under every
# refcount mode, one seed: the same checksum everywhere (the walks see only
# what is reachable, so no collector's timing may change a choice), the
# rates taken from the file's "mutation" object, the rounds' work done, the
# garbage copies' cycles collected (or, with --gc=none, left allocated and
# counted); a second seed gives another checksum.
sums=$tmp/sums
: >"$sums"
for gc in $gcs; do
  for rc in gil atomic biased; do
    runs_with "$gc" "$rc" || continue
    # --gc=none leaks the churn's cyclic garbage by design: the runner checks
    # that exactly the objects counted are left, LeakSanitizer would report
    # the part in malloc'd blocks (tests/CMakeLists.txt, HL_ASAN_OPTIONS_GC_NONE)
    asan=${ASAN_OPTIONS-}
    [ "$gc" = none ] && asan="${ASAN_OPTIONS-} detect_leaks=0"   # the last one wins
    if ! ASAN_OPTIONS=$asan "$heaplab" run heap-load --input="$heap" --gc="$gc" --rc="$rc" \
        --churn=6 --seed=7 >"$tmp/c.json" 2>"$tmp/err"; then
      echo "FAIL heap-load --churn=6 --gc=$gc --rc=$rc: $(cat "$tmp/err")"
      fail=1
      continue
    fi
    if ! $py - "$tmp/c.json" "$heap" "$gc" >>"$sums" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["extra"]["churn"]
with open(sys.argv[2]) as f:
    f.readline(); f.readline()
    m = json.loads(f.readline()[5:])["mutation"]
assert sum(m["collected"]) > 0 and m["young_intervals"] > 0, m   # known_graph.py's pairs
rt = c["rates"]
assert rt["from_file"] is True, rt
assert rt["allocs_per_round"] == rt["edges_per_round"] == m["threshold"][0], rt
want = min(m["threshold"][0], (sum(m["collected"]) + m["young_intervals"] // 2) // m["young_intervals"])
assert rt["garbage_per_round"] == want, (rt, want)
assert c["rounds"] == 6
assert c["edges_replaced"] + c["edges_missed"] == 6 * rt["edges_per_round"], c
assert c["edges_replaced"] > 0 and c["rebuilt"] > 0, c
# the known graph holds cycles of data (the ring, the list in itself): every
# round's garbage budget is met with copies of them
assert c["garbage_missed"] == 0 and c["garbage_containers"] >= 6 * rt["garbage_per_round"], c
assert 0 < c["garbage_cyclic"] <= c["garbage_containers"], c
assert r["ops"] == c["edges_replaced"] + c["rebuilt"] + c["garbage_made"], (r["ops"], c)
assert c["live_objects"] > 0 and c["roots"] > 0, c
if sys.argv[3] == "none":
    assert c["leaked"] >= c["garbage_cyclic"], c
    assert r["objects"]["cyclic_garbage_objects"] == c["leaked"], r["objects"]
else:
    # the dropped copies' cycles: collected during the churn or by the
    # runner's last collection (whether a time-budgeted increment reached
    # them within 6 rounds is the machine's business), never leaked
    assert c["leaked"] == 0 and r["objects"]["leaked_objects"] == 0, (c, r["objects"])
    assert r["gc"]["backlog"]["noted"] == c["garbage_cyclic"], (r["gc"]["backlog"], c)
print(r["checksum"])
PY
    then echo "FAIL heap-load --churn=6 --gc=$gc --rc=$rc: $(head -c 3000 "$tmp/c.json")"; fail=1; continue; fi
    echo "ok heap-load --churn=6 --gc=$gc --rc=$rc: checksum $(tail -n 1 "$sums")"
  done
done
if [ "$(sort -u "$sums" | wc -l)" -ne 1 ]; then
  echo "FAIL --churn: checksums differ between modes: $(sort "$sums" | uniq -c | tr '\n' ' ')"
  fail=1
fi
other=$("$heaplab" run heap-load --input="$heap" --churn=6 --seed=8 2>/dev/null |
  $py -c 'import json, sys; print(json.load(sys.stdin)["checksum"])')
if [ -z "$other" ] || [ "$other" = "$(head -n 1 "$sums")" ]; then
  echo "FAIL --churn --seed=8: checksum '$other', as --seed=7's"
  fail=1
fi
# a file without rates (written before heap_capture.py recorded them) loads
# and churns at the documented defaults
$py - "$heap" "$tmp/old.heap" <<'PY'
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as g:
    for n, line in enumerate(f):
        if n == 2:
            meta = json.loads(line[5:])
            del meta["mutation"]
            line = "meta " + json.dumps(meta) + "\n"
        g.write(line)
PY
if ! "$heaplab" run heap-load --input="$tmp/old.heap" --churn=2 >"$tmp/c.json" 2>"$tmp/err" ||
   ! $py -c '
import json, sys
rt = json.load(open(sys.argv[1]))["extra"]["churn"]["rates"]
assert rt["from_file"] is False and rt["source"].startswith("default"), rt
assert (rt["allocs_per_round"], rt["garbage_per_round"], rt["edges_per_round"]) == (700, 70, 700), rt
' "$tmp/c.json"; then
  echo "FAIL --churn on a file without rates: $(cat "$tmp/err") $(head -c 2000 "$tmp/c.json")"
  fail=1
else
  echo "ok --churn on a file without rates: default rates"
fi

# corrupt inputs: NAME, what the message must hold, and the file
n=$(wc -l <"$heap")
bad() {   # name pattern file
  "$heaplab" run heap-load --input="$3" >/dev/null 2>"$tmp/err"
  local rc=$?
  if [ $rc -ne 2 ] || ! grep -q -- "$3" "$tmp/err" || ! grep -qE -- "$2" "$tmp/err"; then
    echo "FAIL $1: exit $rc, $(cat "$tmp/err")"
    fail=1
  else
    echo "ok $1: $(cat "$tmp/err")"
  fi
}
head -n $((n - 10)) "$heap" >"$tmp/truncated.heap"
bad truncated "truncated after line $((n - 10))" "$tmp/truncated.heap"
head -c $(( $(stat -c %s "$heap") - 7 )) "$heap" >"$tmp/cut.heap"
bad cut-mid-record ":$((n - 1)): |truncated" "$tmp/cut.heap"
awk 'NR == 10 { $2 = "q" } { print }' "$heap" >"$tmp/kind.heap"
bad bad-kind ":10: record 6: bad kind 'q" "$tmp/kind.heap"
awk -v big=99999999 'NR > 3 && $4 > 0 && !done { $5 = big; done = NR } { print }' "$heap" >"$tmp/edge.heap"
bad edge-out-of-range "edge 1 is not -1 or an id below" "$tmp/edge.heap"
awk 'NR > 3 && $4 > 1 && !done { NF = NF - 1; done = NR } { print }' "$heap" >"$tmp/short.heap"
bad missing-edge "edges of" "$tmp/short.heap"
awk 'NR == 12 { $1 = 3 } { print }' "$heap" >"$tmp/order.heap"
bad out-of-order ":12: expected record 8" "$tmp/order.heap"
sed '1s/.*/heaplab-heap 9/' "$heap" >"$tmp/version.heap"
bad version ":1: format version 9" "$tmp/version.heap"
sed '2s/edges [0-9]*/edges 1/' "$heap" >"$tmp/count.heap"
bad edge-count ":2: the header says 1 edges" "$tmp/count.heap"
sed '3s/.*/meta not json/' "$heap" >"$tmp/meta.heap"
bad meta ":3: the meta line is not a JSON object" "$tmp/meta.heap"
bad missing-file "cannot open" "$tmp/no-such.heap"
sed '3s/"collected": \[[0-9]*, /"collected": [-4, /' "$heap" >"$tmp/mutation.heap"
bad mutation-section ':3: meta "mutation" .collected. is not 3 non-negative integers' "$tmp/mutation.heap"
sed '3s/"young_intervals": [0-9]*/"young_intervals": 12345/' "$heap" >"$tmp/intervals.heap"
bad mutation-intervals ":3: meta \"mutation\" 'young_intervals' is not the sum" "$tmp/intervals.heap"
# the workload's own options
for args in "--input=$heap --churn=many" "--input=$heap --churn=-3"; do
  # shellcheck disable=SC2086
  "$heaplab" run heap-load $args >/dev/null 2>"$tmp/err"
  rc=$?
  if [ $rc -ne 2 ] || ! grep -q "option 'churn'" "$tmp/err" ||
     ! grep -q "accepted: an integer in 0\.\." "$tmp/err"; then
    echo "FAIL heap-load $args: exit $rc, $(cat "$tmp/err")"
    fail=1
  else
    echo "ok heap-load $args: $(cat "$tmp/err")"
  fi
done
for args in "" "--input=$heap --threads=2"; do
  # shellcheck disable=SC2086
  "$heaplab" run heap-load $args >/dev/null 2>"$tmp/err"
  rc=$?
  if [ $rc -ne 2 ] || ! grep -qE "option '(input|threads)'" "$tmp/err"; then
    echo "FAIL heap-load $args: exit $rc, $(cat "$tmp/err")"
    fail=1
  else
    echo "ok heap-load $args: $(cat "$tmp/err")"
  fi
done
exit $fail
