// Partitions: the IID, shard, Dirichlet and two-level Dirichlet partitioners (every sample held
// once, the shares they draw against the exact Dirichlet moments, the skew they give), the
// parameters they refuse, the partition summary and the group label skew. Margins: z standard
// errors from the exact moments, plus a bound on the rounding to integer counts (data_support.hpp).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "data_support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

/// sizes[c] samples of class c, in a shuffled order.
std::vector<Index> labels_with_sizes(const std::vector<Index>& sizes) {
  std::vector<Index> labels;
  for (std::size_t c = 0; c < sizes.size(); ++c)
    labels.insert(labels.end(), static_cast<std::size_t>(sizes[c]), static_cast<Index>(c));
  test_stream(99).shuffle(std::span<Index>(labels));
  return labels;
}

/// Every sample 0..m-1 in exactly one worker, each worker's list increasing.
void require_exact_cover(const hsgd::Partition& partition, Index samples) {
  std::vector<int> seen(static_cast<std::size_t>(samples), 0);
  for (const auto& worker : partition) {
    REQUIRE(std::is_sorted(worker.begin(), worker.end()));
    REQUIRE(std::all_of(worker.begin(), worker.end(), [&](Index k) { return k >= 0 && k < samples; }));
    for (const Index k : worker) ++seen[static_cast<std::size_t>(k)];
  }
  REQUIRE(std::all_of(seen.begin(), seen.end(), [](int count) { return count == 1; }));
}

Index smallest(const hsgd::Partition& partition) {
  Index least = std::numeric_limits<Index>::max();
  for (const auto& worker : partition) least = std::min(least, static_cast<Index>(worker.size()));
  return least;
}

/// Mean and variance of the Herfindahl index H = sum_i x_i^2 for x ~ Dir(alpha), from the exact
/// moments: E[H] = sum E[x_i^2], E[H^2] = sum_i E[x_i^4] + sum_{i != k} E[x_i^2 x_k^2].
std::pair<double, double> herfindahl_moments(std::span<const double> alpha) {
  const std::size_t k = alpha.size();
  double mean = 0;
  double second = 0;
  for (std::size_t i = 0; i < k; ++i) {
    std::vector<int> powers(k, 0);
    powers[i] = 2;
    mean += dirichlet_moment(alpha, powers);
    powers[i] = 4;
    second += dirichlet_moment(alpha, powers);
    for (std::size_t l = 0; l < k; ++l) {
      if (l == i) continue;
      std::vector<int> pair(k, 0);
      pair[i] = pair[l] = 2;
      second += dirichlet_moment(alpha, pair);
    }
  }
  return {mean, second - mean * mean};
}

/// Shares of a class cut into integer counts: each count is a difference of two floors of the
/// exact share times the total T, so it is off by less than 1 and the share by less than 1/T
/// (2/T once T itself is such a difference). H then moves by at most sum_i (2 x_i e + e^2)
/// <= 2 e + k e^2 with e the bound on one share's error.
struct ShareCases {
  std::vector<double> herfindahl;  // H of each observed share vector
  double rounding = 0;             // summed bound on |H_observed - H_exact|

  void add(const std::vector<Index>& counts, double share_error_numerator) {
    const double total =
        std::accumulate(counts.begin(), counts.end(), 0.0, [](double s, Index c) { return s + double(c); });
    REQUIRE(total > 0);
    double h = 0;
    for (const Index count : counts) h += std::pow(double(count) / total, 2);
    herfindahl.push_back(h);
    const double e = share_error_numerator / total;
    rounding += 2 * e + double(counts.size()) * e * e;
  }

  /// The mean H of the cases is E[H] for Dir(alpha) within z standard errors plus the rounding.
  void check(std::span<const double> alpha) const {
    const auto [mean, variance] = herfindahl_moments(alpha);
    const double cases = double(herfindahl.size());
    const double observed = std::accumulate(herfindahl.begin(), herfindahl.end(), 0.0) / cases;
    INFO("cases " << cases << ", E[H] " << mean << ", observed " << observed);
    CHECK(std::abs(observed - mean) <= z * std::sqrt(variance / cases) + rounding / cases);
  }
};

