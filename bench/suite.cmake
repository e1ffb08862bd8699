# bench-suite: the whole benchmark suite (bench/run, docs/benchmarks.md) against
# this build directory: p2p vs ferry-baseline vs ferryd, one table, JSON and
# plots in bench/results/.  bench-suite-quick is the under-a-minute form.
# Neither is part of `all` or of ctest: they measure, they do not test.
# Build a release tree for meaningful numbers:
#   cmake --preset release && cmake --build build/release --target bench-suite
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  set(FY_BENCH_PY ${Python3_EXECUTABLE})
else()
  set(FY_BENCH_PY python3)
endif()

add_custom_target(bench-suite
  COMMAND ${FY_BENCH_PY} ${CMAKE_CURRENT_LIST_DIR}/run
          --build ${CMAKE_BINARY_DIR} --out ${CMAKE_CURRENT_LIST_DIR}/results
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  USES_TERMINAL
  COMMENT "Benchmark suite (about 5-10 minutes): bench/run --build ${CMAKE_BINARY_DIR}")
add_custom_target(bench-suite-quick
  COMMAND ${FY_BENCH_PY} ${CMAKE_CURRENT_LIST_DIR}/run --quick
          --build ${CMAKE_BINARY_DIR} --out ${CMAKE_CURRENT_LIST_DIR}/results/quick
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  USES_TERMINAL
  COMMENT "Quick benchmark suite (under a minute): bench/run --quick")

# The programs the suite drives.  ferry-baseline is defined later (bench/baseline)
# and the others may be absent while they are being written, so the
# dependencies are added at the end of this directory, for those that exist.
function(fy_bench_suite_deps)
  foreach(t ferry-swarm ferryd ferry-baseline ferry)
    if(TARGET ${t})
      add_dependencies(bench-suite ${t})
      add_dependencies(bench-suite-quick ${t})
    endif()
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} CALL fy_bench_suite_deps)
