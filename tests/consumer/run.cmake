# Builds and runs the consumer project against hsgd in one of three ways (MODE):
#   install      - install BUILD_DIR into a fresh prefix, then find_package(hsgd CONFIG) from there;
#   build_tree   - find_package(hsgd CONFIG) with hsgd_DIR pointing at BUILD_DIR;
#   subdirectory - add_subdirectory(SOURCE_DIR).
file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_source ${CMAKE_CURRENT_LIST_DIR})
set(consumer_build ${WORK_DIR}/build)

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGV}\n${output}")
  endif()
  message(STATUS "${output}")
endfunction()

if(MODE STREQUAL "install")
  set(prefix ${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
  set(how -DCMAKE_PREFIX_PATH=${prefix})
elseif(MODE STREQUAL "build_tree")
  set(how -Dhsgd_DIR=${BUILD_DIR})
elseif(MODE STREQUAL "subdirectory")
  set(how -DHSGD_SOURCE_DIR=${SOURCE_DIR})
else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()

run(${CMAKE_COMMAND} -S ${consumer_source} -B ${consumer_build} -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release ${how})
run(${CMAKE_COMMAND} --build ${consumer_build})
run(${consumer_build}/consumer)
