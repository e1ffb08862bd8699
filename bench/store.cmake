# store_bench: append throughput vs plain write(), look-ups/s, recovery time
# (store_bench.c).  Run a release build: build-rel/bench/store_bench
add_executable(store_bench ${CMAKE_CURRENT_LIST_DIR}/store_bench.c)
target_link_libraries(store_bench PRIVATE fy_store fy_proto fy_err)
