#pragma once
/// @file
/// A separable Rosenbrock-type objective: a classic non-convex valley, shifted per worker.

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

#include <cmath>
#include <span>

namespace hsgd {

/// F(x) = sum_{i < d/2} [ b (x_{2i+1} - x_{2i}^2)^2 + (c - x_{2i})^2 ], d even, one sample
/// (deterministic gradient). Its minimiser is x_{2i} = c, x_{2i+1} = c^2; giving workers different
/// shifts c makes a non-IID, non-convex problem whose global objective's minimiser is no worker's.
///
///   dF/dx_{2i}   = -4 b x_{2i} (x_{2i+1} - x_{2i}^2) - 2 (c - x_{2i})
///   dF/dx_{2i+1} =  2 b (x_{2i+1} - x_{2i}^2)
template <Real S = double>
class Rosenbrock {
 public:
  using Scalar = S;

  Rosenbrock(Index dimension, Scalar shift = 1, Scalar steepness = 100)
      : dimension_(dimension), shift_(shift), steepness_(steepness) {
    detail::require(dimension > 0 && dimension % 2 == 0, "'dimension' ({}) must be positive and even", dimension);
    detail::require(std::isfinite(shift), "'shift' ({}) must be finite", shift);
    detail::require(std::isfinite(steepness) && steepness > 0, "'steepness' ({}) must be finite and positive",
                    steepness);
  }

  [[nodiscard]] Index dimension() const { return dimension_; }
  [[nodiscard]] Index sample_count() const { return 1; }
  [[nodiscard]] Scalar shift() const { return shift_; }

  [[nodiscard]] Scalar value(ConstVectorRef<Scalar> x) const {
    Scalar total = 0;
    for (Index i = 0; i < dimension_; i += 2) {
      const Scalar valley = x(i + 1) - x(i) * x(i);
      total += steepness_ * valley * valley + (shift_ - x(i)) * (shift_ - x(i));
    }
    return total;
  }

  void gradient(ConstVectorRef<Scalar> x, VectorRef<Scalar> g) const {
    for (Index i = 0; i < dimension_; i += 2) {
      const Scalar valley = x(i + 1) - x(i) * x(i);
      g(i) = -4 * steepness_ * x(i) * valley - 2 * (shift_ - x(i));
      g(i + 1) = 2 * steepness_ * valley;
    }
  }

  void batch_gradient(ConstVectorRef<Scalar> x, std::span<const Index> /*batch*/, VectorRef<Scalar> g) const {
    gradient(x, g);
  }

 private:
  Index dimension_;
  Scalar shift_;
  Scalar steepness_;
};

}  // namespace hsgd