/// Bound on the mean TV distance of `units` label mixes from their reference when unit u's share
/// of class c is (1 + delta_uc) / units with sd(delta) = sd_delta (Dirichlet shares): to first
/// order TV_u = (1/2) sum_c ref_c |delta_uc - mean delta|, whose expectation is at most
/// sd_delta / 2 (Jensen) and whose sd is at most sd_delta / 2, so the mean over units lies within
/// sd_delta / 2 (1 + z / sqrt(units)). Integer counts move a mix by at most C / (unit size)
/// in TV.
double tv_bound(double sd_delta, Index classes, Index units, Index smallest_unit) {
  return 0.5 * sd_delta * (1 + z / std::sqrt(double(units))) + double(classes) / double(smallest_unit);
}

/// One partitioner of each kind, on labels with unequal classes, as (name, call with a seed).
struct NamedPartitioner {
  const char* name;
  Index min_size;
  std::function<hsgd::Partition(std::uint64_t)> run;
};

std::vector<NamedPartitioner> partitioners(std::span<const Index> labels, Index classes) {
  return {
      {"iid", 1,
       [=](std::uint64_t seed) { return hsgd::partition_iid(labels, classes, {.workers = 7, .seed = seed}); }},
      {"shards", 1,
       [=](std::uint64_t seed) {
         return hsgd::partition_shards(labels, classes, {.workers = 7, .shards_per_worker = 3, .seed = seed});
       }},
      {"dirichlet", 20,
       [=](std::uint64_t seed) {
         return hsgd::partition_dirichlet(labels, classes, {.workers = 7, .alpha = 0.3, .min_size = 20, .seed = seed});
       }},
      {"dirichlet, self-balancing", 20,
       [=](std::uint64_t seed) {
         return hsgd::partition_dirichlet(
             labels, classes, {.workers = 7, .alpha = 0.3, .min_size = 20, .self_balancing = true, .seed = seed});
       }},
      {"two-level dirichlet", 20,
       [=](std::uint64_t seed) {
         return hsgd::partition_two_level_dirichlet(
             labels, classes,
             {.group_sizes = {3, 1, 3}, .alpha_group = 0.5, .alpha_worker = 0.5, .min_size = 20, .seed = seed});
       }},
  };
}

}  // namespace

TEST_CASE("Every partitioner holds every sample exactly once and respects the minimum size", "[data]") {
  const std::vector<Index> labels = labels_with_sizes({300, 50, 120, 7, 523});
  for (const auto& partitioner : partitioners(labels, 5)) {
    INFO(partitioner.name);
    const hsgd::Partition partition = partitioner.run(1);
    REQUIRE(partition.size() == 7);
    require_exact_cover(partition, 1000);
    CHECK_NOTHROW(hsgd::check_partition(partition, 1000));
    CHECK(smallest(partition) >= partitioner.min_size);
  }
}

TEST_CASE("Partitioners are deterministic in the seed", "[data]") {
  const std::vector<Index> labels = labels_with_sizes({300, 50, 120, 7, 523});
  for (const auto& partitioner : partitioners(labels, 5)) {
    INFO(partitioner.name);
    CHECK(partitioner.run(4) == partitioner.run(4));
    CHECK(partitioner.run(4) != partitioner.run(5));
  }
}

