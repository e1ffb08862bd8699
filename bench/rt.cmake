# rt_bench: the actor runtime against a mutex + condvar queue, plus the
# mailbox on its own and the CPU an idle runtime uses.
add_executable(rt_bench ${CMAKE_CURRENT_LIST_DIR}/rt_bench.c)
target_include_directories(rt_bench PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(rt_bench PRIVATE fy_rt Threads::Threads)
