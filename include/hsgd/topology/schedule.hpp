#pragma once
/// @file
/// When each level aggregates.

#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/topology/topology.hpp"

namespace hsgd {

/// What happens during the warm-up steps.
enum class WarmupMode {
  average_every_step,  ///< synchronous SGD: the top level averages after every warm-up step
  no_averaging,        ///< workers run alone; nothing is averaged
};

/// The aggregation schedule, 1-indexed as in the paper: after local step t (t = 1, 2, ...) the
/// highest level l with t mod P_l == 0 averages inside each of its units, and only that level
/// (its units contain the lower ones, so a lower aggregation would be overwritten anyway).
///
/// With a warm-up of W steps, steps 1..W follow the WarmupMode, and every period is counted from
/// the end of the warm-up: step t > W aggregates at the highest l with (t - W) mod P_l == 0.
class Schedule {
 public:
  Schedule(const Topology& topology, Index warmup_steps = 0, WarmupMode mode = WarmupMode::average_every_step)
      : periods_(topology.periods()), warmup_steps_(warmup_steps), mode_(mode) {
    detail::require(warmup_steps >= 0, "'warmup_steps' ({}) must be non-negative", warmup_steps);
    detail::require(mode == WarmupMode::average_every_step || mode == WarmupMode::no_averaging,
                    "'warmup_mode' ({}) must be WarmupMode::average_every_step or WarmupMode::no_averaging",
                    static_cast<int>(mode));
  }

  /// The level that aggregates after local step `step` (>= 1), or 0 when none does.
  [[nodiscard]] Index level_after(Index step) const {
    detail::require(step >= 1, "'step' ({}) must be at least 1: the schedule is 1-indexed", step);
    if (step <= warmup_steps_) return mode_ == WarmupMode::average_every_step ? top_level() : 0;
    const Index counted = step - warmup_steps_;
    for (Index level = top_level(); level >= 1; --level) {
      if (counted % periods_[static_cast<std::size_t>(level - 1)] == 0) return level;
    }
    return 0;
  }

  [[nodiscard]] Index top_level() const { return static_cast<Index>(periods_.size()); }
  [[nodiscard]] Index warmup_steps() const { return warmup_steps_; }
  [[nodiscard]] WarmupMode warmup_mode() const { return mode_; }

 private:
  std::vector<Index> periods_;
  Index warmup_steps_;
  WarmupMode mode_;
};

}  // namespace hsgd
