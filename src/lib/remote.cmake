# Tests of the queues and events used from other nodes (owner: multi-node
# runtime): remote.c, remote_serve.c, remote_io.c, data_link.c.
dv_add_test(test_remote_serve
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_remote_serve.c
  LIBS drover_internal Threads::Threads LABELS tsan TIMEOUT 120)
# Relays sharing a connection, against the data port's server in-process.
dv_add_test(test_remote_mux
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_remote_mux.c
  ${CMAKE_SOURCE_DIR}/src/cli/mn_data.c ${CMAKE_SOURCE_DIR}/src/cli/mn_data_conn.c
  ${CMAKE_SOURCE_DIR}/src/cli/mn_data_accept.c
  LIBS drover_internal Threads::Threads LABELS tsan TIMEOUT 120)
