# Tests and the benchmark program of pools (pool.c, pool_*.c).
set(dv_pool_unit ${CMAKE_SOURCE_DIR}/tests/unit)
dv_add_test(test_pool SOURCES ${dv_pool_unit}/test_pool.c LIBS drover
  LABELS tsan TIMEOUT 180)
dv_add_test(test_pool_fail SOURCES ${dv_pool_unit}/test_pool_fail.c
  LIBS drover LABELS tsan TIMEOUT 180)
dv_add_test(test_pool_opts SOURCES ${dv_pool_unit}/test_pool_opts.c
  LIBS drover Threads::Threads LABELS tsan TIMEOUT 180)
dv_add_test(test_pool_threads SOURCES ${dv_pool_unit}/test_pool_threads.c
  LIBS drover Threads::Threads LABELS tsan TIMEOUT 300)
add_executable(pool_task ${CMAKE_SOURCE_DIR}/bench/pool_task.c)
target_link_libraries(pool_task PRIVATE drover)
