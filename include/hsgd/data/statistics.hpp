#pragma once
/// @file
/// Partition statistics: how far a partition (data/partition.hpp) is from IID. The workers'
/// label mixes, a summary of sizes, class counts and label skew (PartitionSummary, summarize),
/// and the label skew across and inside groups of workers (group_label_skew).

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "hsgd/core/error.hpp"
#include "hsgd/core/format.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/core/weighting.hpp"
#include "hsgd/data/dataset.hpp"

namespace hsgd {

namespace detail {

/// counts[j][c]: the samples of class c that worker j holds.
inline std::vector<std::vector<Index>> class_counts(const Partition& partition, std::span<const Index> labels,
                                                    Index classes) {
  require_labels(labels, classes);
  std::vector<std::vector<Index>> counts(partition.size(), std::vector<Index>(static_cast<std::size_t>(classes), 0));
  for (std::size_t j = 0; j < partition.size(); ++j) {
    for (const Index sample : partition[j]) {
      require(sample >= 0 && sample < static_cast<Index>(labels.size()), "worker {} holds sample {}, outside [0, {})",
              j, sample, labels.size());
      ++counts[j][static_cast<std::size_t>(labels[static_cast<std::size_t>(sample)])];
    }
  }
  return counts;
}

/// counts / their sum, as a vector.
inline Vector<double> mix_of(std::span<const Index> counts) {
  Vector<double> mix(static_cast<Index>(counts.size()));
  for (std::size_t c = 0; c < counts.size(); ++c) mix(static_cast<Index>(c)) = static_cast<double>(counts[c]);
  return mix / mix.sum();
}

/// The label mixes of workers with these class counts, as columns.
inline Matrix<double> mixes_of(const std::vector<std::vector<Index>>& counts, Index classes) {
  Matrix<double> mixes(classes, static_cast<Index>(counts.size()));
  for (std::size_t j = 0; j < counts.size(); ++j) {
    const bool holds_samples = std::any_of(counts[j].begin(), counts[j].end(), [](Index n) { return n > 0; });
    require(holds_samples, "worker {} holds no samples, so it has no label mix", j);
    mixes.col(static_cast<Index>(j)) = mix_of(counts[j]);
  }
  return mixes;
}

/// TV(p, q) = (1/2) sum_c |p_c - q_c|, in [0, 1].
inline double total_variation(const Vector<double>& p, const Vector<double>& q) { return 0.5 * (p - q).lpNorm<1>(); }

/// The q-quantile of sorted values, interpolating linearly between order statistics at
/// position q (size - 1) (numpy's default, which LEAF's statistics use).
inline double percentile(std::span<const Index> sorted_values, double q) {
  const double position = q * static_cast<double>(sorted_values.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, sorted_values.size() - 1);
  const auto low = static_cast<double>(sorted_values[below]);
  return low + (position - static_cast<double>(below)) * (static_cast<double>(sorted_values[above]) - low);
}

/// w_j: 1 (uniform) or m_j (data size), as a vector.
inline Vector<double> worker_weights(const Partition& partition, Weighting weighting) {
  Vector<double> weights(static_cast<Index>(partition.size()));
  for (std::size_t j = 0; j < partition.size(); ++j) {
    weights(static_cast<Index>(j)) = weighting == Weighting::uniform ? 1.0 : static_cast<double>(partition[j].size());
  }
  return weights;
}

/// Throws unless `groups` lists every worker 0..workers-1 exactly once, in non-empty groups.
inline void require_groups(const std::vector<std::vector<Index>>& groups, Index workers) {
  std::vector<char> seen(static_cast<std::size_t>(workers), 0);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    require(!groups[g].empty(), "group {} is empty: every group needs a worker", g);
    for (const Index worker : groups[g]) {
      require(worker >= 0 && worker < workers, "group {} lists worker {}, outside [0, {})", g, worker, workers);
      require(seen[static_cast<std::size_t>(worker)] == 0, "worker {} is listed twice (again in group {})", worker, g);
      seen[static_cast<std::size_t>(worker)] = 1;
    }
  }
  const auto missing = std::find(seen.begin(), seen.end(), 0);
  require(missing == seen.end(), "worker {} is in no group", missing - seen.begin());
}

}  // namespace detail

/// The workers' label mixes as the columns of a C x n matrix: p_j(c) = (samples of class c that
/// worker j holds) / m_j. Every worker must hold a sample.
inline Matrix<double> label_mixes(const Partition& partition, std::span<const Index> labels, Index classes) {
  return detail::mixes_of(detail::class_counts(partition, labels, classes), classes);
}

/// How far a partition is from IID, at a glance. `brief_report()` (or formatting it with fmt)
/// gives two lines.
struct PartitionSummary {
  Index workers = 0;  ///< n
  Index samples = 0;  ///< m, the samples of the data set
  Index classes = 0;  ///< C
  /// Worker sizes m_j: least, 10th, 50th and 90th percentiles (linear interpolation, as numpy's
  /// and LEAF's statistics), largest, mean and (population) standard deviation.
  Index size_min = 0;
  double size_p10 = 0;
  double size_p50 = 0;
  double size_p90 = 0;
  Index size_max = 0;
  double size_mean = 0;
  double size_stdev = 0;
  double labels_per_worker = 0;  ///< mean number of classes a worker holds a sample of
  /// (1/n) sum_j TV(p_j, p): mean total-variation distance of the workers' label mixes from the
  /// data set's label mix p. 0 for identical mixes, 1 for disjoint ones.
  double label_skew = 0;
  std::vector<std::vector<Index>> class_counts;  ///< class_counts[j][c]: samples of class c at worker j

