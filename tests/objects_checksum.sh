#!/usr/bin/env bash
# Object workloads compute the same checksum in every mode: the free lists,
# immortality, the allocator and its thread caches, the collector and its
# settings, the refcount mode change how objects are made and freed, never
# what the program computes (one thread: shared and prodcons too). Each run also passes the
# runner's leak check (exit 1 otherwise).
# usage: objects_checksum.sh PATH/heaplab
set -euo pipefail
heaplab=$1
# (the collector's settings too: what a program computes never depends on them)
modes=("--alloc=pool --freelists=on --immortal=off"
       "--alloc=pool --freelists=off --immortal=on --gc=none"
       "--alloc=pool --tcache=heap --freelists=on --immortal=on --threshold=10000,10,10"
       "--alloc=system --freelists=off --immortal=off --gc-untrack=off"
       "--rc=atomic --gc=none --freelists=on --immortal=off"
       "--rc=biased --gc=none --tcache=heap --freelists=on --immortal=on"
       "--rc=biased --gc=none --alloc=system --freelists=off --immortal=off")
fail=0
for wl in binary-trees binary-trees-inst churn cycles gc-cpu gc-mem long-lived shared prodcons \
          cyclotron trash-loop gc-collect gc-traversal; do
  first=
  for m in "${modes[@]}"; do
    # --gc=none leaks the cyclic garbage by design (the runner counts it):
    # LeakSanitizer, where built in, is told not to look
    asan=${ASAN_OPTIONS:-}
    case "$m" in *--gc=none*) asan="$asan detect_leaks=0" ;; esac
    # shellcheck disable=SC2086
    sum=$(ASAN_OPTIONS="$asan" "$heaplab" run "$wl" $m --scale=1 --seed=7 2>/dev/null |
          sed -n 's/.*"checksum":"\([0-9a-f]*\)".*/\1/p')
    if [ -z "$sum" ]; then echo "FAIL $wl $m: no result"; fail=1; continue; fi
    echo "$wl $m: $sum"
    if [ -z "$first" ]; then first=$sum
    elif [ "$sum" != "$first" ]; then echo "FAIL $wl $m: checksum $sum, first mode gave $first"; fail=1; fi
  done
done
# binary-trees and binary-trees-inst count the same nodes
exit $fail
