# fuzz_dec: the frame decoder and the control-payload decoders under
# libFuzzer (fuzz_dec.c); seeds in corpus/dec/, run by tests/fuzz/run.
add_executable(fuzz_dec ${CMAKE_CURRENT_LIST_DIR}/fuzz_dec.c)
target_link_libraries(fuzz_dec PRIVATE fy_proto)
target_link_options(fuzz_dec PRIVATE -fsanitize=fuzzer)

# Regenerates the seed corpus (not built by default):
#   cmake --build B --target fuzz_dec_seeds && B/tests/fuzz/fuzz_dec_seeds tests/fuzz/corpus/dec
add_executable(fuzz_dec_seeds EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/fuzz_dec_seeds.c)
target_link_libraries(fuzz_dec_seeds PRIVATE fy_proto)