  [[nodiscard]] std::string brief_report() const {
    return fmt::format(
        "partition: {} workers, {} samples, {} classes; sizes min {} / p10 {:.4g} / median {:.4g} / p90 {:.4g} / "
        "max {}, mean {:.4g} (sd {:.4g})\n           {:.3g} labels per worker; label skew {:.4f} (mean TV "
        "distance of the workers' label mixes from the global one)",
        workers, samples, classes, size_min, size_p10, size_p50, size_p90, size_max, size_mean, size_stdev,
        labels_per_worker, label_skew);
  }
};

/// Sizes, class histograms and label skew of `partition` over the data set with these labels.
/// Every worker must hold a sample.
inline PartitionSummary summarize(const Partition& partition, std::span<const Index> labels, Index classes) {
  detail::require(!partition.empty(), "'partition' must have at least one worker");
  PartitionSummary summary;
  summary.workers = static_cast<Index>(partition.size());
  summary.samples = static_cast<Index>(labels.size());
  summary.classes = classes;
  summary.class_counts = detail::class_counts(partition, labels, classes);
  const Matrix<double> mixes = detail::mixes_of(summary.class_counts, classes);
  std::vector<Index> global_counts(static_cast<std::size_t>(classes), 0);
  for (const Index label : labels) ++global_counts[static_cast<std::size_t>(label)];
  const Vector<double> global = detail::mix_of(global_counts);

  std::vector<Index> sizes;
  for (const auto& samples : partition) sizes.push_back(static_cast<Index>(samples.size()));
  std::sort(sizes.begin(), sizes.end());
  summary.size_min = sizes.front();
  summary.size_p10 = detail::percentile(sizes, 0.1);
  summary.size_p50 = detail::percentile(sizes, 0.5);
  summary.size_p90 = detail::percentile(sizes, 0.9);
  summary.size_max = sizes.back();
  const auto n = static_cast<double>(summary.workers);
  summary.size_mean = static_cast<double>(std::accumulate(sizes.begin(), sizes.end(), Index{0})) / n;
  double squares = 0;
  for (const Index size : sizes) squares += std::pow(static_cast<double>(size) - summary.size_mean, 2);
  summary.size_stdev = std::sqrt(squares / n);
  summary.labels_per_worker = static_cast<double>((mixes.array() > 0).count()) / static_cast<double>(summary.workers);
  for (Index j = 0; j < summary.workers; ++j) summary.label_skew += detail::total_variation(mixes.col(j), global);
  summary.label_skew /= static_cast<double>(summary.workers);
  return summary;
}

template <Real S>
PartitionSummary summarize(const Partition& partition, const Dataset<S>& data) {
  return summarize(partition, data.labels, data.classes);
}

/// Label skew across and inside groups: the label-mix counterparts of D_up and D_down.
struct GroupLabelSkew {
  /// sum_i (W_i / W) TV(pbar_i, pbar): how far the groups' label mixes are from the global one.
  double across = 0;
  /// (1/W) sum_i sum_{j in V_i} w_j TV(p_j, pbar_i): how far workers are from their group's mix.
  double inside = 0;
};

/// Label skew of `partition` under `groups` (lists of worker ids, as for ExplicitGrouping), with
/// worker weights w_j = 1 (Weighting::uniform) or m_j (Weighting::data_size), group weights
/// W_i = sum_{j in V_i} w_j, W = sum_i W_i, group mixes pbar_i = sum_{j in V_i} w_j p_j / W_i and
/// global mix pbar = sum_j w_j p_j / W: the label mixes of the group objectives f_i and of f as
/// the engine weighs them (uniform: the paper's f = (1/n) sum F_j; data size: pooled samples).
/// Singleton groups give inside = 0, one group across = 0. TV obeys the triangle inequality
/// rather than the exact split D_glob = D_up + D_down.
inline GroupLabelSkew group_label_skew(const Partition& partition, std::span<const Index> labels, Index classes,
                                       const std::vector<std::vector<Index>>& groups,
                                       Weighting weighting = Weighting::uniform) {
  detail::require_groups(groups, static_cast<Index>(partition.size()));
  const Matrix<double> mixes = label_mixes(partition, labels, classes);
  const Vector<double> weights = detail::worker_weights(partition, weighting);
  const double total = weights.sum();
  const Vector<double> global = mixes * weights / total;
  GroupLabelSkew skew;
  for (const auto& group : groups) {
    Vector<double> group_mix = Vector<double>::Zero(classes);
    double group_weight = 0;
    for (const Index j : group) {
      group_mix += weights(j) * mixes.col(j);
      group_weight += weights(j);
    }
    group_mix /= group_weight;
    skew.across += group_weight / total * detail::total_variation(group_mix, global);
    for (const Index j : group) skew.inside += weights(j) / total * detail::total_variation(mixes.col(j), group_mix);
  }
  return skew;
}

}  // namespace hsgd

/// `fmt::print("{}\n", summary)` prints the brief report.
template <>
struct fmt::formatter<hsgd::PartitionSummary> : hsgd::detail::BriefReportFormatter<hsgd::PartitionSummary> {};
