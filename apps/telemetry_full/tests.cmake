# telemetry_full's integration tests (tests/integration/test_telemetry_full*.sh):
# real runs on this node, through `drover run` and started directly, on a
# small slice of the MNIST digits. Label telemetry_full; the bars in tmux
# are not repeated under the sanitizers (nosan): the other runs cover the
# same code there.
function(tf_add_script_test name script)
  cmake_parse_arguments(S "" "TIMEOUT" "LABELS" ${ARGN})
  set(labels telemetry_full ${S_LABELS})
  add_test(NAME ${name}
    COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/${script})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${S_TIMEOUT}
    SKIP_RETURN_CODE 77 LABELS "${labels}"
    ENVIRONMENT "DROVER_SOURCE_DIR=${CMAKE_SOURCE_DIR};DROVER_BUILD=${CMAKE_BINARY_DIR}")
endfunction()

tf_add_script_test(integration_telemetry_full test_telemetry_full.sh
  TIMEOUT 180)
tf_add_script_test(integration_telemetry_full_args
  test_telemetry_full_args.sh TIMEOUT 60)
tf_add_script_test(integration_telemetry_full_images
  test_telemetry_full_images.sh TIMEOUT 120)
tf_add_script_test(integration_telemetry_full_kill
  test_telemetry_full_kill.sh TIMEOUT 180)
tf_add_script_test(integration_telemetry_full_sigint
  test_telemetry_full_sigint.sh TIMEOUT 120)
tf_add_script_test(integration_telemetry_full_fail
  test_telemetry_full_fail.sh TIMEOUT 180)
tf_add_script_test(integration_telemetry_full_shm
  test_telemetry_full_shm.sh TIMEOUT 120)
tf_add_script_test(integration_telemetry_full_bars
  test_telemetry_full_bars.sh LABELS nosan TIMEOUT 180)
