#!/usr/bin/env bash
# Record and replay end to end (docs/trace-format.md): `heaplab record`
# records tests/trace_prog.c (two threads, cross-thread frees) with
# libheaplab-trace.so; the trace must hold the operations the program says
# it made (realloc, free and aligned ones exactly; malloc and calloc plus
# the few glibc makes itself: stdout's buffer, the thread's TLS), and every
# cross-thread free. The replay under each allocator given must replay every
# recorded operation (ops = records - frees of blocks from before recording)
# with the same checksum. A program that forks and execs records only its
# own process, completely; one that leaves through _exit leaves an
# incomplete trace, which record reports. Then bad input: --threads other than the trace's,
# no --input, a missing file, and corrupt traces (bad magic, bad version,
# truncated in a chunk, without its end chunk, garbage in a chunk, garbage
# after the end), each refused with exit 2 and a message saying what is wrong;
# and 60 seeded mutations, none of which may crash the reader.
# usage: trace_replay.sh HEAPLAB LIBHEAPLAB_TRACE TRACE_PROG "ALLOC ..."
set -uo pipefail
heaplab=$1
lib=$2
prog=$3
allocs=${4//;/ }
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
tr=$tmp/p.trace
if ! "$heaplab" record -o "$tr" --lib "$lib" -- "$prog" >"$tmp/made.json" 2>"$tmp/err"; then
  echo "FAIL heaplab record: $(cat "$tmp/err")"
  exit 1
fi
grep -q "in 2 threads" "$tmp/err" || { echo "FAIL record's line: $(cat "$tmp/err")"; fail=1; }
sums=""
for a in $allocs; do
  if ! "$heaplab" run replay --input="$tr" --threads=2 --alloc="$a" >"$tmp/r.json" 2>"$tmp/err"; then
    echo "FAIL replay --alloc=$a: $(cat "$tmp/err")"
    fail=1
    continue
  fi
  if ! $py - "$tmp/r.json" "$tmp/made.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
made = json.load(open(sys.argv[2]))
e = r["extra"]
rec = e["recorded_ops"]
for k in ("realloc", "free", "memalign"):
    assert rec[k] == made[k], (k, rec[k], made[k])
for k in ("malloc", "calloc"):
    assert made[k] <= rec[k] <= made[k] + 8, (k, rec[k], made[k])
assert e["records"] == sum(rec.values())
assert r["ops"] == e["records"] - e["unmatched_frees"], (r["ops"], e)
assert e["unmatched_reallocs"] == 0 and e["stale_blocks"] == 0, e
assert made["cross_thread_frees"] <= e["cross_thread"] <= made["cross_thread_frees"] + 8, e
assert e["peak_live_bytes"] > 0 and r["peak_rss_bytes"] > 0
PY
  then echo "FAIL replay --alloc=$a: $(head -c 3000 "$tmp/r.json")"; fail=1; continue; fi
  s=$($py -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ops"], r["checksum"])' "$tmp/r.json")
  echo "ok replay --alloc=$a: ops and checksum $s"
  sums="$sums$s"$'\n'
done
if [ "$(printf '%s' "$sums" | sort -u | wc -l)" -gt 1 ]; then
  echo "FAIL the replays disagree on ops or checksum:"; printf '%s' "$sums"; fail=1
fi

# fork: the child stops recording and never writes the parent's file; a
# program the recorded one runs (exec) does not record; the trace stays
# complete and replays
fk=$tmp/fork.trace
if ! PYTHONMALLOC=malloc "$heaplab" record -o "$fk" --lib "$lib" -- $py -c '
import os, subprocess
keep = [str(i) * 3 for i in range(20000)]
pid = os.fork()
if pid == 0:
    junk = [dict(a=i) for i in range(20000)]
    os._exit(0)
os.waitpid(pid, 0)
subprocess.run(["/bin/true"], check=True)
print(len(keep))' >/dev/null 2>"$tmp/err"; then
  echo "FAIL record with fork and exec: $(cat "$tmp/err")"; fail=1
elif ! "$heaplab" run replay --input="$fk" --threads=1 >"$tmp/f.json" 2>"$tmp/err"; then
  echo "FAIL replay of the fork trace: $(cat "$tmp/err")"; fail=1
elif [ -n "$(ls "$tmp" | grep -v -e '^fork.trace$' -e '^p.trace$' -e '\.json$' -e '^err$')" ]; then
  echo "FAIL a child wrote a trace of its own: $(ls "$tmp")"; fail=1
else
  echo "ok record with fork and exec"
fi
# a program that leaves through _exit runs no destructor: no end chunk,
# which record reports (exit 1) and replay refuses (exit 2)
"$heaplab" record -o "$tmp/exit.trace" --lib "$lib" -- $py -c 'import os; os._exit(0)' \
  >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -ne 1 ] || ! grep -q "incomplete" "$tmp/err"; then
  echo "FAIL record of a program that _exits: exit $rc, wanted 1 and 'incomplete': $(cat "$tmp/err")"
  fail=1
else
  echo "ok record of a program that _exits: $(cat "$tmp/err")"
fi
"$heaplab" record -o "$tmp/x.trace" >/dev/null 2>&1
[ $? -eq 2 ] || { echo "FAIL record without a program: wanted exit 2"; fail=1; }

bad() {   # name pattern file [args]
  local name=$1 pat=$2 file=$3; shift 3
  "$heaplab" run replay --input="$file" "$@" >/dev/null 2>"$tmp/err"
  local rc=$?
  if [ $rc -ne 2 ] || ! grep -q -- "$pat" "$tmp/err"; then
    echo "FAIL $name: exit $rc, wanted 2 and '$pat': $(cat "$tmp/err")"
    fail=1
  else
    echo "ok $name: $(head -c 200 "$tmp/err")"
  fi
}
size=$(stat -c %s "$tr")
bad "threads" "accepted: --threads=2" "$tr" --threads=1
bad "missing file" "cannot open" "$tmp/none.trace" --threads=2
"$heaplab" run replay >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -ne 2 ] || ! grep -q -- "--input" "$tmp/err"; then echo "FAIL no --input: exit $rc"; fail=1; fi
{ printf 'NOTTRACE'; tail -c +9 "$tr"; } >"$tmp/magic.trace"
bad "bad magic" "bad magic" "$tmp/magic.trace" --threads=2
{ head -c 8 "$tr"; printf '\x09\x00\x00\x00'; tail -c +13 "$tr"; } >"$tmp/version.trace"
bad "bad version" "version 9" "$tmp/version.trace" --threads=2
head -c $((size / 2)) "$tr" >"$tmp/half.trace"
bad "truncated in a chunk" "truncated" "$tmp/half.trace" --threads=2
head -c $((size - 56)) "$tr" >"$tmp/noend.trace"
bad "no end chunk" "no end chunk" "$tmp/noend.trace" --threads=2
head -c 32 "$tr" >"$tmp/header.trace"
bad "header only" "truncated" "$tmp/header.trace" --threads=2
# garbage in the middle: 16 bytes overwritten inside the first ops chunk's
# payload (it starts after the header, the program chunk and a chunk header)
off=$($py -c '
import struct, sys
d = open(sys.argv[1], "rb").read()
o = 32
while True:
    kind, stored = d[o + 4], struct.unpack_from("<I", d, o + 20)[0]
    if kind == 1:
        print(o + 24 + stored // 2); break
    o += 24 + stored' "$tr")
cp "$tr" "$tmp/garbage.trace"
printf 'GARBAGEGARBAGE!!' | dd of="$tmp/garbage.trace" bs=1 seek="$off" conv=notrunc status=none
bad "garbage in a chunk" "corrupt" "$tmp/garbage.trace" --threads=2
# a chunk header overwritten
cp "$tr" "$tmp/hdr.trace"
printf 'XXXX' | dd of="$tmp/hdr.trace" bs=1 seek=$((32 + 24 + $($py -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(), 52)[0])' "$tr"))) conv=notrunc status=none
bad "garbage over a chunk header" "no chunk header" "$tmp/hdr.trace" --threads=2
{ cat "$tr"; printf 'trailing'; } >"$tmp/trailing.trace"
bad "bytes after the end" "after the end chunk" "$tmp/trailing.trace" --threads=2
# 60 seeded mutations of the trace (a bit flipped, bytes overwritten, the
# file cut anywhere): each is replayed or refused with exit 2, never a crash
if ! $py - "$heaplab" "$tr" "$tmp/mut.trace" <<'PY'
import random, subprocess, sys
heaplab, src, dst = sys.argv[1:4]
base = open(src, "rb").read()
rng = random.Random(25)
bad = 0
for k in range(60):
    d = bytearray(base)
    o = rng.randrange(len(d))
    if k % 3 == 0:
        d[o] ^= 1 << rng.randrange(8)
    elif k % 3 == 1:
        for i in range(o, min(o + rng.randrange(1, 8), len(d))):
            d[i] = rng.randrange(256)
    else:
        d = d[:o]
    open(dst, "wb").write(d)
    r = subprocess.run([heaplab, "run", "replay", "--input=" + dst, "--threads=2"],
                       capture_output=True)
    if r.returncode not in (0, 2):
        bad += 1
        print("mutation %d (offset %d): exit %d: %s" % (k, o, r.returncode, r.stderr[-800:]))
sys.exit(1 if bad else 0)
PY
then fail=1; else echo "ok 60 mutated traces: replayed or refused with exit 2"; fi
exit $fail