TEST_CASE("IID partition: sizes differ by at most one, class counts are hypergeometric", "[data]") {
  const std::vector<Index> few = balanced_labels(1, 1003);
  const auto uneven = hsgd::partition_iid(few, 1, {.workers = 10});
  for (std::size_t j = 0; j < 10; ++j) CHECK(uneven[j].size() == (j < 3 ? 101U : 100U));

  // 10000 samples, 1000 per class, 1000 per worker: a worker's count of a class is
  // hypergeometric with mean 100 and variance 1000 (1/10)(9/10)(9000/9999).
  const std::vector<Index> labels = balanced_labels(10, 1000);
  const auto partition = hsgd::partition_iid(labels, 10, {.workers = 10, .seed = 3});
  const double sd = std::sqrt(1000 * 0.1 * 0.9 * 9000.0 / 9999.0);
  const auto summary = hsgd::summarize(partition, labels, 10);
  for (const auto& counts : summary.class_counts) {
    for (const Index count : counts) CHECK(std::abs(double(count) - 100) <= z * sd);
  }
}

TEST_CASE("Shard partition: a worker holds only its shards' labels", "[data]") {
  // 10 classes of 200, 20 workers with 2 shards each: 40 shards of 50, 4 per class, none
  // straddling two labels.
  const std::vector<Index> labels = balanced_labels(10, 200);
  const auto partition = hsgd::partition_shards(labels, 10, {.workers = 20, .shards_per_worker = 2, .seed = 9});
  require_exact_cover(partition, 2000);
  const auto summary = hsgd::summarize(partition, labels, 10);
  std::vector<Index> holders(10, 0);
  for (const auto& counts : summary.class_counts) {
    CHECK(std::accumulate(counts.begin(), counts.end(), Index{0}) == 100);
    CHECK(std::count_if(counts.begin(), counts.end(), [](Index n) { return n > 0; }) <= 2);
    for (std::size_t c = 0; c < 10; ++c) {
      CHECK(counts[c] % 50 == 0);  // whole shards
      holders[c] += counts[c] > 0 ? 1 : 0;
    }
  }
  for (const Index h : holders) CHECK(h <= 4);
  // Shards are dealt at random: not every worker holds two copies of one label.
  CHECK(summary.labels_per_worker > 1);
}

TEST_CASE("Dirichlet partition: each class's worker shares follow Dir(alpha)", "[data]") {
  // 20 classes of 1000 over 10 workers, 10 seeds: 200 share vectors per alpha. With min_size 1
  // a re-draw (which would condition the shares) has probability below 0.3% even at alpha 0.05.
  const std::vector<Index> labels = balanced_labels(20, 1000);
  for (const double alpha : {0.05, 1.0, 20.0}) {
    INFO("alpha " << alpha);
    ShareCases cases;
    for (std::uint64_t seed = 0; seed < 10; ++seed) {
      const auto partition =
          hsgd::partition_dirichlet(labels, 20, {.workers = 10, .alpha = alpha, .min_size = 1, .seed = seed});
      require_exact_cover(partition, 20000);
      const auto counts = hsgd::summarize(partition, labels, 20).class_counts;
      for (std::size_t c = 0; c < 20; ++c) {
        std::vector<Index> shares;
        for (const auto& worker : counts) shares.push_back(worker[c]);
        cases.add(shares, 1);
      }
    }
    cases.check(std::vector<double>(10, alpha));
  }
}

TEST_CASE("Dirichlet partition: large alpha keeps label mixes near the global one, small alpha skews them", "[data]") {
  const std::vector<Index> labels = balanced_labels(10, 1000);
  const auto near = hsgd::partition_dirichlet(labels, 10, {.workers = 10, .alpha = 1000, .seed = 2});
  const auto near_summary = hsgd::summarize(near, labels, 10);
  // A worker's share of a class is Beta(alpha, 9 alpha): (1 + delta) / 10, sd(delta) = sqrt(9 / (10 alpha + 1)).
  CHECK(near_summary.label_skew <= tv_bound(std::sqrt(9 / (10 * 1000.0 + 1)), 10, 10, near_summary.size_min));
  CHECK(near_summary.labels_per_worker == 10);

  // alpha = 0.05: each class's Herfindahl index over the workers is E[H] = (alpha + 1) / (10 alpha + 1)
  // = 0.7 (checked exactly above), i.e. a class sits mostly with one worker, and a worker's mix is
  // concentrated on the few classes it dominates. TV 0.5 would mean five of ten classes held evenly.
  const auto skewed = hsgd::partition_dirichlet(labels, 10, {.workers = 10, .alpha = 0.05, .min_size = 1, .seed = 2});
  CHECK(hsgd::summarize(skewed, labels, 10).label_skew > 0.5);
}

