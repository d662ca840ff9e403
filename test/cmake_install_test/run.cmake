# SPDX-License-Identifier: BSL-1.0
# Driver of the cmake_install_test and cmake_subdir_test ctest tests (see test/CMakeLists.txt):
#   cmake -DWS_MODE=install|subdir|subdir_tests -DWS_WORK_DIR=... (and the WS_* build settings)
#     -P run.cmake
# install: `cmake --install` the build tree WS_BINARY_DIR into WS_WORK_DIR/prefix, then
#          configure, build and run the consumer against that prefix with find_package.
# subdir:  configure, build and run the consumer with add_subdirectory(WS_SOURCE_DIR).
# subdir_tests: the same with websession's tests, examples and benchmarks on; builds a test
#          target (the header check of one header), builds and runs the quickstart example, and
#          checks that ctest lists the unit suite. Building the whole suite again would take
#          minutes; configuring and compiling through the test and example targets is what
#          breaks when a target they link (websession_warnings) is missing.
# hiredis_config: hiredis as its own CMake package (a hiredis-config.cmake with hiredis::hiredis,
#          written here around the system's libhiredis, as hiredis >= 1.0 installs one) and no
#          pkg-config: configure and install websession with WEBSESSION_WITH_REDIS=ON, then the
#          install-mode consumer with COMPONENTS redis, which must find hiredis the same way.
cmake_minimum_required(VERSION 3.20)

foreach(_var WS_MODE WS_SOURCE_DIR WS_CONSUMER_DIR WS_WORK_DIR WS_GENERATOR WS_CXX_COMPILER)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "run.cmake: ${_var} is not set")
  endif()
endforeach()

