#pragma once
/// @file
/// Partitioners: which worker holds which samples, IID or label-skewed (non-IID), over workers
/// or over groups of workers. The statistics that say how skewed a partition is are in
/// statistics.hpp.
///
/// Every partitioner returns a Partition that holds every sample exactly once, each worker's
/// samples in increasing order, and depends on nothing but the labels, the number of classes and
/// the options (seed included). Each takes the labels and the number of classes, or a Dataset.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "hsgd/core/error.hpp"
#include "hsgd/core/random.hpp"
#include "hsgd/core/types.hpp"
#include "hsgd/data/dataset.hpp"
#include "hsgd/data/distributions.hpp"

namespace hsgd {

namespace detail {

/// Every worker's min_size samples must exist. Compared by division: workers * min_size can
/// overflow, min_size <= floor(m / workers) is the same condition for positive integers.
inline void require_room(std::span<const Index> labels, Index workers, Index min_size) {
  require(min_size <= static_cast<Index>(labels.size()) / workers,
          "'min_size' ({}) times the {} workers must not exceed the number of samples ({})", min_size, workers,
          labels.size());
}

/// The samples of each class, each list in increasing order.
inline std::vector<std::vector<Index>> samples_by_class(std::span<const Index> labels, Index classes) {
  std::vector<std::vector<Index>> by_class(static_cast<std::size_t>(classes));
  for (std::size_t k = 0; k < labels.size(); ++k)
    by_class[static_cast<std::size_t>(labels[k])].push_back(static_cast<Index>(k));
  return by_class;
}

inline Partition sorted(Partition partition) {
  for (auto& samples : partition) std::sort(samples.begin(), samples.end());
  return partition;
}

/// `order` cut into `blocks` runs of consecutive entries, the first size mod blocks runs one longer.
inline Partition cut_into_blocks(std::span<const Index> order, Index blocks) {
  const auto size = static_cast<Index>(order.size());
  Partition result(static_cast<std::size_t>(blocks));
  Index begin = 0;
  for (Index b = 0; b < blocks; ++b) {
    const Index length = size / blocks + (b < size % blocks ? 1 : 0);
    result[static_cast<std::size_t>(b)].assign(order.begin() + begin, order.begin() + begin + length);
    begin += length;
  }
  return result;
}

/// One draw of a label-proportion partition. For each class c in turn: shuffle its samples, ask
/// `proportions(rng, c, partition so far)` for the workers' shares s_1..s_n (summing to 1), and
/// give worker j the shuffled samples at positions [floor(m_c S_{j-1}), floor(m_c S_j)), with
/// S_j = s_1 + ... + s_j and S_n taken as exactly 1, so every sample goes somewhere.
template <class Proportions>
Partition split_classes(std::span<const Index> labels, Index classes, Index workers, Rng& rng,
                        Proportions&& proportions) {
  Partition partition(static_cast<std::size_t>(workers));
  std::vector<std::vector<Index>> by_class = samples_by_class(labels, classes);
  for (Index c = 0; c < classes; ++c) {
    std::vector<Index>& samples = by_class[static_cast<std::size_t>(c)];
    rng.shuffle(std::span<Index>(samples));
    const std::vector<double> shares = proportions(rng, c, std::as_const(partition));
    require(shares.size() == partition.size(), "class {} got {} shares for {} workers", c, shares.size(),
            partition.size());
    const auto count = static_cast<Index>(samples.size());
    double cumulative = 0;
    Index begin = 0;
    for (std::size_t j = 0; j < shares.size(); ++j) {
      cumulative += shares[j];
      // A NaN or negative share would make the cut below a conversion of NaN to an integer
      // (undefined behaviour) or a range running backwards; the draws never give one.
      require(shares[j] >= 0 && std::isfinite(cumulative), "share {} of class {} ({}) must be finite and non-negative",
              j, c, shares[j]);
      const Index end = j + 1 == shares.size()
                            ? count
                            : std::min(count, static_cast<Index>(std::floor(static_cast<double>(count) * cumulative)));
      partition[j].insert(partition[j].end(), samples.begin() + begin, samples.begin() + end);
      begin = end;
    }
  }
  return sorted(std::move(partition));
}

/// The first of `attempt(0)`, `attempt(1)`, ... (at most max_attempts) that gives every worker at
/// least min_size samples; nothing if none does.
template <class Attempt>
std::optional<Partition> first_large_enough(Index max_attempts, Index min_size, Attempt&& attempt) {
  for (Index a = 0; a < max_attempts; ++a) {
    Partition partition = attempt(static_cast<std::uint64_t>(a));
    const bool large_enough = std::all_of(partition.begin(), partition.end(), [&](const std::vector<Index>& samples) {
      return static_cast<Index>(samples.size()) >= min_size;
    });
    if (large_enough) return partition;
  }
  return std::nullopt;
}

inline void require_attempts(Index min_size, Index max_attempts) {
  require(min_size > 0, "'min_size' ({}) must be positive: every worker needs a sample", min_size);
  require(max_attempts > 0, "'max_attempts' ({}) must be positive", max_attempts);
}

}  // namespace detail

/// Throws InvalidArgument unless every sample 0..samples-1 appears in `partition` exactly once.
inline void check_partition(const Partition& partition, Index samples) {
  detail::require(samples >= 0, "'samples' ({}) must be non-negative", samples);
  std::vector<char> seen(static_cast<std::size_t>(samples), 0);
  for (std::size_t j = 0; j < partition.size(); ++j) {
    for (const Index sample : partition[j]) {
      detail::require(sample >= 0 && sample < samples, "worker {} holds sample {}, outside [0, {})", j, sample,
                      samples);
      detail::require(seen[static_cast<std::size_t>(sample)] == 0, "sample {} appears twice (again at worker {})",
                      sample, j);
      seen[static_cast<std::size_t>(sample)] = 1;
    }
  }
  const auto missing = std::find(seen.begin(), seen.end(), 0);
  detail::require(missing == seen.end(), "sample {} is held by no worker", missing - seen.begin());
}

/// The workers' own data sets: result[j] = data.subset(partition[j]). Throws InvalidArgument
/// unless `data` is valid (Dataset::validate) and every entry of `partition` is one of its samples.
template <Real S>
std::vector<Dataset<S>> worker_datasets(const Dataset<S>& data, const Partition& partition) {
  data.validate();
  for (std::size_t j = 0; j < partition.size(); ++j) {
    for (std::size_t k = 0; k < partition[j].size(); ++k) {
      const Index sample = partition[j][k];
      detail::require(sample >= 0 && sample < data.size(), "'partition'[{}][{}] ({}) must be in [0, {})", j, k, sample,
                      data.size());
    }
  }
  std::vector<Dataset<S>> result;
  result.reserve(partition.size());
  for (const auto& samples : partition) result.push_back(data.subset(samples));
  return result;
}

// ---------------------------------------------------------------------------------------------
// IID

/// Settings of partition_iid.
struct IidPartitionOptions {
  Index workers = 10;      ///< n, >= 1 and at most the number of samples
  std::uint64_t seed = 0;  ///< draws from data stream (iid_partition, 0)

