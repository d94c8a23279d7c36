#pragma once
/// @file
/// Synthetic classification data: a Gaussian class mixture (split it over workers with
/// partition.hpp), and the synthetic(alpha, beta) federated data of FedProx and LEAF, which comes
/// with its own partition, one device per worker. Generated in double, stored as Scalar.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/data/dataset.hpp"
#include "hsgd/data/distributions.hpp"

namespace hsgd {

/// Settings of make_gaussian_mixture.
struct GaussianMixtureOptions {
  Index classes = 10;    ///< C, >= 1
  Index dimension = 20;  ///< d, >= 1
  Index samples = 1000;  ///< m, >= 1 (with m < C some classes get no samples)
  /// ||mu_c||: the class means lie on the sphere of this radius in random directions. In high
  /// dimension random directions are nearly orthogonal, so two means lie about sqrt(2) times this
  /// apart, and separation / noise acts as a signal-to-noise ratio. Finite, >= 0.
  double separation = 4.0;
  double noise = 1.0;  ///< sigma, the noise standard deviation of every coordinate. Finite, >= 0.
  /// Class weights p_c (normalised here): C finite non-negative entries with a positive sum.
  /// Empty: balanced classes.
  std::vector<double> proportions;
  bool shuffle = true;     ///< samples in random order; false: sorted by class
  std::uint64_t seed = 0;  ///< class c draws from data stream (gaussian_mixture_class, c)

  void validate() const {
    detail::require(classes > 0, "'classes' ({}) must be positive", classes);
    detail::require(dimension > 0, "'dimension' ({}) must be positive", dimension);
    detail::require(samples > 0, "'samples' ({}) must be positive", samples);
    detail::require(std::isfinite(separation) && separation >= 0, "'separation' ({}) must be finite and non-negative",
                    separation);
    detail::require(std::isfinite(noise) && noise >= 0, "'noise' ({}) must be finite and non-negative", noise);
    detail::require(detail::matrix_fits<double>(dimension, samples),
                    "'samples' ({}) times 'dimension' ({}) features overflow the address range", samples, dimension);
    detail::require(detail::matrix_fits<double>(dimension, classes),
                    "'classes' ({}) times 'dimension' ({}) class-mean coordinates overflow the address range", classes,
                    dimension);
    if (proportions.empty()) return;
    detail::require(static_cast<Index>(proportions.size()) == classes,
                    "'proportions' has {} entries but 'classes' is {}", proportions.size(), classes);
    double total = 0;
    for (std::size_t c = 0; c < proportions.size(); ++c) {
      detail::require(std::isfinite(proportions[c]) && proportions[c] >= 0,
                      "'proportions'[{}] ({}) must be finite and non-negative", c, proportions[c]);
      total += proportions[c];
    }
    detail::require(total > 0, "'proportions' must have a positive sum");
    // An infinite sum would make every quota 0 and hand all m samples to the rounding step.
    detail::require(std::isfinite(total), "'proportions' sum to {}: scale them down", total);
  }

  /// m_c, the samples of class c: the largest-remainder rounding of m p_c / sum p (each class
  /// gets floor(m p_c / sum p); the classes with the largest remainders, lower class first on
  /// ties, get one more), so the sizes sum to m exactly. Balanced: m / C each, and the first
  /// m mod C classes one more.
  [[nodiscard]] std::vector<Index> class_sizes() const {
    validate();
    const std::vector<double> weights =
        proportions.empty() ? std::vector<double>(static_cast<std::size_t>(classes), 1.0) : proportions;
    const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
    std::vector<Index> sizes(weights.size());
    std::vector<double> remainders(weights.size());
    Index assigned = 0;
    for (std::size_t c = 0; c < weights.size(); ++c) {
      // The share first: p_c / sum p <= 1, so the quota never exceeds m (m p_c first could round
      // above it for subnormal weights), and the floors never pass what is left of m.
      const double quota = static_cast<double>(samples) * (weights[c] / total);
      sizes[c] = std::min(static_cast<Index>(std::floor(quota)), samples - assigned);
      assigned += sizes[c];
      remainders[c] = quota - std::floor(quota);
    }
    std::vector<std::size_t> order(weights.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return remainders[a] > remainders[b]; });
    // Rounding leaves fewer than C samples over; the modulo keeps a pathological sum in bounds.
    for (Index k = 0; k < samples - assigned; ++k) ++sizes[order[static_cast<std::size_t>(k) % order.size()]];
    return sizes;
  }
};

