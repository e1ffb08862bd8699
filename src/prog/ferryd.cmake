# ferryd: the relay daemon (src/prog/ferryd.c parses options; actors/ does the work).
add_executable(ferryd ${CMAKE_CURRENT_LIST_DIR}/ferryd.c)
target_link_libraries(ferryd PRIVATE fy_relay)
