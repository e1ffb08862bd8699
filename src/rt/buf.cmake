# fy_buf: reference-counted packet buffers from a bounded pool (buf.c).
add_library(fy_buf STATIC ${CMAKE_CURRENT_LIST_DIR}/buf.c)
target_link_libraries(fy_buf PUBLIC fy_err PkgConfig::CK Threads::Threads)
