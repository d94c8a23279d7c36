// The worker thread pool: thread counts refused by name or clamped to the workers, and a pool
// whose threads the system refuses to start.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

TEST_CASE("Options refuses absurd thread counts, naming 'threads'", "[hardening][threads]") {
  hsgd::Options options;
  for (const Index threads : {Index{10'000}, Index{1'000'000}, Index{-1}, max_index}) {
    options.threads = threads;
    CHECK_THROWS_WITH(options.validate(), Contains("'threads' (" + std::to_string(threads) + ") must be in [0, 1024]"));
  }
  options.threads = hsgd::Options::max_threads;
  CHECK_NOTHROW(options.validate());
}

TEST_CASE("More threads than workers are clamped to the workers", "[hardening][threads]") {
  auto shards = quadratics(3);
  hsgd::Engine engine(hsgd::Topology::local_sgd(3, 2), std::move(shards), hsgd::UniformSampler(2), options_with(6, 64));
  CHECK(engine.threads() == 3);
  engine.run();
  CHECK(engine.step_count() == 6);

  auto zero = options_with(6, 0);  // one per hardware thread, at most one per worker
  hsgd::Engine automatic(hsgd::Topology::local_sgd(3, 2), quadratics(3), hsgd::UniformSampler(2), zero);
  const auto hardware = std::max<Index>(1, static_cast<Index>(std::thread::hardware_concurrency()));
  CHECK(automatic.threads() == std::min<Index>(3, hardware));
}

TEST_CASE("A pool whose threads the system refuses throws ResourceError instead of hanging", "[hardening][threads]") {
  // A child process lowers its own process limit (RLIMIT_NPROC counts threads too) so that no
  // new thread can start, then builds an engine that wants 4. Root ignores the limit, so a root
  // child first becomes 'nobody'. The parent waits at most 60 s: the old pool hung forever here.
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
    const rlimit none{1, 1};
    if (setrlimit(RLIMIT_NPROC, &none) != 0) _exit(4);
    int code = 1;
    try {
      hsgd::Engine engine(hsgd::Topology::local_sgd(8, 2), quadratics(8), hsgd::UniformSampler(2), options_with(4, 4));
      code = 5;  // started: the limit did not bite
    } catch (const hsgd::ResourceError& error) {
      const std::string message = error.what();
      code = message.find("could not start thread 2 of the 4 that 'threads' asks for") != std::string::npos ? 0 : 6;
    } catch (...) {
      code = 7;
    }
    _exit(code);
  }
  int status = 0;
  pid_t done = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((done = waitpid(child, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (done == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    FAIL("the engine hung when its pool could not start a thread");
  }
  REQUIRE(WIFEXITED(status));
  INFO("child exit code (0: ResourceError with the expected message; 5: the limit did not bite)");
  CHECK(WEXITSTATUS(status) == 0);
}