  void validate() const { detail::require(workers > 0, "'workers' ({}) must be positive", workers); }
};

/// IID: a uniformly random permutation of the m samples dealt out in n consecutive blocks, the
/// first m mod n one larger, so sizes differ by at most one and a worker's class counts are
/// hypergeometric draws from the global ones.
inline Partition partition_iid(std::span<const Index> labels, Index classes, const IidPartitionOptions& options) {
  options.validate();
  detail::require_labels(labels, classes);
  detail::require(options.workers <= static_cast<Index>(labels.size()),
                  "'workers' ({}) must not exceed the number of samples ({})", options.workers, labels.size());
  std::vector<Index> order(labels.size());
  std::iota(order.begin(), order.end(), Index{0});
  detail::data_stream(options.seed, detail::DataStream::iid_partition, 0).shuffle(std::span<Index>(order));
  return detail::sorted(detail::cut_into_blocks(order, options.workers));
}

template <Real S>
Partition partition_iid(const Dataset<S>& data, const IidPartitionOptions& options) {
  return partition_iid(data.labels, data.classes, options);
}

// ---------------------------------------------------------------------------------------------
// Label-sorted shards

/// Settings of partition_shards.
struct ShardPartitionOptions {
  Index workers = 10;           ///< n, >= 1
  Index shards_per_worker = 2;  ///< s, >= 1 (McMahan et al. use 2); n s must not exceed the samples
  std::uint64_t seed = 0;       ///< draws from data stream (shard_partition, 0)

