# fuzz_store: recovery (fy_store_open) and fy_store_check on arbitrary
# segment + index files (fuzz_store.c); seeds in corpus/store/, run by
# tests/fuzz/run.  The seeds are written by a store test:
#   FY_STORE_CORPUS_DIR=tests/fuzz/corpus/store B/tests/store/test_store_recover
add_executable(fuzz_store ${CMAKE_CURRENT_LIST_DIR}/fuzz_store.c)
target_link_libraries(fuzz_store PRIVATE fy_store fy_proto fy_err)
target_link_options(fuzz_store PRIVATE -fsanitize=fuzzer)
