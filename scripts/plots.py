#!/usr/bin/python3
"""scripts/plots.py RESULTS_DIR: PNG figures into RESULTS_DIR/plots (prints their paths).

The same as `scripts/hlresults.py plots RESULTS_DIR`, which makes every table
and figure of heaplab's results; this name is kept for the command lines that
use it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hlresults  # noqa: E402

sys.exit(hlresults.main(["plots"] + sys.argv[1:]))
