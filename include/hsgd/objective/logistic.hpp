#pragma once
/// @file
/// Logistic regression with a non-convex regulariser: the objective of benchmark B1.

#include <cmath>
#include <cstdint>
#include <ranges>
#include <span>
#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/prefetch.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/data/dataset.hpp"
#include "hsgd/objective/classifier.hpp"
#include "hsgd/objective/penalty.hpp"

namespace hsgd {

/// Binary logistic loss over m samples (a_k, y_k), y_k in {-1, +1}, plus the smooth non-convex
/// regulariser of Antoniadis et al.:
///
///   F(x) = (1/m) sum_k log(1 + exp(-y_k a_k.x)) + lambda sum_i x_i^2 / (1 + x_i^2)
///   grad F(x) = (1/m) sum_k -y_k sigma(-y_k a_k.x) a_k + lambda 2 x_i / (1 + x_i^2)^2
///
/// A minibatch gradient averages the data term over the batch and adds the (deterministic)
/// regulariser gradient in full. Features are stored one sample per column (d x m) so that each
/// sample is one contiguous read.
template <Real S = double>
class NonconvexLogistic {
 public:
  using Scalar = S;

  /// Logistic regression on the samples (features.col(k), labels(k)). Throws InvalidArgument,
  /// naming the sample, unless there is a sample, the shapes agree, every label is -1 or +1 and
  /// every feature is finite; and unless `lambda` is finite and non-negative.
  NonconvexLogistic(Matrix<Scalar> features, Vector<Scalar> labels, Scalar lambda = Scalar(1e-3))
      : features_(std::move(features)), labels_(std::move(labels)), lambda_(lambda) {
    detail::require(features_.rows() > 0 && features_.cols() > 0,
                    "'features' ({}x{}) must hold at least one sample of at least one coordinate",
                    features_.rows(), features_.cols());
    detail::require(labels_.size() == features_.cols(), "'labels' has {} entries but 'features' has {} samples",
                    labels_.size(), features_.cols());
    for (Index k = 0; k < labels_.size(); ++k) {
      detail::require(labels_(k) == Scalar(1) || labels_(k) == Scalar(-1), "'labels'({}) is {}: labels must be -1 or +1",
                      k, labels_(k));
    }
    // One non-finite feature would make every model trained on it non-finite, far from here.
    for (Index k = 0; k < features_.cols(); ++k) {
      const Index i = detail::first_non_finite(features_.col(k));
      detail::require(i < 0, "'features' sample {} is not finite: coordinate {} is {}", k, i,
                      i < 0 ? Scalar(0) : features_(i, k));
    }
    detail::require(std::isfinite(lambda_) && lambda_ >= 0, "'lambda' ({}) must be finite and non-negative",
                    lambda_);
  }

  /// Logistic regression on a two-class Dataset: class 0 is label -1 and class 1 is +1 (as
  /// read_libsvm orders a file's -1 / +1 labels). Throws InvalidArgument unless the data have
  /// exactly 2 classes, besides the checks above.
  explicit NonconvexLogistic(const Dataset<Scalar>& data, Scalar lambda = Scalar(1e-3))
      : NonconvexLogistic(data.features, signs_of(data), lambda) {}

  [[nodiscard]] Index dimension() const { return features_.rows(); }
  [[nodiscard]] Index sample_count() const { return features_.cols(); }
  [[nodiscard]] Scalar lambda() const { return lambda_; }
  [[nodiscard]] const Matrix<Scalar>& features() const { return features_; }
  [[nodiscard]] const Vector<Scalar>& labels() const { return labels_; }

  [[nodiscard]] Scalar value(ConstVectorRef<Scalar> x) const {
    return mean_loss(x, std::views::iota(Index{0}, sample_count())) + regulariser(x);
  }

  /// The mean data loss over the batch plus the regulariser: an unbiased estimate of value(x).
  [[nodiscard]] Scalar batch_value(ConstVectorRef<Scalar> x, std::span<const Index> batch) const {
    return mean_loss(x, batch) + regulariser(x);
  }

