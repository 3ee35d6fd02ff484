#!/usr/bin/python3
"""scripts/plots.py RESULTS_DIR: PNG figures into RESULTS_DIR/plots (prints their paths).
   scripts/plots.py timeline TRACE.json [OUT.png] [--window=START:END]:
       a run's timeline from `heaplab run --trace=TRACE.json --trace-format=chrome`
       (a lane per thread, pauses and GIL waits as bars, RSS below)

The same as `scripts/hlresults.py plots RESULTS_DIR` (and `... timeline`),
which makes every table and figure of heaplab's results; this name is kept
for the command lines that use it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hlresults  # noqa: E402

if sys.argv[1:2] == ["timeline"]:
    sys.exit(hlresults.main(sys.argv[1:]))
sys.exit(hlresults.main(["plots"] + sys.argv[1:]))
