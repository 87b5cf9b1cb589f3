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
  PkgConfig::CRYPTO Threads::Threads rt)

set(dv_unit ${CMAKE_SOURCE_DIR}/tests/unit)
dv_add_test(test_task SOURCES ${dv_unit}/test_task.c LIBS drover TIMEOUT 30)
dv_add_test(test_msg SOURCES ${dv_unit}/test_msg.c LIBS drover_internal
  TIMEOUT 30)
dv_add_test(test_node SOURCES ${dv_unit}/test_node.c LIBS drover TIMEOUT 30)
# Lost nodes' marks and placement around them (white-box).
dv_add_test(test_node_lost SOURCES ${dv_unit}/test_node_lost.c
  LIBS drover_internal TIMEOUT 30)
dv_add_test(test_process SOURCES ${dv_unit}/test_process.c LIBS drover
  TIMEOUT 120)
dv_add_test(test_forkserver SOURCES ${dv_unit}/test_forkserver.c LIBS drover
  TIMEOUT 60)
# Warm spares: learned pages, written ahead (white-box, then in a job).
dv_add_test(test_warm SOURCES ${dv_unit}/test_warm.c LIBS drover_internal
  TIMEOUT 60)
set_tests_properties(test_warm PROPERTIES SKIP_RETURN_CODE 77)
# A fork server killed or stopped: joins end, starts fail (each case a job).
dv_add_test(test_process_server SOURCES ${dv_unit}/test_process_server.c
  LIBS drover TIMEOUT 90)
# Join waits for the exit itself (a task held in its exit by ptrace).
dv_add_test(test_process_exit SOURCES ${dv_unit}/test_process_exit.c
  LIBS drover TIMEOUT 60)
set_tests_properties(test_process_exit PROPERTIES SKIP_RETURN_CODE 77)
dv_add_fuzz(fuzz_msg SOURCES ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_msg.c
  LIBS drover_internal)

# Benchmark programs (bench/process.sh runs them).
add_executable(bench_process ${CMAKE_SOURCE_DIR}/bench/bench_process.c)
target_link_libraries(bench_process PRIVATE drover)

# bench/xnode.sh's drover side (queues between emulated nodes, wire-up).
add_executable(xnode_queue ${CMAKE_SOURCE_DIR}/bench/xnode_queue.c)
target_link_libraries(xnode_queue PRIVATE drover)

# Integration scripts: real jobs through `drover run` and private runtimes.
add_executable(dv_job_helper ${CMAKE_SOURCE_DIR}/tests/integration/job_helper.c)
target_link_libraries(dv_job_helper PRIVATE drover)
add_executable(dv_mn_job ${CMAKE_SOURCE_DIR}/tests/integration/mn_job.c)
target_link_libraries(dv_mn_job PRIVATE drover)
add_executable(dv_mn_order ${CMAKE_SOURCE_DIR}/tests/integration/mn_order.c)
target_link_libraries(dv_mn_order PRIVATE drover)
add_executable(dv_mn_host ${CMAKE_SOURCE_DIR}/tests/integration/mn_host.c)
target_link_libraries(dv_mn_host PRIVATE drover)
add_executable(dv_mn_nodeloss
  ${CMAKE_SOURCE_DIR}/tests/integration/mn_nodeloss.c)
target_link_libraries(dv_mn_nodeloss PRIVATE drover Threads::Threads)
add_executable(dv_mn_fan ${CMAKE_SOURCE_DIR}/tests/integration/mn_fan.c)
target_link_libraries(dv_mn_fan PRIVATE drover Threads::Threads)
add_executable(dv_mn_fake_agent
  ${CMAKE_SOURCE_DIR}/tests/integration/mn_fake_agent.c)
target_link_libraries(dv_mn_fake_agent PRIVATE drover_internal drover_transport)
function(dv_runtime_script name script)
  cmake_parse_arguments(S "" "TIMEOUT" "LABELS" ${ARGN})
  add_test(NAME ${name}
    COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/${script})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${S_TIMEOUT}
    SKIP_RETURN_CODE 77 LABELS "${S_LABELS}"
    ENVIRONMENT "DROVER_SOURCE_DIR=${CMAKE_SOURCE_DIR};DROVER_BUILD=${CMAKE_BINARY_DIR}")
endfunction()
dv_runtime_script(integration_run test_run.sh TIMEOUT 120)
# Command lines and host files (loopback nodes: no root needed).
dv_runtime_script(integration_run_hostfile test_run_hostfile.sh TIMEOUT 120)
dv_runtime_script(integration_teardown test_teardown.sh TIMEOUT 180)
# SIGKILL of drover run: the cleaner and the sweep at the next start.
dv_runtime_script(integration_kill_cleanup test_kill_cleanup.sh TIMEOUT 120)
# 300 short jobs with a thread (NVML's test double) that takes SIGCHLD.
dv_runtime_script(integration_run_signal_thread test_run_signal_thread.sh
  TIMEOUT 600 LABELS tsan)
# Multi-node jobs on emulated nodes (root and namespaces, else skipped).
dv_runtime_script(integration_multinode test_multinode.sh TIMEOUT 180
  LABELS "netns")
dv_runtime_script(integration_multinode_telemetry test_multinode_telemetry.sh
  TIMEOUT 180 LABELS "netns")
