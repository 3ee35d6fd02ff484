#!/usr/bin/python3
"""heaplab's USDT probes against their one list (base/hl_probe.h, HL_PROBES).

Usage:
  probes_check.py ROOT --markdown
      prints docs/observability.md's table of probes, made from the list
  probes_check.py ROOT --built 0|1 BINARY [--alloc-only LIBRARY]...
      checks, and exits 1 naming what is wrong:
        - every HL_PROBE(name, ...) in the sources names a row of the list,
          with as many arguments as the row has;
        - docs/observability.md holds the table --markdown prints, exactly
          (between its "probes:begin" and "probes:end" markers);
        - with --built 1 (the build found <sys/sdt.h>): `readelf -n BINARY`
          shows every probe of the list, provider heaplab, each site with the
          row's number of arguments, and no probe that the list lacks; each
          LIBRARY (the malloc library) has every probe of the alloc layer.
      With --built 0 the binaries have no probes: after the checks of the
      sources and the doc it exits 77 (CTest: skipped).
Standard library only; needs readelf (binutils).
"""
import os
import re
import subprocess
import sys

ROW = re.compile(r'X\(\s*(\w+)\s*,\s*(\w+)\s*,\s*((?:"[^"]*"\s*)+),\s*((?:"[^"]*"\s*)+)\)')
STRINGS = re.compile(r'"([^"]*)"')
BEGIN, END = "<!-- probes:begin", "<!-- probes:end -->"


def probe_list(root):
    text = open(os.path.join(root, "base", "hl_probe.h")).read()
    start = text.index("#define HL_PROBES(X)")
    body = []
    for line in text[start:].splitlines():
        body.append(line.rstrip("\\").strip())
        if not line.rstrip().endswith("\\"):
            break
    rows = {}
    for m in ROW.finditer(" ".join(body)):
        name, layer = m.group(1), m.group(2)
        args = "".join(STRINGS.findall(m.group(3)))
        when = "".join(STRINGS.findall(m.group(4)))
        rows[name] = {"layer": layer, "args": args, "nargs": len(args.split(",")), "when": when}
    if not rows:
        raise SystemExit("probes_check: no rows in HL_PROBES (base/hl_probe.h)")
    return rows


def markdown(rows):
    out = ["| probe (`sdt_heaplab:NAME`) | layer | arguments (arg0, arg1, ...) | fires when |",
           "| --- | --- | --- | --- |"]
    for name, r in rows.items():
        out.append(f"| `{name}` | {r['layer']} | `{r['args']}` | {r['when']} |")
    return "\n".join(out)


def split_args(s):
    """The top-level comma-separated arguments of a call's text."""
    args, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            args.append(cur)
            cur = ""
        else:
            cur += ch
    args.append(cur)
    return [a.strip() for a in args]


def source_sites(root):
    """(file, name, number of arguments) of every HL_PROBE call."""
    sites = []
    for layer in ("base", "sync", "alloc", "gc", "bench"):
        for dirpath, _, files in os.walk(os.path.join(root, layer)):
            for f in files:
                if not f.endswith(".c"):
                    continue
                path = os.path.join(dirpath, f)
                text = open(path).read()
                for m in re.finditer(r"\bHL_PROBE\(", text):
                    i, depth = m.end(), 1
                    while depth:
                        depth += {"(": 1, ")": -1}.get(text[i], 0)
                        i += 1
                    args = split_args(text[m.end():i - 1])
                    sites.append((os.path.relpath(path, root), args[0], len(args) - 1))
    return sites


def readelf_probes(binary):
    """name -> list of argument counts, one per site, of provider heaplab."""
    p = subprocess.run(["readelf", "-n", binary], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"probes_check: readelf -n {binary}: {p.stderr.strip()}")
    out = p.stdout
    probes, provider, name = {}, None, None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Provider:"):
            provider = line.split(":", 1)[1].strip()
        elif line.startswith("Name:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("Arguments:") and provider == "heaplab":
            spec = line.split(":", 1)[1].split()
            probes.setdefault(name, []).append(len(spec))
    return probes


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = argv[0]
    rows = probe_list(root)
    if argv[1] == "--markdown":
        print(markdown(rows))
        return 0
    built, binary, libs, i = None, None, [], 1
    while i < len(argv):
        if argv[i] == "--built":
            built = argv[i + 1] == "1"
            i += 2
        elif argv[i] == "--alloc-only":
            libs.append(argv[i + 1])
            i += 2
        else:
            binary = argv[i]
            i += 1
    errors = []
    for path, name, n in source_sites(root):
        if name not in rows:
            errors.append(f"{path}: HL_PROBE({name}, ...) is not in HL_PROBES (base/hl_probe.h)")
        elif n != rows[name]["nargs"]:
            errors.append(f"{path}: HL_PROBE({name}, ...) has {n} arguments, its row {rows[name]['nargs']}")
    used = {name for _, name, _ in source_sites(root)}
    for name in rows:
        if name not in used:
            errors.append(f"probe {name} is listed in base/hl_probe.h but no source fires it")
    doc = open(os.path.join(root, "docs", "observability.md")).read()
    if BEGIN not in doc or END not in doc:
        errors.append("docs/observability.md: no probes:begin/probes:end markers")
    else:
        block = doc[doc.index(BEGIN):doc.index(END)].split("\n", 1)[1].strip()
        if block != markdown(rows):
            errors.append("docs/observability.md: the table of probes is not the list of "
                          "base/hl_probe.h; paste the output of "
                          "`tests/probes_check.py . --markdown` between the markers")
    if built:
        found = readelf_probes(binary)
        for name, r in rows.items():
            if name not in found:
                errors.append(f"{binary}: probe heaplab:{name} is missing (readelf -n)")
            elif any(n != r["nargs"] for n in found[name]):
                errors.append(f"{binary}: probe heaplab:{name} has sites with {found[name]} "
                              f"arguments, its row {r['nargs']}")
        for name in found:
            if name not in rows:
                errors.append(f"{binary}: probe heaplab:{name} is not in base/hl_probe.h")
        for lib in libs:
            have = readelf_probes(lib)
            for name, r in rows.items():
                if r["layer"] == "alloc" and name not in have:
                    errors.append(f"{lib}: probe heaplab:{name} is missing (readelf -n)")
    if errors:
        for e in errors:
            print("probes_check: " + e, file=sys.stderr)
        return 1
    if not built:
        print("probes_check: sources and docs agree with base/hl_probe.h; this build has no "
              "probes (no sys/sdt.h: apt-get install systemtap-sdt-dev): skipped")
        return 77
    print(f"probes_check: all {len(rows)} probes of base/hl_probe.h are in {binary}"
          + (f" (alloc's also in {', '.join(libs)})" if libs else "")
          + ", the sources and docs/observability.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
