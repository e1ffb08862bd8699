# fy_rt: the actor runtime -- mailboxes (the only lock-free code), actors,
# message pool, scheduler, epoll poller, timers and the trace.
add_library(fy_rt STATIC
  ${CMAKE_CURRENT_LIST_DIR}/mbox.c
  ${CMAKE_CURRENT_LIST_DIR}/msg.c
  ${CMAKE_CURRENT_LIST_DIR}/actor.c
  ${CMAKE_CURRENT_LIST_DIR}/sched.c
  ${CMAKE_CURRENT_LIST_DIR}/io.c
  ${CMAKE_CURRENT_LIST_DIR}/timer.c
  ${CMAKE_CURRENT_LIST_DIR}/trace.c)
target_include_directories(fy_rt PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(fy_rt PUBLIC fy_buf fy_err PkgConfig::CK Threads::Threads)