function(ws_run what)
  message(STATUS "[${WS_MODE}] ${what}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "[${WS_MODE}] ${what} failed (${rc})")
  endif()
endfunction()

# Start clean: stale files in the prefix or a stale cache would hide packaging mistakes.
file(REMOVE_RECURSE "${WS_WORK_DIR}")
file(MAKE_DIRECTORY "${WS_WORK_DIR}")

# The parent build's CMAKE_PREFIX_PATH (if any) reaches the consumer through the environment
# (':'-separated, searched after the -DCMAKE_PREFIX_PATH given below), so that a list never has
# to survive a command line.
if(WS_PREFIX_PATH)
  string(REPLACE "|" ":" _env_prefix_path "${WS_PREFIX_PATH}")
  if(DEFINED ENV{CMAKE_PREFIX_PATH} AND NOT "$ENV{CMAKE_PREFIX_PATH}" STREQUAL "")
    string(APPEND _env_prefix_path ":$ENV{CMAKE_PREFIX_PATH}")
  endif()
  set(ENV{CMAKE_PREFIX_PATH} "${_env_prefix_path}")
endif()
# Settings of every configure run here; each adds its -S and -B.
set(_configure_args
  -G "${WS_GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${WS_CXX_COMPILER}"
  "-DCMAKE_CXX_FLAGS=${WS_CXX_FLAGS}"
  "-DCMAKE_EXE_LINKER_FLAGS=${WS_EXE_LINKER_FLAGS}"
  "-DCMAKE_BUILD_TYPE=${WS_BUILD_TYPE}"
  # Never find a package through the user or system package registries.
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(WS_MAKE_PROGRAM)
  list(APPEND _configure_args "-DCMAKE_MAKE_PROGRAM=${WS_MAKE_PROGRAM}")
endif()
if(WS_CXX_COMPILER_LAUNCHER)
  list(APPEND _configure_args "-DCMAKE_CXX_COMPILER_LAUNCHER=${WS_CXX_COMPILER_LAUNCHER}")
endif()

if(WS_MODE STREQUAL "hiredis_config")
  # hiredis's header directory and library, found by test/CMakeLists.txt.
  set(_hiredis_include "${WS_HIREDIS_INCLUDE}")
  set(_hiredis_library "${WS_HIREDIS_LIBRARY}")
  if(NOT EXISTS "${_hiredis_include}/hiredis/hiredis.h" OR NOT EXISTS "${_hiredis_library}")
    message(FATAL_ERROR "[${WS_MODE}] WS_HIREDIS_INCLUDE and WS_HIREDIS_LIBRARY must name hiredis")
  endif()
  set(_hiredis_prefix "${WS_WORK_DIR}/hiredis")
  file(WRITE "${_hiredis_prefix}/lib/cmake/hiredis/hiredis-config.cmake" "\
if(NOT TARGET hiredis::hiredis)
  add_library(hiredis::hiredis UNKNOWN IMPORTED)
  set_target_properties(hiredis::hiredis PROPERTIES
    IMPORTED_LOCATION \"${_hiredis_library}\"
    INTERFACE_INCLUDE_DIRECTORIES \"${_hiredis_include}\")
endif()
")
  # No version file: websession reads the version from hiredis.h then.
  # Hide pkg-config's hiredis, so that only the CMake package can be found.
  set(ENV{PKG_CONFIG_LIBDIR} "${WS_WORK_DIR}/no-pkg-config")
  set(ENV{PKG_CONFIG_PATH} "")
  ws_run("configure websession" "${CMAKE_COMMAND}" -S "${WS_SOURCE_DIR}" -B "${WS_WORK_DIR}/websession"
    ${_configure_args} "-DCMAKE_PREFIX_PATH=${_hiredis_prefix}" -DWEBSESSION_WITH_REDIS=ON
    -DWEBSESSION_BUILD_TESTS=OFF -DWEBSESSION_BUILD_EXAMPLES=OFF -DWEBSESSION_BUILD_BENCH=OFF
    -DWEBSESSION_INSTALL=ON)
  set(_prefix "${WS_WORK_DIR}/prefix")
  ws_run("install websession" "${CMAKE_COMMAND}" --install "${WS_WORK_DIR}/websession" --prefix "${_prefix}")
  # The consumer finds hiredis through the environment (a list would not survive -D here).
  if(DEFINED ENV{CMAKE_PREFIX_PATH} AND NOT "$ENV{CMAKE_PREFIX_PATH}" STREQUAL "")
    set(ENV{CMAKE_PREFIX_PATH} "${_hiredis_prefix}:$ENV{CMAKE_PREFIX_PATH}")
  else()
    set(ENV{CMAKE_PREFIX_PATH} "${_hiredis_prefix}")
  endif()
  list(APPEND _configure_args "-DCMAKE_PREFIX_PATH=${_prefix}" "-DWS_EXPECT_PREFIX=${_prefix}"
    -DWS_EXPECT_HIREDIS_TARGET=hiredis::hiredis)
elseif(WS_MODE STREQUAL "install")
  if(NOT WS_BINARY_DIR)
    message(FATAL_ERROR "run.cmake: WS_BINARY_DIR is not set")
  endif()
  set(_prefix "${WS_WORK_DIR}/prefix")
  ws_run("install" "${CMAKE_COMMAND}" --install "${WS_BINARY_DIR}" --prefix "${_prefix}")
  # The headers, the store conformance kit among them, and the licence.
  foreach(_file include/websession/error.hpp include/websession/concepts.hpp
      include/websession/defaults.hpp include/websession/result.hpp
      include/websession/testing/store_conformance.hpp include/websession/testing/archetypes.hpp
      include/websession/testing/run.hpp share/doc/websession/LICENSE_1_0.txt)
    if(NOT EXISTS "${_prefix}/${_file}")
      message(FATAL_ERROR "[install] ${_file} was not installed")
    endif()
  endforeach()
  list(APPEND _configure_args "-DCMAKE_PREFIX_PATH=${_prefix}" "-DWS_EXPECT_PREFIX=${_prefix}")
  if(WS_EXPECT_VERSION)
    list(APPEND _configure_args "-DWS_EXPECT_VERSION=${WS_EXPECT_VERSION}")
  endif()
  if(WS_EXPECT_HIREDIS_TARGET)
    list(APPEND _configure_args "-DWS_EXPECT_HIREDIS_TARGET=${WS_EXPECT_HIREDIS_TARGET}")
  endif()
elseif(WS_MODE STREQUAL "subdir")
  list(APPEND _configure_args "-DWEBSESSION_SOURCE_DIR=${WS_SOURCE_DIR}")
elseif(WS_MODE STREQUAL "subdir_tests")
  list(APPEND _configure_args "-DWEBSESSION_SOURCE_DIR=${WS_SOURCE_DIR}" -DWS_SUBDIR_TESTS=ON)
else()
  message(FATAL_ERROR "run.cmake: unknown WS_MODE '${WS_MODE}'")
endif()

ws_run("configure" "${CMAKE_COMMAND}" -S "${WS_CONSUMER_DIR}" -B "${WS_WORK_DIR}/build"
  ${_configure_args})
if(WS_MODE STREQUAL "subdir_tests")
  ws_run("build" "${CMAKE_COMMAND}" --build "${WS_WORK_DIR}/build"
    --target websession_consumer websession_header_tests quickstart)
  ws_run("run quickstart" "${WS_WORK_DIR}/build/websession/example/quickstart" --dev-secret)
  execute_process(COMMAND "${CMAKE_CTEST_COMMAND}" -N
    WORKING_DIRECTORY "${WS_WORK_DIR}/build" OUTPUT_VARIABLE _listed RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT _listed MATCHES "Test +#[0-9]+: unit\n")
    message(FATAL_ERROR "[${WS_MODE}] ctest -N does not list websession's unit suite:\n${_listed}")
  endif()
else()
  ws_run("build" "${CMAKE_COMMAND}" --build "${WS_WORK_DIR}/build")
endif()
ws_run("run" "${WS_WORK_DIR}/build/websession_consumer")
