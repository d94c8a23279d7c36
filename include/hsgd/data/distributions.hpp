#pragma once
/// @file
/// Gamma, Dirichlet and categorical draws on an hsgd::Rng, by exactly specified algorithms, so
/// that a data set or a partition is the same bits on every platform and standard library.
///
/// Data streams. Every generator and partitioner in hsgd/data draws from
/// `make_stream(seed, StreamKind::data, (tag << 32) + id)`, with a tag per owner
/// (detail::DataStream) and an id per class, device or attempt, named in each function's docs.
/// The ids of make_b1_shards (the worker, below 2^32) are never reused, so data generated with
/// one seed by different generators never shares numbers.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

namespace detail {

/// The owners of data streams; the tag sits in the top 32 bits of the stream id.
enum class DataStream : std::uint64_t {
  gaussian_mixture_class = 1,  ///< id: the class
  gaussian_mixture_order = 2,  ///< id: 0 (the sample order)
  leaf_device = 3,             ///< id: the device
  leaf_shared = 4,             ///< id: 0 (the shared model of the IID variant)
  iid_partition = 5,           ///< id: 0
  shard_partition = 6,         ///< id: 0
  dirichlet_partition = 7,     ///< id: the attempt, 0-based
  two_level_partition = 8,     ///< id: the attempt, 0-based
  train_test_split = 9,        ///< id: 0
};

/// The data stream of (owner, id) in a run seeded with `seed`.
inline Rng data_stream(std::uint64_t seed, DataStream owner, std::uint64_t id) {
  return make_stream(seed, StreamKind::data, (static_cast<std::uint64_t>(owner) << 32U) + id);
}

/// The smallest Dirichlet concentration accepted. A Gamma(alpha) draw for alpha < 1 is taken as a
/// logarithm, log Gamma(alpha + 1) + log(U) / alpha (log_gamma_draw), and |log U| <= 53 ln 2
/// (about 36.7) for hsgd's uniforms: from this bound up the quotient stays above -4e301. Below
/// about 2e-307 it can overflow to -inf for every component at once, and normalising is 0/0.
inline constexpr double min_concentration = 1e-300;

inline void require_gamma_shape(double shape) {
  require(std::isfinite(shape) && shape > 0, "'shape' ({}) must be finite and positive", shape);
}

/// Marsaglia and Tsang (2000), "A simple method for generating gamma variables", for shape >= 1:
/// with d = shape - 1/3 and c = 1/sqrt(9d), draw x ~ N(0, 1) until v = (1 + c x)^3 > 0, then
/// u ~ U[0, 1); accept d v if u < 1 - 0.0331 x^4 (the squeeze, which spares a logarithm) or
/// log u < x^2/2 + d (1 - v + log v); otherwise start again.
inline double marsaglia_tsang(Rng& rng, double shape) {
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x = 0;
    double v = 0;
    do {
      x = rng.normal();
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = rng.uniform();
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2 || std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) return d * v;
  }
}

/// log of a Gamma(shape, 1) draw. For shape < 1 the boost: if Y ~ Gamma(shape + 1) and
/// U ~ U(0, 1] are independent, Y U^(1/shape) ~ Gamma(shape). U is drawn first. Kept as a
/// logarithm because U^(1/shape) underflows for small shapes (U = 0.01 at shape 0.005 gives
/// 10^-400), and a Dirichlet draw must survive that.
inline double log_gamma_draw(Rng& rng, double shape) {
  if (shape >= 1) return std::log(marsaglia_tsang(rng, shape));
  const double log_u = std::log1p(-rng.uniform());  // U = 1 - uniform() lies in (0, 1]
  return std::log(marsaglia_tsang(rng, shape + 1.0)) + log_u / shape;
}

}  // namespace detail

