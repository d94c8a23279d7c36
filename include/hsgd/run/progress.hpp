#pragma once
/// @file
/// A run's progress on a terminal, or in a log: the ProgressBar observer.

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

#include <fmt/core.h>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

/// An observer that shows how far a run has come, on `out` (stderr by default; it never writes to
/// stdout unless given stdout, so a program's tables stay clean): a bar of 40 cells redrawn in
/// place when `out` is a terminal, removed when the run ends; otherwise (a log file, CI) a line at
/// each quarter of the run, `  label: step 250/1000 (25%)`. `engine.run(probe, progress)`.
class ProgressBar {
 public:
  /// `label` names the run; `total_steps` is its length (as Options::steps; at least 1 is used).
  ProgressBar(std::string label, Index total_steps, std::FILE* out = stderr)
      : label_(std::move(label)), total_(std::max<Index>(total_steps, 1)), out_(out) {
    detail::require(out_ != nullptr, "'out' must be a stream (stderr by default)");
    terminal_ = ::isatty(::fileno(out_)) == 1;
  }

  template <class Run>
  void after_step(const Run& run) {
    const Index step = run.step_count();
    const Index parts = terminal_ ? 40 : 4;  // bar cells, or lines
    const Index part = step * parts / total_;
    if (part == shown_ && step != total_) return;
    shown_ = part;
    if (terminal_) {
      const auto filled = static_cast<std::size_t>(std::min(part, parts));
      fmt::print(out_, "\r  {:<20} [{:#<{}}{:<{}}] {}/{}", label_, "", filled, "", 40 - filled, step, total_);
      if (step == total_) fmt::print(out_, "\r\033[K");  // gone once done: the program reports the result
    } else if (part > 0) {
      fmt::print(out_, "  {}: step {}/{} ({}%)\n", label_, step, total_, part * 100 / parts);
    }
    std::fflush(out_);
  }

 private:
  std::string label_;
  Index total_;
  std::FILE* out_;
  bool terminal_ = false;
  Index shown_ = 0;
};

}  // namespace hsgd
