# hl_pool_variant(SPEC TAG ENV): one pool-allocator layout that a test runs
# under, as "GEOMETRY|RELEASE|COLOUR[|REQUEUE]" (REQUEUE back when left out).
# Sets TAG to a name suffix (geometry_release, then _colour and _front when
# those are on) and ENV to the HEAPLAB_* variables that select the layout.
function(hl_pool_variant spec tag_var env_var)
  string(REPLACE "|" ";" parts "${spec}")
  list(GET parts 0 geometry)
  list(GET parts 1 release)
  list(GET parts 2 colour)
  set(requeue back)
  list(LENGTH parts n)
  if(n GREATER 3)
    list(GET parts 3 requeue)
  endif()
  string(REPLACE "," "_" tag "${geometry}_${release}")
  if(colour STREQUAL "on")
    string(APPEND tag "_colour")
  endif()
  if(requeue STREQUAL "front")
    string(APPEND tag "_front")
  endif()
  set(${tag_var} "${tag}" PARENT_SCOPE)
  set(${env_var} "HEAPLAB_GEOMETRY=${geometry};HEAPLAB_ARENA_RELEASE=${release};HEAPLAB_POOL_COLOUR=${colour};HEAPLAB_POOL_REQUEUE=${requeue}" PARENT_SCOPE)
endfunction()