TEST_CASE("Dirichlet partition: min_size is met by re-drawing, or the error names min_size and alpha", "[data]") {
  const std::vector<Index> labels = balanced_labels(10, 200);
  const auto partition =
      hsgd::partition_dirichlet(labels, 10, {.workers = 10, .alpha = 0.5, .min_size = 60, .seed = 1});
  require_exact_cover(partition, 2000);
  CHECK(smallest(partition) >= 60);

  // Every worker at exactly m / n = 200 is all but impossible with Dirichlet shares.
  const hsgd::DirichletPartitionOptions impossible{.workers = 10, .alpha = 0.1, .min_size = 200, .max_attempts = 5};
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 10, impossible), "'min_size' (200)");
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 10, impossible), "'alpha' (0.1)");
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 10, impossible), "'max_attempts' (5)");
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 10, {.workers = 10, .min_size = 201}),
                "'min_size' (201) times the 10 workers must not exceed the number of samples (2000)");
}

TEST_CASE("Dirichlet partition: self-balancing stops feeding workers that hold m / n samples", "[data]") {
  // 20 classes of 100 over 10 workers: once a worker holds m / n = 200 samples it gets no share
  // of later classes, so no worker can end above 200 + 100 (one class on top).
  const std::vector<Index> labels = balanced_labels(20, 100);
  const hsgd::DirichletPartitionOptions plain{.workers = 10, .alpha = 0.1, .min_size = 1, .seed = 4};
  hsgd::DirichletPartitionOptions balancing = plain;
  balancing.self_balancing = true;
  const auto balanced = hsgd::partition_dirichlet(labels, 20, balancing);
  require_exact_cover(balanced, 2000);
  CHECK(hsgd::summarize(balanced, labels, 20).size_max < 300);
  // Without balancing this draw does exceed the bound, so the check above has teeth.
  CHECK(hsgd::summarize(hsgd::partition_dirichlet(labels, 20, plain), labels, 20).size_max >= 300);
}

