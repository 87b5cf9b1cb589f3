# Tests of the queues and events used from other nodes (owner: multi-node
# runtime): remote.c, remote_serve.c, remote_io.c, data_link.c.
dv_add_test(test_remote_serve
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_remote_serve.c
  LIBS drover_internal Threads::Threads LABELS tsan TIMEOUT 120)
# Relays sharing a connection, against the data port's server in-process.
dv_add_test(test_remote_mux
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_remote_mux.c
  ${CMAKE_SOURCE_DIR}/src/multinode/mn_data.c
  ${CMAKE_SOURCE_DIR}/src/multinode/mn_data_conn.c
  ${CMAKE_SOURCE_DIR}/src/multinode/mn_data_accept.c
  LIBS drover_internal Threads::Threads LABELS tsan TIMEOUT 120)

# The link's crypto alone, over memory pipes (docs/BENCHMARKS.md).
add_executable(link_bench ${CMAKE_SOURCE_DIR}/bench/link_bench.c
  ${CMAKE_CURRENT_SOURCE_DIR}/data_link.c)
target_include_directories(link_bench PRIVATE ${CMAKE_SOURCE_DIR}/src
  ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(link_bench PRIVATE drover_common PkgConfig::CRYPTO
  Threads::Threads)
