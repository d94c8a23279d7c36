#pragma once
/// @file
/// Layouts: which workers share a group, chosen from their label mixes so that the groups are
/// alike (group-IID) or unlike (group-non-IID), for a given partition. A layout lists each
/// group's workers, as ExplicitGrouping takes them; with Topology::two_level(group_sizes, I, G),
/// `ExplicitGrouping(group_iid_layout(partition, labels, classes, group_sizes))` runs H-SGD on it.
/// Both layouts are deterministic and list each group's workers in increasing order.

#include <algorithm>
#include <numeric>
#include <span>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/core/weighting.hpp"
#include "hsgd/data/dataset.hpp"
#include "hsgd/data/statistics.hpp"

namespace hsgd {

namespace detail {

/// Passes over all pairs that the swap search of group_iid_layout makes at most; it stops at the
/// first pass without an improving swap, which comes long before this on any realistic input.
inline constexpr Index max_swap_passes = 100;

inline void require_group_sizes(std::span<const Index> group_sizes, Index workers) {
  require(!group_sizes.empty(), "'group_sizes' must name at least one group");
  Index total = 0;
  for (std::size_t i = 0; i < group_sizes.size(); ++i) {
    require(group_sizes[i] > 0, "'group_sizes'[{}] ({}) must be positive", i, group_sizes[i]);
    // Stop before the running sum could overflow: it may not pass the workers anyway.
    require(group_sizes[i] <= workers - total, "'group_sizes' hold more than the partition's {} workers (at entry {})",
            workers, i);
    total += group_sizes[i];
  }
  require(total == workers, "'group_sizes' hold {} workers in all, but the partition has {}", total, workers);
}

/// The groups, each in increasing worker order, given every worker's group.
inline std::vector<std::vector<Index>> groups_of(std::span<const Index> group_of, std::size_t groups) {
  std::vector<std::vector<Index>> result(groups);
  for (std::size_t j = 0; j < group_of.size(); ++j)
    result[static_cast<std::size_t>(group_of[j])].push_back(static_cast<Index>(j));
  return result;
}

/// Greedy start of group_iid_layout: the most skewed workers first, each into the group with
/// room left whose summed deviation grows least in l1 norm (ties: more room, then lower index).
inline std::vector<Index> greedy_balance(const Matrix<double>& deviation, std::span<const Index> group_sizes) {
  const Index workers = deviation.cols();
  const auto groups = static_cast<Index>(group_sizes.size());
  std::vector<Index> order(static_cast<std::size_t>(workers));
  std::iota(order.begin(), order.end(), Index{0});
  const Vector<double> skew = deviation.colwise().lpNorm<1>().transpose();
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return skew(a) > skew(b); });

  Matrix<double> totals = Matrix<double>::Zero(deviation.rows(), groups);
  std::vector<Index> room(group_sizes.begin(), group_sizes.end());
  std::vector<Index> group_of(static_cast<std::size_t>(workers));
  for (const Index j : order) {
    Index best = -1;
    double best_growth = 0;
    for (Index g = 0; g < groups; ++g) {
      const auto slots = room[static_cast<std::size_t>(g)];
      if (slots == 0) continue;
      const double growth = (totals.col(g) + deviation.col(j)).lpNorm<1>() - totals.col(g).lpNorm<1>();
      if (best < 0 || growth < best_growth || (growth == best_growth && slots > room[static_cast<std::size_t>(best)])) {
        best = g;
        best_growth = growth;
      }
    }
    group_of[static_cast<std::size_t>(j)] = best;
    totals.col(best) += deviation.col(j);
    --room[static_cast<std::size_t>(best)];
  }
  return group_of;
}

/// Swap search of group_iid_layout: exchanges two workers of different groups whenever that
/// lowers sum_i ||D_i||_1 by more than a relative 1e-12 (a margin against rounding ping-pong),
/// until a pass over all pairs finds no such swap. Sizes never change.
inline void improve_by_swaps(const Matrix<double>& deviation, std::vector<Index>& group_of, Index groups) {
  Matrix<double> totals = Matrix<double>::Zero(deviation.rows(), groups);
  for (std::size_t j = 0; j < group_of.size(); ++j) totals.col(group_of[j]) += deviation.col(static_cast<Index>(j));
  Vector<double> change(deviation.rows());
  for (Index pass = 0; pass < max_swap_passes; ++pass) {
    bool improved = false;
    for (Index a = 0; a < deviation.cols(); ++a) {
      for (Index b = a + 1; b < deviation.cols(); ++b) {
        const Index ga = group_of[static_cast<std::size_t>(a)];
        const Index gb = group_of[static_cast<std::size_t>(b)];
        if (ga == gb) continue;
        change.noalias() = deviation.col(b) - deviation.col(a);  // what group ga gains, gb loses
        const double before = totals.col(ga).lpNorm<1>() + totals.col(gb).lpNorm<1>();
        const double after = (totals.col(ga) + change).lpNorm<1>() + (totals.col(gb) - change).lpNorm<1>();
        if (after >= before - 1e-12 * (1.0 + before)) continue;
        totals.col(ga) += change;
        totals.col(gb) -= change;
        std::swap(group_of[static_cast<std::size_t>(a)], group_of[static_cast<std::size_t>(b)]);
        improved = true;
      }
    }
    if (!improved) return;
  }
}

}  // namespace detail

