"""A heap for heap_capture.py: ast.parse of the largest standard library
files, the trees kept alive.

usage: ast_parse.py [FILES]   (default 8): the FILES largest .py files
under the standard library's directory (not its tests), by size."""
import ast
import os
import sys
import sysconfig

n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
root = sysconfig.get_paths()["stdlib"]
files = []
for d, subdirs, names in os.walk(root):
    subdirs[:] = [s for s in subdirs if s not in ("test", "tests", "idlelib", "site-packages",
                                                  "lib2to3", "__pycache__")]
    files += [os.path.join(d, f) for f in names if f.endswith(".py")]
files.sort(key=lambda p: (-os.path.getsize(p), p))
trees = {}
for p in files[:n]:
    with open(p, "rb") as f:
        trees[os.path.relpath(p, root)] = ast.parse(f.read(), p)
