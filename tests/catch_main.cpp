// Catch2's main() for the test binaries of a build against libc++. Debian's prebuilt
// Catch2WithMain library is compiled against libstdc++, and libc++ programs cannot link it, so such
// a build compiles Catch2's own main here instead (tests/CMakeLists.txt decides which).

#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