  void gradient(ConstVectorRef<Scalar> x, VectorRef<Scalar> g) const {
    g.setZero();
    for (Index k = 0; k < sample_count(); ++k) accumulate_sample(x, k, g);
    finish(x, Scalar(sample_count()), g);
  }

  void batch_gradient(ConstVectorRef<Scalar> x, std::span<const Index> batch, VectorRef<Scalar> g) const {
    g.setZero();
    for (std::size_t b = 0; b < batch.size(); ++b) {
      if (b + 1 < batch.size()) detail::prefetch(features_.col(batch[b + 1]).data(), dimension());
      accumulate_sample(x, batch[b], g);
    }
    finish(x, Scalar(batch.size()), g);
  }

  /// Fraction of the samples whose predicted sign, +1 when a_k.x > 0 and -1 otherwise, is y_k.
  [[nodiscard]] double accuracy(ConstVectorRef<Scalar> x) const {
    Index correct = 0;
    for (Index k = 0; k < sample_count(); ++k) {
      const Scalar predicted = features_.col(k).dot(x) > 0 ? Scalar(1) : Scalar(-1);
      if (predicted == labels_(k)) ++correct;
    }
    return static_cast<double>(correct) / static_cast<double>(sample_count());
  }

 private:
  static Scalar softplus(Scalar z) { return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }

  template <class Samples>
  [[nodiscard]] Scalar mean_loss(ConstVectorRef<Scalar> x, const Samples& samples) const {
    Scalar loss = 0;
    Index count = 0;
    for (const Index k : samples) {
      loss += softplus(-labels_(k) * features_.col(k).dot(x));
      ++count;
    }
    return loss / Scalar(count);
  }

  [[nodiscard]] Scalar regulariser(ConstVectorRef<Scalar> x) const {
    return lambda_ * detail::nonconvex_penalty(x);
  }

  /// g += d/dx log(1 + exp(-y a.x)) = -y sigma(-y a.x) a.
  void accumulate_sample(ConstVectorRef<Scalar> x, Index k, VectorRef<Scalar> g) const {
    const Scalar margin = labels_(k) * features_.col(k).dot(x);
    g.noalias() += (-labels_(k) / (Scalar(1) + std::exp(margin))) * features_.col(k);
  }

  /// g = g / count + grad of the regulariser, in one pass over g (this runs every local step;
  /// detail::add_nonconvex_penalty_gradient after a division would be a second pass). The slope
  /// is penalty.hpp's overflow-safe form, so the gradient is finite for every finite x.
  void finish(ConstVectorRef<Scalar> x, Scalar count, VectorRef<Scalar> g) const {
    g.array() = g.array() / count + (Scalar(2) * lambda_) * detail::nonconvex_penalty_slope(x.array());
  }

  static Vector<Scalar> signs_of(const Dataset<Scalar>& data) {
    detail::require(data.classes == 2, "'classes' ({}) must be 2 for logistic regression (class 0 is -1, class 1 is +1)",
                    data.classes);
    data.validate_labels();
    Vector<Scalar> signs(data.size());
    for (Index k = 0; k < data.size(); ++k) signs(k) = data.labels[static_cast<std::size_t>(k)] == 1 ? Scalar(1) : Scalar(-1);
    return signs;
  }

  Matrix<Scalar> features_;
  Vector<Scalar> labels_;
  Scalar lambda_;
};

/// One NonconvexLogistic per worker from a two-class Dataset and a Partition, as
/// make_softmax_shards: worker j's shard holds the samples `partition[j]` of `data`, class 0 as
/// -1 and class 1 as +1. Throws InvalidArgument on bad data, an empty part or an index out of range.
template <Real Scalar>
std::vector<NonconvexLogistic<Scalar>> make_logistic_shards(const Dataset<Scalar>& data, const Partition& partition,
                                                            std::type_identity_t<Scalar> lambda = Scalar(1e-3)) {
  return detail::make_classifier_shards<NonconvexLogistic<Scalar>>(data, partition, lambda);
}

/// Parameters of benchmark B1's synthetic data (brief section 6), with its defaults.
struct B1Data {
  Index workers = 64;               ///< n
  Index samples_per_worker = 512;   ///< m
  Index dimension = 100;            ///< d
  double lambda = 1e-3;             ///< regulariser weight
  double signal = 2.0;              ///< standard deviation of a.w for the labelling model w
  double heterogeneity = 1.0;       ///< how far each worker's labelling model is from the shared one
  std::uint64_t seed = 0;           ///< data seed; worker j's data come from stream (seed, data, j)

