#pragma once
/// @file
/// The settings of a run.

#include <cmath>
#include <cstdint>

#include "hsgd/aggregation/server.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
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

  void validate() const {
    detail::require(std::isfinite(learning_rate) && learning_rate > 0, "'learning_rate' ({}) must be finite and positive",
                    learning_rate);
    detail::require(steps >= 0, "'steps' ({}) must be non-negative", steps);
    detail::require(warmup_steps >= 0, "'warmup_steps' ({}) must be non-negative", warmup_steps);
  }
};

}  // namespace hsgd
