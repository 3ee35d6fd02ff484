#!/usr/bin/env bash
# scripts/python-under: a configuration it does not know, or one with
# variables it takes none of, exits 2 and names what it accepts; a run of
# a small program under obmalloc and the malloc library writes runs.jsonl
# (the machine and the commit first, then one line per run) and summary.md.
# Usage: python_under.sh SRC BUILD
set -euo pipefail
src=$(realpath "$1")
build=$(realpath "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
pu="$src/scripts/python-under"

rc=0; "$pu" --build "$build" --out "$tmp/bad" --config x=nosuch -- -c 'pass' 2> bad.err || rc=$?
[ "$rc" = 2 ] || fail "unknown kind: exit $rc, expected 2"
grep -q "unknown kind 'nosuch'; accepted: obmalloc, glibc, heaplab" bad.err || fail "message: $(cat bad.err)"
rc=0; "$pu" --build "$build" --out "$tmp/bad" --config obmalloc:X=1 -- -c 'pass' 2> bad.err || rc=$?
[ "$rc" = 2 ] || fail "obmalloc with variables: exit $rc, expected 2"
rc=0; "$pu" --build "$build" --out "$tmp/bad" --config heaplab:FOO=1 -- -c 'pass' 2> bad.err || rc=$?
[ "$rc" = 2 ] || fail "heaplab with a non-HEAPLAB_ variable: exit $rc, expected 2"
grep -q "is not HEAPLAB_NAME=VALUE" bad.err || fail "message: $(cat bad.err)"

if [ ! -f "$build/alloc/libheaplab-malloc.so" ]; then
  echo "SKIP: $build/alloc/libheaplab-malloc.so not built"; exit 0
fi
prog='import json; l = [list(range(i % 7)) for i in range(20000)]; print(json.dumps({"n": len(l)}))'
"$pu" --build "$build" --repeats 1 --out "$tmp/ok" --config obmalloc \
  --config lib=heaplab:HEAPLAB_POOL_REQUEUE=front -- -c "$prog" > ok.out 2> ok.err \
  || fail "run: $(cat ok.err)"
[ "$(wc -l < "$tmp/ok/runs.jsonl")" = 3 ] || fail "runs.jsonl: $(cat "$tmp/ok/runs.jsonl")"
head -1 "$tmp/ok/runs.jsonl" | grep -q '"commit"' || fail "no commit in the first line"
grep -q '"config": "lib".*"HEAPLAB_POOL_REQUEUE": "front"' "$tmp/ok/runs.jsonl" || fail "lib's environment"
grep -q '"n": 20000' "$tmp/ok/runs.jsonl" || fail "the program's figures were not kept"
grep -Eq '^\| lib \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|' "$tmp/ok/summary.md" || fail "summary: $(cat "$tmp/ok/summary.md")"
echo "python-under: ok"
