# proto_bench: decoder and sealing throughput against memcpy (proto_bench.c).
add_executable(proto_bench ${CMAKE_CURRENT_LIST_DIR}/proto_bench.c)
target_link_libraries(proto_bench PRIVATE fy_proto)