namespace detail {

/// The largest size drawn for a LEAF device: 2^53, the last count a double holds exactly.
inline constexpr Index max_device_size = Index{1} << 53;

/// `value` is finite and within S's range, so that S(value) is defined (and finite).
template <class S>
bool fits_in(double value) {
  return std::abs(value) <= static_cast<double>(std::numeric_limits<S>::max());
}

/// mu_c = separation z / ||z|| with z ~ N(0, I_d): the first draws of class c's stream.
inline Vector<double> draw_class_mean(Rng& rng, const GaussianMixtureOptions& options) {
  Vector<double> direction(options.dimension);
  do {
    for (Index i = 0; i < direction.size(); ++i) direction(i) = rng.normal();
  } while (direction.squaredNorm() == 0);  // no direction to scale; happens only when d is tiny
  return (options.separation / direction.norm()) * direction;
}

}  // namespace detail

/// The class means mu_1..mu_C as columns of a d x C matrix, exactly as make_gaussian_mixture
/// draws them (what a test or a Bayes classifier needs).
inline Matrix<double> gaussian_mixture_means(const GaussianMixtureOptions& options) {
  options.validate();
  Matrix<double> means(options.dimension, options.classes);
  for (Index c = 0; c < options.classes; ++c) {
    Rng rng =
        detail::data_stream(options.seed, detail::DataStream::gaussian_mixture_class, static_cast<std::uint64_t>(c));
    means.col(c) = detail::draw_class_mean(rng, options);
  }
  return means;
}

/// A Gaussian class mixture: m_c samples (GaussianMixtureOptions::class_sizes) of each class c,
///
///   x = mu_c + sigma z,  z ~ N(0, I_d),  mu_c = separation u_c,  u_c uniform on the unit sphere.
///
/// Class c's stream (data stream (gaussian_mixture_class, c)) draws mu_c, then its samples'
/// noise in order, so a class's samples do not depend on the other classes' sizes. With
/// `shuffle`, the samples are placed in an order drawn from stream (gaussian_mixture_order, 0).
template <Real S = double>
Dataset<S> make_gaussian_mixture(const GaussianMixtureOptions& options) {
  const std::vector<Index> sizes = options.class_sizes();
  std::vector<Index> column(static_cast<std::size_t>(options.samples));
  std::iota(column.begin(), column.end(), Index{0});
  if (options.shuffle) {
    detail::data_stream(options.seed, detail::DataStream::gaussian_mixture_order, 0).shuffle(std::span<Index>(column));
  }
  Dataset<S> data;
  data.classes = options.classes;
  data.features.resize(options.dimension, options.samples);
  data.labels.assign(column.size(), 0);
  auto next = column.begin();
  for (Index c = 0; c < options.classes; ++c) {
    Rng rng =
        detail::data_stream(options.seed, detail::DataStream::gaussian_mixture_class, static_cast<std::uint64_t>(c));
    const Vector<double> mean = detail::draw_class_mean(rng, options);
    for (Index k = 0; k < sizes[static_cast<std::size_t>(c)]; ++k, ++next) {
      for (Index i = 0; i < options.dimension; ++i) {
        const double value = mean(i) + options.noise * rng.normal();
        // Separation and noise are finite, but near the largest double (or float, for S = float)
        // a feature is not; converting it to S would even be undefined. Refuse the data set.
        detail::require(detail::fits_in<S>(value),
                        "'separation' ({}) and 'noise' ({}) are too large: sample {} (class {}) has feature {} at "
                        "coordinate {}, beyond a {}-byte floating-point type",
                        options.separation, options.noise, *next, c, value, i, sizeof(S));
        data.features(i, *next) = S(value);
      }
      data.labels[static_cast<std::size_t>(*next)] = c;
    }
  }
  return data;
}

