#pragma once
// Helpers shared by the tests of the data code: draws, generators, partitions, layouts and data sets.
//
// Stochastic checks run on fixed seeds. Their margins come from the statistics of what is
// checked: z = 5 standard errors, computed from the exact moments of the distribution (a correct
// implementation misses one with probability below 1e-6), plus, where samples are cut into
// integer counts, a bound on the rounding.

#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include <hsgd/data/distributions.hpp>
#include <hsgd/data/generators.hpp>
#include <hsgd/data/layout.hpp>
#include <hsgd/data/partition.hpp>
#include <hsgd/data/statistics.hpp>

#include "support.hpp"

namespace test {

using Groups = std::vector<std::vector<Index>>;

inline constexpr double z = 5.0;  // standard errors in every Monte Carlo margin

/// The stream (2022, user, id): each draw of a data test has its own.
inline hsgd::Rng test_stream(std::uint64_t id) { return hsgd::make_stream(2022, hsgd::StreamKind::user, id); }

/// Labels 0..C-1 repeated, `per_class` of each, interleaved (k % C).
inline std::vector<Index> balanced_labels(Index classes, Index per_class) {
  std::vector<Index> labels(static_cast<std::size_t>(classes * per_class));
  for (std::size_t k = 0; k < labels.size(); ++k) labels[k] = static_cast<Index>(k) % classes;
  return labels;
}

/// a (a + 1) ... (a + k - 1).
inline double rising(double a, int k) {
  double product = 1;
  for (int r = 0; r < k; ++r) product *= a + r;
  return product;
}

/// E[prod_i x_i^{k_i}] for x ~ Dir(alpha): prod_i rising(alpha_i, k_i) / rising(A, K).
inline double dirichlet_moment(std::span<const double> alpha, const std::vector<int>& powers) {
  double numerator = 1;
  int total_power = 0;
  for (std::size_t i = 0; i < alpha.size(); ++i) {
    numerator *= rising(alpha[i], powers[i]);
    total_power += powers[i];
  }
  return numerator / rising(std::accumulate(alpha.begin(), alpha.end(), 0.0), total_power);
}

/// Gaussian-mixture settings with these sizes (designated initialisers would leave `proportions`
/// to -Wmissing-field-initializers).
inline hsgd::GaussianMixtureOptions mixture_options(Index classes, Index dimension, Index samples) {
  hsgd::GaussianMixtureOptions options;
  options.classes = classes;
  options.dimension = dimension;
  options.samples = samples;
  return options;
}

/// Ten samples of two classes in three dimensions whose coordinate 0 is zero for every sample,
/// so a model coordinate that multiplies it does not enter the data term.
inline hsgd::Dataset<double> dataset_with_silent_feature() {
  hsgd::Rng rng(7);
  hsgd::Dataset<double> data;
  data.classes = 2;
  data.features = Mat::Zero(3, 10);
  for (Index k = 0; k < 10; ++k) {
    data.features(1, k) = rng.normal();
    data.features(2, k) = rng.normal();
    data.labels.push_back(k % 2);
  }
  return data;
}

}  // namespace test
