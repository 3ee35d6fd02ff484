#!/usr/bin/env bash
# libheaplab-malloc.so on programs that know nothing of it: coreutils' ls
# and CPython. Usage: preload_smoke.sh LIB TEST_PRELOAD
#   - HEAPLAB_STATS=1 prints the statistics at exit (ls closes stderr before
#     it exits: the library keeps its own copy) and the pools served blocks;
#   - a bad HEAPLAB_* value gives exactly one warning line naming the
#     variable, the value and what is accepted; the default stays and the
#     program exits 0; one bad variable does not cost the others; a
#     variable in another spelling (HEAPLAB_pool-colour) is unknown;
#   - CPython with PYTHONMALLOC=malloc puts its objects in the pools;
#   - HEAPLAB_ALLOC_DEBUG=on catches a double free of a pool block.
set -u
lib=$1 test_preload=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# run NAME ENV... -- CMD...: runs CMD under the library, stderr into $tmp/NAME
run() {
  local name=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  # in a subshell, so that the shell's own "Aborted" line lands in the file
  (env "${envs[@]}" LD_PRELOAD="$lib" "$@" >"$tmp/$name.out") 2>"$tmp/$name.err"
  echo $? >"$tmp/$name.rc"
}
rc() { cat "$tmp/$1.rc"; }
stat_of() { sed -n "s/^$2 *= *\([0-9]*\) .*/\1/p" "$tmp/$1.err" | head -1; }
warnings() { grep -c '^heaplab-malloc: ' "$tmp/$1.err" | tr -d ' '; }
show() { echo "--- stderr of $1:"; sed 's/^/  /' "$tmp/$1.err" | head -40; }

# 1. statistics at exit, pools in use
run ls HEAPLAB_STATS=1 -- /bin/ls -l /
[ "$(rc ls)" = 0 ] || fail "ls exited $(rc ls)"
grep -q '^heaplab-malloc: statistics of process' "$tmp/ls.err" || fail "ls: no statistics"
grep -q 'threshold 512' "$tmp/ls.err" || fail "ls: not the default geometry"
[ "$(stat_of ls arenas_allocated)" -ge 1 ] 2>/dev/null || fail "ls: no arena was mapped"
grep -q '^libc_requests' "$tmp/ls.err" || fail "ls: no libc_requests line"
[ $failures = 0 ] || show ls

# 2. one bad value: one line, the default stays, exit 0
run bogus HEAPLAB_GEOMETRY=bogus -- /bin/ls /
[ "$(rc bogus)" = 0 ] || fail "HEAPLAB_GEOMETRY=bogus: ls exited $(rc bogus)"
[ "$(wc -l <"$tmp/bogus.err")" = 1 ] || fail "HEAPLAB_GEOMETRY=bogus: not exactly one line on stderr"
grep -q "HEAPLAB_GEOMETRY" "$tmp/bogus.err" && grep -q "'bogus'" "$tmp/bogus.err" &&
  grep -q "accepted: classic, modern" "$tmp/bogus.err" || fail "HEAPLAB_GEOMETRY=bogus: the warning does not name variable, value and accepted values"
run bogus_stats HEAPLAB_GEOMETRY=bogus HEAPLAB_STATS=1 -- /bin/ls /
grep -q 'threshold 512' "$tmp/bogus_stats.err" || fail "HEAPLAB_GEOMETRY=bogus: the default geometry was not used"
[ "$(warnings bogus)" = 1 ] || show bogus

# 3. bad ones cost only themselves; a good one next to them applies
run mixed HEAPLAB_GEOMETRY=16,256,4096,262144 HEAPLAB_ARENA_RELEASE=sometimes HEAPLAB_ALLOC=system \
    HEAPLAB_NO_SUCH_OPTION=1 HEAPLAB_STATS=1 -- /bin/ls /
[ "$(rc mixed)" = 0 ] || fail "mixed: ls exited $(rc mixed)"
grep -q 'threshold 256' "$tmp/mixed.err" || fail "mixed: HEAPLAB_GEOMETRY=16,256,4096,262144 was not applied"
[ "$(grep "HEAPLAB_ARENA_RELEASE" "$tmp/mixed.err" | grep "'sometimes'" | grep -c "accepted: munmap, madvise")" = 1 ] || fail "mixed: no warning for HEAPLAB_ARENA_RELEASE"
[ "$(grep -c "HEAPLAB_ALLOC=system.*alloc=pool" "$tmp/mixed.err")" = 1 ] || fail "mixed: no warning for HEAPLAB_ALLOC"
[ "$(grep -c "HEAPLAB_NO_SUCH_OPTION.*unknown option" "$tmp/mixed.err")" = 1 ] || fail "mixed: no warning for HEAPLAB_NO_SUCH_OPTION"
[ "$(grep -c '^heaplab-malloc: ' "$tmp/mixed.err")" = 4 ] || { fail "mixed: not 3 warnings + the statistics"; show mixed; }

