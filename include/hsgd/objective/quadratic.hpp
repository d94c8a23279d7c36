#pragma once
/// @file
/// Heterogeneous quadratic objectives: the workhorse of closed-form tests.

#include <cmath>
#include <span>
#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/data/dataset.hpp"

namespace hsgd {

/// Diagonal quadratic with per-worker curvature a and centre b, as a finite sum over m sample
/// centres c_k whose mean is b:
///
///   l_k(x) = (1/2) sum_i a_i (x_i - c_{k,i})^2,     F(x) = (1/m) sum_k l_k(x)
///          = (1/2) sum_i a_i (x_i - b_i)^2 + (1/2) sum_i a_i v_i,  v_i = (1/m) sum_k (c_{k,i} - b_i)^2.
///
/// grad F(x) = a .* (x - b); a minibatch B gives a .* (x - mean_{k in B} c_k), an unbiased estimate
/// whose noise comes from the spread of the sample centres. With one sample (the default) the
/// gradient is deterministic. Giving every worker its own (a, b) makes the problem non-IID.
template <Real S = double>
class Quadratic {
 public:
  using Scalar = S;

  /// Deterministic quadratic: one sample, centred at `centre`. Throws InvalidArgument unless the
  /// sizes agree and every number is finite (the message names the coordinate).
  Quadratic(const Vector<Scalar>& curvature, const Vector<Scalar>& centre)
      : Quadratic(curvature, one_sample(centre, curvature.size()), SampleCentres{}) {}

  /// Stochastic quadratic whose samples are the columns of `sample_centres` (d x m). Throws
  /// InvalidArgument unless the shapes agree and every number is finite (naming the sample).
  static Quadratic from_samples(Vector<Scalar> curvature, Matrix<Scalar> sample_centres) {
    return Quadratic(std::move(curvature), std::move(sample_centres), SampleCentres{});
  }

  /// Isotropic quadratic (a/2)||x - c_k||^2 averaged over samples drawn as centre + sigma * N(0, I):
  /// the minibatch gradient noise then has variance a^2 sigma^2 / |B| per coordinate (up to the
  /// finite-sample spread).
  static Quadratic isotropic_noisy(Scalar curvature, const Vector<Scalar>& centre, Index samples,
                                   Scalar sigma, Rng& rng) {
    detail::require(samples > 0, "'samples' ({}) must be positive", samples);
    detail::require(std::isfinite(curvature), "'curvature' ({}) must be finite", curvature);
    detail::require(!(sigma < 0), "'sigma' ({}) must be non-negative", sigma);
    detail::require(std::isfinite(sigma), "'sigma' ({}) must be finite", sigma);
    detail::require(centre.size() > 0, "'centre' must have at least one coordinate");
    detail::require(detail::matrix_fits<Scalar>(centre.size(), samples),
                    "'samples' ({}) times the {} coordinates overflow the address range", samples, centre.size());
    Matrix<Scalar> centres(centre.size(), samples);
    for (Index k = 0; k < samples; ++k) {
      for (Index i = 0; i < centre.size(); ++i) centres(i, k) = centre(i) + sigma * Scalar(rng.normal());
    }
    return from_samples(Vector<Scalar>::Constant(centre.size(), curvature), std::move(centres));
  }

  [[nodiscard]] Index dimension() const { return curvature_.size(); }
  [[nodiscard]] Index sample_count() const { return samples_.cols(); }
  [[nodiscard]] const Vector<Scalar>& curvature() const { return curvature_; }
  [[nodiscard]] const Vector<Scalar>& centre() const { return centre_; }
  /// The sample centres c_k, one per column (d x m).
  [[nodiscard]] const Matrix<Scalar>& sample_centres() const { return samples_; }

  [[nodiscard]] Scalar value(ConstVectorRef<Scalar> x) const {
    return Scalar(0.5) * (curvature_.array() * (x - centre_).array().square()).sum() + constant_;
  }

