#pragma once
/// @file
/// Servers: where aggregation happens. A level-l server averages the models of the workers in
/// its unit and sends the average back to each of them.

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/core/weighting.hpp"

namespace hsgd {

/// The server of one unit at one level: a local server for l < L, the global server for l = L.
///
/// With worker weights w_j (1 for Weighting::uniform, m_j for Weighting::data_size), aggregation
/// over the unit's workers U computes
///
///   xbar_U = (sum_{j in U} w_j x^j) / (sum_{j in U} w_j)
///
/// from the models as they are (a snapshot: nothing is written until the average is complete),
/// keeps it as the server's model, and sets x^j = xbar_U for every j in U. The sum is taken first
/// and divided once, so integer-valued models and weights give the correctly rounded mean.
/// Averaging over all workers of the unit at once equals averaging the child servers' averages
/// weighted by their total weight, so a level never needs the level below to have just run.
///
/// Partial participation (level-1 servers, Options::participation = p < 1): before each local
/// round the server draws, from its own stream, k = max(1, floor(p n_i)) of its n_i workers
/// uniformly without replacement; only they take local steps in that round, the average runs
/// over them alone (same weights, renormalised), and it is sent back to every member, so a
/// worker that sat the round out starts the next one from its group's model.
template <Real Scalar>
class Server {
 public:
  /// The server of `unit` at `level`; `stream` is its own random stream (for participant draws).
  Server(Index level, Index unit, Index dimension, Rng stream = Rng())
      : level_(level), unit_(unit), model_(Vector<Scalar>::Zero(positive_dimension(dimension))), rng_(stream) {}

  /// Sets the unit's workers and their weights. Reuses the storage it has, so regrouping with
  /// the same unit sizes allocates nothing.
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
    everyone_participates();
  }

  /// Averages the participants' columns of `models` into the server model and writes it back to
  /// every member.
  void aggregate(Matrix<Scalar>& models) {
    check_columns(models, "models");
    average(models, model_);
    broadcast(model_, models);
  }

  /// The two halves of `aggregate`, for a backend whose members' models live in several
  /// processes (see hsgd::mpi::Cluster): the rank that holds every participant's model averages
  /// with `aggregate`, and a rank that received the average calls `adopt` to keep it as the
  /// server's model and write it to the members it holds.
  void adopt(ConstVectorRef<Scalar> average, Matrix<Scalar>& models) {
    check_columns(models, "models");
    detail::require(average.size() == model_.size(), "'average' has {} coordinates but the model has {}",
                    average.size(), model_.size());
    model_ = average;
    broadcast(model_, models);
  }

  /// Draws the participants of the next round: max(1, floor(fraction n_i)) members, uniformly
  /// without replacement from `rng`, kept in member order so the average's summation order
  /// does not depend on the draw. Allocates nothing once the members are set.
  void draw_participants(double fraction) {
    detail::require(fraction > 0 && fraction <= 1, "'fraction' ({}) must be in (0, 1]", fraction);
    const auto size = members_.size();
    const auto count = std::max<std::size_t>(1, static_cast<std::size_t>(fraction * static_cast<double>(size)));
    // chosen_[k] marks member k; a partial Fisher-Yates over positions picks `count` of them.
    std::iota(positions_.begin(), positions_.end(), std::size_t{0});
    for (std::size_t k = 0; k < count; ++k) {
      const auto pick = k + static_cast<std::size_t>(rng_.below(static_cast<Index>(size - k)));
      std::swap(positions_[k], positions_[pick]);
    }
    std::fill(chosen_.begin(), chosen_.end(), char{0});
    for (std::size_t k = 0; k < count; ++k) chosen_[positions_[k]] = 1;
    participants_.clear();
    participant_weights_.clear();
    participant_weight_ = 0;
    for (std::size_t k = 0; k < size; ++k) {
      if (chosen_[k] == 0) continue;
      participants_.push_back(members_[k]);
      participant_weights_.push_back(weights_[k]);
      participant_weight_ += weights_[k];
    }
  }

  /// Only the members with `ready[j]` set (indexed by worker) take part in the current round, in
  /// member order: a simulated clock's deadline leaves the late ones out. At least one must be
  /// ready. Allocates nothing once the members are set.
  void participate_only(std::span<const char> ready) {
    participants_.clear();
    participant_weights_.clear();
    participant_weight_ = 0;
    for (std::size_t k = 0; k < members_.size(); ++k) {
      if (ready[static_cast<std::size_t>(members_[k])] == 0) continue;
      participants_.push_back(members_[k]);
      participant_weights_.push_back(weights_[k]);
      participant_weight_ += weights_[k];
    }
    detail::require(!participants_.empty(), "unit {} of level {}: no member is ready for the round", unit_, level_);
  }

