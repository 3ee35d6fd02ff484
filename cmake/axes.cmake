# hl_axis_built(HEADER LIST OUT): the names of the built rows of one strategy
# axis (an X-macro list such as HL_GC_COLLECTORS in hl_config.h, whose rows
# are X(ID, name, built, ...), the name bare or, where it is no C name
# (HL_TCACHE_MODES' heap-magazine), a string), in table order. The test suites loop over
# these, so that a row whose built flag flips is tested in every suite
# that loops over its axis, with no list here to keep in step.
function(hl_axis_built header list out)
  file(READ "${header}" text)
  string(FIND "${text}" "#define ${list}(X)" start)
  if(start EQUAL -1)
    message(FATAL_ERROR "hl_axis_built: no '#define ${list}(X)' in ${header}")
  endif()
  string(SUBSTRING "${text}" ${start} -1 text)
  # the definition ends at the first line that does not continue
  string(REGEX MATCH "^([^\n\\\\]*\\\\\n)*[^\n]*" block "${text}")
  string(REGEX MATCHALL "X\\([A-Z_]+, \"?[a-z_-]+\"?, [01]," rows "${block}")
  set(names "")
  foreach(row ${rows})
    string(REGEX REPLACE "X\\([A-Z_]+, \"?([a-z_-]+)\"?, ([01]),.*" "\\1;\\2" parts "${row}")
    list(GET parts 0 name)
    list(GET parts 1 built)
    if(built STREQUAL "1")
      list(APPEND names ${name})
    endif()
  endforeach()
  if(NOT names)
    message(FATAL_ERROR "hl_axis_built: no built row in ${list} (${header})")
  endif()
  set(${out} ${names} PARENT_SCOPE)
endfunction()

# hl_gc_runs_with(HEADER GC RC OUT): whether the collector GC runs with the
# refcount mode RC, from its row's rc column in HL_GC_COLLECTORS (HL_RC_ANY,
# or HL_RC_BIT(HL_RC_<MODE>)s): the suites skip the combinations the
# driver refuses (the concurrent collector under rc=gil), with no list of
# them here.
function(hl_gc_runs_with header gc rc out)
  file(READ "${header}" text)
  string(FIND "${text}" "#define HL_GC_COLLECTORS(X)" start)
  string(SUBSTRING "${text}" ${start} -1 text)
  string(REGEX MATCH "X\\([A-Z_]+, ${gc}, [01], [^\"]*" row "${text}")
  if(NOT row)
    message(FATAL_ERROR "hl_gc_runs_with: no row '${gc}' in HL_GC_COLLECTORS (${header})")
  endif()
  string(TOUPPER "${rc}" RC)
  if(row MATCHES "HL_RC_ANY" OR row MATCHES "HL_RC_BIT\\(HL_RC_${RC}\\)")
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
  endif()
endfunction()