  void validate() const {
    detail::require(workers > 0, "'workers' ({}) must be positive", workers);
    detail::require(samples_per_worker > 0, "'samples_per_worker' ({}) must be positive", samples_per_worker);
    detail::require(dimension > 0, "'dimension' ({}) must be positive", dimension);
    detail::require(detail::matrix_fits<double>(dimension, samples_per_worker),
                    "'samples_per_worker' ({}) times 'dimension' ({}) features overflow the address range",
                    samples_per_worker, dimension);
    detail::require(std::isfinite(lambda) && lambda >= 0, "'lambda' ({}) must be finite and non-negative",
                    lambda);
    detail::require(std::isfinite(signal) && signal >= 0, "'signal' ({}) must be finite and non-negative", signal);
    detail::require(std::isfinite(heterogeneity) && heterogeneity >= 0,
                    "'heterogeneity' ({}) must be finite and non-negative", heterogeneity);
  }
};

/// Makes worker j's B1 shard: features a ~ N(0, I_d); the worker labels with
/// w_j = signal (w + h u_j) / sqrt(d (1 + h^2)), where w and u_j are standard normal, and
/// y = +1 with probability sigma(a.w_j). With heterogeneity h = 0 the data are IID across workers;
/// larger h makes them more non-IID. Worker j's data come from its own stream, so a process can
/// make just the shards it hosts (see Engine's shard factory). Throws InvalidArgument, naming the
/// worker and the sample, if a labelling margin a.w_j is not finite (signal or heterogeneity near
/// the largest double): its label would mean nothing.
template <Real Scalar = double>
NonconvexLogistic<Scalar> make_b1_shard(const B1Data& data, Index worker) {
  data.validate();
  detail::require(worker >= 0 && worker < data.workers, "'worker' ({}) must be in [0, {})", worker, data.workers);
  const Index d = data.dimension;
  Rng shared = make_stream(data.seed, StreamKind::data, static_cast<std::uint64_t>(data.workers));
  const double scale = data.signal / std::sqrt(double(d) * (1.0 + data.heterogeneity * data.heterogeneity));
  Vector<double> truth(d);
  for (Index i = 0; i < d; ++i) truth(i) = shared.normal();  // w, shared by every worker
  Rng rng = make_stream(data.seed, StreamKind::data, static_cast<std::uint64_t>(worker));
  for (Index i = 0; i < d; ++i) truth(i) = scale * (truth(i) + data.heterogeneity * rng.normal());
  Matrix<Scalar> features(d, data.samples_per_worker);
  Vector<Scalar> labels(data.samples_per_worker);
  for (Index k = 0; k < data.samples_per_worker; ++k) {
    double margin = 0;
    for (Index i = 0; i < d; ++i) {
      const double a = rng.normal();
      features(i, k) = Scalar(a);
      margin += a * truth(i);
    }
    detail::require(std::isfinite(margin),
                    "worker {} sample {}: the labelling margin a.w_j is {}, not finite: 'signal' ({}) or "
                    "'heterogeneity' ({}) is too large",
                    worker, k, margin, data.signal, data.heterogeneity);
    labels(k) = rng.uniform() < 1.0 / (1.0 + std::exp(-margin)) ? Scalar(1) : Scalar(-1);
  }
  return NonconvexLogistic<Scalar>(std::move(features), std::move(labels), Scalar(data.lambda));
}

/// All of B1's shards, worker j's from make_b1_shard(data, j).
template <Real Scalar = double>
std::vector<NonconvexLogistic<Scalar>> make_b1_shards(const B1Data& data) {
  data.validate();
  std::vector<NonconvexLogistic<Scalar>> shards;
  shards.reserve(static_cast<std::size_t>(data.workers));
  for (Index j = 0; j < data.workers; ++j) shards.push_back(make_b1_shard<Scalar>(data, j));
  return shards;
}

}  // namespace hsgd
