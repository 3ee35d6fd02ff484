#!/usr/bin/python3
"""scripts/report.py RESULTS_DIR: scripts/bench's tables (Markdown on stdout; writes RESULTS_DIR/runs.csv).

The same as `scripts/hlresults.py report RESULTS_DIR`, which makes every table
and figure of heaplab's results; this name is kept for the command lines that
use it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hlresults  # noqa: E402

sys.exit(hlresults.main(["report"] + sys.argv[1:]))
