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

  # GCC 12 before 12.3 (GCC bug 105593) warns -Wuninitialized and -Wmaybe-uninitialized inside its
  # own AVX-512 intrinsics: _mm512_extractf64x4_pd() and friends pass _mm256_undefined_pd(), whose
  # `__m256d __Y = __Y;` is a self-initialisation meant to silence exactly those warnings, but -Wall
  # turns on -Winit-self in C++, which makes GCC warn about it after all. Eigen's AVX-512 code calls
  # these intrinsics, so every -march=native (or -mavx512f) -Werror build on an AVX-512 machine
  # fails in code hsgd cannot change. (The intrinsics are a system header, but in inlined code GCC
  # reports at the outermost location that is not, which is the project's source.)
  # The most targeted fix: compile a few lines that use those intrinsics, with this build's flags
  # and -Wall; only when GCC warns there, add -Wno-init-self. That restores the idiom and nothing
  # else: -Wuninitialized and -Wmaybe-uninitialized stay on (and errors) for hsgd's code; only
  # `T x = x;` is no longer reported. GCC 12.3 or later, other compilers and builds without
  # AVX-512 are unchanged.
  # The result is cached per compiler and flags, so adding -march=native to a build re-checks.
  include(CheckCXXSourceCompiles)
  string(MD5 hsgd_flags_hash "${CMAKE_CXX_COMPILER};${CMAKE_CXX_COMPILER_VERSION};${CMAKE_CXX_FLAGS}")
  string(SUBSTRING ${hsgd_flags_hash} 0 8 hsgd_flags_hash)
  set(CMAKE_REQUIRED_FLAGS "-O2 -Wall -Werror")
  set(CMAKE_REQUIRED_QUIET ON)
  check_cxx_source_compiles([[
#include <immintrin.h>
double sum(const double* p) {
#ifdef __AVX512F__
  const __m512d a = _mm512_loadu_pd(p);
  const __m256d s = _mm256_add_pd(_mm512_extractf64x4_pd(a, 0), _mm512_extractf64x4_pd(a, 1));
  const __m128d t = _mm_add_pd(_mm256_extractf128_pd(s, 0), _mm256_extractf128_pd(s, 1));
  return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
#else
  return p[0];
#endif
}
int main(int argc, char**) {
  double v[8] = {1, 2, 3, 4, 5, 6, 7, static_cast<double>(argc)};
  return sum(v) > 0 ? 0 : 1;
}
]] HSGD_GCC_AVX512_INTRINSICS_CLEAN_${hsgd_flags_hash})
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_QUIET)
  if(NOT HSGD_GCC_AVX512_INTRINSICS_CLEAN_${hsgd_flags_hash})
    message(STATUS "hsgd: GCC ${CMAKE_CXX_COMPILER_VERSION} warns inside its AVX-512 intrinsics (GCC bug 105593): "
                   "-Wno-init-self for hsgd's own targets")
    list(APPEND HSGD_WARNINGS -Wno-init-self)
  endif()
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
