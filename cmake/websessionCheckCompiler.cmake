# SPDX-License-Identifier: BSL-1.0
# The platform and compilers websession supports: Linux, GCC >= 12, Clang >= 14 (C++20 coroutines
# and concepts as the library uses them; older releases fail deep inside Asio with errors that do
# not name the cause). Used by the build and by the installed package config.
#
#   websession_check_compiler(<out_var>)
# Sets <out_var> to a message when the C++ compiler is too old, to "" otherwise. Warns about an
# untested compiler or platform; says nothing when C++ is not enabled.
function(websession_check_compiler out_var)
  set(${out_var} "" PARENT_SCOPE)
  set(id "${CMAKE_CXX_COMPILER_ID}")
  set(version "${CMAKE_CXX_COMPILER_VERSION}")
  if(id STREQUAL "")
    return()
  endif()
  if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
    message(WARNING "websession is tested on Linux only, not on ${CMAKE_SYSTEM_NAME}")
  endif()
  if(id STREQUAL "GNU")
    set(minimum 12)
  elseif(id STREQUAL "Clang")
    set(minimum 14)
  else()
    message(WARNING "websession is tested with GCC >= 12 and Clang >= 14; ${id} ${version} is untested")
    return()
  endif()
  if(version VERSION_LESS minimum)
    set(${out_var} "websession needs GCC >= 12 or Clang >= 14 (C++20 coroutines and concepts); \
${CMAKE_CXX_COMPILER} is ${id} ${version}. Choose a newer one with -DCMAKE_CXX_COMPILER=..." PARENT_SCOPE)
  endif()
endfunction()
