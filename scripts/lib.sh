# Shared by scripts/test and scripts/bench: Debian packages and the build.
# Sourced, not run.

# The Debian packages heaplab needs to build, test and plot
# (libpython3.11-dev: python3-embed.pc, for heaplab-micro's CPython twins;
# parallel: the test runs `heaplab sweep --list` under GNU parallel;
# python3-matplotlib: scripts/hlresults.py's plots; python3-scipy: the test
# compare_mwu_scipy checks heaplab compare's Mann-Whitney U test against
# scipy.stats.mannwhitneyu, an implementation written independently;
# pkg-config and binutils' nm: the test install_outside builds against
# heaplab.pc and checks the exported symbols, docs/embedding.md;
# systemtap-sdt-dev: <sys/sdt.h>, the USDT probes of base/hl_probe.h, which
# the test probes_documented finds with readelf -n: without it the build
# has no probes and that test is skipped; bpftrace: the test pause_agree
# traces the probes gc_start and gc_end of one long-lived run with it, as
# root, beside the JSON result and the chrome trace: without it the test
# tries perf, and without either it compares those two and skips).
HL_PACKAGES=(cmake make gcc g++ pkg-config binutils git libzstd-dev
             liburcu-dev libck-dev libhwloc-dev libbenchmark-dev
             libcmocka-dev libjson-c-dev python3 libpython3.11-testsuite
             libpython3.11-dev clang-14 libclang-rt-14-dev parallel
             python3-matplotlib python3-scipy systemtap-sdt-dev bpftrace)

# The peers scripts/bench measures beside heaplab's allocator, loaded at run
# time (dlopen by alloc=PEER, LD_PRELOAD by bench/compare_preload.py):
# CPython's obmalloc, mimalloc, jemalloc, tcmalloc (libtcmalloc_minimal.so.4).
HL_PEER_PACKAGES=(libpython3.11 libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4)

hl_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

hl_log() { printf '== %s\n' "$*" >&2; }

# Installs what is missing: as root with apt-get; otherwise prints the exact
# command and fails.
hl_ensure_packages() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    hl_log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    printf 'heaplab needs these Debian packages: %s\nrun as root:\n  apt-get update && apt-get install -y %s\n' \
      "${missing[*]}" "${missing[*]}" >&2
    exit 1
  fi
}

# hl_build DIR PRESET-ARGS...: configures DIR (once) and builds it.
hl_build() {
  local dir=$1; shift
  local root; root=$(hl_root)
  if [ ! -f "$root/$dir/CMakeCache.txt" ]; then
    hl_log "configuring $dir ($*)"
    cmake -S "$root" -B "$root/$dir" "$@" >/dev/null
  fi
  hl_log "building $dir"
  cmake --build "$root/$dir" -j"$(nproc)" -- --no-print-directory >/dev/null
}
