# ferry: the client (send, recv, check, demo; docs/client.md).
#
# Its modules live in src/cli/ (library fy_cli, prefix fy_cli_*); the
# library is defined here rather than in src/cli/CMakeLists.txt so that the
# client's build rules stay in files the client owns.  `ferry` itself is
# ferry.c: option parsing and wiring only.
set(FY_CLI_DIR ${PROJECT_SOURCE_DIR}/src/cli)
add_library(fy_cli STATIC
  ${FY_CLI_DIR}/exit.c      # exit codes and the error -> exit code mapping
  ${FY_CLI_DIR}/cancel.c    # SIGINT/SIGTERM -> shut down blocked sockets
  ${FY_CLI_DIR}/progress.c  # progress bar and key=value summary lines
  ${FY_CLI_DIR}/state.c     # DIR/.ferry-state for recv --resume
  ${FY_CLI_DIR}/conn.c      # one blocking connection: hello, frames
  ${FY_CLI_DIR}/send.c      # ferry send
  ${FY_CLI_DIR}/recv.c      # ferry recv
  ${FY_CLI_DIR}/check.c     # ferry check
  ${FY_CLI_DIR}/daemon.c    # start/stop a ferryd child (demo, tests)
  ${FY_CLI_DIR}/demo.c)     # ferry demo
target_include_directories(fy_cli PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(fy_cli PUBLIC fy_proto fy_store fy_net fy_err Threads::Threads)

add_executable(ferry ${CMAKE_CURRENT_LIST_DIR}/ferry.c)
target_link_libraries(ferry PRIVATE fy_cli)

# `cmake --build --preset release --target demo` builds ferry and ferryd and
# runs `ferry demo` (ferryd is found next to ferry).  ferryd.cmake is
# included after this file, so the dependency on it is added once the whole
# project is read, and only if ferryd exists by then.
add_custom_target(demo
  COMMAND $<TARGET_FILE:ferry> demo
  DEPENDS ferry
  USES_TERMINAL
  COMMENT "ferry demo: 1 sender -> 3 receivers through ferryd, 256 MiB")
function(fy_cli_demo_needs_ferryd)
  if(TARGET ferryd)
    add_dependencies(demo ferryd)
  else()
    message(WARNING "target ferryd not defined: `--target demo` will need it built")
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL fy_cli_demo_needs_ferryd)
