# Tests of the semaphores and barriers (sem.c, barrier.c, sync_serve.c;
# their threads also under TSan).
dv_add_test(test_sem SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_sem.c
  LIBS drover Threads::Threads LABELS tsan TIMEOUT 60)
dv_add_test(test_barrier SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_barrier.c
  LIBS drover Threads::Threads LABELS tsan TIMEOUT 60)
# Across two loopback nodes: the remote ops (also under TSan: the home
# agent's serving threads; libzmq suppressed as for test_transport).
add_executable(dv_mn_sync ${CMAKE_SOURCE_DIR}/tests/integration/mn_sync.c)
target_link_libraries(dv_mn_sync PRIVATE drover)
dv_runtime_script(integration_multinode_sync test_multinode_sync.sh
  TIMEOUT 240 LABELS tsan)
# Its barriers are queues that processes of two nodes put into through
# node 0's data port threads: the slot hand-over between processes that
# TSan cannot see, suppressed as for the data port test.
set_property(TEST integration_multinode_sync APPEND PROPERTY ENVIRONMENT
  "TSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/integration/tsan_dataport.supp")
