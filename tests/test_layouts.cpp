// Group layouts: group-IID and group-non-IID groupings of a partition's workers, against random
// groupings and against every swap of two workers, and as groups for ExplicitGrouping.

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include <catch2/catch.hpp>

#include "data_support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

/// Groups of the given sizes over workers in `order`.
Groups cut(std::span<const Index> order, const std::vector<Index>& sizes) {
  Groups groups;
  auto next = order.begin();
  for (const Index size : sizes) {
    groups.emplace_back(next, next + size);
    next += size;
  }
  return groups;
}

/// Mean across-group skew over `draws` uniformly random groupings with these sizes.
double random_grouping_across(const hsgd::Partition& partition, std::span<const Index> labels, Index classes,
                              const std::vector<Index>& sizes, hsgd::Weighting weighting, int draws) {
  hsgd::Rng rng = test_stream(7);
  std::vector<Index> order(partition.size());
  std::iota(order.begin(), order.end(), Index{0});
  double total = 0;
  for (int draw = 0; draw < draws; ++draw) {
    rng.shuffle(std::span<Index>(order));
    total += hsgd::group_label_skew(partition, labels, classes, cut(order, sizes), weighting).across;
  }
  return total / draws;
}

void require_layout(const Groups& groups, const std::vector<Index>& sizes, Index workers) {
  REQUIRE(groups.size() == sizes.size());
  std::vector<Index> all;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    REQUIRE(static_cast<Index>(groups[g].size()) == sizes[g]);
    all.insert(all.end(), groups[g].begin(), groups[g].end());
  }
  std::sort(all.begin(), all.end());
  std::vector<Index> expected(static_cast<std::size_t>(workers));
  std::iota(expected.begin(), expected.end(), Index{0});
  REQUIRE(all == expected);
}

}  // namespace

TEST_CASE("Layouts: group-IID mixes are closer to the global one than random, group-non-IID farther", "[data]") {
  const std::vector<Index> labels = balanced_labels(10, 1200);
  const std::vector<Index> sizes{4, 8, 6, 6};
  struct Case {
    const char* name;
    hsgd::Partition partition;
  };
  const Case cases[] = {
      {"dirichlet", hsgd::partition_dirichlet(labels, 10, {.workers = 24, .alpha = 0.2, .seed = 3})},
      {"shards", hsgd::partition_shards(labels, 10, {.workers = 24, .shards_per_worker = 2, .seed = 3})},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const Groups iid = hsgd::group_iid_layout(c.partition, labels, 10, sizes);
    const Groups non_iid = hsgd::group_non_iid_layout(c.partition, labels, 10, sizes);
    require_layout(iid, sizes, 24);
    require_layout(non_iid, sizes, 24);
    const auto iid_skew = hsgd::group_label_skew(c.partition, labels, 10, iid);
    const auto non_iid_skew = hsgd::group_label_skew(c.partition, labels, 10, non_iid);
    const double random = random_grouping_across(c.partition, labels, 10, sizes, hsgd::Weighting::uniform, 50);
    CHECK(iid_skew.across < random);
    CHECK(non_iid_skew.across > random);
    CHECK(iid_skew.inside > non_iid_skew.inside);

    // Data-size weights: the layout balances the pooled mixes instead.
    const Groups pooled = hsgd::group_iid_layout(c.partition, labels, 10, sizes, hsgd::Weighting::data_size);
    require_layout(pooled, sizes, 24);
    CHECK(hsgd::group_label_skew(c.partition, labels, 10, pooled, hsgd::Weighting::data_size).across <
          random_grouping_across(c.partition, labels, 10, sizes, hsgd::Weighting::data_size, 50));
  }
}

TEST_CASE("Layouts: no swap of two workers improves the group-IID layout", "[data]") {
  const std::vector<Index> labels = balanced_labels(6, 300);
  const std::vector<Index> sizes{3, 5, 4};
  const auto partition = hsgd::partition_dirichlet(labels, 6, {.workers = 12, .alpha = 0.3, .seed = 8});
  const Groups groups = hsgd::group_iid_layout(partition, labels, 6, sizes);
  const double across = hsgd::group_label_skew(partition, labels, 6, groups).across;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (std::size_t h = g + 1; h < groups.size(); ++h) {
      for (std::size_t a = 0; a < groups[g].size(); ++a) {
        for (std::size_t b = 0; b < groups[h].size(); ++b) {
          Groups swapped = groups;
          std::swap(swapped[g][a], swapped[h][b]);
          CHECK(hsgd::group_label_skew(partition, labels, 6, swapped).across >= across - 1e-12);
        }
      }
    }
  }
}

TEST_CASE("Layouts: group-non-IID gathers workers by dominant label; both plug into ExplicitGrouping", "[data]") {
  // Six workers, each holding one class (0, 1, 2, 0, 1, 2): in groups of two, the non-IID layout
  // pairs equal labels, the IID layout never does.
  const std::vector<Index> labels{0, 1, 2, 0, 1, 2};
  const hsgd::Partition partition{{0}, {1}, {2}, {3}, {4}, {5}};
  const std::vector<Index> sizes{2, 2, 2};
  const Groups non_iid = hsgd::group_non_iid_layout(partition, labels, 3, sizes);
  CHECK(non_iid == Groups{{0, 3}, {1, 4}, {2, 5}});
  const Groups iid = hsgd::group_iid_layout(partition, labels, 3, sizes);
  for (const auto& group : iid)
    CHECK(labels[static_cast<std::size_t>(group[0])] != labels[static_cast<std::size_t>(group[1])]);

  const hsgd::Topology topology = hsgd::Topology::two_level(sizes, 2, 4);
  for (const Groups& groups : {iid, non_iid}) {
    std::vector<Index> slots(6, -1);
    hsgd::Rng rng = test_stream(0);
    hsgd::ExplicitGrouping(groups).assign(topology, slots, rng);
    std::vector<Index> sorted_slots = slots;
    std::sort(sorted_slots.begin(), sorted_slots.end());
    CHECK(sorted_slots == std::vector<Index>{0, 1, 2, 3, 4, 5});
  }

  CHECK_INVALID(hsgd::group_iid_layout(partition, labels, 3, std::vector<Index>{2, 2}),
                "'group_sizes' hold 4 workers in all, but the partition has 6");
  CHECK_INVALID(hsgd::group_non_iid_layout(partition, labels, 3, std::vector<Index>{2, 0, 4}), "'group_sizes'[1] (0)");
  CHECK_INVALID(hsgd::group_non_iid_layout(partition, labels, 3, std::vector<Index>{}),
                "'group_sizes' must name at least one group");
}
