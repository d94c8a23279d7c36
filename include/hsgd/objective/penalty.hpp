#pragma once
/// @file
/// Benchmark B1's smooth non-convex penalty, shared by the objectives that use it.

#include "hsgd/core/types.hpp"

namespace hsgd::detail {

/// R(x) = sum_i x_i^2 / (1 + x_i^2), benchmark B1's smooth non-convex penalty: each term is
/// below 1, so unlike a squared norm it stops pulling on large weights.
template <class Scalar>
Scalar nonconvex_penalty(ConstVectorRef<Scalar> x) {
  return (x.array().square() / (Scalar(1) + x.array().square())).sum();
}

/// g += lambda grad R(x), where grad R(x)_i = 2 x_i / (1 + x_i^2)^2.
template <class Scalar>
void add_nonconvex_penalty_gradient(ConstVectorRef<Scalar> x, Scalar lambda, VectorRef<Scalar> g) {
  g.array() += (Scalar(2) * lambda) * x.array() / (Scalar(1) + x.array().square()).square();
}

}  // namespace hsgd::detail
