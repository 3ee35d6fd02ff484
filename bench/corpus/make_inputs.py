"""The corpus's inputs (scripts/record-corpus), made the same on every run:
a JSON document, a text, a file of lines for sort.
Usage: make_inputs.py DIR [--small]   (--small: a quarter of the sizes)"""
import json
import os
import random
import sys

out = sys.argv[1]
small = "--small" in sys.argv[2:]
rng = random.Random(2026)
words = [w for w in open(os.path.join(os.path.dirname(json.__file__), "..", "this.py")).read().split()
         if w.isalpha()] or ["heap"]


def record(i):
    return {"id": i, "name": " ".join(rng.choice(words) for _ in range(3)),
            "score": rng.random() * 1000, "tags": [rng.choice(words) for _ in range(rng.randrange(6))],
            "nested": {"a": [rng.randrange(1000) for _ in range(rng.randrange(8))],
                       "b": None if i % 3 else {"k": str(i), "v": i * 0.5}}}


with open(os.path.join(out, "doc.json"), "w") as f:
    json.dump({"records": [record(i) for i in range(3000 if small else 12000)]}, f)

# the regex task's text: standard library sources, as they are
lib = os.path.dirname(os.__file__)
with open(os.path.join(out, "text.txt"), "w") as f:
    for name in ("argparse.py", "typing.py", "inspect.py", "pydoc.py", "tarfile.py", "subprocess.py"):
        f.write(open(os.path.join(lib, name), encoding="utf-8").read())

with open(os.path.join(out, "lines.txt"), "w") as f:
    for i in range(75000 if small else 300000):
        f.write("%s %08d %s\n" % (rng.choice(words), rng.randrange(10**8), rng.choice(words)))