  void validate() const {
    detail::require(workers > 0, "'workers' ({}) must be positive", workers);
    detail::require(shards_per_worker > 0, "'shards_per_worker' ({}) must be positive", shards_per_worker);
  }
};

/// Label-sorted shards (McMahan et al. 2017; the H-SGD paper's non-IID split). The samples are
/// shuffled and then stably sorted by label (so a shard holds random samples of its label), cut
/// into n s shards of consecutive samples (sizes differing by at most one, the first ones larger),
/// and a random permutation pi of the shards gives worker j the shards pi(j s), ..., pi(j s + s - 1).
/// A worker sees at most s labels, plus one for each of its shards that straddles a label
/// boundary; none does when every class's size is a multiple of the shard size m / (n s).
inline Partition partition_shards(std::span<const Index> labels, Index classes, const ShardPartitionOptions& options) {
  options.validate();
  detail::require_labels(labels, classes);
  // Compared by division, as the product itself may overflow.
  detail::require(options.shards_per_worker <= static_cast<Index>(labels.size()) / options.workers,
                  "'workers' ({}) times 'shards_per_worker' ({}) must not exceed the number of samples ({})",
                  options.workers, options.shards_per_worker, labels.size());
  const Index shard_count = options.workers * options.shards_per_worker;
  Rng rng = detail::data_stream(options.seed, detail::DataStream::shard_partition, 0);
  std::vector<Index> order(labels.size());
  std::iota(order.begin(), order.end(), Index{0});
  rng.shuffle(std::span<Index>(order));
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) {
    return labels[static_cast<std::size_t>(a)] < labels[static_cast<std::size_t>(b)];
  });
  const Partition shards = detail::cut_into_blocks(order, shard_count);
  std::vector<Index> shard_order(static_cast<std::size_t>(shard_count));
  std::iota(shard_order.begin(), shard_order.end(), Index{0});
  rng.shuffle(std::span<Index>(shard_order));

  Partition partition(static_cast<std::size_t>(options.workers));
  for (std::size_t k = 0; k < shard_order.size(); ++k) {
    const auto& shard = shards[static_cast<std::size_t>(shard_order[k])];
    auto& worker = partition[k / static_cast<std::size_t>(options.shards_per_worker)];
    worker.insert(worker.end(), shard.begin(), shard.end());
  }
  return detail::sorted(std::move(partition));
}

template <Real S>
Partition partition_shards(const Dataset<S>& data, const ShardPartitionOptions& options) {
  return partition_shards(data.labels, data.classes, options);
}

// ---------------------------------------------------------------------------------------------
// Dirichlet over labels

/// Settings of partition_dirichlet.
struct DirichletPartitionOptions {
  Index workers = 10;  ///< n, >= 1
  /// Concentration: worker shares of each class ~ Dir(alpha, ..., alpha). Small (0.1): each class
  /// sits mostly with a few workers; large (100): every worker gets about 1/n of every class.
  /// Finite, >= 1e-300 (detail::min_concentration: below it the draw underflows to 0/0).
  double alpha = 0.5;
  Index min_size = 10;  ///< every worker holds at least this many samples (Flower's default), >= 1
  /// Flower's and NIID-Bench's balancing: a worker already holding m/n samples or more gets no
  /// share of the classes still to be split (the others' shares are renormalised).
  bool self_balancing = false;
  Index max_attempts = 100;  ///< draws tried before giving up on min_size, >= 1
  std::uint64_t seed = 0;    ///< attempt a draws from data stream (dirichlet_partition, a)

  void validate() const {
    detail::require(workers > 0, "'workers' ({}) must be positive", workers);
    detail::require(std::isfinite(alpha) && alpha > 0, "'alpha' ({}) must be finite and positive", alpha);
    detail::require(alpha >= detail::min_concentration,
                    "'alpha' ({}) must be at least {}: smaller concentrations underflow every Gamma draw", alpha,
                    detail::min_concentration);
    detail::require_attempts(min_size, max_attempts);
  }
};