/// How many samples each device of the synthetic(alpha, beta) data holds.
enum class DeviceSizes {
  fixed,      ///< every device holds `samples_per_device`
  lognormal,  ///< min_samples + floor(exp(mu + sigma z)), z ~ N(0, 1), capped at max_samples when set (LEAF's)
};

/// Settings of make_leaf_synthetic. The defaults are FedProx's Synthetic(1, 1): 30 devices,
/// 10 classes, 60 dimensions, lognormal(4, 2) sizes plus 50.
struct LeafSyntheticOptions {
  Index devices = 30;    ///< K, >= 1
  Index classes = 10;    ///< C, >= 1
  Index dimension = 60;  ///< d, >= 1
  double alpha = 1.0;    ///< standard deviation of u_k: how much the devices' models differ. Finite, >= 0.
  double beta = 1.0;     ///< standard deviation of B_k: how much the devices' inputs differ. Finite, >= 0.
  /// FedProx's Synthetic-IID: one model W, b ~ N(0, 1) shared by every device and inputs
  /// x ~ N(0, Sigma); alpha and beta are then unused.
  bool iid = false;
  DeviceSizes sizes = DeviceSizes::lognormal;
  Index samples_per_device = 100;  ///< n_k with DeviceSizes::fixed, >= 1
  double lognormal_mu = 4.0;       ///< mu of the lognormal sizes. Finite.
  double lognormal_sigma = 2.0;    ///< sigma of the lognormal sizes. Finite, >= 0.
  Index min_samples = 50;          ///< added to every lognormal size, so the least a device holds, >= 1
  Index max_samples = 0;           ///< cap on lognormal sizes (LEAF has none), 0: no cap, else >= min_samples
  std::uint64_t seed = 0;          ///< device k draws from data stream (leaf_device, k)

  void validate() const {
    detail::require(devices > 0, "'devices' ({}) must be positive", devices);
    detail::require(classes > 0, "'classes' ({}) must be positive", classes);
    detail::require(dimension > 0, "'dimension' ({}) must be positive", dimension);
    detail::require(std::isfinite(alpha) && alpha >= 0, "'alpha' ({}) must be finite and non-negative", alpha);
    detail::require(std::isfinite(beta) && beta >= 0, "'beta' ({}) must be finite and non-negative", beta);
    detail::require(samples_per_device > 0, "'samples_per_device' ({}) must be positive", samples_per_device);
    detail::require(std::isfinite(lognormal_mu), "'lognormal_mu' ({}) must be finite", lognormal_mu);
    detail::require(std::isfinite(lognormal_sigma) && lognormal_sigma >= 0,
                    "'lognormal_sigma' ({}) must be finite and non-negative", lognormal_sigma);
    detail::require(min_samples > 0, "'min_samples' ({}) must be positive", min_samples);
    detail::require(max_samples == 0 || max_samples >= min_samples,
                    "'max_samples' ({}) must be 0 (no cap) or at least 'min_samples' ({})", max_samples, min_samples);
    // A device's size is computed in double, exact up to 2^53, and every device holds at least
    // these many samples: the least data set must be addressable.
    detail::require(min_samples <= detail::max_device_size,
                    "'min_samples' ({}) must be at most 2^53 ({}), the largest exact count", min_samples,
                    detail::max_device_size);
    const Index least = sizes == DeviceSizes::fixed ? samples_per_device : min_samples;
    detail::require(detail::product_fits(devices, least) && detail::matrix_fits<double>(dimension, devices * least),
                    "'devices' ({}) times {} samples each times 'dimension' ({}) features overflow the address range",
                    devices, least, dimension);
    detail::require(detail::matrix_fits<double>(classes, dimension),
                    "'classes' ({}) times 'dimension' ({}) model weights overflow the address range", classes,
                    dimension);
  }
};

