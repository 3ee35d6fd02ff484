#!/usr/bin/python3
"""The instruction count of CPython's young collection on long-lived's probe.

usage: gc_young_instr.py collect|skip

Runs the young part of gc_long_lived.py's probe 20 times: 2000 new records
and 100 self-cycles, then gc.collect(0) ("collect") or nothing ("skip").
The records live on in both, and the process ends with os._exit so that no
collection runs at exit. Under callgrind the difference of the two runs'
instruction counts, divided by 20, is one young collection:

  for m in collect skip; do
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=py-$m.out \\
      /usr/bin/python3 bench/python/gc_young_instr.py $m
  done

heaplab's side, one dump per collection (the probe's young ones last):

  valgrind --tool=callgrind --collect-atstart=no --toggle-collect=hl_gc_collect \\
    --dump-after=hl_gc_collect build/heaplab run long-lived --scale=1 --duration-s=0
"""
import gc
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gc_long_lived import YOUNG_RUNS, young_garbage  # noqa: E402


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("collect", "skip"):
        print("usage: gc_young_instr.py collect|skip", file=sys.stderr)
        sys.exit(2)
    do = sys.argv[1] == "collect"
    gc.disable()
    gc.collect()
    i = 5_000_000
    keep = []
    for _ in range(YOUNG_RUNS):
        tmp, i = young_garbage(i)
        if do:
            gc.collect(0)
        keep.append(tmp)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
