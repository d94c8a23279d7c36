#pragma once
/// @file
/// The grouping in force: which worker sits in which slot of the topology, as a grouping policy
/// drew it, checked, and indexed both ways.

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "hsgd/checkpoint/archive.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/topology/grouping.hpp"
#include "hsgd/topology/topology.hpp"

namespace hsgd {

/// Who sits where, decided by a GroupingPolicy with its own stream (seed, StreamKind::grouping,
/// 0): drawn before the first step and, for a policy that regroups, after every global
/// aggregation. A policy's answer is checked (a permutation of the workers) before it is put in
/// force, so a policy that throws or answers wrong leaves the grouping in force untouched.
template <class Policy>
class Assignment {
 public:
  explicit Assignment(Policy policy = Policy{}) : policy_(std::move(policy)) {}

  /// Sizes it for `topology` and draws the first grouping.
  void attach(const Topology& topology, std::uint64_t seed) {
    const auto n = static_cast<std::size_t>(topology.workers());
    stream_ = make_stream(seed, StreamKind::grouping, 0);
    slot_to_worker_.resize(n);
    std::iota(slot_to_worker_.begin(), slot_to_worker_.end(), Index{0});  // valid until the first draw
    scratch_.resize(n);
    worker_to_slot_.resize(n);
    draw(topology);
  }

  /// Asks the policy for a new grouping and puts it in force.
  void draw(const Topology& topology) {
    std::fill(scratch_.begin(), scratch_.end(), Index{-1});
    policy_.assign(topology, std::span<Index>(scratch_), stream_);
    try {
      index_slots(scratch_);
    } catch (...) {
      index_slots(slot_to_worker_);  // the grouping in force, already checked
      throw;
    }
    slot_to_worker_.swap(scratch_);
  }

  /// After a global aggregation: a new draw if the policy regroups (all models are equal then, so
  /// no model changes). Returns whether it drew.
  bool regroup_after_global_round(const Topology& topology) {
    if (!policy_.regroups_at_global_aggregation()) return false;
    draw(topology);
    ++regroupings_;
    return true;
  }

  /// The worker in each slot.
  [[nodiscard]] std::span<const Index> slot_to_worker() const { return slot_to_worker_; }
  /// The slot of `worker`.
  [[nodiscard]] Index slot_of(Index worker) const { return worker_to_slot_[static_cast<std::size_t>(worker)]; }
  /// Draws after the first.
  [[nodiscard]] Index regroupings() const { return regroupings_; }
  [[nodiscard]] const Policy& policy() const { return policy_; }

  /// Its part of a checkpoint: the draw count, the policy's stream, the grouping in force (a
  /// permutation of the workers), then the policy's own settings and state. Returns the grouping
  /// as saved, or as loaded (staged until commit).
  template <class Archive>
  std::span<const Index> checkpoint(Archive& archive, Index steps) {
    const auto n = static_cast<Index>(slot_to_worker_.size());
    archive.index("the regrouping count", regroupings_, 0, steps);
    archive.stream("the grouping stream", stream_);
    const auto& slots = archive.indices("the grouping", slot_to_worker_, n, 0, n - 1);
    if constexpr (Archive::loading) {
      archive.check(static_cast<Index>(slots.size()) == n, "its grouping has {} slots for {} workers", slots.size(), n);
      std::vector<char> seen(static_cast<std::size_t>(n), 0);
      for (const Index worker : slots) {
        archive.check(seen[static_cast<std::size_t>(worker)] == 0, "its grouping puts worker {} in two slots", worker);
        seen[static_cast<std::size_t>(worker)] = 1;
      }
      archive.after_load([this] { index_slots(slot_to_worker_); });
    }
    detail::visit_plugin(archive, policy_);
    return slots;
  }

 private:
  /// worker_to_slot_ from a slot -> worker table, checking that it is a permutation of the workers.
  void index_slots(std::span<const Index> slot_to_worker) {
    const auto n = static_cast<Index>(worker_to_slot_.size());
    std::fill(worker_to_slot_.begin(), worker_to_slot_.end(), Index{-1});
    for (std::size_t slot = 0; slot < slot_to_worker.size(); ++slot) {
      const Index worker = slot_to_worker[slot];
      detail::require(worker >= 0 && worker < n, "the grouping put worker {} in slot {}: no such worker", worker, slot);
      detail::require(worker_to_slot_[static_cast<std::size_t>(worker)] < 0,
                      "the grouping put worker {} in two slots ({} and {})", worker,
                      worker_to_slot_[static_cast<std::size_t>(worker)], slot);
      worker_to_slot_[static_cast<std::size_t>(worker)] = static_cast<Index>(slot);
    }
  }

  Policy policy_;
  Rng stream_;
  std::vector<Index> slot_to_worker_;
  std::vector<Index> scratch_;  // the policy's answer, before it is checked
  std::vector<Index> worker_to_slot_;
  Index regroupings_ = 0;
};

}  // namespace hsgd
