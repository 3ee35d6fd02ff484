"""A heap for heap_capture.py: json.load of a large document, kept alive.

usage: json_load.py [RECORDS]   (default 40000)
The document, generated with a fixed seed and written to a temporary file:
a list of RECORDS records, each a dict of an id, a name, a float score,
a list of 0-7 tags, a nested dict of 3 counters and, one record in four, a
list of 2-5 small dicts of events; about 30 objects a record."""
import json
import os
import random
import sys
import tempfile

n = int(sys.argv[1]) if len(sys.argv) > 1 else 40000
rng = random.Random(25)
words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"]
doc = []
for i in range(n):
    rec = {"id": 100000 + i, "name": "user-%d-%s" % (i, rng.choice(words)),
           "score": rng.random() * 1000,
           "tags": [rng.choice(words) + str(rng.randrange(50)) for _ in range(rng.randrange(8))],
           "counters": {"reads": rng.randrange(10 ** 6), "writes": rng.randrange(10 ** 5),
                        "ratio": rng.random()}}
    if i % 4 == 0:
        rec["events"] = [{"t": rng.randrange(10 ** 9), "kind": rng.choice(words),
                          "ok": rng.random() < 0.9} for _ in range(rng.randrange(2, 6))]
    doc.append(rec)
fd, path = tempfile.mkstemp(suffix=".json")
with os.fdopen(fd, "w") as f:
    json.dump(doc, f)
del doc, rec
with open(path) as f:
    loaded = json.load(f)   # the heap: what json.load made
os.unlink(path)
