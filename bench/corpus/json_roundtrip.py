"""Corpus program: a JSON round trip of a large document (load, dump,
load again, compare). Usage: json_roundtrip.py DOC.json"""
import json
import sys

doc = json.load(open(sys.argv[1]))
for _ in range(2):
    text = json.dumps(doc, sort_keys=True)
    again = json.loads(text)
    assert again == doc
print(len(text))