TEST_CASE("Two-level Dirichlet: group shares follow Dir(alpha_group n_i), shares in a group Dir(alpha_worker)",
          "[data]") {
  // Workers are numbered group by group, so group i is the contiguous block of its n_i workers.
  const std::vector<Index> sizes{3, 5, 2};
  const std::vector<Index> labels = balanced_labels(20, 1000);
  struct Case {
    double alpha_group;
    double alpha_worker;
  };
  for (const Case c : {Case{0.2, 5.0}, Case{5.0, 0.2}, Case{1.0, 1.0}}) {
    INFO("alpha_group " << c.alpha_group << ", alpha_worker " << c.alpha_worker);
    ShareCases group_cases;
    std::vector<ShareCases> inside_cases(3);
    ShareCases worker_cases;
    for (std::uint64_t seed = 0; seed < 10; ++seed) {
      const auto partition = hsgd::partition_two_level_dirichlet(labels, 20,
                                                                 {.group_sizes = sizes,
                                                                  .alpha_group = c.alpha_group,
                                                                  .alpha_worker = c.alpha_worker,
                                                                  .min_size = 1,
                                                                  .seed = seed});
      REQUIRE(partition.size() == 10);
      require_exact_cover(partition, 20000);
      const auto counts = hsgd::summarize(partition, labels, 20).class_counts;
      for (std::size_t k = 0; k < 20; ++k) {
        std::vector<Index> group_counts;
        std::vector<Index> worker_counts;
        std::size_t worker = 0;
        for (std::size_t i = 0; i < 3; ++i) {
          std::vector<Index> inside;
          for (Index j = 0; j < sizes[i]; ++j, ++worker) inside.push_back(counts[worker][k]);
          worker_counts.insert(worker_counts.end(), inside.begin(), inside.end());
          group_counts.push_back(std::accumulate(inside.begin(), inside.end(), Index{0}));
          // Shares inside a group divide by the group's own rounded total: error below 2 / total.
          if (c.alpha_group >= 1) inside_cases[i].add(inside, 2);
        }
        group_cases.add(group_counts, 1);
        worker_cases.add(worker_counts, 1);
      }
    }
    group_cases.check(std::vector<double>{3 * c.alpha_group, 5 * c.alpha_group, 2 * c.alpha_group});
    // Small group shares leave too few samples to cut, so shares inside a group are checked
    // where the groups are well fed.
    if (c.alpha_group >= 1) {
      for (std::size_t i = 0; i < 3; ++i)
        inside_cases[i].check(std::vector<double>(static_cast<std::size_t>(sizes[i]), c.alpha_worker));
    }
    // Aggregation property: equal alphas give the one-level Dir(alpha 1_n) shares.
    if (c.alpha_group == c.alpha_worker) worker_cases.check(std::vector<double>(10, c.alpha_worker));
  }
}

TEST_CASE("Two-level Dirichlet: alpha_group moves the across-group skew, alpha_worker the inside one", "[data]") {
  const std::vector<Index> sizes{5, 5, 5, 5};
  const Groups contiguous{{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}, {10, 11, 12, 13, 14}, {15, 16, 17, 18, 19}};
  const std::vector<Index> labels = balanced_labels(10, 2000);
  struct Measured {
    hsgd::GroupLabelSkew pooled;   // data-size weights: the mixes the alphas control exactly
    hsgd::GroupLabelSkew uniform;  // the engine's default weights
    Index smallest_worker;
    Index smallest_group;
  };
  auto measure = [&](double alpha_group, double alpha_worker) {
    const auto partition = hsgd::partition_two_level_dirichlet(
        labels, 10,
        {.group_sizes = sizes, .alpha_group = alpha_group, .alpha_worker = alpha_worker, .min_size = 5, .seed = 1});
    Index least_group = std::numeric_limits<Index>::max();
    for (const auto& group : contiguous) {
      Index total = 0;
      for (const Index j : group) total += static_cast<Index>(partition[static_cast<std::size_t>(j)].size());
      least_group = std::min(least_group, total);
    }
    return Measured{hsgd::group_label_skew(partition, labels, 10, contiguous, hsgd::Weighting::data_size),
                    hsgd::group_label_skew(partition, labels, 10, contiguous), smallest(partition), least_group};
  };
  const double small = 0.1;
  const double large = 1000;
  const Measured alike_groups = measure(large, small);   // D_up small, D_down large
  const Measured alike_workers = measure(small, large);  // D_up large, D_down small
  const Measured all_alike = measure(large, large);
  const Measured none_alike = measure(small, small);

  // Large alphas: a group's share of a class is Beta(alpha 5, alpha 15) = (1 + delta) / 4 with
  // sd(delta) = sqrt(3 / (20 alpha + 1)); a worker's share of its group's part is
  // Beta(alpha, 4 alpha) = (1 + delta) / 5 with sd(delta) = sqrt(4 / (5 alpha + 1)).
  const double group_sd = std::sqrt(3 / (20 * large + 1));
  const double worker_sd = std::sqrt(4 / (5 * large + 1));
  for (const Measured& m : {alike_groups, all_alike}) {
    CHECK(m.pooled.across <= tv_bound(group_sd, 10, 4, m.smallest_group));
  }
  for (const Measured& m : {alike_workers, all_alike}) {
    CHECK(m.pooled.inside <= tv_bound(worker_sd, 10, 20, m.smallest_worker));
  }
  // Small alphas move each skew far above those bounds, under either weighting.
  const double across_bound = tv_bound(group_sd, 10, 4, all_alike.smallest_group);
  const double inside_bound = tv_bound(worker_sd, 10, 20, all_alike.smallest_worker);
  for (const auto pick : {&Measured::pooled, &Measured::uniform}) {
    for (const Measured& m : {alike_workers, none_alike}) {
      CHECK((m.*pick).across > 5 * across_bound);
      CHECK((m.*pick).across > (alike_groups.*pick).across);
      CHECK((m.*pick).across > (all_alike.*pick).across);
    }
    for (const Measured& m : {alike_groups, none_alike}) {
      CHECK((m.*pick).inside > 5 * inside_bound);
      CHECK((m.*pick).inside > (alike_workers.*pick).inside);
      CHECK((m.*pick).inside > (all_alike.*pick).inside);
    }
  }
}

