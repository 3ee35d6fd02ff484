#!/bin/bash
# --alloc=jemalloc without the glibc tunable that reserves static TLS: the
# driver starts itself again with it (bench/main.c) and runs; a tunable
# already set that reserves too little is reported (exit 2), never a loop.
# Usage: peer_restart.sh HEAPLAB. Skipped (77) without libjemalloc.so.2.
set -u
heaplab=$1
if ! /sbin/ldconfig -p | grep -q 'libjemalloc\.so\.2 '; then
  echo "libjemalloc.so.2 not installed: skipped"; exit 77
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; cat "$tmp/err"; exit 1; }

env -u GLIBC_TUNABLES "$heaplab" run malloc-churn --alloc=jemalloc --duration-s=0.05 \
  >"$tmp/out" 2>"$tmp/err" || fail "exit $? with --alloc=jemalloc"
grep -q "note: starting again with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096" "$tmp/err" \
  || fail "no note of the restart"
python3 - "$tmp/out" <<'P' || fail "the result is not jemalloc's"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["config"]["alloc"] == "jemalloc" and d["alloc"]["allocator"] == "jemalloc", d["alloc"]
assert d["ops"] > 0
assert d["build"]["glibc_tunables"] == "glibc.rtld.optional_static_tls=4096", d["build"]
P
# the user's own tunables are kept beside it
GLIBC_TUNABLES=glibc.malloc.check=0 "$heaplab" run malloc-churn --alloc=jemalloc --duration-s=0.05 \
  >"$tmp/out" 2>"$tmp/err" || fail "exit $? with another tunable set"
grep -q "GLIBC_TUNABLES=glibc.malloc.check=0:glibc.rtld.optional_static_tls=4096" "$tmp/err" \
  || fail "the user's tunable was not kept"
# a reservation that is too small, set by the user: reported, once
GLIBC_TUNABLES=glibc.rtld.optional_static_tls=64 "$heaplab" run malloc-churn --alloc=jemalloc \
  --duration-s=0.05 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 2 ] || fail "exit $rc, want 2, with too small a reservation"
grep -q "start heaplab with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096" "$tmp/err" \
  || fail "no message naming the tunable"
grep -q "starting again" "$tmp/err" && fail "started again although the tunable was set"
echo "ok"
