#pragma once
/// @file
/// The usual preprocessing of real data: per-feature scaling fitted on a training set and applied
/// to any set (so a test set is transformed with the training set's statistics), and a random
/// train/test split for a data set that comes without one.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/data/dataset.hpp"
#include "hsgd/data/distributions.hpp"

namespace hsgd {

/// x_i -> (x_i - shift_i) * factor_i for every feature i of every sample.
template <Real S = double>
struct FeatureScaling {
  Vector<S> shift;
  Vector<S> factor;

  /// The same map for every feature: x -> x * factor (e.g. 1 / 255 for 8-bit pixels).
  static FeatureScaling uniform(Index dimension, S factor) {
    detail::require(dimension > 0, "'dimension' ({}) must be positive", dimension);
    detail::require(std::isfinite(factor) && factor != 0, "'factor' ({}) must be finite and non-zero", factor);
    return {Vector<S>::Zero(dimension), Vector<S>::Constant(dimension, factor)};
  }

  /// Each feature to [0, 1] over `train`: (x - min) / (max - min); a feature constant on `train`
  /// is shifted to 0 and not scaled.
  static FeatureScaling min_max(const Dataset<S>& train) {
    require_samples(train);
    const Vector<S> low = train.features.rowwise().minCoeff();
    const Vector<S> high = train.features.rowwise().maxCoeff();
    FeatureScaling scaling{low, Vector<S>::Ones(train.dimension())};
    for (Index i = 0; i < train.dimension(); ++i)
      if (high(i) > low(i)) scaling.factor(i) = S(1) / (high(i) - low(i));
    return scaling;
  }

  /// Each feature to mean 0 and standard deviation 1 over `train` (the population deviation,
  /// accumulated in double); a feature constant on `train` is centred and not scaled.
  static FeatureScaling standardize(const Dataset<S>& train) {
    require_samples(train);
    const Index d = train.dimension();
    const auto m = static_cast<double>(train.size());
    FeatureScaling scaling{Vector<S>(d), Vector<S>::Ones(d)};
    for (Index i = 0; i < d; ++i) {
      double mean = 0;
      for (Index k = 0; k < train.size(); ++k) mean += static_cast<double>(train.features(i, k));
      mean /= m;
      double squares = 0;
      for (Index k = 0; k < train.size(); ++k) {
        const double centred = static_cast<double>(train.features(i, k)) - mean;
        squares += centred * centred;
      }
      const double deviation = std::sqrt(squares / m);
      scaling.shift(i) = static_cast<S>(mean);
      if (deviation > 0) scaling.factor(i) = static_cast<S>(1.0 / deviation);
    }
    return scaling;
  }

  /// Applies the map to every sample of `data`, whose dimension must be the fitted one.
  void apply(Dataset<S>& data) const {
    detail::require(data.dimension() == shift.size(), "the data have dimension {} but the scaling was fitted on {}",
                    data.dimension(), shift.size());
    data.features = ((data.features.colwise() - shift).array().colwise() * factor.array()).matrix();
  }

 private:
  static void require_samples(const Dataset<S>& train) {
    detail::require(train.size() > 0 && train.dimension() > 0, "'train' has {} samples of dimension {}: nothing to fit",
                    train.size(), train.dimension());
  }
};

/// A random split of `data`: round(test_fraction m) samples, drawn without replacement from the
/// data stream (DataStream::train_test_split, 0) of `seed`, form the test set (in the order of `data`), the others the
/// training set. Both keep `data`'s classes.
template <Real S>
std::pair<Dataset<S>, Dataset<S>> train_test_split(const Dataset<S>& data, double test_fraction, std::uint64_t seed) {
  detail::require(test_fraction > 0 && test_fraction < 1, "'test_fraction' ({}) must be in (0, 1)", test_fraction);
  data.validate_labels();
  const Index m = data.size();
  const auto test_size = static_cast<Index>(std::llround(test_fraction * static_cast<double>(m)));
  detail::require(test_size >= 1 && test_size < m, "'test_fraction' ({}) of {} samples leaves a set empty", test_fraction, m);
  std::vector<Index> order(static_cast<std::size_t>(m));
  std::iota(order.begin(), order.end(), Index{0});
  Rng rng = detail::data_stream(seed, detail::DataStream::train_test_split, 0);
  for (Index k = 0; k < test_size; ++k)  // a partial Fisher-Yates: the first test_size are the test set
    std::swap(order[static_cast<std::size_t>(k)], order[static_cast<std::size_t>(k + rng.below(m - k))]);
  std::vector<Index> test(order.begin(), order.begin() + test_size);
  std::vector<Index> train(order.begin() + test_size, order.end());
  std::sort(test.begin(), test.end());
  std::sort(train.begin(), train.end());
  return {data.subset(train), data.subset(test)};
}

}  // namespace hsgd
