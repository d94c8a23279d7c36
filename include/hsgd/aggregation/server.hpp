#pragma once
/// @file
/// A server: where aggregation happens. A level-l server averages the models of the workers of
/// its unit that take part in the round and sends the average back to every member.

#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

/// The server of one unit at one level: a local server for l < L, the global server for l = L.
///
/// With worker weights w_j (1 for Weighting::uniform, m_j for Weighting::data_size), aggregation
/// over the round's participants P of the unit computes
///
///   xbar_U = (sum_{j in P} w_j x^j) / (sum_{j in P} w_j)
///
/// from the models as they are (a snapshot: nothing is written until the average is complete),
/// keeps it as the server's model, and sets x^j = xbar_U for every member j, so a member that sat
/// the round out starts the next one from the unit's model. The sum is taken first and divided
/// once, so integer-valued models and weights give the correctly rounded mean. Averaging over all
/// workers of the unit at once equals averaging the child servers' averages weighted by their
/// total weight, so a level never needs the level below to have just run.
///
/// Who takes part is the Round's decision (see Round): it sets the participants each round; by
/// default, and after set_members, every member does.
template <Real Scalar>
class Server {
 public:
  /// The server of `unit` at `level`, for models of `dimension` coordinates.
  Server(Index level, Index unit, Index dimension)
      : level_(level), unit_(unit), model_(Vector<Scalar>::Zero(positive_dimension(dimension))) {}

  /// Sets the unit's workers and their weights; every member takes part. Reuses the storage it
  /// has, so regrouping with the same unit sizes allocates nothing.
  void set_members(std::span<const Index> workers, std::span<const Scalar> worker_weights) {
    detail::require(!workers.empty(), "unit {} of level {}: 'workers' must name at least one worker", unit_, level_);
    for (const Index worker : workers) {
      detail::require(worker >= 0 && static_cast<std::size_t>(worker) < worker_weights.size(),
                      "unit {} of level {}: worker {} must be in [0, {}), the workers that have weights", unit_,
                      level_, worker, worker_weights.size());
    }
    worker_count_ = static_cast<Index>(worker_weights.size());
    members_.assign(workers.begin(), workers.end());
    weights_.resize(members_.size());
    total_weight_ = 0;
    for (std::size_t k = 0; k < members_.size(); ++k) {
      weights_[k] = worker_weights[static_cast<std::size_t>(members_[k])];
      total_weight_ += weights_[k];
    }
    detail::require(total_weight_ > 0, "unit {} of level {} has total weight {}: weights must be positive", unit_,
                    level_, total_weight_);
    participants_.reserve(members_.size());
    participant_weights_.reserve(members_.size());
    set_participants(members_);
  }

  /// The members that take part in the current round: `workers` must be a non-empty subsequence
  /// of the members (in member order, so the average's summation order never depends on who was
  /// chosen). Allocates nothing once the members are set.
  void set_participants(std::span<const Index> workers) {
    detail::require(!workers.empty(), "unit {} of level {}: no member takes part in the round", unit_, level_);
    if (workers.data() != participants_.data()) participants_.assign(workers.begin(), workers.end());
    participant_weights_.clear();
    participant_weight_ = 0;
    std::size_t next = 0;
    for (const Index worker : participants_) {
      while (next < members_.size() && members_[next] != worker) ++next;
      detail::require(next < members_.size(),
                      "unit {} of level {}: worker {} takes part but is not a member (or is out of member order)",
                      unit_, level_, worker);
      participant_weights_.push_back(weights_[next]);
      participant_weight_ += weights_[next];
      ++next;
    }
  }

  /// Averages the participants' columns of `models` into the server model and writes it back to
  /// every member.
  void aggregate(Matrix<Scalar>& models) {
    check_columns(models, "models");
    average(models, model_);
    write_to_members(model_, models);
  }

  /// The second half of `aggregate`, for a backend whose members' models live in several
  /// processes (see hsgd::mpi::Cluster): the process that holds every participant's model
  /// averages with `aggregate`, and one that received the average keeps it as the server's model
  /// and writes it to the members it holds.
  void adopt(ConstVectorRef<Scalar> average, Matrix<Scalar>& models) {
    check_columns(models, "models");
    detail::require(average.size() == model_.size(), "'average' has {} coordinates but the model has {}",
                    average.size(), model_.size());
    model_ = average;
    write_to_members(model_, models);
  }

