# Tests of the telemetry library, registered beside the code. The test
# doubles of libnvidia-ml and librocm_smi64 (tests/fakes) are shared
# libraries the samplers load through their usual dlopen path.
foreach(fake nvml rsmi)
  add_library(dv_fake_${fake} SHARED ${CMAKE_SOURCE_DIR}/tests/fakes/fake_${fake}.c)
  set_target_properties(dv_fake_${fake} PROPERTIES C_VISIBILITY_PRESET default)
endforeach()
target_link_libraries(dv_fake_nvml PRIVATE Threads::Threads)
# DV_FAKE_NVML=thread leaves a thread running in the double: its code must
# stay mapped after dlclose, so that copy is never unloaded (the plain one
# is, and starts its counts afresh at each load).
add_library(dv_fake_nvml_thread SHARED ${CMAKE_SOURCE_DIR}/tests/fakes/fake_nvml.c)
set_target_properties(dv_fake_nvml_thread PROPERTIES C_VISIBILITY_PRESET default)
target_link_libraries(dv_fake_nvml_thread PRIVATE Threads::Threads)
target_link_options(dv_fake_nvml_thread PRIVATE "LINKER:-z,nodelete")

dv_add_test(test_telemetry_procfs
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_telemetry_procfs.c
  LIBS drover_telemetry TIMEOUT 60)
dv_add_test(test_telemetry_gpu
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_telemetry_gpu.c
  LIBS drover_telemetry TIMEOUT 60)
add_dependencies(test_telemetry_gpu dv_fake_nvml dv_fake_rsmi)
target_compile_definitions(test_telemetry_gpu PRIVATE
  FAKE_NVML="$<TARGET_FILE:dv_fake_nvml>" FAKE_RSMI="$<TARGET_FILE:dv_fake_rsmi>")
dv_add_test(test_telemetry_record
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_telemetry_record.c
  LIBS drover_telemetry TIMEOUT 120)
dv_add_test(test_telemetry_monitor
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_telemetry_monitor.c
  LIBS drover_telemetry TIMEOUT 60)
dv_add_test(test_render_text
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_render_text.c
  LIBS drover_telemetry TIMEOUT 60)
dv_add_test(test_render_files
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_render_files.c
  LIBS drover_telemetry TIMEOUT 120)

# `drover top` end to end through the tool, with the NVML test double.
add_test(NAME test_telemetry_top
  COMMAND ${CMAKE_SOURCE_DIR}/tests/unit/test_telemetry_top.sh
          $<TARGET_FILE:drover-telemetry> $<TARGET_FILE:dv_fake_nvml>)
set_tests_properties(test_telemetry_top PROPERTIES TIMEOUT 60
  ENVIRONMENT "DROVER_SOURCE_DIR=${CMAKE_SOURCE_DIR}")

dv_add_fuzz(fuzz_telemetry_record
  SOURCES ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_telemetry_record.c
  LIBS drover_telemetry)
