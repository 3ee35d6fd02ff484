#!/usr/bin/env bash
# HEAPLAB_STATS=1 writes its statistics to stderr or to HEAPLAB_STATS_FILE,
# never into a file the program has put on the descriptor where the library
# kept its copy of stderr. Usage: preload_stats_fd.sh LIB TEST_PRELOAD
set -u
lib=$1 test_preload=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# 1. a data file on descriptor 100 at exit does not grow; stderr has them
printf 'data\n' >"$tmp/data"
HEAPLAB_STATS=1 LD_PRELOAD="$lib" "$test_preload" fd100 "$tmp/data" 2>"$tmp/fd100.err"
rc=$?
[ $rc = 0 ] || fail "test_preload fd100 exited $rc"
[ "$(cat "$tmp/data")" = data ] || { fail "the data file on descriptor 100 grew to $(wc -c <"$tmp/data") bytes"; head -3 "$tmp/data"; }
grep -q '^heaplab-malloc: statistics of process' "$tmp/fd100.err" || fail "fd100: no statistics on stderr"

# 2. HEAPLAB_STATS_FILE: appended to, created if need be; nothing on stderr
printf 'before\n' >"$tmp/stats"
HEAPLAB_STATS=1 HEAPLAB_STATS_FILE="$tmp/stats" LD_PRELOAD="$lib" /bin/ls / >/dev/null 2>"$tmp/file.err"
[ "$(head -1 "$tmp/stats")" = before ] || fail "HEAPLAB_STATS_FILE: the file was not appended to"
grep -q '^heaplab-malloc: statistics of process' "$tmp/stats" || fail "HEAPLAB_STATS_FILE: no statistics in the file"
[ -s "$tmp/file.err" ] && { fail "HEAPLAB_STATS_FILE: stderr is not empty"; cat "$tmp/file.err"; }
HEAPLAB_STATS=1 HEAPLAB_STATS_FILE="$tmp/new" LD_PRELOAD="$lib" /bin/true 2>/dev/null
grep -q '^libc_requests' "$tmp/new" || fail "HEAPLAB_STATS_FILE: a new file was not created"

# 3. a file that cannot be opened: one warning, the statistics on stderr
HEAPLAB_STATS=1 HEAPLAB_STATS_FILE=/nonexistent/stats LD_PRELOAD="$lib" /bin/true 2>"$tmp/bad.err"
grep -q "HEAPLAB_STATS_FILE=/nonexistent/stats: cannot open" "$tmp/bad.err" &&
  grep -q '^heaplab-malloc: statistics of process' "$tmp/bad.err" ||
  { fail "HEAPLAB_STATS_FILE=/nonexistent/stats: no warning or no statistics on stderr"; cat "$tmp/bad.err"; }

[ $failures = 0 ] && echo "preload_stats_fd: every check passed"
exit $((failures != 0))
