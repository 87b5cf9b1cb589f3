# Tests of the shared memory blocks (shared.c): on one node (white-box, for
# the lock), and across nodes against a data port's server in-process.
dv_add_test(test_shared SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_shared.c
  ${dv_queue_whitebox_sources}
  LIBS drover PkgConfig::CRYPTO Threads::Threads rt LABELS tsan TIMEOUT 120)
dv_add_test(test_shared_remote
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_shared_remote.c
  ${CMAKE_SOURCE_DIR}/src/multinode/mn_data.c
  ${CMAKE_SOURCE_DIR}/src/multinode/mn_data_conn.c
  ${CMAKE_SOURCE_DIR}/src/multinode/mn_data_accept.c
  LIBS drover_internal Threads::Threads LABELS tsan TIMEOUT 120)
# Across two loopback nodes under `drover run` (also under TSan: the data
# port's threads, libzmq's frames suppressed as for the other loopback
# tests).
add_executable(dv_mn_shared ${CMAKE_SOURCE_DIR}/tests/integration/mn_shared.c)
target_link_libraries(dv_mn_shared PRIVATE drover)
dv_runtime_script(integration_multinode_shared test_multinode_shared.sh
  TIMEOUT 180 LABELS tsan)
set_property(TEST integration_multinode_shared APPEND PROPERTY ENVIRONMENT
  "TSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/src/transport/tsan.supp")
# The home node's decoding of shared memory requests (remote_serve.c), with
# the code it drives compiled into the fuzzer for its coverage.
dv_add_fuzz(fuzz_shared_serve
  SOURCES ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_shared_serve.c
  ${CMAKE_CURRENT_SOURCE_DIR}/remote_serve.c ${CMAKE_CURRENT_SOURCE_DIR}/shared.c
  LIBS drover_internal)