TEST_CASE("Partitioners reject bad input, naming the parameter", "[data]") {
  const std::vector<Index> labels = balanced_labels(3, 4);
  CHECK_INVALID(hsgd::partition_iid(labels, 3, {.workers = 0}), "'workers' (0) must be positive");
  CHECK_INVALID(hsgd::partition_iid(labels, 3, {.workers = 13}),
                "'workers' (13) must not exceed the number of samples (12)");
  CHECK_INVALID(hsgd::partition_iid(labels, 0, {}), "'classes' (0) must be positive");
  CHECK_INVALID(hsgd::partition_iid(labels, 2, {.workers = 2}), "'labels'[2] (2) must be in [0, 2)");
  CHECK_INVALID(hsgd::partition_shards(labels, 3, {.workers = 2, .shards_per_worker = 0}), "'shards_per_worker' (0)");
  CHECK_INVALID(hsgd::partition_shards(labels, 3, {.workers = 5, .shards_per_worker = 3}),
                "'workers' (5) times 'shards_per_worker' (3) must not exceed the number of samples (12)");
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 3, {.workers = 2, .alpha = 0}),
                "'alpha' (0) must be finite and positive");
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 3, {.workers = 2, .min_size = 0}), "'min_size' (0)");
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 3, {.workers = 2, .min_size = 1, .max_attempts = 0}),
                "'max_attempts' (0)");
  CHECK_INVALID(hsgd::partition_two_level_dirichlet(labels, 3, {.group_sizes = {}}),
                "'group_sizes' must name at least one group");
  CHECK_INVALID(hsgd::partition_two_level_dirichlet(labels, 3, {.group_sizes = {2, 0}}), "'group_sizes'[1] (0)");
  CHECK_INVALID(hsgd::partition_two_level_dirichlet(labels, 3, {.group_sizes = {2}, .alpha_group = -1}),
                "'alpha_group' (-1)");
  CHECK_INVALID(hsgd::partition_two_level_dirichlet(labels, 3, {.group_sizes = {2}, .alpha_worker = std::nan("")}),
                "'alpha_worker' (nan)");
  CHECK_INVALID(hsgd::partition_two_level_dirichlet(labels, 3, {.group_sizes = {2, 2}, .min_size = 4}),
                "'min_size' (4) times the 4 workers must not exceed the number of samples (12)");

  CHECK_INVALID(hsgd::check_partition({{0, 1}, {1, 2}}, 3), "sample 1 appears twice");
  CHECK_INVALID(hsgd::check_partition({{0}, {2}}, 3), "sample 1 is held by no worker");
  CHECK_INVALID(hsgd::check_partition({{0, 1, 2, 3}}, 3), "worker 0 holds sample 3, outside [0, 3)");
}

