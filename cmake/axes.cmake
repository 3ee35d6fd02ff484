# hl_axis_built(HEADER LIST OUT): the names of the built rows of one strategy
# axis (an X-macro list such as HL_GC_COLLECTORS in hl_config.h, whose rows
# are X(ID, name, built, ...)), in table order. The test suites loop over
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
  string(REGEX MATCHALL "X\\([A-Z_]+, [a-z_]+, [01]," rows "${block}")
  set(names "")
  foreach(row ${rows})
    string(REGEX REPLACE "X\\([A-Z_]+, ([a-z_]+), ([01]),.*" "\\1;\\2" parts "${row}")
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
