#pragma once
/// @file
/// A labelled dataset and a partition of it over workers: what generators produce, partitioners
/// split, and classification objectives are built from.

#include <algorithm>
#include <span>
#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"

namespace hsgd {

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

  /// Throws InvalidArgument unless the shapes agree and every label is a class.
  void validate() const {
    detail::require(classes > 0, "'classes' ({}) must be positive", classes);
    detail::require(static_cast<Index>(labels.size()) == features.cols(),
                    "'labels' has {} entries but 'features' has {} samples", labels.size(), features.cols());
    for (std::size_t k = 0; k < labels.size(); ++k) {
      detail::require(labels[k] >= 0 && labels[k] < classes, "'labels'[{}] ({}) must be in [0, {})", k, labels[k],
                      classes);
    }
  }

  /// The samples at `indices`, in that order (an index may repeat).
  [[nodiscard]] Dataset subset(std::span<const Index> indices) const {
    Dataset result;
    result.classes = classes;
    result.features.resize(dimension(), static_cast<Index>(indices.size()));
    result.labels.reserve(indices.size());
    for (std::size_t k = 0; k < indices.size(); ++k) {
      const Index sample = indices[k];
      detail::require(sample >= 0 && sample < size(), "'indices'[{}] ({}) must be in [0, {})", k, sample, size());
      result.features.col(static_cast<Index>(k)) = features.col(sample);
      result.labels.push_back(labels[static_cast<std::size_t>(sample)]);
    }
    return result;
  }

  /// counts[c]: the samples of class c.
  [[nodiscard]] std::vector<Index> class_counts() const {
    std::vector<Index> counts(static_cast<std::size_t>(classes), 0);
    for (const Index label : labels) ++counts[static_cast<std::size_t>(label)];
    return counts;
  }
};

/// Who holds what: worker j holds the samples `partition[j]` of a Dataset.
using Partition = std::vector<std::vector<Index>>;

}  // namespace hsgd