TEST_CASE("Partition helpers check counts and group sizes before using them", "[hardening][data]") {
  REQUIRE_INVALID(hsgd::check_partition({}, -1), "'samples' (-1) must be non-negative");

  const std::vector<Index> labels{0, 1, 0, 1, 0, 1, 0, 1};
  const hsgd::Partition partition{{0, 1}, {2, 3}, {4, 5}, {6, 7}};
  // Two huge groups: their running sum would overflow before it could be compared with 4.
  REQUIRE_INVALID(hsgd::group_iid_layout(partition, labels, 2, std::vector<Index>{max_index, max_index}),
                  "'group_sizes' hold more than the partition's 4 workers (at entry 0)");
  REQUIRE_INVALID(hsgd::group_non_iid_layout(partition, labels, 2, std::vector<Index>{2, max_index}),
                  "'group_sizes' hold more than the partition's 4 workers (at entry 1)");
  const auto groups = hsgd::group_iid_layout(partition, labels, 2, std::vector<Index>{2, 2});
  CHECK(groups.size() == 2);

  hsgd::TwoLevelDirichletOptions options;
  options.group_sizes = {max_index, max_index};
  REQUIRE_INVALID(static_cast<void>(options.workers()), "'group_sizes'[1]");
  REQUIRE_INVALID(hsgd::partition_two_level_dirichlet(labels, 2, options), "keep the total below 2^63");
}

TEST_CASE("Partitioners compare size products by division, so an overflowing product is refused",
          "[hardening][data]") {
  const std::vector<Index> labels(40, 0);
  // 2^62 * 4 wraps to 0 in 64 bits: compared as a product, the check would pass and the shard
  // cut would divide by zero.
  const Index huge = Index{1} << 62;
  REQUIRE_INVALID(hsgd::partition_shards(labels, 1, {.workers = huge, .shards_per_worker = 4}),
                  "'workers' (4611686018427387904) times 'shards_per_worker' (4)");
  REQUIRE_INVALID(hsgd::partition_shards(labels, 1, {.workers = 3, .shards_per_worker = max_index / 2}),
                  "must not exceed the number of samples (40)");
  REQUIRE_INVALID(hsgd::partition_dirichlet(labels, 1, {.workers = huge, .min_size = 4}),
                  "'min_size' (4) times the 4611686018427387904 workers");
  REQUIRE_INVALID(hsgd::partition_two_level_dirichlet(labels, 1, {.group_sizes = {huge, huge / 2}, .min_size = 2}),
                  "'min_size' (2) times the 6917529027641081856 workers");
  // The same checks still accept what fits exactly.
  CHECK(hsgd::partition_shards(labels, 1, {.workers = 10, .shards_per_worker = 4}).size() == 10);
}

// ---------------------------------------------------------------------------------------------
// Statistics

