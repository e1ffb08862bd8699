# ferry-trace and the observability library (docs/observability.md).
#
# fy_obs (src/obs, prefixes fy_trfile_/fy_trsum_/fy_trdump_/fy_trchrome_ for
# reading traces; fy_trstream_/fy_trsnap_ for writing them from ferryd;
# fy_prom_/fy_httpd_ for /metrics) is defined here rather than in
# src/CMakeLists.txt so its build rules stay in a file its owner owns.
set(FY_OBS_DIR ${PROJECT_SOURCE_DIR}/src/obs)
add_library(fy_obs STATIC
  ${FY_OBS_DIR}/trfile.c    # trace file reader (untrusted input)
  ${FY_OBS_DIR}/trsum.c     # per-actor / per-kind figures
  ${FY_OBS_DIR}/trdump.c    # readable timeline
  ${FY_OBS_DIR}/trchrome.c  # Chrome Trace Event JSON
  ${FY_OBS_DIR}/trstream.c  # tracer actor: rings -> rotating file
  ${FY_OBS_DIR}/trsnap.c    # SIGUSR1 / fatal-signal dumps
  ${FY_OBS_DIR}/stats.c     # figures gathered from actors by message
  ${FY_OBS_DIR}/prom.c      # Prometheus text builder and checker
  ${FY_OBS_DIR}/httpd.c)    # HTTP/1.0 helper for GET /metrics
target_include_directories(fy_obs PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(fy_obs PUBLIC fy_rt fy_net fy_err m Threads::Threads)

add_executable(ferry-trace ${CMAKE_CURRENT_LIST_DIR}/ferry_trace.c)
target_link_libraries(ferry-trace PRIVATE fy_obs)
