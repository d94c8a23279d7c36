#pragma once
/// @file
/// Servers: where aggregation happens. A level-l server averages the models of the workers in
/// its unit and sends the average back to each of them.

#include <span>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

/// How workers are weighted in every average.
enum class Weighting {
  uniform,    ///< every worker counts once: 1/n_i inside a group, n_i/n across groups (the paper's objective)
  data_size,  ///< worker j counts m_j, its sample count (FedAvg; the paper's own code)
};

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
template <Real Scalar>
class Server {
 public:
  Server(Index level, Index unit, Index dimension) : level_(level), unit_(unit), model_(Vector<Scalar>::Zero(dimension)) {}

  /// Sets the unit's workers and their weights. Reuses the storage it has, so regrouping with
  /// the same unit sizes allocates nothing.
  void set_members(std::span<const Index> workers, std::span<const Scalar> worker_weights) {
    members_.assign(workers.begin(), workers.end());
    weights_.resize(members_.size());
    total_weight_ = 0;
    for (std::size_t k = 0; k < members_.size(); ++k) {
      weights_[k] = worker_weights[static_cast<std::size_t>(members_[k])];
      total_weight_ += weights_[k];
    }
    detail::require(total_weight_ > 0, "unit {} of level {} has total weight {}: weights must be positive", unit_,
                    level_, total_weight_);
  }

  /// Averages the members' columns of `models` into the server model and writes it back.
  void aggregate(Matrix<Scalar>& models) {
    average(models, model_);
    broadcast(model_, models);
  }

  /// Same average, for per-worker optimizer state, through `scratch` (size d) so the server
  /// model is left alone.
  void aggregate_state(Matrix<Scalar>& states, Vector<Scalar>& scratch) const {
    average(states, scratch);
    broadcast(scratch, states);
  }

  /// Zeroes the members' columns (optimizer state reset).
  void reset_state(Matrix<Scalar>& states) const {
    for (const Index j : members_) states.col(j).setZero();
  }

  [[nodiscard]] Index level() const { return level_; }
  [[nodiscard]] Index unit() const { return unit_; }
  [[nodiscard]] std::span<const Index> members() const { return members_; }
  [[nodiscard]] Scalar total_weight() const { return total_weight_; }
  /// The model of the last aggregation.
  [[nodiscard]] const Vector<Scalar>& model() const { return model_; }

 private:
  void average(const Matrix<Scalar>& columns, Vector<Scalar>& out) const {
    out.noalias() = weights_[0] * columns.col(members_[0]);
    for (std::size_t k = 1; k < members_.size(); ++k) out.noalias() += weights_[k] * columns.col(members_[k]);
    out /= total_weight_;
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
};

}  // namespace hsgd
