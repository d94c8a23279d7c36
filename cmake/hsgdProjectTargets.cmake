# Settings for hsgd's own executables (tests, examples, benchmarks), never for the hsgd INTERFACE
# target that users link: warnings are errors here, and sanitizers are on when HSGD_SANITIZE asks.
#
# Eigen, fmt, Catch2 and Google Benchmark come in as imported targets, whose include directories
# are SYSTEM (-isystem) by default, so these warnings apply to hsgd's headers and the project's
# sources only.

set(HSGD_WARNINGS -Wall -Wextra -Wpedantic -Werror -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
                  -Woverloaded-virtual -Wformat=2 -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(APPEND HSGD_WARNINGS -Wduplicated-cond -Wlogical-op)
endif()

if(HSGD_SANITIZE AND NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  message(FATAL_ERROR "HSGD_SANITIZE needs GCC or Clang (compiler is ${CMAKE_CXX_COMPILER_ID})")
endif()

function(hsgd_project_target target)
  target_link_libraries(${target} PRIVATE hsgd::hsgd)
  target_compile_options(${target} PRIVATE ${HSGD_WARNINGS})
  if(HSGD_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${HSGD_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${HSGD_SANITIZE} -fno-sanitize-recover=all)
  endif()
endfunction()