TEST_CASE("Partition summary: size percentiles, class counts and label skew by hand", "[data]") {
  // Sizes 1, 2, 3, 10 (one class): numpy-style percentiles sit at positions q (4 - 1) of the
  // sorted sizes: p10 at 0.3 -> 1.3, p50 at 1.5 -> 2.5, p90 at 2.7 -> 3 + 0.7 (10 - 3) = 7.9.
  const std::vector<Index> one_class(16, 0);
  const hsgd::Partition uneven{{0}, {1, 2}, {3, 4, 5}, {6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};
  const auto sizes = hsgd::summarize(uneven, one_class, 1);
  CHECK(sizes.workers == 4);
  CHECK(sizes.samples == 16);
  CHECK(sizes.size_min == 1);
  CHECK(sizes.size_p10 == Approx(1.3));
  CHECK(sizes.size_p50 == Approx(2.5));
  CHECK(sizes.size_p90 == Approx(7.9));
  CHECK(sizes.size_max == 10);
  CHECK(sizes.size_mean == Approx(4.0));
  CHECK(sizes.size_stdev == Approx(std::sqrt((9.0 + 4.0 + 1.0 + 36.0) / 4)));  // population sd
  CHECK(sizes.label_skew == 0);
  CHECK(sizes.labels_per_worker == 1);

  // Two classes, two workers: sorted by class, each worker's mix is (1, 0) or (0, 1), TV 1/2 from
  // (1/2, 1/2); interleaved, both mixes are the global one.
  const std::vector<Index> labels{0, 0, 1, 1};
  const auto apart = hsgd::summarize({{0, 1}, {2, 3}}, labels, 2);
  CHECK(apart.label_skew == Approx(0.5));
  CHECK(apart.labels_per_worker == 1);
  CHECK(apart.class_counts == std::vector<std::vector<Index>>{{2, 0}, {0, 2}});
  const auto mixed = hsgd::summarize({{0, 2}, {1, 3}}, labels, 2);
  CHECK(mixed.label_skew == 0);
  CHECK(mixed.labels_per_worker == 2);
  CHECK(mixed.class_counts == std::vector<std::vector<Index>>{{1, 1}, {1, 1}});

  const std::string report = fmt::format("{}", apart);
  CHECK(report == apart.brief_report());
  CHECK_THAT(report, Contains("2 workers, 4 samples, 2 classes") && Contains("label skew 0.5000"));

  CHECK_INVALID(hsgd::summarize({{0, 1, 2, 3}, {}}, labels, 2), "worker 1 holds no samples");
  CHECK_INVALID(hsgd::summarize({{0, 1, 2, 3, 4}}, labels, 2), "worker 0 holds sample 4, outside [0, 4)");
}

TEST_CASE("Group label skew by hand: across and inside groups, uniform and data-size weights", "[data]") {
  // Worker 0 holds three samples of class 0, worker 1 one of class 0, workers 2 and 3 one of class 1 each.
  const std::vector<Index> labels{0, 0, 0, 0, 1, 1};
  const hsgd::Partition partition{{0, 1, 2}, {3}, {4}, {5}};
  // Uniform weights: mixes (1,0), (1,0), (0,1), (0,1); global (1/2, 1/2).
  const auto by_label = hsgd::group_label_skew(partition, labels, 2, {{0, 1}, {2, 3}});
  CHECK(by_label.across == Approx(0.5));
  CHECK(by_label.inside == 0);
  const auto crossed = hsgd::group_label_skew(partition, labels, 2, {{0, 2}, {1, 3}});
  CHECK(crossed.across == 0);
  CHECK(crossed.inside == Approx(0.5));
  // Data-size weights 3, 1, 1, 1 (W = 6): global (2/3, 1/3); group {0, 2} has (3/4, 1/4) and
  // weight 4, group {1, 3} (1/2, 1/2) and weight 2. across = 4/6 * 1/12 + 2/6 * 1/6 = 1/9;
  // inside = (3 * 1/4 + 1 * 3/4 + 1 * 1/2 + 1 * 1/2) / 6 = 5/12.
  const auto weighted = hsgd::group_label_skew(partition, labels, 2, {{0, 2}, {1, 3}}, hsgd::Weighting::data_size);
  CHECK(weighted.across == Approx(1.0 / 9));
  CHECK(weighted.inside == Approx(5.0 / 12));
  // Singleton groups: no inside skew; one group: no across skew.
  CHECK(hsgd::group_label_skew(partition, labels, 2, {{0}, {1}, {2}, {3}}).inside == 0);
  CHECK(hsgd::group_label_skew(partition, labels, 2, {{0, 1, 2, 3}}).across == 0);

  CHECK_INVALID(hsgd::group_label_skew(partition, labels, 2, {{0, 1}, {2}}), "worker 3 is in no group");
  CHECK_INVALID(hsgd::group_label_skew(partition, labels, 2, {{0, 1}, {1, 2, 3}}), "worker 1 is listed twice");
  CHECK_INVALID(hsgd::group_label_skew(partition, labels, 2, {{0, 1, 2, 3}, {}}), "group 1 is empty");
}
