# Runtime core tests: mailbox stress, actors and scheduling, I/O and timers, trace.
ferry_test(test_mbox SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mbox.c LIBS fy_rt TIMEOUT 120 LABELS rt)
ferry_test(test_actor SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_actor.c LIBS fy_rt TIMEOUT 180 LABELS rt)
ferry_test(test_io SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_io.c LIBS fy_rt TIMEOUT 120 LABELS rt)
ferry_test(test_trace SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_trace.c LIBS fy_rt TIMEOUT 120 LABELS rt)
