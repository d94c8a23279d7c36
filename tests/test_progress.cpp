// hsgd::ProgressBar: a line per quarter of the run on a stream that is not a terminal, a bar
// redrawn in place (and removed at the end) on one that is, stderr by default and never stdout.

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;
using Catch::Matchers::StartsWith;

namespace {

auto engine_of(Index steps) {
  return hsgd::Engine(hsgd::Topology::two_level(6, 2, 2, 4), noisy_quadratics(6, 2, 1), hsgd::UniformSampler(2),
                      options_with(steps));
}

/// Everything written to `file` so far.
std::string contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file)) text.push_back(static_cast<char>(c));
  return text;
}

/// What a ProgressBar labelled `label` writes to a file over a run of `steps` steps.
std::string logged(const std::string& label, Index steps) {
  std::FILE* log = std::tmpfile();
  if (log == nullptr) throw std::runtime_error("no temporary file");
  auto engine = engine_of(steps);
  hsgd::ProgressBar progress(label, steps, log);
  engine.run(progress);
  std::string text = contents(log);
  std::fclose(log);
  return text;
}

/// Points file descriptor `fd` (1: stdout, 2: stderr) at a temporary file while alive.
class Capture {
 public:
  explicit Capture(int fd) : fd_(fd), file_(std::tmpfile()) {
    std::fflush(nullptr);
    saved_ = ::dup(fd_);
    if (file_ == nullptr || saved_ < 0 || ::dup2(::fileno(file_), fd_) < 0) throw std::runtime_error("cannot capture");
  }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;
  ~Capture() {
    restore();
    std::fclose(file_);
  }
  /// Restores the descriptor and returns what was written to it.
  std::string text() {
    restore();
    return contents(file_);
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(nullptr);
    ::dup2(saved_, fd_);
    ::close(saved_);
    saved_ = -1;
  }
  int fd_;
  std::FILE* file_;
  int saved_ = -1;
};

}  // namespace

TEST_CASE("ProgressBar: a line at each quarter of the run on a stream that is not a terminal", "[progress]") {
  CHECK(logged("hsgd-random", 8) ==
        "  hsgd-random: step 2/8 (25%)\n"
        "  hsgd-random: step 4/8 (50%)\n"
        "  hsgd-random: step 6/8 (75%)\n"
        "  hsgd-random: step 8/8 (100%)\n");
  // A length the quarters do not divide: each line at the first step past its quarter.
  CHECK(logged("local-sgd-I", 10) ==
        "  local-sgd-I: step 3/10 (25%)\n"
        "  local-sgd-I: step 5/10 (50%)\n"
        "  local-sgd-I: step 8/10 (75%)\n"
        "  local-sgd-I: step 10/10 (100%)\n");
}

TEST_CASE("ProgressBar: stderr by default, nothing on stdout", "[progress]") {
  auto engine = engine_of(4);
  Capture out(1), err(2);
  hsgd::ProgressBar progress("run", 4);
  engine.run(progress);
  const std::string written = err.text();
  CHECK(out.text().empty());
  CHECK(written == "  run: step 1/4 (25%)\n  run: step 2/4 (50%)\n  run: step 3/4 (75%)\n  run: step 4/4 (100%)\n");
}

TEST_CASE("ProgressBar: on a terminal, a bar redrawn in place and removed at the end", "[progress]") {
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) {
    WARN("no pseudo-terminal here: the terminal case is not tested");
    if (master >= 0) ::close(master);
    return;
  }
  const int slave = ::open(::ptsname(master), O_WRONLY | O_NOCTTY);
  std::FILE* terminal = slave >= 0 ? ::fdopen(slave, "w") : nullptr;
  REQUIRE(terminal != nullptr);
  auto engine = engine_of(8);
  hsgd::ProgressBar progress("hsgd", 8, terminal);
  engine.run(progress);
  std::fclose(terminal);
  ::fcntl(master, F_SETFL, O_NONBLOCK);
  std::string drawn;
  char chunk[4096];
  for (::ssize_t got = ::read(master, chunk, sizeof chunk); got > 0; got = ::read(master, chunk, sizeof chunk))
    drawn.append(chunk, static_cast<std::size_t>(got));
  ::close(master);
  // 40 cells, 5 a step: eight redraws, each from the start of the line, then the line cleared.
  CHECK_THAT(drawn, StartsWith("\r  hsgd                 [#####                                   ] 1/8"));
  CHECK_THAT(drawn, Contains("\r  hsgd                 [####################                    ] 4/8"));
  CHECK_THAT(drawn, EndsWith("[########################################] 8/8\r\033[K"));
  CHECK(drawn.find('\n') == std::string::npos);
}

TEST_CASE("ProgressBar: a stream is required", "[progress]") {
  CHECK_INVALID(hsgd::ProgressBar("run", 10, nullptr), "'out' must be a stream");
}
