#!/usr/bin/env bash
# HEAPLAB_STATS=1 (text) and HEAPLAB_STATS=json under libheaplab-malloc.so,
# on stderr and into HEAPLAB_STATS_FILE, in each tcache mode, checked
# against the heap tests/preload_stats_prog.c leaves at exit; a bad value
# is reported and prints nothing. The JSON is parsed with Debian's python3.
# Usage: preload_stats.sh LIB PROG
set -u
lib=$1 prog=$2
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
show() { sed 's/^/    /' "$tmp/$1.err"; }
# run NAME VAR=VALUE...: the program under the library, stderr in NAME.err
run() {
  local name=$1
  shift
  env "$@" LD_PRELOAD="$lib" "$prog" >"$tmp/$name.out" 2>"$tmp/$name.err" ||
    fail "$name: exit status $?"
  grep -q '^preload_stats_prog: done' "$tmp/$name.out" || fail "$name: the program did not finish"
}

# Checks one JSON document against the program's heap. check_json FILE MODE
check_json() {
  "$py" - "$1" "$2" <<'EOF'
import json, sys
path, mode = sys.argv[1], sys.argv[2]
with open(path) as f:
    text = f.read()
d = json.loads(text)          # exactly one object: trailing text is an error
def need(cond, what):
    if not cond:
        sys.exit(f"{path}: {what}")
need(d.get("format") == "heaplab-malloc-stats/1", "no format heaplab-malloc-stats/1")
for k in ("pid", "libc_requests", "geometry", "classes", "totals", "tcache"):
    need(k in d, f"no {k}")
g, t, classes = d["geometry"], d["totals"], d["classes"]
need(g["threshold"] == 512 and g["alignment"] == 16, f"not the modern geometry: {g}")
by_size = {c["size"]: c for c in classes}
need(32 in by_size and by_size[32]["blocks_in_use"] >= 1000, "class 32: fewer than 1000 blocks in use")
need(304 in by_size and by_size[304]["blocks_in_use"] >= 10, "class 304: fewer than 10 blocks in use")
need(112 in by_size and by_size[112]["blocks_in_use"] >= 150, "class 112: fewer than 150 blocks in use (3 threads x 50)")
for c in classes:
    need(c["bytes_in_use"] == c["blocks_in_use"] * c["size"], f"class {c['class']}: bytes_in_use")
    need(c["free_bytes"] == c["free_blocks"] * c["size"], f"class {c['class']}: free_bytes")
    need(c["pools"] >= 1 and 1 <= c["arenas"] <= t["arenas_current"], f"class {c['class']}: pools/arenas")
    need(c["tcache_blocks"] <= c["blocks_in_use"], f"class {c['class']}: tcache_blocks")
need(sum(c["blocks_in_use"] for c in classes) == t["blocks_in_use"], "classes' blocks_in_use do not add up to the total")
need(sum(c["bytes_in_use"] for c in classes) == t["bytes_in_use"], "classes' bytes_in_use do not add up to the total")
need(sum(c["pools"] for c in classes) == t["pools_used"], "classes' pools do not add up to pools_used")
need(sum(c["tcache_blocks"] for c in classes) == t["tcache_blocks"], "classes' tcache_blocks do not add up")
tc = d["tcache"]
need(tc["mode"] == mode, f"tcache.mode {tc['mode']}, expected {mode}")
need(tc["listed"] == len(tc["caches"]), "tcache.listed is not the number of caches")
caches = tc["caches"]
if mode in ("heap", "heap-magazine"):
    need(len(caches) == t["heaps"] and len(caches) >= 1, "not one cache per heap")
    need(all(c["state"] in ("owned", "abandoned", "spare") for c in caches), "a heap's state")
    need(sum(c["state"] == "abandoned" for c in caches) == t["heaps_abandoned"], "abandoned heaps")
    need(sum(c["blocks_in_use"] for c in caches) == t["blocks_in_use"], "heaps' blocks_in_use do not add up")
    need(sum(c["pools"] for c in caches) == t["pools_used"], "heaps' pools do not add up")
    need(sum(c["remote_pending"] for c in caches) == t["remote_pending"], "heaps' remote_pending")
elif mode == "magazine":
    need(len(caches) == t["tcache_threads"] and all(c["state"] == "thread" for c in caches), "not one cache per thread")
    need(sum(c["free_blocks"] for c in caches) == t["tcache_blocks"], "magazines' blocks do not add up")
    need(sum(c["free_bytes"] for c in caches) == t["tcache_bytes"], "magazines' bytes do not add up")
else:
    need(caches == [], "caches listed with tcache=none")
EOF
}

