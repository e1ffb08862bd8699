# ferry-swarm: the stress-test client swarm (src/swarm, docs/swarm.md).
# fy_swarm is its engine, a library so the tests can drive the checker
# and the histogram directly.
set(FY_SWARM_DIR ${PROJECT_SOURCE_DIR}/src/swarm)
add_library(fy_swarm STATIC
  ${FY_SWARM_DIR}/lhist.c ${FY_SWARM_DIR}/pattern.c ${FY_SWARM_DIR}/rxchk.c
  ${FY_SWARM_DIR}/worker.c ${FY_SWARM_DIR}/tx.c ${FY_SWARM_DIR}/rx.c
  ${FY_SWARM_DIR}/swarm.c ${FY_SWARM_DIR}/report.c)
target_include_directories(fy_swarm PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(fy_swarm PUBLIC fy_link fy_proto fy_net fy_err Threads::Threads)

add_executable(ferry-swarm ${CMAKE_CURRENT_LIST_DIR}/ferry_swarm.c)
target_link_libraries(ferry-swarm PRIVATE fy_swarm)
