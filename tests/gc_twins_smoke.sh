#!/usr/bin/env bash
# The collector workloads' Python twins (bench/python/) run under CPython
# and print one JSON line each with the figures heaplab's result sets them
# beside; --smoke sizes. A twin that no longer runs, or whose line lacks a
# field, fails.
# usage: gc_twins_smoke.sh SOURCE_DIR
set -euo pipefail
py=/usr/bin/python3
dir=$1/bench/python
fail=0
for twin in "cyclotron.py --cycle-size=100 --cycle-payload=ints" trash_loop.py gc_collect.py \
            gc_traversal.py "gc_tuning.py gc-cpu --threshold=2000" "gc_tuning.py gc-mem"; do
  # shellcheck disable=SC2086
  if ! line=$($py "$dir"/$twin --smoke); then echo "FAIL $twin: exit status"; fail=1; continue; fi
  if ! $py -c '
import json, sys
r = json.loads(sys.argv[1])
for k in ("python", "workload", "ops", "wall_s", "peak_rss_bytes", "collections", "collected",
          "pause_ns_gen"):
    assert k in r, k
assert r["ops"] > 0 and len(r["collections"]) == 3 and len(r["pause_ns_gen"]) == 3
if r["workload"] == "trash-loop":
    assert r["full_collections"] >= len(r["full_at"])
if r["workload"] in ("gc-cpu", "gc-mem"):
    assert "cpu_s" in r and r["threshold"][1:] == [10, 10]
if r["workload"] == "cyclotron":
    assert r["window_rings"] == 21 and r["ring_containers"] == 200
' "$line"; then echo "FAIL $twin: $line"; fail=1; continue; fi
  echo "ok $twin"
done
exit $fail