# 1. text on stderr, tcache=heap-magazine (the library's default)
run text HEAPLAB_STATS=1
e=$tmp/text.err
grep -q '^heaplab-malloc: statistics of process [0-9]* at exit$' "$e" || fail "text: no first line"
grep -q '^heaplab pool allocator: alignment 16, threshold 512, ' "$e" || fail "text: no geometry line"
grep -q '^class   size   num pools   arenas   blocks in use  avail blocks    bytes in use     bytes avail   in tcaches$' "$e" ||
  fail "text: the class table's header changed"
# the 32-byte class: at least 1000 blocks in use, bytes = blocks x 32
awk '$2 == 32 && $5 >= 1000 && $7 == $5 * 32 { ok = 1 } END { exit !ok }' "$e" ||
  { fail "text: no row for size 32 with 1000 blocks and their bytes"; show text; }
awk '$1 == "total" && $4 >= 1160 { ok = 1 } END { exit !ok }' "$e" || fail "text: no total row"
grep -q '^blocks_in_use *= *[0-9]' "$e" || fail "text: no blocks_in_use total"
grep -q '^thread caches (tcache=heap-magazine): [1-9][0-9]* listed$' "$e" || fail "text: no thread caches"
grep -qE '^ +[0-9]+  (owned|abandoned|spare) ' "$e" || fail "text: no heap listed"
grep -q '^libc_requests' "$e" || fail "text: no libc_requests"
[ "$(grep -c '^heaplab-malloc: ' "$e")" = 1 ] || fail "text: other lines from the library"

# 2. JSON on stderr, each tcache mode
for mode in heap heap-magazine magazine none; do
  run "json_$mode" HEAPLAB_STATS=json HEAPLAB_TCACHE=$mode
  check_json "$tmp/json_$mode.err" $mode || { fail "json, tcache=$mode"; show "json_$mode"; }
done
# HEAPLAB_ALLOC_STATS=on alone: text; with HEAPLAB_STATS=json: JSON
run alloc_stats HEAPLAB_ALLOC_STATS=on HEAPLAB_STATS=json
check_json "$tmp/alloc_stats.err" heap-magazine || fail "HEAPLAB_ALLOC_STATS=on HEAPLAB_STATS=json: not JSON"

# 3. HEAPLAB_STATS_FILE: the JSON into a new file, nothing on stderr
run file HEAPLAB_STATS=json HEAPLAB_STATS_FILE="$tmp/stats.json"
[ -s "$tmp/file.err" ] && { fail "HEAPLAB_STATS_FILE: stderr is not empty"; show file; }
check_json "$tmp/stats.json" heap-magazine || fail "HEAPLAB_STATS_FILE: not one JSON object in the file"

# 4. a bad value: one warning naming variable, value and accepted values;
# no statistics; the program runs
run bad HEAPLAB_STATS=yaml
grep -q "^heaplab-malloc: environment variable HEAPLAB_STATS: invalid value 'yaml'; accepted: 1, on, yes, true (text), json, 0, off, no, false; ignored$" \
  "$tmp/bad.err" || { fail "HEAPLAB_STATS=yaml: no warning"; show bad; }
[ "$(wc -l < "$tmp/bad.err")" = 1 ] || { fail "HEAPLAB_STATS=yaml: more than the warning"; show bad; }
run off HEAPLAB_STATS=0
[ -s "$tmp/off.err" ] && { fail "HEAPLAB_STATS=0: something printed"; show off; }

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "preload_stats: ok"
