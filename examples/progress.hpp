#pragma once
// Progress of a long run on stderr: a bar redrawn in place when stderr is a terminal, otherwise a
// line at each quarter of the run (a log file or CI then gets a few lines, not a thousand).

#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

namespace example {

/// An observer: `engine.run(probe, progress)`. Writes nothing to stdout, so tables stay clean.
class ProgressBar {
 public:
  ProgressBar(std::string label, hsgd::Index total_steps)
      : label_(std::move(label)), total_(std::max<hsgd::Index>(total_steps, 1)), terminal_(::isatty(2) == 1) {}

  template <class Run>
  void after_step(const Run& run) {
    const hsgd::Index step = run.step_count();
    const hsgd::Index parts = terminal_ ? 40 : 4;  // bar cells, or lines
    const hsgd::Index part = step * parts / total_;
    if (part == shown_ && step != total_) return;
    shown_ = part;
    if (terminal_) {
      const auto filled = static_cast<std::size_t>(part);
      fmt::print(stderr, "\r  {:<20} [{:#<{}}{:<{}}] {}/{}", label_, "", filled, "", 40 - filled, step, total_);
      if (step == total_) fmt::print(stderr, "\r\033[K");  // gone once done: the caller reports the result
    } else if (part > 0) {
      fmt::print(stderr, "  {}: step {}/{} ({}%)\n", label_, step, total_, part * 100 / parts);
    }
    std::fflush(stderr);
  }

 private:
  std::string label_;
  hsgd::Index total_;
  bool terminal_;
  hsgd::Index shown_ = 0;
};

}  // namespace example