dv_runtime_script(integration_multinode_order test_multinode_order.sh
  TIMEOUT 180 LABELS "netns")
# Later starts on a node come from its host's fork server (mn_host.h).
dv_runtime_script(integration_multinode_host test_multinode_host.sh
  TIMEOUT 180 LABELS "netns")
# A node lost during a pool map, with and without --keep-going.
dv_runtime_script(integration_multinode_nodeloss test_multinode_nodeloss.sh
  TIMEOUT 240 LABELS "netns")
# Strangers at the data port: a crowd of idle connections during a job,
# a recorded connection replayed (also under TSan: the port's threads).
dv_runtime_script(integration_multinode_dataport test_multinode_dataport.sh
  TIMEOUT 240 LABELS "netns;tsan")
set_property(TEST integration_multinode_dataport APPEND PROPERTY ENVIRONMENT
  "TSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/integration/tsan_dataport.supp")
dv_runtime_script(integration_multinode_fan test_multinode_fan.sh
  TIMEOUT 240 LABELS "netns")
# Also under TSan: the data plane's threads and puts sent ahead (libzmq's
# uninstrumented frames suppressed as for test_transport).
dv_runtime_script(integration_multinode_loopback test_multinode_loopback.sh
  TIMEOUT 180 LABELS tsan)
set_property(TEST integration_multinode_loopback APPEND PROPERTY ENVIRONMENT
  "TSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/src/transport/tsan.supp")
# The tree of agents (launch, welcome, broadcasts) on loopback nodes,
# with a lost inner agent and a failed launch two levels down.
dv_runtime_script(integration_multinode_tree test_multinode_tree.sh
  TIMEOUT 180 LABELS tsan)
set_property(TEST integration_multinode_tree APPEND PROPERTY ENVIRONMENT
  "TSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/src/transport/tsan.supp")
# Output that stdout takes only after a pause: the job goes on, no byte is
# lost (the head's writer thread: also under TSan).
dv_runtime_script(integration_multinode_output test_multinode_output.sh
  TIMEOUT 180 LABELS "netns;tsan")
set_property(TEST integration_multinode_output APPEND PROPERTY ENVIRONMENT
  "TSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/src/transport/tsan.supp")
# Wire-up: an unreachable head, signals to waiting agents and to a long
# launch loop (loopback nodes; the head's and agents' threads under TSan).
dv_runtime_script(integration_multinode_signals test_multinode_signals.sh
  TIMEOUT 240 LABELS tsan)
set_property(TEST integration_multinode_signals APPEND PROPERTY ENVIRONMENT
  "TSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/src/transport/tsan.supp")
dv_runtime_script(integration_multinode_slurm test_multinode_slurm.sh
  TIMEOUT 240 LABELS "slurm;netns")
# drover run outside the node set (a host file without this host first; a
# Slurm login node that is no compute node): it launches node 0 only.
dv_runtime_script(integration_multinode_launcher test_multinode_launcher.sh
  TIMEOUT 180 LABELS "netns")
dv_runtime_script(integration_multinode_slurm_login
  test_multinode_slurm_login.sh TIMEOUT 240 LABELS "slurm;netns")

# Installation: the library, the public headers, a pkg-config file and a
# CMake package configuration (find_package(drover) -> drover::drover).
include(CMakePackageConfigHelpers)
install(TARGETS drover EXPORT droverTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/drover
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set(dv_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/drover)
install(EXPORT droverTargets NAMESPACE drover:: DESTINATION ${dv_cmake_dir})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/droverConfig.cmake.in
  ${CMAKE_BINARY_DIR}/droverConfig.cmake INSTALL_DESTINATION ${dv_cmake_dir})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/droverConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
configure_file(${CMAKE_SOURCE_DIR}/cmake/drover.pc.in
  ${CMAKE_BINARY_DIR}/drover.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/droverConfig.cmake
  ${CMAKE_BINARY_DIR}/droverConfigVersion.cmake DESTINATION ${dv_cmake_dir})
install(FILES ${CMAKE_BINARY_DIR}/drover.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
# Installed copy + an example built outside the tree against it. Not under
# sanitizers: an instrumented library needs an instrumented program.
dv_runtime_script(integration_install test_install.sh TIMEOUT 300
  LABELS nosan)

# The last test of the suite: nothing of any job is left. It depends on
# every other test, collected once the whole tree is configured.
function(dv_collect_tests dir out)
  get_property(t DIRECTORY ${dir} PROPERTY TESTS)
  get_property(subs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(s ${subs})
    dv_collect_tests(${s} st)
    list(APPEND t ${st})
  endforeach()
  set(${out} ${t} PARENT_SCOPE)
endfunction()
function(dv_add_leftover_check)
  dv_collect_tests(${CMAKE_SOURCE_DIR} all)
  add_test(NAME leftovers
    COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/check_leftovers.sh)
  set_tests_properties(leftovers PROPERTIES DEPENDS "${all}" TIMEOUT 60
    LABELS "tsan;fuzz")
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL dv_add_leftover_check)

dv_add_test(test_init SOURCES ${dv_unit}/test_init.c LIBS drover TIMEOUT 60)
dv_add_test(test_process_threads SOURCES ${dv_unit}/test_process_threads.c
  LIBS drover Threads::Threads LABELS tsan TIMEOUT 120)
