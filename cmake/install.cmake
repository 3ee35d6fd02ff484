# What `cmake --install` puts under the prefix (docs/embedding.md):
#   include/heaplab/hl_*.h            the public headers (one folder: they include each other by name)
#   lib/libheaplab.so                 base, sync, alloc and gc in one shared library; only hl_* exported
#   lib/libheaplab-{base,sync,alloc,gc}.a   the layers' static archives, as heaplab's own programs link them
#   lib/libheaplab-malloc.so          the LD_PRELOAD malloc (not in sanitizer builds)
#   lib/pkgconfig/heaplab.pc          the shared library; heaplab-static.pc the archives
#   lib/cmake/heaplab/                find_package(heaplab): heaplab::heaplab (shared), heaplab::gc,
#                                     heaplab::alloc, heaplab::sync, heaplab::base (static), heaplab::malloc
# Included by the top-level CMakeLists.txt once the layers exist. The
# fuzzing build (HL_FUZZ) builds and installs none of it: its objects are
# instrumented for libFuzzer, of no use to a program outside.
if(HL_FUZZ)
  return()
endif()
include(CMakePackageConfigHelpers)

set(HL_PUBLIC_HEADERS
  base/hl_base.h base/hl_config.h base/hl_measure.h
  sync/hl_atomic.h sync/hl_failpoint.h sync/hl_lock.h sync/hl_sync.h sync/hl_thread.h
  alloc/hl_alloc.h alloc/hl_raw.h
  gc/hl_gc.h)

# libheaplab.so: the four layers' sources compiled once more, with hidden
# visibility, so that only the public headers' declarations (HL_API_BEGIN
# ... HL_API_END, hl_base.h) are exported. The archives keep their own
# objects: non-PIC gc/, local-exec thread-locals (HL_TLS_MODEL).
set(HL_SHARED_SOURCES "")
foreach(layer hl_base hl_sync hl_alloc hl_gc)
  get_target_property(dir ${layer} SOURCE_DIR)
  get_target_property(srcs ${layer} SOURCES)
  foreach(s IN LISTS srcs)
    list(APPEND HL_SHARED_SOURCES ${dir}/${s})
  endforeach()
endforeach()
add_library(hl_shared SHARED ${HL_SHARED_SOURCES})
target_include_directories(hl_shared PUBLIC
  "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/base;${PROJECT_SOURCE_DIR}/sync;${PROJECT_SOURCE_DIR}/alloc;${PROJECT_SOURCE_DIR}/gc>"
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/heaplab>)
# ck: hl_atomic.h and hl_lock.h include its headers; the rest is private.
target_link_libraries(hl_shared PUBLIC PkgConfig::CK Threads::Threads
  PRIVATE PkgConfig::URCU_QSBR PkgConfig::HWLOC ${CMAKE_DL_LIBS} m)
set_target_properties(hl_shared PROPERTIES OUTPUT_NAME heaplab EXPORT_NAME heaplab
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  C_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
if(HL_SANITIZE STREQUAL "none")
  # every symbol resolved at link time: a hidden one that another layer
  # needs shows here, not in a user's program (the sanitizer runtimes
  # resolve theirs only when loaded)
  target_link_options(hl_shared PRIVATE -Wl,--no-undefined)
endif()

set(HL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/heaplab)
set(HL_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(FILES ${HL_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/heaplab)
install(TARGETS hl_shared hl_base hl_sync hl_alloc hl_gc EXPORT heaplabTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
if(TARGET heaplab-malloc)
  set_target_properties(heaplab-malloc PROPERTIES EXPORT_NAME malloc)
  install(TARGETS heaplab-malloc EXPORT heaplabTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
install(EXPORT heaplabTargets NAMESPACE heaplab:: DESTINATION ${HL_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/heaplabConfig.cmake.in
  ${CMAKE_BINARY_DIR}/generated/heaplabConfig.cmake INSTALL_DESTINATION ${HL_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/generated/heaplabConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/generated/heaplabConfig.cmake
  ${CMAKE_BINARY_DIR}/generated/heaplabConfigVersion.cmake DESTINATION ${HL_CMAKE_DIR})

# The .pc files find the prefix from their own place (${pcfiledir}), so the
# tree may be installed with --prefix anywhere, or moved.
file(RELATIVE_PATH HL_PC_TO_PREFIX /prefix/${HL_PC_DIR} /prefix)
string(REGEX REPLACE "/$" "" HL_PC_TO_PREFIX "${HL_PC_TO_PREFIX}")
foreach(pc heaplab heaplab-static)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/${pc}.pc.in ${CMAKE_BINARY_DIR}/generated/${pc}.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/generated/${pc}.pc DESTINATION ${HL_PC_DIR})
endforeach()
