#!/usr/bin/python3
"""scripts/report_ft.py RESULTS_DIR: scripts/bench-ft's tables (Markdown on stdout).

The same as `scripts/hlresults.py ft RESULTS_DIR`, which makes every table
and figure of heaplab's results; this name is kept for the command lines that
use it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hlresults  # noqa: E402

sys.exit(hlresults.main(["ft"] + sys.argv[1:]))