/// Label skew by Dirichlet shares (Hsu et al. 2019; Flower's DirichletPartitioner): for each
/// class c in turn, shares s_c ~ Dir(alpha 1_n) over the workers, and worker j gets a fraction
/// s_cj of class c's samples (cut as detail::split_classes says). The whole draw is repeated,
/// from the next attempt's stream, until every worker holds at least min_size samples; after
/// max_attempts failures it throws InvalidArgument naming min_size and alpha.
inline Partition partition_dirichlet(std::span<const Index> labels, Index classes,
                                     const DirichletPartitionOptions& options) {
  options.validate();
  detail::require_labels(labels, classes);
  detail::require_room(labels, options.workers, options.min_size);
  const double balanced_size = static_cast<double>(labels.size()) / static_cast<double>(options.workers);
  auto shares = [&](Rng& rng, Index /*class*/, const Partition& so_far) {
    std::vector<double> s = draw_dirichlet(rng, options.workers, options.alpha);
    if (!options.self_balancing) return s;
    std::vector<double> kept = s;
    for (std::size_t j = 0; j < kept.size(); ++j) {
      if (static_cast<double>(so_far[j].size()) >= balanced_size) kept[j] = 0;
    }
    const double total = std::accumulate(kept.begin(), kept.end(), 0.0);
    if (total == 0) return s;  // every share left sits with full workers: balancing cannot help
    for (double& share : kept) share /= total;
    return kept;
  };
  auto attempt = [&](std::uint64_t a) {
    Rng rng = detail::data_stream(options.seed, detail::DataStream::dirichlet_partition, a);
    return detail::split_classes(labels, classes, options.workers, rng, shares);
  };
  auto partition = detail::first_large_enough(options.max_attempts, options.min_size, attempt);
  detail::require(partition.has_value(),
                  "no draw in 'max_attempts' ({}) gave every worker at least 'min_size' ({}) samples with 'alpha' ({}) "
                  "over {} workers: lower min_size, raise alpha or use fewer workers",
                  options.max_attempts, options.min_size, options.alpha, options.workers);
  return std::move(*partition);
}

template <Real S>
Partition partition_dirichlet(const Dataset<S>& data, const DirichletPartitionOptions& options) {
  return partition_dirichlet(data.labels, data.classes, options);
}

// ---------------------------------------------------------------------------------------------
// Two-level Dirichlet: heterogeneity across groups and inside groups, set apart

/// Settings of partition_two_level_dirichlet.
struct TwoLevelDirichletOptions {
  /// n_1..n_N, each >= 1. Workers are numbered group by group: group 0's n_1 workers first, so
  /// `Topology::two_level(group_sizes, I, G)` with the default ContiguousGrouping puts exactly
  /// these workers together.
  std::vector<Index> group_sizes = {5, 5};
  /// How label mixes differ ACROSS groups: group i's share of each class has mean n_i / n and
  /// concentration alpha_group n. Large: groups alike (D_up small). Finite, >= 1e-300 (as
  /// DirichletPartitionOptions::alpha), and alpha_group n_i finite.
  double alpha_group = 1.0;
  /// How label mixes differ INSIDE a group: Dirichlet concentration of the workers' shares of
  /// their group's part of each class. Large: workers of a group alike (D_down small). Finite,
  /// >= 1e-300.
  double alpha_worker = 1.0;
  Index min_size = 10;       ///< every worker holds at least this many samples, >= 1
  Index max_attempts = 100;  ///< draws tried before giving up on min_size, >= 1
  std::uint64_t seed = 0;    ///< attempt a draws from data stream (two_level_partition, a)

  /// n = n_1 + ... + n_N. Throws InvalidArgument if a size is negative or the sum overflows.
  [[nodiscard]] Index workers() const {
    Index total = 0;
    for (std::size_t i = 0; i < group_sizes.size(); ++i) {
      detail::require(group_sizes[i] >= 0 && detail::sum_fits(total, group_sizes[i]),
                      "'group_sizes'[{}] ({}) must be non-negative and keep the total below 2^63 (so far {})", i,
                      group_sizes[i], total);
      total += group_sizes[i];
    }
    return total;
  }

