#pragma once
/// @file
/// Heterogeneous quadratic objectives: the workhorse of closed-form tests.

#include <span>
#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"

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

  /// Deterministic quadratic: one sample, centred at `centre`.
  Quadratic(const Vector<Scalar>& curvature, const Vector<Scalar>& centre)
      : Quadratic(curvature, one_sample(centre, curvature.size()), SampleCentres{}) {}

  /// Stochastic quadratic whose samples are the columns of `sample_centres` (d x m).
  static Quadratic from_samples(Vector<Scalar> curvature, Matrix<Scalar> sample_centres) {
    return Quadratic(std::move(curvature), std::move(sample_centres), SampleCentres{});
  }

  /// Isotropic quadratic (a/2)||x - c_k||^2 averaged over samples drawn as centre + sigma * N(0, I):
  /// the minibatch gradient noise then has variance a^2 sigma^2 / |B| per coordinate (up to the
  /// finite-sample spread).
  static Quadratic isotropic_noisy(Scalar curvature, const Vector<Scalar>& centre, Index samples,
                                   Scalar sigma, Rng& rng) {
    detail::require(samples > 0, "'samples' ({}) must be positive", samples);
    detail::require(sigma >= 0, "'sigma' ({}) must be non-negative", sigma);
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
    detail::require(curvature_.allFinite() && samples_.allFinite(),
                    "'curvature' and the centres must be finite");
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
template <Real Scalar>
std::vector<Quadratic<Scalar>> heterogeneous_quadratics(const Matrix<Scalar>& curvatures,
                                                        const Matrix<Scalar>& centres) {
  detail::require(curvatures.rows() == centres.rows() && curvatures.cols() == centres.cols(),
                  "'curvatures' ({}x{}) and 'centres' ({}x{}) must have the same shape", curvatures.rows(),
                  curvatures.cols(), centres.rows(), centres.cols());
  std::vector<Quadratic<Scalar>> shards;
  shards.reserve(static_cast<std::size_t>(centres.cols()));
  for (Index j = 0; j < centres.cols(); ++j) shards.emplace_back(curvatures.col(j), Vector<Scalar>(centres.col(j)));
  return shards;
}

}  // namespace hsgd
