# Tests of the shared-memory queues and events (queue.c, event.c, shm.c,
# futex.c).
dv_add_test(test_queue SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_queue.c
  LIBS drover TIMEOUT 120)
# Joinable queues, holders and gathered puts.
dv_add_test(test_queue_join
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_queue_join.c
  LIBS drover TIMEOUT 120)
dv_add_test(test_queue_mpmc
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_queue_mpmc.c
  LIBS drover Threads::Threads LABELS tsan TIMEOUT 300)
add_test(NAME test_queue_threads COMMAND test_queue_mpmc threads)
set_tests_properties(test_queue_threads PROPERTIES TIMEOUT 300 LABELS tsan)
# White-box tests include queue.c; these are the rest of what it needs (one
# list: a source the queue comes to need is added once, for both).
set(dv_queue_whitebox_sources
  ${CMAKE_CURRENT_SOURCE_DIR}/shm.c ${CMAKE_CURRENT_SOURCE_DIR}/futex.c
  ${CMAKE_CURRENT_SOURCE_DIR}/job_id.c ${CMAKE_CURRENT_SOURCE_DIR}/remote.c
  ${CMAKE_CURRENT_SOURCE_DIR}/remote_io.c
  ${CMAKE_CURRENT_SOURCE_DIR}/remote_mux.c
  ${CMAKE_CURRENT_SOURCE_DIR}/data_link.c
  ${CMAKE_CURRENT_SOURCE_DIR}/msg.c)
# Kills a process that holds the lock.
dv_add_test(test_queue_robust
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_queue_robust.c
  ${dv_queue_whitebox_sources}
  LIBS drover PkgConfig::CRYPTO Threads::Threads rt TIMEOUT 60)
# Wakes around processes killed mid-get, holding the lock, or right after a
# put woke them.
dv_add_test(test_queue_wake
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_queue_wake.c
  ${dv_queue_whitebox_sources}
  LIBS drover PkgConfig::CRYPTO Threads::Threads rt LABELS tsan TIMEOUT 120)
# Gets into the caller's buffer and lent in place (white-box: positions).
dv_add_test(test_queue_lend
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_queue_lend.c
  ${dv_queue_whitebox_sources}
  LIBS drover PkgConfig::CRYPTO Threads::Threads rt LABELS tsan TIMEOUT 120)
dv_add_test(test_event SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_event.c
  LIBS drover LABELS tsan TIMEOUT 60)

# Joinable queues, holders and wait across nodes
# (tests/integration/test_multinode_loopback.sh runs it).
add_executable(dv_mn_joinable ${CMAKE_SOURCE_DIR}/tests/integration/mn_joinable.c)
target_link_libraries(dv_mn_joinable PRIVATE drover)

# The drover side of bench/queue.sh (run by scripts/bench).
add_executable(queue_bench ${CMAKE_SOURCE_DIR}/bench/queue_bench.c)
target_link_libraries(queue_bench PRIVATE drover)
# The queue against a socketpair, a pipe and ZeroMQ ipc (bench/queue_peers.sh).
add_executable(queue_peers ${CMAKE_SOURCE_DIR}/bench/queue_peers.c)
target_link_libraries(queue_peers PRIVATE drover PkgConfig::ZMQ)
