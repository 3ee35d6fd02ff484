"""Corpus program: a regex-heavy pass over a text (identifier counts,
a substitution with a callback, splits, a search per line).
Usage: regex_text.py TEXT"""
import collections
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()
counts = collections.Counter(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
doubled = re.sub(r"\d+", lambda m: str(int(m.group()) * 2), text)
fields = [re.split(r"[\s(),:=]+", line) for line in text.splitlines()]
defs = [m.group(1) for line in text.splitlines() if (m := re.match(r"\s*def (\w+)\(", line))]
strings = re.findall(r"'[^'\n]*'|\"[^\"\n]*\"", text)
print(len(counts), len(doubled), len(fields), len(defs), len(strings))
