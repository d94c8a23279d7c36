#pragma once
/// @file
/// The settings of a run.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <thread>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/core/weighting.hpp"
#include "hsgd/topology/schedule.hpp"

namespace hsgd {

/// Settings of an H-SGD run, with the defaults of the paper's setting. Call `validate()` (the
/// engine does) to get an InvalidArgument naming the first bad field.
struct Options {
  /// gamma, the base learning rate; the LearningRateSchedule scales it per step. Finite, > 0.
  double learning_rate = 0.05;
  /// T, the local steps each worker takes in `Engine::run()` (counted from the start). >= 0.
  Index steps = 1000;
  /// The seed every random stream is derived from (with its owner's kind and id).
  std::uint64_t seed = 0;
  /// Worker weights in every average: uniform (the paper's objective) or by data size.
  Weighting weighting = Weighting::uniform;
  /// W, steps before the periodic schedule starts; periods are counted from the end of it. >= 0.
  Index warmup_steps = 0;
  /// What happens during the warm-up.
  WarmupMode warmup_mode = WarmupMode::average_every_step;
  /// Check every model for NaN/Inf after each local step and aggregation (a pass over memory
  /// per step; switch off only when that pass shows in a profile).
  bool check_finite = true;
  /// Threads that run the workers of a step; 0 means one per hardware thread. Results are the
  /// same bits for any value: each worker touches only its own model and random stream. The
  /// Engine uses at most one thread per worker (more would idle), so a larger value is clamped
  /// to n; values above `max_threads` are refused (they are typos, and starting them would
  /// exhaust the machine's process ids).
  Index threads = 0;
  /// The largest `threads` accepted.
  static constexpr Index max_threads = 1024;
  /// p, the fraction of each level-1 unit's workers taking part in each local round (partial
  /// participation, as in the paper's own code): each round a level-1 server draws
  /// max(1, floor(p n_i)) of its workers from its own stream; only they step, and the round's
  /// average is theirs (see Server). 1: every worker, every round. In (0, 1].
  double participation = 1.0;

  void validate() const {
    detail::require(std::isfinite(learning_rate) && learning_rate > 0, "'learning_rate' ({}) must be finite and positive",
                    learning_rate);
    detail::require(steps >= 0, "'steps' ({}) must be non-negative", steps);
    detail::require(warmup_steps >= 0, "'warmup_steps' ({}) must be non-negative", warmup_steps);
    detail::require(participation > 0 && participation <= 1, "'participation' ({}) must be in (0, 1]",
                    participation);
    detail::require(threads >= 0 && threads <= max_threads,
                    "'threads' ({}) must be in [0, {}] (0: one per hardware thread)", threads, max_threads);
    detail::require(weighting == Weighting::uniform || weighting == Weighting::data_size,
                    "'weighting' ({}) must be Weighting::uniform or Weighting::data_size", static_cast<int>(weighting));
    detail::require(warmup_mode == WarmupMode::average_every_step || warmup_mode == WarmupMode::no_averaging,
                    "'warmup_mode' ({}) must be WarmupMode::average_every_step or WarmupMode::no_averaging",
                    static_cast<int>(warmup_mode));
  }

  /// The thread count `threads` stands for with n workers: `threads`, or the hardware threads
  /// for 0, at most n and at most `max_threads`.
  [[nodiscard]] Index resolved_threads(Index workers) const {
    const Index wanted =
        threads > 0 ? threads : std::max<Index>(1, static_cast<Index>(std::thread::hardware_concurrency()));
    return std::clamp<Index>(std::min(wanted, workers), 1, max_threads);
  }
};

}  // namespace hsgd
