#pragma once
/// @file
/// A labelled dataset and a partition of it over workers: what generators produce, partitioners
/// split, and classification objectives are built from.

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

namespace detail {

/// a b fits in an Index, for a, b >= 0. Sizes are checked with this before they are multiplied:
/// signed overflow is undefined behaviour, and a wrapped product would size a buffer too small.
constexpr bool product_fits(Index a, Index b) noexcept {
  return a == 0 || b <= std::numeric_limits<Index>::max() / a;
}

/// a + b fits in an Index, for a, b >= 0.
constexpr bool sum_fits(Index a, Index b) noexcept { return b <= std::numeric_limits<Index>::max() - a; }

/// A d x m matrix of S fits in memory's address range: d m elements, and d m sizeof(S) bytes,
/// are representable. What a generator checks before it allocates, so that absurd sizes are a
/// named error rather than a wrapped size (beyond this, the allocator's std::bad_alloc answers).
template <class S>
constexpr bool matrix_fits(Index rows, Index cols) noexcept {
  return product_fits(rows, cols) && product_fits(rows * cols, static_cast<Index>(sizeof(S)));
}

/// The first coordinate of `values` that is not finite, or -1 if every one is.
template <class Derived>
Index first_non_finite(const Eigen::DenseBase<Derived>& values) {
  for (Index i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values.derived().coeff(i))) return i;
  }
  return -1;
}

/// Throws InvalidArgument unless `classes` is positive and every label is in [0, classes): the
/// check of bare labels that partitioners and partition statistics make.
inline void require_labels(std::span<const Index> labels, Index classes) {
  require(classes > 0, "'classes' ({}) must be positive", classes);
  for (std::size_t k = 0; k < labels.size(); ++k) {
    require(labels[k] >= 0 && labels[k] < classes, "'labels'[{}] ({}) must be in [0, {})", k, labels[k], classes);
  }
}

}  // namespace detail

/// m labelled samples in d dimensions: sample k is column k of `features` (d x m, so one sample
/// is one contiguous read) with class `labels[k]` in [0, classes).
template <Real S = double>
struct Dataset {
  using Scalar = S;

  Matrix<Scalar> features;    ///< d x m, one sample per column
  std::vector<Index> labels;  ///< m class labels in [0, classes)
  Index classes = 0;          ///< number of classes C

  [[nodiscard]] Index dimension() const { return features.rows(); }
  [[nodiscard]] Index size() const { return features.cols(); }

  /// Throws InvalidArgument unless the shapes agree, every label is a class and every feature is
  /// finite; the message names the first offending sample. One NaN or infinity in the features
  /// would make every model trained on them non-finite, far from its cause, so it is refused here.
  void validate() const {
    validate_labels();
    for (Index k = 0; k < features.cols(); ++k) {
      const Index i = detail::first_non_finite(features.col(k));
      detail::require(i < 0, "'features' sample {} is not finite: coordinate {} is {}", k, i,
                      i < 0 ? S(0) : features(i, k));
    }
  }

  /// validate() without its pass over the features: the shapes agree and every label is a class.
  /// O(m), for the operations that read labels only.
  void validate_labels() const {
    validate_shape();
    for (std::size_t k = 0; k < labels.size(); ++k) require_label(k);
  }

  /// The samples at `indices`, in that order (an index may repeat). Throws InvalidArgument unless
  /// the shapes agree, every index is a sample and every label copied is a class; the features are
  /// copied as they are (validate() checks them, in one pass that a caller taking many subsets of
  /// one data set need not repeat for each).
  [[nodiscard]] Dataset subset(std::span<const Index> indices) const {
    validate_shape();
    Dataset result;
    result.classes = classes;
    result.features.resize(dimension(), static_cast<Index>(indices.size()));
    result.labels.reserve(indices.size());
    for (std::size_t k = 0; k < indices.size(); ++k) {
      const Index sample = indices[k];
      detail::require(sample >= 0 && sample < size(), "'indices'[{}] ({}) must be in [0, {})", k, sample, size());
      require_label(static_cast<std::size_t>(sample));
      result.features.col(static_cast<Index>(k)) = features.col(sample);
      result.labels.push_back(labels[static_cast<std::size_t>(sample)]);
    }
    return result;
  }

  /// counts[c]: the samples of class c. Throws InvalidArgument as validate_labels().
  [[nodiscard]] std::vector<Index> class_counts() const {
    validate_labels();
    std::vector<Index> counts(static_cast<std::size_t>(classes), 0);
    for (const Index label : labels) ++counts[static_cast<std::size_t>(label)];
    return counts;
  }

 private:
  // Everything that indexes labels by a sample number relies on these two.
  void validate_shape() const {
    detail::require(classes > 0, "'classes' ({}) must be positive", classes);
    detail::require(static_cast<Index>(labels.size()) == features.cols(),
                    "'labels' has {} entries but 'features' has {} samples", labels.size(), features.cols());
  }

  void require_label(std::size_t k) const {
    detail::require(labels[k] >= 0 && labels[k] < classes, "'labels'[{}] ({}) must be in [0, {})", k, labels[k],
                    classes);
  }
};

/// Who holds what: worker j holds the samples `partition[j]` of a Dataset.
using Partition = std::vector<std::vector<Index>>;

}  // namespace hsgd
