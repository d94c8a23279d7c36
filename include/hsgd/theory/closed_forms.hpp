#pragma once
/// @file
/// Exact expectations the analysis rests on: how random grouping splits the global divergence
/// over the levels, and how pure gradient noise spreads the models between aggregations.

#include <cstddef>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/topology/topology.hpp"

namespace hsgd {

/// The share of the global divergence each level's term takes, in expectation over a uniformly
/// random grouping with the unit sizes fixed (the paper's random grouping):
///
///   E[term_l] = (N_{l-1} - N_l) / (n - 1) D_glob,   l = 1..L,  N_0 = n, N_l the units of level l,
///
/// so in two levels E[D_down] = (n - N)/(n - 1) D_glob and E[D_up] = (N - 1)/(n - 1) D_glob. The
/// shares sum to 1. Why: a unit of size s is a draw without replacement from the n worker
/// gradients, so E||h_u - h||^2 = (D_glob / s)(n - s)/(n - 1); weighting by s/n and summing over
/// the units of a level gives (N_l - 1)/(n - 1) D_glob for the spread of level-l units around h,
/// and term_l is the difference of consecutive spreads. Holds for unequal unit sizes, with the
/// paper's uniform weights. With one worker there is no divergence and every share is 0.
inline std::vector<double> random_grouping_shares(const Topology& topology) {
  const Index workers = topology.workers();
  std::vector<double> shares(static_cast<std::size_t>(topology.levels()), 0.0);
  if (workers < 2) return shares;
  Index units_below = workers;
  for (Index level = 1; level <= topology.levels(); ++level) {
    shares[static_cast<std::size_t>(level - 1)] =
        static_cast<double>(units_below - topology.units(level)) / static_cast<double>(workers - 1);
    units_below = topology.units(level);
  }
  return shares;
}

/// kappa_l, the factor by which gradient noise feeds level l's model spread, for the weights
/// `slot_weights` (w in slot order, summing to 1; each finite and non-negative, one per worker):
///
///   kappa_l = sum_{u in level l-1} q_u - sum_{v in level l} q_v,   q_u = (sum_{j in u} w_j^2) / W_u,
///
/// with level 0 the single workers (q_j = w_j). With uniform weights q_u = 1/n, so
/// kappa_l = (N_{l-1} - N_l)/n, whatever the unit sizes. See pure_noise_spreads for its use.
inline std::vector<double> noise_spread_factors(const Topology& topology, ConstVectorRef<double> slot_weights) {
  detail::require(slot_weights.size() == topology.workers(), "'slot_weights' has {} entries but the topology has {} workers",
                  slot_weights.size(), topology.workers());
  for (Index j = 0; j < slot_weights.size(); ++j) {
    detail::require(std::isfinite(slot_weights(j)) && slot_weights(j) >= 0,
                    "'slot_weights'[{}] ({}) must be finite and non-negative", j, slot_weights(j));
  }
  const auto level_sum = [&](Index level) {
    if (level == 0) return slot_weights.sum();
    double sum = 0;
    const auto offsets = topology.unit_offsets(level);
    for (std::size_t u = 0; u + 1 < offsets.size(); ++u) {
      const auto unit = slot_weights.segment(offsets[u], offsets[u + 1] - offsets[u]);
      detail::require(unit.sum() > 0, "'slot_weights' of unit {} at level {} must have a positive sum", u, level);
      sum += unit.squaredNorm() / unit.sum();
    }
    return sum;
  };
  std::vector<double> factors;
  for (Index level = 1; level <= topology.levels(); ++level) factors.push_back(level_sum(level - 1) - level_sum(level));
  return factors;
}

/// kappa_l with the paper's uniform weights: (N_{l-1} - N_l)/n.
inline std::vector<double> noise_spread_factors(const Topology& topology) {
  const Vector<double> uniform = Vector<double>::Constant(topology.workers(), 1.0 / static_cast<double>(topology.workers()));
  return noise_spread_factors(topology, uniform);
}

/// Brief section 3.1, in N levels. With zero gradients and i.i.d. gradient noise of variance
/// sigma^2 per coordinate (d coordinates), the level-l model spread term (C_in for l = 1, C_up for
/// the top of two levels) averaged over time, measured after each step's aggregation, is
///
///   E[C_l] = gamma^2 sigma^2 d (P_l - 1)/2 kappa_l
///
/// (kappa_l from noise_spread_factors). Why: s steps after the last aggregation at level >= l, a
/// unit average's noise has variance s gamma^2 sigma^2 sum_{j in u} w_j^2 / W_u^2 per coordinate,
/// the weighted spread of level-(l-1) averages around their level-l parents is the difference of
/// those sums, and s runs through 0..P_l - 1 at the measuring points. In two levels with uniform
/// weights this is gamma^2 sigma^2 d (I-1)/2 (1 - N/n) and gamma^2 sigma^2 d (G-1)/2 (N-1)/n; local
/// SGD with period P gives gamma^2 sigma^2 d (P-1)/2 (1 - 1/n).
inline std::vector<double> pure_noise_spreads(const Topology& topology, ConstVectorRef<double> slot_weights,
                                              double learning_rate, double noise_variance, Index dimension) {
  detail::require(std::isfinite(learning_rate) && learning_rate > 0, "'learning_rate' ({}) must be finite and positive",
                  learning_rate);
  detail::require(std::isfinite(noise_variance) && noise_variance >= 0,
                  "'noise_variance' ({}) must be finite and non-negative", noise_variance);
  detail::require(dimension > 0, "'dimension' ({}) must be positive", dimension);
  std::vector<double> spreads = noise_spread_factors(topology, slot_weights);
  for (Index level = 1; level <= topology.levels(); ++level) {
    double& spread = spreads[static_cast<std::size_t>(level - 1)];
    // sigma^2 first, and kappa_l = 0 skipped: a zero factor gives 0 even where gamma^2 alone would
    // overflow (inf * 0 is NaN).
    if (spread != 0) {
      spread *= noise_variance * learning_rate * learning_rate * static_cast<double>(dimension) *
                static_cast<double>(topology.period(level) - 1) / 2;
    }
    // A genuine overflow of gamma^2 sigma^2 d is refused rather than returned as infinity.
    detail::require(std::isfinite(spread),
                    "the level-{} spread overflows ({}): 'learning_rate' ({}), 'noise_variance' ({}) and 'dimension' "
                    "({}) are too large together",
                    level, spread, learning_rate, noise_variance, dimension);
  }
  return spreads;
}

/// pure_noise_spreads with the paper's uniform weights.
inline std::vector<double> pure_noise_spreads(const Topology& topology, double learning_rate, double noise_variance,
                                              Index dimension) {
  const Vector<double> uniform = Vector<double>::Constant(topology.workers(), 1.0 / static_cast<double>(topology.workers()));
  return pure_noise_spreads(topology, uniform, learning_rate, noise_variance, dimension);
}

}  // namespace hsgd
