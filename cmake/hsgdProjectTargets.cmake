# Settings for hsgd's own executables (tests, examples, benchmarks), never for the library target
# users link: warnings are errors here, and sanitizers when HSGD_SANITIZE asks for them.

function(hsgd_project_target target)
  target_link_libraries(${target} PRIVATE hsgd::hsgd)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
  if(HSGD_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${HSGD_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${HSGD_SANITIZE})
  endif()
endfunction()
