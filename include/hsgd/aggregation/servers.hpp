#pragma once
/// @file
/// The servers of every level, and a level's round: each unit averages its participants' models
/// through the backend, and the optimizer state follows the update policy's rule.

#include <cstdint>
#include <span>
#include <vector>

#include "hsgd/aggregation/server.hpp"
#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/core/weighting.hpp"
#include "hsgd/optimizer/update.hpp"
#include "hsgd/topology/topology.hpp"

namespace hsgd {

/// Every Server of a run, level by level (servers_[l - 1][unit]), with the worker weights w_j
/// they average with: 1 for Weighting::uniform, m_j (the shard's sample count) for
/// Weighting::data_size. Under a distributed backend each process keeps a copy of every server;
/// a copy is current when the process took part in the server's last round.
template <Real Scalar>
class Servers {
 public:
  using ServerType = Server<Scalar>;

  /// One server per unit of `topology`, for models of `dimension` coordinates, weighted by
  /// `weighting` over `sample_counts` (every worker's m_j).
  void attach(const Topology& topology, Index dimension, std::span<const Index> sample_counts, Weighting weighting) {
    rows_.clear();
    for (Index level = 1; level <= topology.levels(); ++level) {
      auto& row = rows_.emplace_back();
      for (Index unit = 0; unit < topology.units(level); ++unit) row.emplace_back(level, unit, dimension);
    }
    raw_weights_.resize(sample_counts.size());
    for (std::size_t j = 0; j < sample_counts.size(); ++j)
      raw_weights_[j] = weighting == Weighting::uniform ? Scalar(1) : static_cast<Scalar>(sample_counts[j]);
    const Eigen::Map<const Vector<Scalar>> raw(raw_weights_.data(), static_cast<Index>(raw_weights_.size()));
    weights_ = raw / raw.sum();
    current_.assign(static_cast<std::size_t>(count()), char{1});
    state_scratch_.setZero(dimension);
  }

  /// Tells every server who its members are under the grouping `slot_to_worker`; all take part.
  void apply(const Topology& topology, std::span<const Index> slot_to_worker) {
    for (Index level = 1; level <= topology.levels(); ++level) {
      auto& row = rows_[static_cast<std::size_t>(level - 1)];
      for (std::size_t unit = 0; unit < row.size(); ++unit)
        row[unit].set_members(topology.members(slot_to_worker, level, static_cast<Index>(unit)), raw_weights_);
    }
  }

  /// Every unit of level `level` averages its participants' models in the run's `state` (see
  /// RunState) and sends the average to its members, through `backend` (in process: the Server
  /// alone), then applies `rule` to the optimizer states (none when the update policy keeps
  /// none). A process that takes no part in a unit's round leaves its copies of the unit's columns
  /// as they were. With `check_finite`, a non-finite average throws NumericalError naming the
  /// step, the unit's first member and the level.
  template <class State, class Backend>
  void average(Index level, State& state, StateAtAggregation rule, Backend& backend, bool check_finite) {
    Matrix<Scalar>& models = state.models();
    Matrix<Scalar>& states = state.states();
    std::size_t id = offset(level);
    for (auto& server : rows_[static_cast<std::size_t>(level - 1)]) {
      const bool here = backend.average_unit(
          level, server.participants(), server.members(), models,
          [&]() -> const Vector<Scalar>& {
            server.aggregate(models);
            return server.model();
          },
          [&](ConstVectorRef<Scalar> received) { server.adopt(received, models); });
      current_[id++] = here ? 1 : 0;
      if (!here) continue;
      if (check_finite && !detail::all_finite(server.model()))
        throw NumericalError(state.step(), server.members()[0], level);
      if (states.size() == 0) continue;
      switch (rule) {
        case StateAtAggregation::keep: break;
        case StateAtAggregation::average:
          backend.average_unit(
              level, server.participants(), server.members(), states,
              [&]() -> const Vector<Scalar>& {
                server.aggregate_state(states, state_scratch_);
                return state_scratch_;
              },
              [&](ConstVectorRef<Scalar> received) { server.write_to_members(received, states); });
          break;
        case StateAtAggregation::reset: server.reset_state(states); break;
      }
    }
  }

  [[nodiscard]] std::span<ServerType> level(Index level) { return rows_[static_cast<std::size_t>(level - 1)]; }
  [[nodiscard]] std::span<const ServerType> level(Index level) const { return rows_[static_cast<std::size_t>(level - 1)]; }
  [[nodiscard]] const ServerType& server(Index level, Index unit) const {
    return rows_[static_cast<std::size_t>(level - 1)][static_cast<std::size_t>(unit)];
  }
  /// w_j / sum w: worker j's weight in the global average and in f.
  [[nodiscard]] const Vector<Scalar>& weights() const { return weights_; }
  /// Servers of all levels.
  [[nodiscard]] Index count() const {
    std::size_t total = 0;
    for (const auto& row : rows_) total += row.size();
    return static_cast<Index>(total);
  }

  /// Their part of a checkpoint: each server's participants (checked against the checkpoint's
  /// grouping `slot_to_worker` and against the count `round` draws) and its last average. Under a
  /// distributed backend the averages are first brought to the writing process from processes
  /// that took part in each server's last round (collective).
  template <class Archive, class Round, class Backend>
  void checkpoint(Archive& archive, const Topology& topology, std::span<const Index> slot_to_worker,
                  const Round& round, const Backend& backend) {
    if constexpr (!Archive::loading) {
      std::vector<Scalar*> averages;
      for (auto& row : rows_)
        for (auto& server : row) averages.push_back(server.model().data());
      backend.collect_at_root(std::span<Scalar* const>(averages), rows_.front().front().model().size(), current_);
    }
    for (Index level = 1; level <= topology.levels(); ++level) {
      auto& row = rows_[static_cast<std::size_t>(level - 1)];
      for (std::size_t unit = 0; unit < row.size(); ++unit) {
        const auto members =
            topology.members(slot_to_worker, level, static_cast<Index>(unit));
        const std::size_t participants = row[unit].checkpoint(archive, members).size();
        const std::size_t expected = round.participants_per_unit(level, members.size());
        archive.check(participants == expected, "unit {} of level {} has {} participants where this run draws {}", unit,
                      level, participants, expected);
      }
    }
    if constexpr (Archive::loading) archive.after_load([this] { std::fill(current_.begin(), current_.end(), char{1}); });
  }

 private:
  [[nodiscard]] std::size_t offset(Index level) const {
    std::size_t id = 0;
    for (Index below = 1; below < level; ++below) id += rows_[static_cast<std::size_t>(below - 1)].size();
    return id;
  }

  std::vector<std::vector<ServerType>> rows_;
  std::vector<Scalar> raw_weights_;  // w_j: 1, or m_j
  Vector<Scalar> weights_;           // w_j / sum w
  std::vector<char> current_;        // whether this process took part in each server's last round
  Vector<Scalar> state_scratch_;
};

}  // namespace hsgd
