# SPDX-License-Identifier: BSL-1.0
# The Redis client is a layer below the sessions: nothing under include/websession/redis/ may
# include a websession header other than <websession/redis/...>, <websession/result.hpp>, the
# build-mode switches <websession/detail/config.hpp> and <websession/detail/error_category.hpp>
# (the category template; it includes nothing of ours).
# Run as: cmake -DWS_INCLUDE_DIR=<repo>/include -P test/layering.cmake
# Fails naming every file and line that breaks the rule.
if(NOT WS_INCLUDE_DIR OR NOT IS_DIRECTORY "${WS_INCLUDE_DIR}/websession/redis")
  message(FATAL_ERROR "layering: WS_INCLUDE_DIR must be the include/ directory "
                      "(got '${WS_INCLUDE_DIR}')")
endif()

file(GLOB_RECURSE _files LIST_DIRECTORIES false "${WS_INCLUDE_DIR}/websession/redis/*")
list(SORT _files)
set(_violations "")
set(_checked 0)
foreach(_file IN LISTS _files)
  math(EXPR _checked "${_checked} + 1")
  # Lines as a CMake list: first hide what would split or merge list elements (';', brackets,
  # backslashes), so that element N is line N, empty lines included.
  file(READ "${_file}" _text)
  string(REPLACE "\\" "@BS@" _text "${_text}")
  string(REPLACE ";" "@SC@" _text "${_text}")
  string(REPLACE "[" "@LB@" _text "${_text}")
  string(REPLACE "]" "@RB@" _text "${_text}")
  string(REPLACE "\n" ";" _lines "${_text}")
  set(_n 0)
  foreach(_line IN LISTS _lines)
    math(EXPR _n "${_n} + 1")
    # Both spellings (<...> and "..."), with any spacing after the '#'.
    if(_line MATCHES "^[ \t]*#[ \t]*include[ \t]*[<\"]([^>\"]*)[>\"]")
      set(_target "${CMAKE_MATCH_1}")
      if(_target MATCHES "^websession/" AND NOT _target MATCHES "^websession/redis/"
         AND NOT _target STREQUAL "websession/result.hpp"
         AND NOT _target STREQUAL "websession/detail/config.hpp"
         AND NOT _target STREQUAL "websession/detail/error_category.hpp")
        file(RELATIVE_PATH _rel "${WS_INCLUDE_DIR}" "${_file}")
        string(APPEND _violations "\n  include/${_rel}:${_n}: includes <${_target}>")
      endif()
    endif()
  endforeach()
endforeach()

if(_checked EQUAL 0)
  message(FATAL_ERROR "layering: no file found under ${WS_INCLUDE_DIR}/websession/redis")
endif()
if(_violations)
  message(FATAL_ERROR "layering: the Redis client must not include the session layer (only "
                      "<websession/redis/...>, <websession/result.hpp> and "
                      "<websession/detail/config.hpp>, <websession/detail/error_category.hpp>):"
                      "${_violations}")
endif()
message(STATUS "layering: ${_checked} files under websession/redis/ include no session header")
