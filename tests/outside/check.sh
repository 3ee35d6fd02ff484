#!/usr/bin/env bash
# ctest install_outside: heaplab as a library others link (docs/embedding.md).
#   check.sh BUILD_DIR WORK_DIR "SANITIZER_FLAGS"
# 1. cmake --install BUILD_DIR into WORK_DIR/prefix;
# 2. every installed header alone, as C11 (-pedantic) and as C++17, -Werror;
# 3. nm -D: libheaplab.so exports hl_* names only (and the ones the
#    outside program needs); libheaplab-malloc.so the malloc API only;
# 4. tests/outside/outside.c built through pkg-config (heaplab.pc,
#    heaplab-static.pc) and through find_package(heaplab) (shared and
#    static), each run.
# SANITIZER_FLAGS: the build's -fsanitize flags (empty in Release), so that
# programs linked with an instrumented libheaplab.so carry the runtime too.
# Any failure prints what failed and exits 1.
set -euo pipefail
build=$(cd "$1" && pwd)
work=$2
san=${3:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cc=${CC:-cc}
cxx=${CXX:-c++}

die() { echo "install_outside: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix

# ---- 1. install -------------------------------------------------------------
cmake --install "$build" --prefix "$prefix" > "$work/install.log" || {
  cat "$work/install.log" >&2; die "cmake --install failed"; }
pc=$(find "$prefix" -name heaplab.pc -print -quit)
[[ -n $pc ]] || die "no heaplab.pc installed under $prefix"
libdir=$(cd "$(dirname "$pc")/.." && pwd)
[[ -f $libdir/libheaplab.so ]] || die "no libheaplab.so in $libdir"
for l in base sync alloc gc; do
  [[ -f $libdir/libheaplab-$l.a ]] || die "no libheaplab-$l.a in $libdir"
done
[[ -f $libdir/cmake/heaplab/heaplabConfig.cmake ]] || die "no heaplabConfig.cmake in $libdir/cmake/heaplab"
export PKG_CONFIG_PATH=$(dirname "$pc")
[[ "$(pkg-config --variable=libdir heaplab)" -ef "$libdir" ]] ||
  die "heaplab.pc's libdir $(pkg-config --variable=libdir heaplab) is not $libdir"
incdir=$prefix/include/heaplab
malloc_lib=$libdir/libheaplab-malloc.so
# built in every build but the sanitizers' (alloc/CMakeLists.txt)
if [[ -z $san && ! -f $malloc_lib ]]; then die "no libheaplab-malloc.so in $libdir"; fi

# ---- 2. headers, each alone ----------------------------------------------
read -r -a pc_cflags <<< "$(pkg-config --cflags heaplab)"
nh=0
for h in "$incdir"/*.h; do
  name=$(basename "$h")
  printf '#include <%s>\n' "$name" > "$work/h.c"
  cp "$work/h.c" "$work/h.cc"
  "$cc" -std=c11 -Wall -Wextra -Werror -pedantic "${pc_cflags[@]}" -fsyntax-only "$work/h.c" ||
    die "$name does not compile as C11 (-std=c11 -Wall -Wextra -Werror -pedantic)"
  # not -pedantic: ISO C++ has no flexible array member (hl_tuple_t's
  # items[]), which g++ and clang++ accept as C does
  "$cxx" -std=c++17 -Wall -Wextra -Werror "${pc_cflags[@]}" -fsyntax-only "$work/h.cc" ||
    die "$name does not compile as C++17 (-std=c++17 -Wall -Wextra -Werror)"
  nh=$((nh + 1))
done
(( nh >= 11 )) || die "only $nh headers installed in $incdir"

# ---- 3. exported symbols ---------------------------------------------------
nm -D --defined-only "$libdir/libheaplab.so" | awk '{print $3}' | sort > "$work/exported.txt"
# ASan adds an ODR indicator for each exported global, named after it
# (__odr_asan.NAME with gcc, __odr_asan_gen_NAME with clang)
bad=$(grep -v -E '^(hl_|__odr_asan(\.|_gen_)hl_)' "$work/exported.txt" || true)
[[ -z $bad ]] || die "libheaplab.so exports names outside hl_*: $(echo $bad)"
for need in hl_runtime_init hl_gc_collect hl_pool_malloc hl_obj_dealloc hl_rc_self hl_die_at; do
  grep -qx "$need" "$work/exported.txt" || die "libheaplab.so does not export $need"
done
if [[ -f $malloc_lib ]]; then
  nm -D --defined-only "$malloc_lib" | awk '{print $3}' | sort > "$work/malloc-exported.txt"
  printf '%s\n' aligned_alloc calloc cfree free hl_preload_block_size hl_preload_threshold \
    malloc malloc_usable_size memalign posix_memalign pvalloc realloc reallocarray valloc |
    sort > "$work/malloc-expected.txt"
  diff -u "$work/malloc-expected.txt" "$work/malloc-exported.txt" >&2 ||
    die "libheaplab-malloc.so exports other names than the malloc API (diff above)"
fi

# ---- 4. an outside program, both ways --------------------------------------
read -r -a san_flags <<< "$san"
run() {   # run NAME PROGRAM
  local out
  out=$("$2") || die "$1: exit status $? ($out)"
  [[ $out == "outside: ok"* ]] || die "$1: unexpected output: $out"
  echo "install_outside: $1: $out"
}
read -r -a pc_libs <<< "$(pkg-config --libs heaplab)"
"$cc" -std=c11 -Wall -Wextra -Werror "${san_flags[@]}" "${pc_cflags[@]}" "$here/outside.c" \
  -o "$work/outside_pc" "${pc_libs[@]}" -Wl,-rpath,"$libdir" || die "pkg-config heaplab: build failed"
run "pkg-config heaplab" "$work/outside_pc"
read -r -a pcs_cflags <<< "$(pkg-config --cflags heaplab-static)"
read -r -a pcs_libs <<< "$(pkg-config --libs heaplab-static)"
"$cc" -std=c11 -Wall -Wextra -Werror "${san_flags[@]}" "${pcs_cflags[@]}" "$here/outside.c" \
  -o "$work/outside_pc_static" "${pcs_libs[@]}" || die "pkg-config heaplab-static: build failed"
ldd "$work/outside_pc_static" | grep -q libheaplab && die "outside_pc_static links a heaplab shared library"
run "pkg-config heaplab-static" "$work/outside_pc_static"

cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS="$san -Wall -Wextra -Werror" -DCMAKE_EXE_LINKER_FLAGS="$san" \
  > "$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; die "find_package(heaplab): configure failed"; }
cmake --build "$work/cmake" > "$work/cmake-build.log" 2>&1 || {
  cat "$work/cmake-build.log" >&2; die "find_package(heaplab): build failed"; }
run "find_package heaplab::heaplab" "$work/cmake/outside_shared"
run "find_package heaplab::gc" "$work/cmake/outside_static"
if [[ -f $malloc_lib ]]; then
  [[ "$(cat "$work/cmake/malloc-path.txt")" -ef "$malloc_lib" ]] ||
    die "heaplab::malloc does not point at $malloc_lib"
fi
echo "install_outside: ok ($nh headers; $(wc -l < "$work/exported.txt") symbols exported, all hl_*)"
