#pragma once
/// @file
/// The spread of per-worker vectors split over the levels of the hierarchy.

#include <span>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/topology/topology.hpp"

namespace hsgd {

/// Law of total variance over nested units. For per-worker vectors v_j (full gradients, or
/// models) and normalised worker weights w_j, let m_0(j) = v_j, m_l(j) the weighted mean of the
/// level-l unit holding j, and m_L the global mean. Then
///
///   total = sum_j w_j ||v_j - m_L||^2 = sum_{l=0}^{L-1} term_l,   term_l = sum_j w_j ||m_l(j) - m_{l+1}(j)||^2,
///
/// exactly, for any grouping and weights. For two levels with gradients g_j this is the paper's
/// decomposition: term_0 = D_down (workers vs their local server), term_1 = D_up (local servers
/// vs the global one), total = D_glob; with models it is C_in, C_up and C. `unit_spread(u)` is the
/// level-1 spread of unit u on its own, sum_{j in u} w_j ||v_j - m_1(j)||^2 / sum_{j in u} w_j
/// (D_down,i for gradients).
///
/// All storage is made at construction, for one topology's shape; `compute` allocates nothing.
/// `compute` and `remove_noise` check that the run they are given has that shape (workers, levels,
/// units per level) and throw InvalidArgument naming what differs.
template <Real Scalar>
class LevelDecomposition {
 public:
  /// Sizes the storage for `topology` and vectors of `dimension` (> 0) entries.
  LevelDecomposition(const Topology& topology, Index dimension)
      : terms_(static_cast<std::size_t>(topology.levels()), 0.0),
        unit_spreads_(static_cast<std::size_t>(topology.units(1)), 0.0),
        workers_(topology.workers()) {
    detail::require(dimension > 0, "'dimension' ({}) must be positive", dimension);
    for (Index level = 1; level <= topology.levels(); ++level) {
      means_.emplace_back(dimension, topology.units(level));
      unit_weights_.emplace_back(static_cast<std::size_t>(topology.units(level)), 0.0);
    }
  }

  /// Decomposes the columns of `vectors` (worker j in column j) under the engine's grouping and
  /// weights in force now.
  template <class Run>
  void compute(const Run& run, const Matrix<Scalar>& vectors) {
    check_run(run);
    detail::require(vectors.cols() == run.workers() && vectors.rows() == means_.front().rows(),
                    "'vectors' is {}x{} but the run has {} workers of dimension {}", vectors.rows(), vectors.cols(),
                    run.workers(), means_.front().rows());
    const auto& weights = run.weights();
    const Index levels = static_cast<Index>(means_.size());
    for (Index level = 1; level <= levels; ++level) unit_means(run, vectors, level);

    std::fill(terms_.begin(), terms_.end(), 0.0);
    std::fill(unit_spreads_.begin(), unit_spreads_.end(), 0.0);
    total_ = 0;
    for (Index j = 0; j < run.workers(); ++j) {
      const Index unit = run.unit_of(j, 1);
      const double spread = static_cast<double>((vectors.col(j) - means_[0].col(unit)).squaredNorm());
      terms_[0] += static_cast<double>(weights(j)) * spread;
      unit_spreads_[static_cast<std::size_t>(unit)] += static_cast<double>(weights(j)) * spread;
      total_ += static_cast<double>(weights(j)) * static_cast<double>((vectors.col(j) - means_.back().col(0)).squaredNorm());
    }
    for (std::size_t u = 0; u < unit_spreads_.size(); ++u) unit_spreads_[u] /= unit_weights_[0][u];
    for (Index level = 1; level < levels; ++level) {
      for (Index unit = 0; unit < run.topology().units(level); ++unit) {
        const Index parent = run.unit_of(run.server(level, unit).members()[0], level + 1);
        terms_[static_cast<std::size_t>(level)] +=
            unit_weights_[static_cast<std::size_t>(level - 1)][static_cast<std::size_t>(unit)] *
            static_cast<double>((mean(level, unit) - mean(level + 1, parent)).squaredNorm());
      }
    }
  }