  /// Every member takes part (the default; above level 1, always but for a deadline's round).
  void everyone_participates() {
    participants_ = members_;
    participant_weights_ = weights_;
    participant_weight_ = total_weight_;
    positions_.resize(members_.size());
    chosen_.resize(members_.size());
  }

  /// Same average, for per-worker optimizer state, through `scratch` (size d) so the server
  /// model is left alone.
  void aggregate_state(Matrix<Scalar>& states, Vector<Scalar>& scratch) const {
    check_columns(states, "states");
    detail::require(scratch.size() == model_.size(), "'scratch' has {} coordinates but the model has {}",
                    scratch.size(), model_.size());
    average(states, scratch);
    broadcast(scratch, states);
  }

  /// Writes `value` to every member's column of `columns` (the second half of aggregate_state).
  void write_to_members(ConstVectorRef<Scalar> value, Matrix<Scalar>& columns) const {
    check_columns(columns, "columns");
    for (const Index j : members_) columns.col(j) = value;
  }

  /// Zeroes the members' columns (optimizer state reset).
  void reset_state(Matrix<Scalar>& states) const {
    check_columns(states, "states");
    for (const Index j : members_) states.col(j).setZero();
  }

  /// Checkpoint hooks: the stream, the current round's participants and the last average.
  template <class Writer>
  void save_state(Writer& out) const {
    save_state(out, model_.data());
  }
  /// The same with the last average taken from `last_average` (d scalars): from the process that
  /// holds it, when the server's members live in several (see hsgd::mpi::Cluster).
  template <class Writer>
  void save_state(Writer& out, const Scalar* last_average) const {
    out.put_rng(rng_);
    out.put_indices(participants_);
    out.put_scalars(last_average, static_cast<std::size_t>(model_.size()));
  }
  /// A server's saved state, read and checked (see read_state), not yet in force.
  struct SavedState {
    Rng rng;
    std::vector<Index> participants;
    std::span<const char> model;  // in the checkpoint's bytes
  };

  /// Reads what save_state wrote and checks it against `members`, the unit's members under the
  /// checkpoint's grouping: the participants must be members, in member order. Changes nothing.
  template <class Reader>
  SavedState read_state(Reader& in, std::span<const Index> members) const {
    SavedState saved{in.get_rng("a server's stream"),
                     in.get_indices("a server's participants", static_cast<Index>(members.size()), 0,
                                    std::numeric_limits<Index>::max()),
                     in.template view_scalars<Scalar>(static_cast<std::size_t>(model_.size()), "a server's model")};
    if (saved.participants.empty()) in.fail("unit {} of level {} has no participants", unit_, level_);
    std::size_t next = 0;  // participants are a subsequence of the members
    for (const Index worker : saved.participants) {
      while (next < members.size() && members[next] != worker) ++next;
      if (next == members.size())
        in.fail("unit {} of level {} lists worker {} as a participant, but it is not a member (or out of order)", unit_,
                level_, worker);
      ++next;
    }
    return saved;
  }

  /// Puts a state from read_state in force; call after set_members with the same members.
  void restore(const SavedState& saved) {
    rng_ = saved.rng;
    std::memcpy(model_.data(), saved.model.data(), saved.model.size());
    participants_.clear();
    participant_weights_.clear();
    participant_weight_ = 0;
    std::size_t next = 0;
    for (const Index worker : saved.participants) {
      while (members_[next] != worker) ++next;
      participants_.push_back(worker);
      participant_weights_.push_back(weights_[next]);
      participant_weight_ += weights_[next];
    }
  }

  [[nodiscard]] Index level() const { return level_; }
  [[nodiscard]] Index unit() const { return unit_; }
  [[nodiscard]] std::span<const Index> members() const { return members_; }
  /// The members taking part in the current round (all of them without partial participation).
  [[nodiscard]] std::span<const Index> participants() const { return participants_; }
  [[nodiscard]] Scalar total_weight() const { return total_weight_; }
  /// The model of the last aggregation.
  [[nodiscard]] const Vector<Scalar>& model() const { return model_; }

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

  void broadcast(const Vector<Scalar>& value, Matrix<Scalar>& columns) const {
    for (const Index j : members_) columns.col(j) = value;
  }

  Index level_;
  Index unit_;
  Vector<Scalar> model_;
  std::vector<Index> members_;
  std::vector<Scalar> weights_;
  Scalar total_weight_ = 0;
  Index worker_count_ = 0;           // columns of the matrices this server reads and writes
  Rng rng_;                          // the server's own stream: (seed, StreamKind::server, id)
  std::vector<Index> participants_;  // capacity n_i from set_members, so draws never allocate
  std::vector<Scalar> participant_weights_;
  Scalar participant_weight_ = 0;
  std::vector<std::size_t> positions_;  // scratch of the draw
  std::vector<char> chosen_;            // scratch of the draw
};

}  // namespace hsgd
