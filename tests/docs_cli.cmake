# The docs_cli test: docs/cli.md must be what `heaplab list --markdown`
# prints today, so that the option reference cannot drift from the option
# table (base/config.c) and the workload registry.
#   cmake -DHEAPLAB=path/to/heaplab -DDOC=docs/cli.md -DOUT=generated.md -P docs_cli.cmake
execute_process(COMMAND "${HEAPLAB}" list --markdown
                OUTPUT_VARIABLE generated RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "'${HEAPLAB} list --markdown' failed (exit ${rc})")
endif()
if(NOT EXISTS "${DOC}")
  message(FATAL_ERROR "${DOC} is missing: run scripts/gen-docs (or: build/heaplab list --markdown > docs/cli.md) and commit it")
endif()
file(READ "${DOC}" committed)
if(NOT committed STREQUAL generated)
  file(WRITE "${OUT}" "${generated}")
  execute_process(COMMAND diff -u "${DOC}" "${OUT}" OUTPUT_VARIABLE diff)
  message(FATAL_ERROR
    "docs/cli.md is stale: it differs from what 'heaplab list --markdown' prints now.\n"
    "Regenerate it with scripts/gen-docs (or: build/heaplab list --markdown > docs/cli.md) "
    "and commit it.\n${diff}")
endif()