  void validate() const {
    detail::require(!group_sizes.empty(), "'group_sizes' must name at least one group");
    for (std::size_t i = 0; i < group_sizes.size(); ++i) {
      detail::require(group_sizes[i] > 0, "'group_sizes'[{}] ({}) must be positive", i, group_sizes[i]);
    }
    static_cast<void>(workers());  // the sum must not overflow
    detail::require(std::isfinite(alpha_group) && alpha_group > 0, "'alpha_group' ({}) must be finite and positive",
                    alpha_group);
    detail::require(std::isfinite(alpha_worker) && alpha_worker > 0, "'alpha_worker' ({}) must be finite and positive",
                    alpha_worker);
    detail::require(alpha_group >= detail::min_concentration,
                    "'alpha_group' ({}) must be at least {}: smaller concentrations underflow every Gamma draw",
                    alpha_group, detail::min_concentration);
    detail::require(alpha_worker >= detail::min_concentration,
                    "'alpha_worker' ({}) must be at least {}: smaller concentrations underflow every Gamma draw",
                    alpha_worker, detail::min_concentration);
    for (std::size_t i = 0; i < group_sizes.size(); ++i) {
      detail::require(std::isfinite(alpha_group * static_cast<double>(group_sizes[i])),
                      "'alpha_group' ({}) times 'group_sizes'[{}] ({}) overflows: the group's concentration must be "
                      "finite",
                      alpha_group, i, group_sizes[i]);
    }
    detail::require_attempts(min_size, max_attempts);
  }
};

/// Two-level label skew. For each class c in turn: group shares g_c ~ Dir(alpha_group n_1, ...,
/// alpha_group n_N); then, group by group, shares r_ci ~ Dir(alpha_worker 1_{n_i}) over group i's
/// workers; worker j of group i gets a fraction g_ci r_cij of class c's samples (cut as
/// detail::split_classes says). Re-drawn until every worker holds min_size samples, as
/// partition_dirichlet.
///
/// A group's pooled label mix depends on g alone, a worker's mix relative to its group's on r
/// alone, so alpha_group sets the across-group heterogeneity and alpha_worker the inside-group
/// one; exactly so for data-size weights (group_label_skew with Weighting::data_size). Under
/// uniform weights a group's mix is the plain mean of its workers' mixes, and the unequal worker
/// sizes that a small alpha_worker brings add some across-group skew of their own.
/// By the aggregation property of the Dirichlet, alpha_group = alpha_worker = alpha gives worker
/// shares distributed as Dir(alpha 1_n): the one-level partition_dirichlet's distribution.
inline Partition partition_two_level_dirichlet(std::span<const Index> labels, Index classes,
                                               const TwoLevelDirichletOptions& options) {
  options.validate();
  detail::require_labels(labels, classes);
  const Index workers = options.workers();
  detail::require_room(labels, workers, options.min_size);
  std::vector<double> group_alpha;
  for (const Index size : options.group_sizes) group_alpha.push_back(options.alpha_group * static_cast<double>(size));
  auto shares = [&](Rng& rng, Index /*class*/, const Partition& /*so_far*/) {
    const std::vector<double> group_share = draw_dirichlet(rng, group_alpha);
    std::vector<double> s;
    s.reserve(static_cast<std::size_t>(workers));
    for (std::size_t i = 0; i < group_share.size(); ++i) {
      for (const double inside : draw_dirichlet(rng, options.group_sizes[i], options.alpha_worker)) {
        s.push_back(group_share[i] * inside);
      }
    }
    return s;
  };
  auto attempt = [&](std::uint64_t a) {
    Rng rng = detail::data_stream(options.seed, detail::DataStream::two_level_partition, a);
    return detail::split_classes(labels, classes, workers, rng, shares);
  };
  auto partition = detail::first_large_enough(options.max_attempts, options.min_size, attempt);
  detail::require(partition.has_value(),
                  "no draw in 'max_attempts' ({}) gave every worker at least 'min_size' ({}) samples with "
                  "'alpha_group' ({}) and 'alpha_worker' ({}) over {} workers: lower min_size or raise the alphas",
                  options.max_attempts, options.min_size, options.alpha_group, options.alpha_worker, workers);
  return std::move(*partition);
}

template <Real S>
Partition partition_two_level_dirichlet(const Dataset<S>& data, const TwoLevelDirichletOptions& options) {
  return partition_two_level_dirichlet(data.labels, data.classes, options);
}

}  // namespace hsgd
