# SPDX-License-Identifier: BSL-1.0
# Finds hiredis (>= websession_hiredis_min_version) for websession::redis. Used by the build
# (CMakeLists.txt) and, installed beside the package, by websessionRedisDependencies.cmake, so
# that a consumer finds hiredis the way the build did.
#
#   websession_find_hiredis(<how>)   <how>: ANY (the build), CONFIG or PKGCONFIG (the consumer)
#
# Tries hiredis's own CMake package first (a hiredis::hiredis target already defined, or
# hiredis-config.cmake, which hiredis >= 1.0 installs with that target), then pkg-config
# (IMPORTED_TARGET PkgConfig::HIREDIS; hiredis 0.14's HiredisConfig.cmake defines no target, so
# Debian 12 goes this way). Sets, in the caller's scope:
#   websession_hiredis_target   the imported target to link, empty when not found
#   websession_hiredis_via      CONFIG or PKGCONFIG
#   websession_hiredis_version  the version found (may be empty if hiredis does not say)
#   websession_hiredis_problem  why nothing usable was found (empty when found)
set(websession_hiredis_min_version 0.14)

function(websession_find_hiredis how)
  set(target "")
  set(via "")
  set(version "")
  set(problem "")

  if(how STREQUAL "ANY" OR how STREQUAL "CONFIG")
    # A hiredis::hiredis the project already has (FetchContent, add_subdirectory) wins. No
    # version in find_package: hiredis's version file may accept only its own major version.
    if(NOT TARGET hiredis::hiredis)
      find_package(hiredis CONFIG QUIET)
    endif()
    if(TARGET hiredis::hiredis)
      set(target hiredis::hiredis)
      set(via CONFIG)
      set(version "${hiredis_VERSION}")
      if(version STREQUAL "")
        # Older configs leave the version out: read it from the header.
        get_target_property(dirs hiredis::hiredis INTERFACE_INCLUDE_DIRECTORIES)
        foreach(dir IN LISTS dirs)
          if(EXISTS "${dir}/hiredis/hiredis.h")
            file(STRINGS "${dir}/hiredis/hiredis.h" lines REGEX "^#define HIREDIS_(MAJOR|MINOR|PATCH) ")
            string(REGEX REPLACE ".*HIREDIS_MAJOR ([0-9]+).*" "\\1" major "${lines}")
            string(REGEX REPLACE ".*HIREDIS_MINOR ([0-9]+).*" "\\1" minor "${lines}")
            if(major MATCHES "^[0-9]+$" AND minor MATCHES "^[0-9]+$")
              set(version "${major}.${minor}")
            endif()
            break()
          endif()
        endforeach()
      endif()
      if(NOT version STREQUAL "" AND version VERSION_LESS websession_hiredis_min_version)
        set(problem "hiredis ${version} (hiredis::hiredis) is too old: websession needs hiredis >= ${websession_hiredis_min_version}")
        set(target "")
      endif()
    endif()
  endif()

  if(NOT target AND (how STREQUAL "ANY" OR how STREQUAL "PKGCONFIG"))
    find_package(PkgConfig QUIET)
    if(PkgConfig_FOUND)
      pkg_check_modules(HIREDIS QUIET IMPORTED_TARGET hiredis)
      if(TARGET PkgConfig::HIREDIS)
        if(HIREDIS_VERSION VERSION_LESS websession_hiredis_min_version)
          set(problem "hiredis ${HIREDIS_VERSION} (pkg-config) is too old: websession needs hiredis >= ${websession_hiredis_min_version}")
        else()
          set(target PkgConfig::HIREDIS)
          set(via PKGCONFIG)
          set(version "${HIREDIS_VERSION}")
          set(problem "")
        endif()
      endif()
    elseif(how STREQUAL "PKGCONFIG")
      set(problem "pkg-config was not found (websession was built against hiredis found through it)")
    endif()
  endif()

  if(NOT target AND problem STREQUAL "")
    if(how STREQUAL "CONFIG")
      set(problem "hiredis's CMake package (hiredis-config.cmake, target hiredis::hiredis) was not found")
    elseif(how STREQUAL "PKGCONFIG")
      set(problem "hiredis was not found through pkg-config (hiredis.pc)")
    else()
      set(problem "hiredis was found neither as a CMake package (hiredis::hiredis) nor through pkg-config")
    endif()
  endif()

  set(websession_hiredis_target "${target}" PARENT_SCOPE)
  set(websession_hiredis_via "${via}" PARENT_SCOPE)
  set(websession_hiredis_version "${version}" PARENT_SCOPE)
  set(websession_hiredis_problem "${problem}" PARENT_SCOPE)
endfunction()
