#pragma once
/// @file
/// Estimates of the constants the bound takes: the gradient noise sigma^2 and the smoothness L.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <span>

#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/objective/concepts.hpp"

namespace hsgd {

/// sigma^2 of a minibatch gradient, over the workers.
struct GradientNoise {
  double mean = 0;     ///< (1/n) sum_j sigma_j^2
  double maximum = 0;  ///< max_j sigma_j^2, what the bound's "variance at most sigma^2" asks for
};

/// The variance of worker j's minibatch gradient at x, for batches of `batch` samples drawn
/// uniformly with replacement (UniformSampler): sigma_j^2 = s_j^2 / b with
/// s_j^2 = (1/m) sum_k ||grad l_k(x) - grad F_j(x)||^2 the exact per-sample variance over the shard
/// (so the estimate is exact at x; "estimate" refers to using one x for all of them). It evaluates
/// every sample's gradient once: a setup-time cost, not for the hot loop.
template <class Shards>
GradientNoise estimate_gradient_noise(const Shards& shards, ConstVectorRef<typename Shards::value_type::Scalar> x,
                                      Index batch) {
  using Scalar = typename Shards::value_type::Scalar;
  detail::require(batch > 0, "'batch' ({}) must be positive", batch);
  detail::require(!shards.empty(), "'shards' must not be empty");
  for (std::size_t j = 0; const auto& shard : shards) {
    detail::require(shard.sample_count() > 0, "shard {} holds no samples", j++);
  }
  GradientNoise noise;
  Vector<Scalar> full(x.size());
  Vector<Scalar> sample(x.size());
  for (const auto& shard : shards) {
    detail::require(shard.dimension() == x.size(), "'x' has {} coordinates but a shard has dimension {}", x.size(),
                    shard.dimension());
    shard.gradient(x, full);
    double spread = 0;
    for (Index k = 0; k < shard.sample_count(); ++k) {
      const std::array<Index, 1> one{k};
      shard.batch_gradient(x, one, sample);
      spread += static_cast<double>((sample - full).squaredNorm());
    }
    const double variance = spread / static_cast<double>(shard.sample_count()) / static_cast<double>(batch);
    noise.mean += variance / static_cast<double>(shards.size());
    noise.maximum = std::max(noise.maximum, variance);
  }
  return noise;
}

/// A lower estimate of the smoothness constant L around x: the largest
/// ||grad F_j(x + r u) - grad F_j(x)|| / r over the shards j and `directions` random unit
/// directions u (drawn from `rng`), at radius r. Curvature peaks between the probed directions
/// are missed, so treat it as a lower bound on L.
template <class Shards>
double estimate_smoothness(const Shards& shards, ConstVectorRef<typename Shards::value_type::Scalar> x, double radius,
                           Index directions, Rng& rng) {
  using Scalar = typename Shards::value_type::Scalar;
  detail::require(std::isfinite(radius) && radius > 0, "'radius' ({}) must be finite and positive", radius);
  detail::require(directions > 0, "'directions' ({}) must be positive", directions);
  detail::require(!shards.empty(), "'shards' must not be empty");
  detail::require(x.size() > 0, "'x' must have at least one coordinate");
  // The shards write gradients of their own dimension into buffers sized like x.
  for (std::size_t j = 0; const auto& shard : shards) {
    detail::require(shard.dimension() == x.size(), "'x' has {} coordinates but shard {} has dimension {}", x.size(),
                    j++, shard.dimension());
  }
  Vector<Scalar> direction(x.size());
  Vector<Scalar> moved(x.size());
  Vector<Scalar> at_x(x.size());
  Vector<Scalar> at_moved(x.size());
  double largest = 0;
  for (Index k = 0; k < directions; ++k) {
    do {
      for (Index i = 0; i < x.size(); ++i) direction(i) = static_cast<Scalar>(rng.normal());
    } while (direction.squaredNorm() == 0);  // no direction to normalise; happens only when d is tiny
    direction /= direction.norm();
    moved = x + static_cast<Scalar>(radius) * direction;
    for (const auto& shard : shards) {
      shard.gradient(x, at_x);
      shard.gradient(moved, at_moved);
      largest = std::max(largest, static_cast<double>((at_moved - at_x).norm()) / radius);
    }
  }
  return largest;
}

}  // namespace hsgd