/// Group-non-IID layout: workers with similar label mixes together. Workers are sorted by their
/// dominant label (the class they hold most of; the lowest on ties), then by that label's share
/// of their mix (largest first), then by id, and the sorted list is cut into consecutive groups
/// of the given sizes. A group then gathers workers dominated by the same or neighbouring labels:
/// the groups' mixes lie far from the global one (large across-group skew, large D_up) and the
/// workers of a group are alike (small inside-group skew, small D_down). group_sizes must sum to n.
inline std::vector<std::vector<Index>> group_non_iid_layout(const Partition& partition, std::span<const Index> labels,
                                                            Index classes, std::span<const Index> group_sizes) {
  const auto workers = static_cast<Index>(partition.size());
  detail::require_group_sizes(group_sizes, workers);
  const Matrix<double> mixes = label_mixes(partition, labels, classes);
  std::vector<Index> dominant(static_cast<std::size_t>(workers));
  for (Index j = 0; j < workers; ++j) mixes.col(j).maxCoeff(&dominant[static_cast<std::size_t>(j)]);
  std::vector<Index> order(static_cast<std::size_t>(workers));
  std::iota(order.begin(), order.end(), Index{0});
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) {
    const Index label_a = dominant[static_cast<std::size_t>(a)];
    const Index label_b = dominant[static_cast<std::size_t>(b)];
    if (label_a != label_b) return label_a < label_b;
    return mixes(label_a, a) > mixes(label_b, b);
  });
  std::vector<Index> group_of(static_cast<std::size_t>(workers));
  auto next = order.begin();
  for (std::size_t g = 0; g < group_sizes.size(); ++g) {
    for (Index k = 0; k < group_sizes[g]; ++k) group_of[static_cast<std::size_t>(*next++)] = static_cast<Index>(g);
  }
  return detail::groups_of(group_of, group_sizes.size());
}

/// Group-IID layout: every group's label mix as close to the global one as a local search gets
/// it. With the weights and mixes of group_label_skew and deviations e_j = w_j (p_j - pbar),
/// group i's mix misses pbar by D_i / W_i with D_i = sum_{j in V_i} e_j, so the across-group
/// skew is (1 / (2W)) sum_i ||D_i||_1, which the search minimises:
///
/// 1. greedy start: workers in decreasing order of ||e_j||_1 (most skewed first, ties by id)
///    each join the group with room left whose ||D_i + e_j||_1 - ||D_i||_1 is least (ties: the
///    group with most room left, then the lowest index), so opposite skews cancel;
/// 2. swaps: exchange two workers of different groups while that lowers the objective.
///
/// The result cannot be improved by moving one pair of workers, but it is not a global optimum
/// (the exact problem is multi-way number partitioning, NP-hard). How near IID it gets depends on
/// the partition: with workers that each hold one label, a group of n_i workers can only hold
/// multiples of 1/n_i of each label. It is typically far below a random grouping's skew (the
/// tests measure both). group_sizes must sum to n; `weighting` as the engine's Options.
inline std::vector<std::vector<Index>> group_iid_layout(const Partition& partition, std::span<const Index> labels,
                                                        Index classes, std::span<const Index> group_sizes,
                                                        Weighting weighting = Weighting::uniform) {
  detail::require_group_sizes(group_sizes, static_cast<Index>(partition.size()));
  const Matrix<double> mixes = label_mixes(partition, labels, classes);
  const Vector<double> weights = detail::worker_weights(partition, weighting);
  const Vector<double> global = mixes * weights / weights.sum();
  const Matrix<double> deviation = (mixes.colwise() - global) * weights.asDiagonal();
  std::vector<Index> group_of = detail::greedy_balance(deviation, group_sizes);
  detail::improve_by_swaps(deviation, group_of, static_cast<Index>(group_sizes.size()));
  return detail::groups_of(group_of, group_sizes.size());
}

}  // namespace hsgd