/// Device k's labelling model and input distribution: labels are argmax(W_k x + b_k),
/// inputs x ~ N(v_k, Sigma).
struct LeafDeviceModel {
  Matrix<double> weights;     ///< W_k, C x d
  Vector<double> bias;        ///< b_k, C entries
  Vector<double> input_mean;  ///< v_k, d entries
};

/// A data set with the partition it comes with: worker j holds the samples `partition[j]`.
template <Real S = double>
struct FederatedData {
  Dataset<S> data;
  Partition partition;
};

namespace detail {

/// Everything about the devices but their samples; `streams[k]` is device k's stream, positioned
/// where its samples start.
struct LeafDevices {
  std::vector<LeafDeviceModel> models;
  std::vector<Index> sizes;
  std::vector<Rng> streams;
};

/// W, b ~ N(mean, 1) entrywise (W row by row, then b), and v = 0.
inline LeafDeviceModel draw_leaf_model(Rng& rng, const LeafSyntheticOptions& options, double mean) {
  LeafDeviceModel model{Matrix<double>(options.classes, options.dimension), Vector<double>(options.classes),
                        Vector<double>::Zero(options.dimension)};
  for (Index c = 0; c < options.classes; ++c) {
    for (Index i = 0; i < options.dimension; ++i) model.weights(c, i) = mean + rng.normal();
  }
  for (Index c = 0; c < options.classes; ++c) model.bias(c) = mean + rng.normal();
  return model;
}

/// FedProx's device prior: u_k ~ N(0, alpha^2), B_k ~ N(0, beta^2) (in that order), then W_k and
/// b_k with mean u_k, then v_k ~ N(B_k, I_d). One u_k centres both W_k and b_k, as in FedProx's code.
inline LeafDeviceModel draw_leaf_device_model(Rng& rng, const LeafSyntheticOptions& options) {
  const double model_mean = options.alpha * rng.normal();
  const double input_centre = options.beta * rng.normal();
  LeafDeviceModel model = draw_leaf_model(rng, options, model_mean);
  for (Index i = 0; i < options.dimension; ++i) model.input_mean(i) = input_centre + rng.normal();
  return model;
}

inline Index draw_device_size(Rng& rng, const LeafSyntheticOptions& options) {
  if (options.sizes == DeviceSizes::fixed) return options.samples_per_device;
  const double extra = std::floor(std::exp(options.lognormal_mu + options.lognormal_sigma * rng.normal()));
  // Capped at 2^53 (the last exactly representable count) whatever max_samples says: the
  // conversion to Index is then defined (2^63, a max_samples near the largest Index, is not).
  const double cap = std::min(static_cast<double>(options.max_samples > 0 ? options.max_samples : max_device_size),
                              static_cast<double>(max_device_size));
  return static_cast<Index>(std::min(static_cast<double>(options.min_samples) + extra, cap));
}

/// Device k's stream draws its model (unless IID), then its size; the shared IID model comes
/// from stream (leaf_shared, 0).
inline LeafDevices draw_leaf_devices(const LeafSyntheticOptions& options) {
  options.validate();
  LeafDevices devices;
  LeafDeviceModel shared;
  if (options.iid) {
    Rng rng = data_stream(options.seed, DataStream::leaf_shared, 0);
    shared = draw_leaf_model(rng, options, 0.0);
  }
  Index total = 0;
  for (Index k = 0; k < options.devices; ++k) {
    Rng rng = data_stream(options.seed, DataStream::leaf_device, static_cast<std::uint64_t>(k));
    devices.models.push_back(options.iid ? shared : draw_leaf_device_model(rng, options));
    devices.sizes.push_back(draw_device_size(rng, options));
    devices.streams.push_back(rng);
    // Lognormal sizes have a heavy tail: exp(mu + sigma z) reaches 2^53 per device for large mu
    // or sigma, and the total, or the feature matrix it sizes, can overflow.
    const Index size = devices.sizes.back();
    detail::require(sum_fits(total, size) && matrix_fits<double>(options.dimension, total + size),
                    "the lognormal device sizes ('lognormal_mu' {}, 'lognormal_sigma' {}) exploded: device {} drew {} "
                    "samples, {} before it, and with 'dimension' ({}) the features overflow the address range; lower "
                    "them or set 'max_samples'",
                    options.lognormal_mu, options.lognormal_sigma, k, size, total, options.dimension);
    total += size;
  }
  return devices;
}

}  // namespace detail