  void gradient(ConstVectorRef<Scalar> x, VectorRef<Scalar> g) const {
    g.array() = curvature_.array() * (x - centre_).array();
  }

  void batch_gradient(ConstVectorRef<Scalar> x, std::span<const Index> batch, VectorRef<Scalar> g) const {
    if (samples_.cols() == 1) return gradient(x, g);
    g.setZero();
    for (const Index k : batch) g += samples_.col(k);
    g.array() = curvature_.array() * (x.array() - g.array() / Scalar(batch.size()));
  }

 private:
  struct SampleCentres {};  // tells the constructors apart: an Eigen expression converts to both

  static Matrix<Scalar> one_sample(const Vector<Scalar>& centre, Index dimension) {
    detail::require(centre.size() == dimension, "'centre' has {} coordinates but 'curvature' has {}", centre.size(),
                    dimension);
    return centre;
  }

  Quadratic(Vector<Scalar> curvature, Matrix<Scalar> sample_centres, SampleCentres)
      : curvature_(std::move(curvature)), samples_(std::move(sample_centres)) {
    detail::require(curvature_.size() > 0, "'curvature' must have at least one coordinate");
    detail::require(samples_.rows() == curvature_.size(),
                    "'sample_centres' has {} rows but 'curvature' has {} coordinates", samples_.rows(),
                    curvature_.size());
    detail::require(samples_.cols() > 0, "'sample_centres' must hold at least one sample");
    const Index bad_curvature = detail::first_non_finite(curvature_);
    detail::require(bad_curvature < 0, "'curvature' must be finite: coordinate {} is {}", bad_curvature,
                    bad_curvature < 0 ? Scalar(0) : curvature_(bad_curvature));
    for (Index k = 0; k < samples_.cols(); ++k) {
      const Index i = detail::first_non_finite(samples_.col(k));
      detail::require(i < 0, "the centres must be finite: sample {} has {} at coordinate {}", k,
                      i < 0 ? Scalar(0) : samples_(i, k), i);
    }
    centre_ = samples_.rowwise().mean();
    const Vector<Scalar> spread = (samples_.colwise() - centre_).array().square().rowwise().mean();
    constant_ = Scalar(0.5) * curvature_.dot(spread);
  }

  Vector<Scalar> curvature_;
  Matrix<Scalar> samples_;
  Vector<Scalar> centre_;
  Scalar constant_{};
};

/// One deterministic quadratic per worker: worker j gets curvature column j and centre column j.
/// Throws InvalidArgument unless the shapes agree and every number is finite (naming the worker).
template <Real Scalar>
std::vector<Quadratic<Scalar>> heterogeneous_quadratics(const Matrix<Scalar>& curvatures,
                                                        const Matrix<Scalar>& centres) {
  detail::require(curvatures.rows() == centres.rows() && curvatures.cols() == centres.cols(),
                  "'curvatures' ({}x{}) and 'centres' ({}x{}) must have the same shape", curvatures.rows(),
                  curvatures.cols(), centres.rows(), centres.cols());
  for (Index j = 0; j < centres.cols(); ++j) {
    const Index bad_curvature = detail::first_non_finite(curvatures.col(j));
    detail::require(bad_curvature < 0, "worker {}: 'curvatures'({}, {}) is {}, not finite", j, bad_curvature, j,
                    bad_curvature < 0 ? Scalar(0) : curvatures(bad_curvature, j));
    const Index bad_centre = detail::first_non_finite(centres.col(j));
    detail::require(bad_centre < 0, "worker {}: 'centres'({}, {}) is {}, not finite", j, bad_centre, j,
                    bad_centre < 0 ? Scalar(0) : centres(bad_centre, j));
  }
  std::vector<Quadratic<Scalar>> shards;
  shards.reserve(static_cast<std::size_t>(centres.cols()));
  for (Index j = 0; j < centres.cols(); ++j) shards.emplace_back(curvatures.col(j), Vector<Scalar>(centres.col(j)));
  return shards;
}

}  // namespace hsgd