/// A Gamma(shape, 1) draw, density x^(k-1) e^(-x) / Gamma(k) for shape k > 0; mean and variance
/// are both k. Marsaglia-Tsang for k >= 1; for k < 1 the boost Gamma(k + 1) U^(1/k)
/// (see detail::log_gamma_draw). Results underflow to 0 for tiny shapes; draw_dirichlet does not.
inline double draw_gamma(Rng& rng, double shape) {
  detail::require_gamma_shape(shape);
  if (shape >= 1) return detail::marsaglia_tsang(rng, shape);
  return std::exp(detail::log_gamma_draw(rng, shape));
}

/// A Dirichlet(alpha_1..alpha_K) draw: x_i = G_i / sum_k G_k with G_i ~ Gamma(alpha_i) independent,
/// drawn in order i = 1..K. Mean alpha_i / A, variance alpha_i (A - alpha_i) / (A^2 (A + 1)) with
/// A = sum alpha. The G_i are normalised in log space (x_i = exp(log G_i - log sum G)), so the
/// result is a probability vector even when every G_i would underflow (alpha = 0.01). Each
/// alpha_i must be finite and at least 1e-300 (detail::min_concentration), where even the log
/// space gives out.
inline std::vector<double> draw_dirichlet(Rng& rng, std::span<const double> alpha) {
  detail::require(!alpha.empty(), "'alpha' must have at least one entry");
  for (std::size_t i = 0; i < alpha.size(); ++i) {
    detail::require(std::isfinite(alpha[i]) && alpha[i] > 0, "'alpha'[{}] ({}) must be finite and positive", i,
                    alpha[i]);
    detail::require(alpha[i] >= detail::min_concentration,
                    "'alpha'[{}] ({}) must be at least {}: smaller concentrations underflow every Gamma draw", i,
                    alpha[i], detail::min_concentration);
  }
  std::vector<double> x(alpha.size());
  for (std::size_t i = 0; i < alpha.size(); ++i) x[i] = detail::log_gamma_draw(rng, alpha[i]);
  const double largest = *std::max_element(x.begin(), x.end());
  double total = 0;
  for (double& value : x) total += (value = std::exp(value - largest));  // the largest becomes 1
  for (double& value : x) value /= total;
  return x;
}

/// A symmetric Dirichlet(alpha, ..., alpha) draw of `k` components: as above, with mean 1/k.
inline std::vector<double> draw_dirichlet(Rng& rng, Index k, double alpha) {
  detail::require(k > 0, "'k' ({}) must be positive", k);
  detail::require(std::isfinite(alpha) && alpha > 0, "'alpha' ({}) must be finite and positive", alpha);
  detail::require(alpha >= detail::min_concentration,
                  "'alpha' ({}) must be at least {}: smaller concentrations underflow every Gamma draw", alpha,
                  detail::min_concentration);
  const std::vector<double> alphas(static_cast<std::size_t>(k), alpha);
  return draw_dirichlet(rng, alphas);
}

/// A categorical draw: i with probability w_i / sum w, for finite weights w_i >= 0 with a positive
/// sum (they need not be normalised). Inversion: one u ~ U[0, 1), then the first i with
/// u sum(w) < w_0 + ... + w_i. A zero weight is never drawn.
inline Index draw_categorical(Rng& rng, std::span<const double> weights) {
  double total = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    detail::require(std::isfinite(weights[i]) && weights[i] >= 0, "'weights'[{}] ({}) must be finite and non-negative",
                    i, weights[i]);
    total += weights[i];
  }
  detail::require(total > 0, "'weights' ({} entries) must have a positive sum", weights.size());
  // Two entries near the largest double sum to infinity, and u * inf would pick no category.
  detail::require(std::isfinite(total), "'weights' ({} entries) sum to {}: scale them down", weights.size(), total);
  const double target = rng.uniform() * total;
  double cumulative = 0;
  Index last_positive = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    cumulative += weights[i];
    if (target < cumulative) return static_cast<Index>(i);
    if (weights[i] > 0) last_positive = static_cast<Index>(i);
  }
  return last_positive;  // target rounded up to the total: the last category that can be drawn
}

}  // namespace hsgd
