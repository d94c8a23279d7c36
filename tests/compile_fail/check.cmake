# Compiles SOURCE (syntax only) and passes when compilation fails with the message written on the
# source's "// expect: ..." line.
file(STRINGS ${SOURCE} expect_line REGEX "^// expect: ")
string(REGEX REPLACE "^// expect: " "" expected "${expect_line}")
if(expected STREQUAL "")
  message(FATAL_ERROR "${SOURCE} has no '// expect: ' line")
endif()
string(REPLACE "|" ";" include_dirs "${INCLUDES}")
# FLAGS: the build's CMAKE_CXX_FLAGS (e.g. -stdlib=libc++), so that the check sees the same library.
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
list(APPEND flags -std=c++20 -fsyntax-only)
foreach(dir IN LISTS include_dirs)
  list(APPEND flags -isystem ${dir})
endforeach()
execute_process(COMMAND ${COMPILER} ${flags} ${SOURCE} RESULT_VARIABLE result OUTPUT_VARIABLE output
                ERROR_VARIABLE output)
if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it should fail with: ${expected}")
endif()
string(FIND "${output}" "${expected}" found)
if(found EQUAL -1)
  message(FATAL_ERROR "${SOURCE} failed without the expected message '${expected}':\n${output}")
endif()
