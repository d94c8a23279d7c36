# Builds and runs the consumer project (this directory) against hsgd in one of three ways (MODE):
#   install      - install BUILD_DIR into a fresh prefix, then find_package(hsgd CONFIG) from there;
#   build_tree   - find_package(hsgd CONFIG) with hsgd_DIR pointing at BUILD_DIR;
#   subdirectory - add_subdirectory(SOURCE_DIR), where hsgd is not the top-level project.
# Passes when the consumer runs and prints "hsgd EXPECTED_VERSION".
# Usage: cmake -DMODE=... -DSOURCE_DIR=... -DBUILD_DIR=... -DWORK_DIR=... -DGENERATOR=...
#              -DCXX_COMPILER=... [-DCXX_FLAGS=...] -DEXPECTED_VERSION=... -P run.cmake
foreach(variable IN ITEMS MODE SOURCE_DIR BUILD_DIR WORK_DIR GENERATOR EXPECTED_VERSION)
  if("${${variable}}" STREQUAL "")
    message(FATAL_ERROR "run.cmake needs -D${variable}=...")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_build ${WORK_DIR}/build)

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    list(JOIN ARGV " " command)
    message(FATAL_ERROR "failed (${result}): ${command}\n${output}")
  endif()
  set(output "${output}" PARENT_SCOPE)
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
  message(FATAL_ERROR "unknown MODE '${MODE}' (install, build_tree or subdirectory)")
endif()
set(compiler)
if(CXX_COMPILER)
  set(compiler -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
if(CXX_FLAGS)  # the build's CMAKE_CXX_FLAGS, e.g. -stdlib=libc++: the consumer uses the same library
  list(APPEND compiler "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()

run(${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR} -B ${consumer_build} -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release
    ${compiler} ${how})
if(EXPECT_MPI AND NOT output MATCHES "hsgd::mpi is available")
  message(FATAL_ERROR "hsgd was built with MPI, but the consumer found no hsgd::mpi:\n${output}")
endif()
run(${CMAKE_COMMAND} --build ${consumer_build})
run(${consumer_build}/consumer)
message(STATUS "${output}")
if(NOT output MATCHES "hsgd ${EXPECTED_VERSION}")
  message(FATAL_ERROR "the consumer ran but did not print 'hsgd ${EXPECTED_VERSION}'")
endif()
