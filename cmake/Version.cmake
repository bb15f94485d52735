# The version espstation reports (--version, every report's tool_version): `git describe --tags
# --always --dirty` of the source tree at configure time, or the project version outside a git
# checkout or without git. Configuring again after every commit is what keeps it true, so the
# checkout's HEAD and the branch it points to are configure dependencies. Also reads the version
# of the npm package the flasher stubs come from. Both land in a generated header
# (build/generated/es_version.h), never in the source tree.

set(ESPSTATION_VERSION_FULL "${PROJECT_VERSION}")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} describe --tags --always --dirty
                  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
                  OUTPUT_VARIABLE git_describe OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE git_rc ERROR_QUIET)
  if(git_rc EQUAL 0 AND NOT git_describe STREQUAL "")
    set(ESPSTATION_VERSION_FULL "${git_describe}")
    # A worktree keeps HEAD in its own git dir and branches in the common one: ask git for both.
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --git-path HEAD
                    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
                    OUTPUT_VARIABLE ref_path OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    execute_process(COMMAND ${GIT_EXECUTABLE} symbolic-ref -q HEAD
                    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
                    OUTPUT_VARIABLE branch OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    set(git_deps "${ref_path}")
    if(NOT branch STREQUAL "")
      execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --git-path ${branch}
                      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
                      OUTPUT_VARIABLE branch_path OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      list(APPEND git_deps "${branch_path}")
    endif()
    foreach(dep ${git_deps})
      if(NOT IS_ABSOLUTE "${dep}")
        set(dep "${CMAKE_SOURCE_DIR}/${dep}")
      endif()
      if(EXISTS "${dep}")
        set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${dep}")
      endif()
    endforeach()
  endif()
endif()

# The stub JSON files sit in <package>/lib/targets/stub_flasher; package.json names the version.
set(ESPSTATION_STUB_PACKAGE "unknown stub package")
get_filename_component(stub_pkg_dir "${ESPSTATION_STUB_DIR}/../../.." ABSOLUTE)
if(EXISTS "${stub_pkg_dir}/package.json")
  file(READ "${stub_pkg_dir}/package.json" stub_pkg_json)
  string(JSON stub_pkg_name ERROR_VARIABLE json_err GET "${stub_pkg_json}" name)
  string(JSON stub_pkg_version ERROR_VARIABLE json_err GET "${stub_pkg_json}" version)
  if(NOT json_err)
    set(ESPSTATION_STUB_PACKAGE "${stub_pkg_name} ${stub_pkg_version}")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${stub_pkg_dir}/package.json")
endif()

configure_file(${CMAKE_SOURCE_DIR}/cmake/es_version.h.in ${CMAKE_BINARY_DIR}/generated/es_version.h
               @ONLY)
message(STATUS "espstation version ${ESPSTATION_VERSION_FULL}, stubs from ${ESPSTATION_STUB_PACKAGE}")
