#pragma once
/// @file
/// The shape of an N-level hierarchy: periods and unit sizes. Who sits in which unit is the
/// grouping policy's business (grouping.hpp).

#include <algorithm>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

/// An N-level hierarchy over n workers.
///
/// Workers sit in n slots 0..n-1 (the grouping policy decides which worker takes which slot).
/// Level l = 1..L has a period P_l and splits the slots into consecutive units; the servers of
/// level l average their unit every P_l local steps. Level 1 holds the local servers (the paper's
/// groups V_1..V_N, period I), level L the global server (one unit of all workers, period G).
///
/// Invariants, checked at construction: n > 0; at least one level; P_1 < P_2 < ... < P_L, each
/// positive and dividing the next; every unit non-empty; every unit of level l lies inside one
/// unit of level l + 1; level L is one unit. Unit sizes may differ.
class Topology {
 public:
  /// One level: its period and the sizes of its units, in slot order.
  struct Level {
    Index period = 1;
    std::vector<Index> unit_sizes;
  };

  /// General N-level constructor; `levels` from the lowest (local) to the top (global).
  Topology(Index workers, std::vector<Level> levels) : workers_(workers) {
    detail::require(workers > 0, "'workers' ({}) must be positive", workers);
    detail::require(!levels.empty(), "a topology needs at least one level");
    detail::require(levels.back().unit_sizes.size() == 1,
                    "the top level (level {}) must be one unit holding all workers, it has {} units", levels.size(),
                    levels.back().unit_sizes.size());
    for (std::size_t l = 0; l < levels.size(); ++l) add_level(std::move(levels[l]), static_cast<Index>(l) + 1);
  }

  Topology(const Topology&) = default;
  Topology& operator=(const Topology&) = default;
  /// A moved-from Topology is empty (no workers, no levels), which the Engine refuses, rather than
  /// a shell that keeps its worker count but lost its levels.
  Topology(Topology&& other) noexcept
      : workers_(std::exchange(other.workers_, 0)), levels_(std::exchange(other.levels_, {})) {}
  /// Safe for `a = std::move(a)`.
  Topology& operator=(Topology&& other) noexcept {
    if (this != &other) {
      workers_ = std::exchange(other.workers_, 0);
      levels_ = std::exchange(other.levels_, {});
    }
    return *this;
  }
  ~Topology() = default;

  /// Local SGD: one level, all n workers averaged every `period` steps.
  static Topology local_sgd(Index workers, Index period) {
    detail::require(period > 0, "'period' ({}) must be positive", period);
    detail::require(workers > 0, "'workers' ({}) must be positive", workers);
    return Topology(workers, {Level{period, {workers}}});
  }

  /// Two levels: n workers in `groups` groups of near-equal size (the first n mod N groups get one
  /// more worker), local period I, global period G. With I == G the local aggregation is always
  /// subsumed by the global one, so the result is local SGD with period G (one level).
  static Topology two_level(Index workers, Index groups, Index local_period, Index global_period) {
    detail::require(workers > 0, "'workers' ({}) must be positive", workers);
    detail::require(groups > 0 && groups <= workers, "'groups' ({}) must be in [1, 'workers' ({})]", groups,
                    workers);
    std::vector<Index> sizes(static_cast<std::size_t>(groups), workers / groups);
    for (Index i = 0; i < workers % groups; ++i) ++sizes[static_cast<std::size_t>(i)];
    return two_level(std::move(sizes), local_period, global_period);
  }

  /// Two levels with explicit group sizes n_1..n_N (may differ), local period I, global period G.
  static Topology two_level(std::vector<Index> group_sizes, Index local_period, Index global_period) {
    detail::require(local_period > 0, "'local_period' ({}) must be positive", local_period);
    detail::require(global_period > 0, "'global_period' ({}) must be positive", global_period);
    detail::require(global_period % local_period == 0, "'global_period' ({}) must be a multiple of 'local_period' ({})",
                    global_period, local_period);
    detail::require(!group_sizes.empty(), "'group_sizes' must name at least one group");
    for (std::size_t i = 0; i < group_sizes.size(); ++i) {
      detail::require(group_sizes[i] > 0, "group {} has size {}: every group needs at least one worker", i,
                      group_sizes[i]);
    }
    Index workers = 0;
    for (const Index size : group_sizes) {
      detail::require(size <= std::numeric_limits<Index>::max() - workers,
                      "'group_sizes' add up to more than {} workers", std::numeric_limits<Index>::max());
      workers += size;
    }
    if (local_period == global_period) return local_sgd(workers, global_period);
    return Topology(workers, {Level{local_period, std::move(group_sizes)}, Level{global_period, {workers}}});
  }

  /// PyTorch-style description: (period, group size) pairs in increasing order of period, equal
  /// contiguous groups at each level; the last group size must be the number of workers. For
  /// example {{4, 8}, {32, 64}} over 64 workers is H-SGD with I = 4, G = 32, groups of 8.
  static Topology from_period_group_sizes(Index workers, const std::vector<std::pair<Index, Index>>& period_group_sizes) {
    detail::require(workers > 0, "'workers' ({}) must be positive", workers);
    detail::require(!period_group_sizes.empty(), "'period_group_sizes' must name at least one level");
    std::vector<Level> levels;
    for (std::size_t l = 0; l < period_group_sizes.size(); ++l) {
      const auto [period, group_size] = period_group_sizes[l];
      detail::require(group_size > 0 && workers % group_size == 0,
                      "group size {} of level {} must be positive and divide 'workers' ({})", group_size, l + 1,
                      workers);
      levels.push_back(Level{period, std::vector<Index>(static_cast<std::size_t>(workers / group_size), group_size)});
    }
    return Topology(workers, std::move(levels));
  }

