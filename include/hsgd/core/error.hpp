#pragma once
/// @file
/// The exceptions hsgd throws, and the helper that words a failed precondition.

#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "hsgd/core/types.hpp"

namespace hsgd {

/// Bad input: a parameter outside its documented range. The message names the parameter, its
/// value and the constraint, e.g. `'global_period' (30) must be a multiple of 'local_period' (4)`.
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// A model stopped being finite. Carries where it first happened: the local step (1-indexed),
/// the worker, and the level (0 for a worker's own SGD step, l >= 1 for an aggregation at level l).
class NumericalError : public std::runtime_error {
 public:
  NumericalError(Index step, Index worker, Index level)
      : std::runtime_error(fmt::format(
            "non-finite model at step {}, worker {}, level {} ({})", step, worker, level,
            level == 0 ? "after the worker's local step" : "after aggregation at that level")),
        step_(step),
        worker_(worker),
        level_(level) {}

  [[nodiscard]] Index step() const noexcept { return step_; }
  [[nodiscard]] Index worker() const noexcept { return worker_; }
  [[nodiscard]] Index level() const noexcept { return level_; }

 private:
  Index step_;
  Index worker_;
  Index level_;
};

/// The system refused a resource hsgd needs, e.g. a thread for the worker pool under a process
/// limit. The message says what was refused and what to change.
class ResourceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An object was used in a state that does not allow the call: an Engine that was moved from, or
/// one whose step failed part-way (see Engine::step). The message says which, and why.
class InvalidState : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {

/// Throws InvalidArgument with the formatted message.
template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> message, Args&&... args) {
  throw InvalidArgument(fmt::format(message, std::forward<Args>(args)...));
}

/// Throws InvalidArgument with the formatted message when `condition` is false. The message is
/// only formatted on failure; the check itself stays small enough to inline, so the compiler
/// knows nothing after a failed check runs.
template <class... Args>
inline void require(bool condition, fmt::format_string<Args...> message, Args&&... args) {
  if (!condition) [[unlikely]] fail(message, std::forward<Args>(args)...);
}

}  // namespace detail
}  // namespace hsgd
