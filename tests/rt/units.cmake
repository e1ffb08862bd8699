ferry_test(test_units SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_units.c LIBS fy_err LABELS rt)
