# test_buf: the packet buffer pool (src/rt/buf.c).
ferry_test(test_buf SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_buf.c LIBS fy_buf TIMEOUT 120 LABELS rt)
