#pragma once
/// @file
/// Grouping policies: which worker sits in which slot of the topology, hence in which units.

#include <concepts>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/topology/topology.hpp"

namespace hsgd {

namespace grouping_requirements {

template <class P>
concept has_assign = requires(P& p, const Topology& topology, std::span<Index> slot_to_worker, Rng& rng) {
  p.assign(topology, slot_to_worker, rng);
};

template <class P>
concept has_regroups = requires(const P& p) {
  { p.regroups_at_global_aggregation() } -> std::convertible_to<bool>;
};

}  // namespace grouping_requirements

/// Decides who sits where.
///
/// - `void assign(const Topology& topology, std::span<Index> slot_to_worker, Rng& rng)`: write the
///   worker id of every slot (a permutation of 0..n-1; the engine checks it). Called before the
///   first step and, when `regroups_at_global_aggregation()` is true, after every global
///   aggregation (when all models are equal, so regrouping changes no model). `rng` is the
///   policy's own stream, derived from (seed, StreamKind::grouping, 0);
/// - `bool regroups_at_global_aggregation() const`.
template <class P>
concept GroupingPolicy = grouping_requirements::has_assign<P> && grouping_requirements::has_regroups<P>;

/// Compile-time check with readable messages.
template <class P>
consteval bool check_grouping_policy() {
  using namespace grouping_requirements;
  static_assert(has_assign<P>, "hsgd GroupingPolicy: missing `void assign(const hsgd::Topology& topology, "
                               "std::span<hsgd::Index> slot_to_worker, hsgd::Rng& rng)`");
  static_assert(has_regroups<P>, "hsgd GroupingPolicy: missing `bool regroups_at_global_aggregation() const`");
  return GroupingPolicy<P>;
}

/// Worker j sits in slot j: groups are contiguous blocks of worker ids (PyTorch's and the
/// paper's code's convention). The default.
struct ContiguousGrouping {
  void assign(const Topology& /*topology*/, std::span<Index> slot_to_worker, Rng& /*rng*/) const {
    std::iota(slot_to_worker.begin(), slot_to_worker.end(), Index{0});
  }
  [[nodiscard]] bool regroups_at_global_aggregation() const { return false; }
};

/// Groups given by hand: the lowest-level units in slot order, each a list of worker ids. Higher
/// levels take consecutive runs of these units, as the topology's unit sizes say. For two
/// levels, `ExplicitGrouping({{0, 5, 7}, {1, 2}, {3, 4, 6}})` with group sizes {3, 2, 3}.
class ExplicitGrouping {
 public:
  explicit ExplicitGrouping(std::vector<std::vector<Index>> groups) : groups_(std::move(groups)) {}

  void assign(const Topology& topology, std::span<Index> slot_to_worker, Rng& /*rng*/) const {
    detail::require(static_cast<Index>(groups_.size()) == topology.units(1),
                    "'groups' has {} groups but level 1 of the topology has {} units", groups_.size(),
                    topology.units(1));
    std::size_t slot = 0;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      detail::require(static_cast<Index>(groups_[g].size()) == topology.unit_size(1, static_cast<Index>(g)),
                      "group {} lists {} workers but unit {} of level 1 has size {}", g, groups_[g].size(), g,
                      topology.unit_size(1, static_cast<Index>(g)));
      for (const Index worker : groups_[g]) slot_to_worker[slot++] = worker;
    }
  }
  [[nodiscard]] bool regroups_at_global_aggregation() const { return false; }
  [[nodiscard]] const std::vector<std::vector<Index>>& groups() const { return groups_; }

  /// A checkpoint compares the groups.
  [[nodiscard]] CheckpointSettings checkpoint_settings() const { return {{"groups", groups_}}; }

 private:
  std::vector<std::vector<Index>> groups_;
};

/// Random grouping: workers are assigned to slots uniformly at random (every permutation equally
/// likely), so unit sizes stay as the topology says. The paper's analysis takes the expectation
/// over one draw, which is the default; `Redraw::every_global_aggregation` draws again after each
/// global aggregation, a common variant.
struct RandomGrouping {
  enum class Redraw {
    once,                      ///< one draw before the first step (default; the paper's setting)
    every_global_aggregation,  ///< a new draw after every global aggregation
  };
  Redraw redraw = Redraw::once;

  void assign(const Topology& /*topology*/, std::span<Index> slot_to_worker, Rng& rng) const {
    std::iota(slot_to_worker.begin(), slot_to_worker.end(), Index{0});
    rng.shuffle(slot_to_worker);
  }
  [[nodiscard]] bool regroups_at_global_aggregation() const { return redraw == Redraw::every_global_aggregation; }

  /// Its draws come from the grouping stream, which the run's state saves; a checkpoint compares
  /// the redraw setting.
  [[nodiscard]] CheckpointSettings checkpoint_settings() const { return {{"redraw", redraw}}; }
};

}  // namespace hsgd
