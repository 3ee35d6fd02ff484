"""A heap for heap_capture.py: every standard library module imported.

sys.stdlib_module_names, sorted, each imported (its submodules too where it
is a package: importlib walks them), except those that open windows, start
browsers, print or exit on import, or are private; a module that fails to
import (a missing optional C library) is skipped. What they leave is the
heap: the modules, their functions, classes, constants and caches."""
import importlib
import pkgutil
import sys

SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "__main__",
        "lib2to3", "ensurepip", "venv", "pydoc_data", "test", "xxlimited", "xxlimited_35",
        "xxsubtype", "_xxtestfuzz", "_testcapi", "_testinternalcapi", "_testbuffer",
        "_testimportmultiple", "_testmultiphase", "_ctypes_test", "_testclinic"}

imported, failed = [], []


def want(name):
    return name.split(".")[0] not in SKIP and not any(
        p.startswith("_") and p not in ("__init__",) for p in name.split(".")[1:])


for name in sorted(sys.stdlib_module_names):
    if name in SKIP:
        continue
    try:
        mod = importlib.import_module(name)
        imported.append(name)
    except BaseException:   # a module that exits or lacks its C library
        failed.append(name)
        continue
    for info in pkgutil.walk_packages(getattr(mod, "__path__", []) or [], name + ".",
                                      onerror=lambda n: None):
        if not want(info.name) or "test" in info.name.split("."):
            continue
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except BaseException:
            failed.append(info.name)