# only the documented spelling: HEAPLAB_pool-colour is an unknown variable,
# warned about, and the library's default (coloured pools) stays
run spelling HEAPLAB_pool-colour=off HEAPLAB_STATS=1 -- /bin/true
[ "$(rc spelling)" = 0 ] || fail "HEAPLAB_pool-colour=off: exited $(rc spelling)"
grep -q "HEAPLAB_pool-colour: unknown variable.*HEAPLAB_POOL_COLOUR.*ignored" "$tmp/spelling.err" &&
  grep -q 'pool colours 64' "$tmp/spelling.err" && [ "$(warnings spelling)" = 2 ] ||
  { fail "HEAPLAB_pool-colour=off: no warning, or honoured"; show spelling; }

# a geometry that parses but breaks an invariant
run invariant HEAPLAB_GEOMETRY=8,100,4096,65536 HEAPLAB_STATS=1 -- /bin/true
[ "$(rc invariant)" = 0 ] || fail "HEAPLAB_GEOMETRY=8,100,4096,65536: exited $(rc invariant)"
grep -q "option 'geometry'.*multiple of the alignment.*the default geometry 'modern' stays" "$tmp/invariant.err" &&
  grep -q 'threshold 512' "$tmp/invariant.err" || { fail "HEAPLAB_GEOMETRY=8,100,4096,65536: no warning, or not the default"; show invariant; }

# pool colours: on by default where the pools can take them; asked for
# with pools that cannot, the geometry stays and the colours go
run colours HEAPLAB_STATS=1 -- /bin/true
grep -q 'pool colours 64' "$tmp/colours.err" || { fail "default: the pools are not coloured"; show colours; }
run colours_classic HEAPLAB_GEOMETRY=classic HEAPLAB_STATS=1 -- /bin/true
grep -q 'threshold 256.*pool colours 1$' "$tmp/colours_classic.err" && [ "$(warnings colours_classic)" = 1 ] ||
  { fail "HEAPLAB_GEOMETRY=classic: not classic without colours, or a warning besides the statistics"; show colours_classic; }
run colours_bad HEAPLAB_GEOMETRY=classic HEAPLAB_POOL_COLOUR=on HEAPLAB_STATS=1 -- /bin/true
[ "$(rc colours_bad)" = 0 ] || fail "HEAPLAB_POOL_COLOUR=on with classic: exited $(rc colours_bad)"
grep -q "option 'pool-colour'.*geometry=classic.*16 KiB.*ignored, pool-colour=off" "$tmp/colours_bad.err" &&
  grep -q 'threshold 256.*pool colours 1$' "$tmp/colours_bad.err" ||
  { fail "HEAPLAB_POOL_COLOUR=on with classic: no warning, or not classic without colours"; show colours_bad; }

# 4. CPython: 100,000 str objects take several 1 MiB arenas
if [ -x /usr/bin/python3 ]; then
  run python PYTHONMALLOC=malloc HEAPLAB_STATS=1 -- /usr/bin/python3 -c \
    'x = [str(i) * 3 for i in range(100000)]; print(len(x))'
  [ "$(rc python)" = 0 ] || fail "python exited $(rc python)"
  [ "$(stat_of python arenas_highwater)" -ge 5 ] 2>/dev/null || { fail "python: its objects are not in the pools"; show python; }
fi

# 5. alloc-debug: the same checks pass, and a double free is caught
run debug_ok HEAPLAB_ALLOC_DEBUG=on -- "$test_preload"
[ "$(rc debug_ok)" = 0 ] || { fail "test_preload with HEAPLAB_ALLOC_DEBUG=on exited $(rc debug_ok)"; show debug_ok; }
run double_free HEAPLAB_ALLOC_DEBUG=on -- "$test_preload" double-free
[ "$(rc double_free)" != 0 ] && grep -q 'heaplab alloc-debug: double free' "$tmp/double_free.err" ||
  { fail "HEAPLAB_ALLOC_DEBUG=on: a double free was not reported"; show double_free; }

[ $failures = 0 ] && echo "preload_smoke: every check passed"
exit $((failures != 0))