  [[nodiscard]] Index workers() const { return workers_; }
  /// L, the number of aggregation levels; the top one is global.
  [[nodiscard]] Index levels() const { return static_cast<Index>(levels_.size()); }
  /// P_l for l in 1..L.
  [[nodiscard]] Index period(Index level) const { return at(level).period; }
  /// Number of units (servers) at level l.
  [[nodiscard]] Index units(Index level) const { return static_cast<Index>(at(level).unit_offsets.size()) - 1; }
  /// Slot boundaries of level l's units: unit u holds slots [offsets[u], offsets[u + 1]).
  [[nodiscard]] std::span<const Index> unit_offsets(Index level) const { return at(level).unit_offsets; }
  [[nodiscard]] Index unit_size(Index level, Index unit) const {
    const auto& offsets = at(level).unit_offsets;
    detail::require(unit >= 0 && unit < units(level), "'unit' ({}) must be in [0, {})", unit, units(level));
    return offsets[static_cast<std::size_t>(unit) + 1] - offsets[static_cast<std::size_t>(unit)];
  }
  /// The unit of level l that holds `slot`.
  [[nodiscard]] Index unit_of_slot(Index level, Index slot) const {
    const auto& offsets = at(level).unit_offsets;
    detail::require(slot >= 0 && slot < workers_, "'slot' ({}) must be in [0, {})", slot, workers_);
    return static_cast<Index>(std::upper_bound(offsets.begin(), offsets.end(), slot) - offsets.begin()) - 1;
  }
  /// The workers of unit `unit` of level l, in slot order, under the grouping `slot_to_worker`
  /// (the worker in each slot): a view into it.
  [[nodiscard]] std::span<const Index> members(std::span<const Index> slot_to_worker, Index level, Index unit) const {
    const auto& offsets = at(level).unit_offsets;
    const auto first = static_cast<std::size_t>(offsets[static_cast<std::size_t>(unit)]);
    return slot_to_worker.subspan(first, static_cast<std::size_t>(offsets[static_cast<std::size_t>(unit) + 1]) - first);
  }
  /// Every level's period and unit sizes, e.g. "level 1: period 4, units 2 of sizes [3, 3]; level 2: ...".
  [[nodiscard]] std::string describe() const {
    std::string text;
    for (Index level = 1; level <= levels(); ++level) {
      text += fmt::format("{}level {}: period {}, units {} of sizes [", level > 1 ? "; " : "", level, period(level),
                          units(level));
      for (Index unit = 0; unit < units(level); ++unit) text += fmt::format("{}{}", unit > 0 ? ", " : "", unit_size(level, unit));
      text += "]";
    }
    return text;
  }
  /// The periods P_1..P_L.
  [[nodiscard]] std::vector<Index> periods() const {
    std::vector<Index> result;
    for (const auto& level : levels_) result.push_back(level.period);
    return result;
  }

 private:
  struct Shape {
    Index period;
    std::vector<Index> unit_offsets;  // units + 1 entries, from 0 to workers
  };

  void add_level(Level level, Index number) {
    detail::require(level.period > 0, "the period of level {} ({}) must be positive", number, level.period);
    if (!levels_.empty()) {
      const Index below = levels_.back().period;
      detail::require(level.period > below && level.period % below == 0,
                      "the period of level {} ({}) must be a multiple of, and greater than, the period of level {} ({})",
                      number, level.period, number - 1, below);
    }
    detail::require(!level.unit_sizes.empty(), "level {} must have at least one unit", number);
    std::vector<Index> offsets{0};
    for (std::size_t u = 0; u < level.unit_sizes.size(); ++u) {
      detail::require(level.unit_sizes[u] > 0, "unit {} of level {} is empty: every unit needs at least one worker",
                      u, number);
      // Compared before adding, so huge sizes cannot overflow the running offset.
      detail::require(level.unit_sizes[u] <= std::numeric_limits<Index>::max() - offsets.back(),
                      "the units of level {} hold more than {} workers in all, not 'workers' ({})", number,
                      std::numeric_limits<Index>::max(), workers_);
      offsets.push_back(offsets.back() + level.unit_sizes[u]);
    }
    detail::require(offsets.back() == workers_, "the units of level {} hold {} workers in all, not 'workers' ({})",
                    number, offsets.back(), workers_);
    if (!levels_.empty()) {
      // Nesting: every boundary of this level must also be a boundary of the level below.
      const auto& lower = levels_.back().unit_offsets;
      for (const Index boundary : offsets) {
        detail::require(std::binary_search(lower.begin(), lower.end(), boundary),
                        "a unit of level {} straddles slot {}, where level {} starts a new unit: every unit must lie "
                        "inside one unit of the level above",
                        number - 1, boundary, number);
      }
    }
    levels_.push_back(Shape{level.period, std::move(offsets)});
  }

  [[nodiscard]] const Shape& at(Index level) const {
    detail::require(level >= 1 && level <= levels(), "'level' ({}) must be in [1, {}]", level, levels());
    return levels_[static_cast<std::size_t>(level - 1)];
  }

  Index workers_;
  std::vector<Shape> levels_;
};

}  // namespace hsgd