  /// Removes the bias that estimation noise adds. If each v_j is an estimate v_j + e_j with
  /// independent zero-mean errors, E||e_j||^2 = noise[j], then the spread inside the level-l units,
  /// S_l = sum_j w_j ||v_j - m_l(j)||^2, grows in expectation by
  ///
  ///   B_l = sum_j w_j noise[j] (1 - w_j / W_l(j)),   W_l(j) the weight of j's level-l unit, B_0 = 0,
  ///
  /// (expand ||e_j - sum_k (w_k / W) e_k||^2; the cross terms vanish). term_l = S_{l+1} - S_l and
  /// total = S_L lose B_{l+1} - B_l and B_L; unit spreads lose their share of B_1 over W_u. With
  /// unbiased estimates of noise[j] the corrected values are unbiased; single values may be negative.
  template <class Run>
  void remove_noise(const Run& run, std::span<const double> noise) {
    check_run(run);
    detail::require(noise.size() == static_cast<std::size_t>(run.workers()),
                    "'noise' has {} entries but the run has {} workers", noise.size(), run.workers());
    double previous = 0;
    const Index levels = static_cast<Index>(means_.size());
    for (Index level = 1; level <= levels; ++level) {
      double bias = 0;
      const auto& totals = unit_weights_[static_cast<std::size_t>(level - 1)];
      for (Index j = 0; j < run.workers(); ++j) {
        const double w = static_cast<double>(run.weights()(j));
        const double unit_weight = totals[static_cast<std::size_t>(run.unit_of(j, level))];
        const double share = w * noise[static_cast<std::size_t>(j)] * (1 - w / unit_weight);
        bias += share;
        if (level == 1) unit_spreads_[static_cast<std::size_t>(run.unit_of(j, 1))] -= share / unit_weight;
      }
      terms_[static_cast<std::size_t>(level - 1)] -= bias - previous;
      previous = bias;
    }
    total_ -= previous;
  }

  /// term_l for l = 0..L-1 (term_0: workers vs level 1; term_{L-1}: level L-1 vs the top).
  [[nodiscard]] std::span<const double> terms() const { return terms_; }
  /// sum_j w_j ||v_j - global mean||^2.
  [[nodiscard]] double total() const { return total_; }
  /// Level-1 spread of each unit on its own.
  [[nodiscard]] std::span<const double> unit_spreads() const { return unit_spreads_; }
  /// The weighted mean of unit u at level l (level L, unit 0: the global mean).
  [[nodiscard]] auto mean(Index level, Index unit) const {
    detail::require(level >= 1 && level <= static_cast<Index>(means_.size()), "'level' ({}) must be in [1, {}]", level,
                    means_.size());
    const auto& means = means_[static_cast<std::size_t>(level - 1)];
    detail::require(unit >= 0 && unit < means.cols(), "'unit' ({}) must be in [0, {}) at level {}", unit, means.cols(),
                    level);
    return means.col(unit);
  }

 private:
  /// The storage is indexed by the run's units: a run of another shape would index past it.
  template <class Run>
  void check_run(const Run& run) const {
    detail::require(run.workers() == workers_, "the decomposition was made for {} workers but the run has {}", workers_,
                    run.workers());
    const Topology& topology = run.topology();
    const auto levels = static_cast<Index>(means_.size());
    detail::require(topology.levels() == levels, "the decomposition was made for {} levels but the run has {}", levels,
                    topology.levels());
    for (Index level = 1; level <= levels; ++level) {
      detail::require(topology.units(level) == means_[static_cast<std::size_t>(level - 1)].cols(),
                      "the decomposition was made for {} units at level {} but the run has {}",
                      means_[static_cast<std::size_t>(level - 1)].cols(), level, topology.units(level));
    }
  }

  template <class Run>
  void unit_means(const Run& run, const Matrix<Scalar>& vectors, Index level) {
    auto& means = means_[static_cast<std::size_t>(level - 1)];
    auto& totals = unit_weights_[static_cast<std::size_t>(level - 1)];
    for (Index unit = 0; unit < means.cols(); ++unit) {
      means.col(unit).setZero();
      double total = 0;
      for (const Index j : run.server(level, unit).members()) {
        means.col(unit).noalias() += run.weights()(j) * vectors.col(j);
        total += static_cast<double>(run.weights()(j));
      }
      means.col(unit) /= static_cast<Scalar>(total);
      totals[static_cast<std::size_t>(unit)] = total;
    }
  }

  std::vector<Matrix<Scalar>> means_;              // means_[l - 1].col(u): mean of unit u at level l
  std::vector<std::vector<double>> unit_weights_;  // total weight of each unit
  std::vector<double> terms_;
  std::vector<double> unit_spreads_;
  double total_ = 0;
  Index workers_;
};

}  // namespace hsgd
