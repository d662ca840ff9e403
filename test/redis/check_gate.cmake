# SPDX-License-Identifier: BSL-1.0
# ctest redis_gate_*: runs a test program as if redis-server were not installed (PATH holds only
# an empty directory) and checks what test/redis/redis_available.hpp promises (browser_gate_*
# checks test/browser/run.sh's Chromium gate the same way):
#   cmake -DPROGRAM=<exe> [-DARGS=a|b] -DCI_VALUE=<value of CI, empty: unset>
#         -DEXPECT_EXIT=<code> | -DEXPECT_FAILURE=ON   -DEXPECT_OUTPUT=<regex> -DWORK_DIR=<dir>
#         -P check_gate.cmake
cmake_minimum_required(VERSION 3.20)
foreach(_var PROGRAM EXPECT_OUTPUT WORK_DIR)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "check_gate.cmake: ${_var} is not set")
  endif()
endforeach()
string(REPLACE "|" ";" _args "${ARGS}")

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/empty-path")
set(ENV{PATH} "${WORK_DIR}/empty-path")
if(CI_VALUE STREQUAL "")
  unset(ENV{CI})
else()
  set(ENV{CI} "${CI_VALUE}")
endif()

execute_process(COMMAND "${PROGRAM}" ${_args}
  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
message("${PROGRAM} ${_args} (CI='${CI_VALUE}', PATH emptied): exit ${_rc}\n${_out}")
if(DEFINED EXPECT_EXIT AND NOT _rc STREQUAL EXPECT_EXIT)
  message(FATAL_ERROR "expected exit ${EXPECT_EXIT}, got ${_rc}")
endif()
if(EXPECT_FAILURE AND (_rc STREQUAL "0" OR _rc STREQUAL "77"))
  message(FATAL_ERROR "expected a failure, got exit ${_rc}")
endif()
if(NOT _out MATCHES "${EXPECT_OUTPUT}")
  message(FATAL_ERROR "the output does not match '${EXPECT_OUTPUT}'")
endif()
