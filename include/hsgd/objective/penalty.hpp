#pragma once
/// @file
/// Benchmark B1's smooth non-convex penalty, shared by the objectives that use it.

#include <limits>

#include "hsgd/core/types.hpp"

namespace hsgd::detail {

/// Where x^2 / (1 + x^2) has become 1 in Scalar: at x^2 = 1/epsilon^2, 1 + x^2 rounds to x^2.
/// Clamping x^2 there changes no result and keeps x^2 finite, so the quotient never meets
/// inf / inf (NaN) for |x| above sqrt(max), about 1.3e154 in double and 1.8e19 in float.
template <class Scalar>
constexpr Scalar penalty_saturation() {
  return Scalar(1) / (std::numeric_limits<Scalar>::epsilon() * std::numeric_limits<Scalar>::epsilon());
}

/// R(x) = sum_i x_i^2 / (1 + x_i^2), benchmark B1's smooth non-convex penalty: each term is
/// below 1, so unlike a squared norm it stops pulling on large weights. Finite for every finite x.
template <class Scalar>
Scalar nonconvex_penalty(ConstVectorRef<Scalar> x) {
  // Written so that a NaN coordinate stays NaN (Eigen's min() may return either operand).
  const auto squares = x.array().square().unaryExpr([](Scalar s) {
    return s > penalty_saturation<Scalar>() ? penalty_saturation<Scalar>() : s;
  });
  return (squares / (Scalar(1) + squares)).sum();
}

/// The coefficients x_i / (1 + x_i^2)^2, half of grad R(x), as an expression to fuse into a
/// gradient's last pass. Computed as x_i u_i^2 with u_i = 1 / (1 + x_i^2): one division, as the
/// direct form, but where x_i^2 overflows u_i is 0 and the result 0 (the exact value is below
/// 2 / |x|^3, which underflows there), while the direct form's x / (1 + x^2)^2 meets inf / inf
/// and, scaled by 2 lambda first, 2 lambda x itself overflows near the largest double.
/// Multiply the result by 2 lambda afterwards: x u^2 <= 0.33, so that product cannot overflow.
template <class Derived>
auto nonconvex_penalty_slope(const Eigen::ArrayBase<Derived>& x) {
  using Scalar = typename Derived::Scalar;
  return x * (Scalar(1) + x.square()).inverse().square();
}

/// g += lambda grad R(x), where grad R(x)_i = 2 x_i / (1 + x_i^2)^2. Finite for every finite x.
template <class Scalar>
void add_nonconvex_penalty_gradient(ConstVectorRef<Scalar> x, Scalar lambda, VectorRef<Scalar> g) {
  g.array() += (Scalar(2) * lambda) * nonconvex_penalty_slope(x.array());
}

}  // namespace hsgd::detail