/// The devices' models (W_k, b_k, v_k), exactly as make_leaf_synthetic draws them.
inline std::vector<LeafDeviceModel> leaf_synthetic_models(const LeafSyntheticOptions& options) {
  return detail::draw_leaf_devices(options).models;
}

/// The synthetic(alpha, beta) federated data of Li et al., "Federated Optimization in
/// Heterogeneous Networks" (FedProx), also shipped with LEAF. Device k has
///
///   u_k ~ N(0, alpha^2),  W_k (C x d), b_k ~ N(u_k, 1) entrywise,
///   B_k ~ N(0, beta^2),   v_k ~ N(B_k, I_d),
///   x ~ N(v_k, Sigma), Sigma = diag(j^-1.2) for j = 1..d,   y = argmax softmax(W_k x + b_k),
///
/// (alpha, beta as standard deviations, as FedProx's code draws them; softmax does not move the
/// argmax, so y = argmax(W_k x + b_k), computed in double before the features are rounded to S).
/// alpha = beta = 0 still leaves the devices' models and means differing by N(0, 1) draws; `iid`
/// gives truly IID data. Sizes n_k: see DeviceSizes. Samples are stored device by device, and
/// the partition gives device k (worker k) its own n_k samples in order.
template <Real S = double>
FederatedData<S> make_leaf_synthetic(const LeafSyntheticOptions& options) {
  detail::LeafDevices devices = detail::draw_leaf_devices(options);
  const Index total = std::accumulate(devices.sizes.begin(), devices.sizes.end(), Index{0});
  Vector<double> spread(options.dimension);  // sqrt(Sigma_jj) = j^-0.6
  for (Index i = 0; i < options.dimension; ++i) spread(i) = std::pow(static_cast<double>(i + 1), -0.6);

  FederatedData<S> result;
  result.data.classes = options.classes;
  result.data.features.resize(options.dimension, total);
  result.data.labels.resize(static_cast<std::size_t>(total));
  result.partition.resize(static_cast<std::size_t>(options.devices));
  Vector<double> x(options.dimension);
  Vector<double> scores(options.classes);
  Index sample = 0;
  for (std::size_t k = 0; k < devices.models.size(); ++k) {
    const LeafDeviceModel& model = devices.models[k];
    Rng& rng = devices.streams[k];
    for (Index s = 0; s < devices.sizes[k]; ++s, ++sample) {
      for (Index i = 0; i < options.dimension; ++i) x(i) = model.input_mean(i) + spread(i) * rng.normal();
      scores.noalias() = model.weights * x;
      scores += model.bias;
      // alpha and beta are finite, but near the largest double (or float, for S = float) the
      // models, inputs or scores are not: a label drawn from NaN scores means nothing, and
      // converting an input beyond S's range to S would be undefined.
      const bool inputs_fit = (x.array().abs() <= static_cast<double>(std::numeric_limits<S>::max())).all();
      detail::require(scores.allFinite() && inputs_fit,
                      "'alpha' ({}) and 'beta' ({}) are too large: sample {} of device {} has non-finite class scores "
                      "or features beyond a {}-byte floating-point type",
                      options.alpha, options.beta, s, k, sizeof(S));
      scores.maxCoeff(&result.data.labels[static_cast<std::size_t>(sample)]);
      result.data.features.col(sample) = x.cast<S>();
      result.partition[k].push_back(sample);
    }
  }
  return result;
}

}  // namespace hsgd
