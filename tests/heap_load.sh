#!/usr/bin/env bash
# heap-load end to end (docs/heap-format.md): bench/python/heap_capture.py
# captures a small heap with known cycles (tests/heap/known_graph.py); heaplab
# rebuilds it under every collector built, and its counts per kind must equal
# the file's (the run fails otherwise, and then the result says so too); the
# runner's leak check after the loader drops the graph proves the cycles
# collected (--gc=none: the loader clears the containers first). Then corrupt
# files: each must be refused with exit 2 and a message naming the file and
# what is wrong; so are a missing file, no --input and --threads other than 1.
# usage: heap_load.sh SOURCE_DIR HEAPLAB "GC ..." (or "GC;GC;...")
set -uo pipefail
src=$1
heaplab=$2
gcs=${3//;/ }   # a CMake list or words
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
  if ! "$heaplab" run heap-load --input="$heap" --gc="$gc" >"$tmp/r.json" 2>"$tmp/err"; then
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
# the workload's own options
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