  /// The same average for per-worker optimizer state, through `scratch` (size d) so the server
  /// model is left alone.
  void aggregate_state(Matrix<Scalar>& states, Vector<Scalar>& scratch) const {
    check_columns(states, "states");
    detail::require(scratch.size() == model_.size(), "'scratch' has {} coordinates but the model has {}",
                    scratch.size(), model_.size());
    average(states, scratch);
    write_to_members(scratch, states);
  }

  /// Writes `value` to every member's column of `columns`.
  void write_to_members(ConstVectorRef<Scalar> value, Matrix<Scalar>& columns) const {
    check_columns(columns, "columns");
    for (const Index j : members_) columns.col(j) = value;
  }

  /// Zeroes the members' columns (optimizer state reset).
  void reset_state(Matrix<Scalar>& states) const {
    check_columns(states, "states");
    for (const Index j : members_) states.col(j).setZero();
  }

  /// Its part of a checkpoint: the current round's participants and the last average. `members`
  /// are the unit's members under the checkpoint's grouping, which a load checks the participants
  /// against (the Engine puts that grouping in force first). Returns the participants as saved,
  /// or as loaded (staged until commit).
  template <class Archive>
  const std::vector<Index>& checkpoint(Archive& archive, std::span<const Index> members) {
    const auto& participants =
        archive.indices("a server's participants", participants_, static_cast<Index>(members.size()), 0,
                        std::numeric_limits<Index>::max());
    if constexpr (Archive::loading) {
      archive.check(!participants.empty(), "unit {} of level {} has no participants", unit_, level_);
      std::size_t next = 0;
      for (const Index worker : participants) {
        while (next < members.size() && members[next] != worker) ++next;
        archive.check(next < members.size(),
                      "unit {} of level {} lists worker {} as a participant, but it is not a member (or out of order)",
                      unit_, level_, worker);
        ++next;
      }
      archive.after_load([this] { set_participants(participants_); });
    }
    archive.scalars("a server's model", model_.data(), static_cast<std::size_t>(model_.size()));
    return participants;
  }

  [[nodiscard]] Index level() const { return level_; }
  [[nodiscard]] Index unit() const { return unit_; }
  [[nodiscard]] std::span<const Index> members() const { return members_; }
  /// The members taking part in the current round (all of them but for a Round's choice).
  [[nodiscard]] std::span<const Index> participants() const { return participants_; }
  [[nodiscard]] Scalar total_weight() const { return total_weight_; }
  /// The model of the last aggregation.
  [[nodiscard]] const Vector<Scalar>& model() const { return model_; }
  [[nodiscard]] Vector<Scalar>& model() { return model_; }

 private:
  static Index positive_dimension(Index dimension) {
    detail::require(dimension > 0, "'dimension' ({}) must be positive", dimension);
    return dimension;
  }

  /// One column per worker of the run, of the model's dimension: the member ids index it.
  void check_columns(const Matrix<Scalar>& columns, const char* name) const {
    detail::require(columns.rows() == model_.size() && columns.cols() == worker_count_,
                    "'{}' is {} x {} but the server needs {} x {} (dimension x workers)", name, columns.rows(),
                    columns.cols(), model_.size(), worker_count_);
  }

  void average(const Matrix<Scalar>& columns, Vector<Scalar>& out) const {
    out.noalias() = participant_weights_[0] * columns.col(participants_[0]);
    for (std::size_t k = 1; k < participants_.size(); ++k)
      out.noalias() += participant_weights_[k] * columns.col(participants_[k]);
    out /= participant_weight_;
  }

  Index level_;
  Index unit_;
  Vector<Scalar> model_;
  std::vector<Index> members_;
  std::vector<Scalar> weights_;
  Scalar total_weight_ = 0;
  Index worker_count_ = 0;           // columns of the matrices this server reads and writes
  std::vector<Index> participants_;  // capacity n_i from set_members, so a round's choice never allocates
  std::vector<Scalar> participant_weights_;
  Scalar participant_weight_ = 0;
};

}  // namespace hsgd
