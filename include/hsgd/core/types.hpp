#pragma once
/// @file
/// Vocabulary types shared by every part of hsgd.

#include <cmath>
#include <concepts>
#include <cstdint>

#include <Eigen/Core>

namespace hsgd {

/// Signed index type, the same as Eigen's, for sizes, steps, workers and levels.
using Index = Eigen::Index;

/// A model, a gradient or any other dense column vector.
template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// Column-major dense matrix; hsgd keeps one worker per column.
template <class Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

/// Writable view of a contiguous vector (a column of a model matrix, a Vector, a Map): what
/// pluggable parts receive, so that passing a column never copies.
template <class Scalar>
using VectorRef = Eigen::Ref<Vector<Scalar>>;

/// Read-only view of a contiguous vector.
template <class Scalar>
using ConstVectorRef = Eigen::Ref<const Vector<Scalar>>;

/// The floating-point types a model may hold.
template <class T>
concept Real = std::floating_point<T>;

namespace detail {

/// x.allFinite() with a fast path: a sum is finite only if every term is (NaN and Inf
/// propagate), and a sum vectorises, so checking every model on every step costs next to nothing.
template <class Derived>
bool all_finite(const Eigen::DenseBase<Derived>& x) {
  return std::isfinite(x.sum()) || x.allFinite();
}

}  // namespace detail

}  // namespace hsgd
