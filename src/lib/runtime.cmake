# The runtime core (owner: core-runtime): task, init, process, node,
# forkserver, msg in this folder, plus the per-node agent (src/agent),
# which is part of libdrover because a program started without
# `drover run` becomes its own agent.
file(GLOB dv_agent_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/agent/*.c)
target_sources(drover PRIVATE ${dv_agent_sources})

# The same code as a static library with every internal symbol visible to
# whoever links it: the `drover` command and unit tests of internals.
add_library(drover_internal STATIC ${drover_lib_sources} ${dv_agent_sources})
target_include_directories(drover_internal PUBLIC ${CMAKE_SOURCE_DIR}/include
  ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(drover_internal PUBLIC drover_common PkgConfig::ZMQ
  Threads::Threads rt)

set(dv_unit ${CMAKE_SOURCE_DIR}/tests/unit)
dv_add_test(test_task SOURCES ${dv_unit}/test_task.c LIBS drover TIMEOUT 30)
dv_add_test(test_msg SOURCES ${dv_unit}/test_msg.c LIBS drover_internal
  TIMEOUT 30)
dv_add_test(test_node SOURCES ${dv_unit}/test_node.c LIBS drover TIMEOUT 30)
dv_add_test(test_process SOURCES ${dv_unit}/test_process.c LIBS drover
  TIMEOUT 120)
dv_add_fuzz(fuzz_msg SOURCES ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_msg.c
  LIBS drover_internal)

# Benchmark programs (bench/process.sh runs them).
add_executable(bench_process ${CMAKE_SOURCE_DIR}/bench/bench_process.c)
target_link_libraries(bench_process PRIVATE drover)

# Integration scripts: real jobs through `drover run` and private runtimes.
add_executable(dv_job_helper ${CMAKE_SOURCE_DIR}/tests/integration/job_helper.c)
target_link_libraries(dv_job_helper PRIVATE drover)
function(dv_runtime_script name script)
  cmake_parse_arguments(S "" "TIMEOUT" "LABELS" ${ARGN})
  add_test(NAME ${name}
    COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/${script})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${S_TIMEOUT}
    SKIP_RETURN_CODE 77 LABELS "${S_LABELS}"
    ENVIRONMENT "DROVER_SOURCE_DIR=${CMAKE_SOURCE_DIR};DROVER_BUILD=${CMAKE_BINARY_DIR}")
endfunction()
dv_runtime_script(integration_run test_run.sh TIMEOUT 120)
dv_runtime_script(integration_teardown test_teardown.sh TIMEOUT 180)
