// Group layouts against the divergences they are meant to shape: on label-sorted shards with one
// label per worker and as many labels as groups, group-IID groups drive D_up towards 0 and
// group-non-IID groups drive D_down towards 0, measured by the probes during H-SGD runs.

#include <algorithm>
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include <hsgd/testing/catch2.hpp>

#include "support.hpp"

using namespace test;

namespace {

constexpr Index workers = 16;
constexpr Index groups = 4;
constexpr Index classes = 4;

struct Problem {
  hsgd::Dataset<double> data;
  hsgd::Partition partition;
};

/// 4 balanced classes of 256 samples cut into 16 label-sorted shards of 64: one label per worker.
Problem one_label_per_worker(std::uint64_t seed) {
  hsgd::GaussianMixtureOptions mixture;
  mixture.classes = classes;
  mixture.dimension = 5;
  mixture.samples = workers * 64;
  mixture.separation = 3.0;
  mixture.seed = seed;
  Problem problem{hsgd::make_gaussian_mixture<double>(mixture), {}};
  problem.partition = hsgd::partition_shards(problem.data.labels, classes,
                                             {.workers = workers, .shards_per_worker = 1, .seed = seed});
  return problem;
}

std::set<Index> labels_of(const Problem& problem, const std::vector<Index>& group) {
  std::set<Index> labels;
  for (const Index j : group) {
    for (const Index k : problem.partition[static_cast<std::size_t>(j)]) labels.insert(problem.data.labels[static_cast<std::size_t>(k)]);
  }
  return labels;
}

/// Time averages of D_up / D_glob and D_down / D_glob over an H-SGD run with the given groups.
std::pair<double, double> divergence_shares(const Problem& problem, const std::vector<std::vector<Index>>& layout,
                                            std::uint64_t seed) {
  hsgd::Engine engine(hsgd::Topology::two_level(workers, groups, 4, 16), hsgd::make_softmax_shards(problem.data, problem.partition),
                      hsgd::UniformSampler(8), options(seed, 128, 0.1), hsgd::Sgd{}, hsgd::ConstantRate{},
                      hsgd::ExplicitGrouping(layout));
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, {.gradient_every = 8, .model_every = 0}, memory);
  engine.run(probe);
  REQUIRE(memory.rows.size() == 16);
  for (const auto& row : memory.rows) CHECK_THAT(row, hsgd::testing::SatisfiesDivergenceIdentity());
  const double d_glob = hsgd::time_average(memory.rows, &hsgd::ProbeRecord::d_glob);
  return {hsgd::time_average(memory.rows, &hsgd::ProbeRecord::d_up) / d_glob,
          hsgd::time_average(memory.rows, &hsgd::ProbeRecord::d_down) / d_glob};
}

}  // namespace

TEST_CASE("Group-IID groups hold every label once; D_up is near 0", "[layout][probe]") {
  // With one label per worker and a group per label, a group-IID group holds one worker of each
  // label, so its mean gradient differs from the global one only by the within-label spread of
  // the workers' 64-sample empirical gradients, against the between-label spread that makes up
  // D_glob: the bound 0.02 is a tenth of what a random grouping gives in expectation,
  // (N - 1)/(n - 1) = 0.2.
  for (const std::uint64_t seed : {1u, 2u, 3u}) {
    const Problem problem = one_label_per_worker(seed);
    const auto layout = hsgd::group_iid_layout(problem.partition, problem.data.labels, classes, std::vector<Index>(4, 4));
    for (const auto& group : layout) CHECK(labels_of(problem, group).size() == classes);
    const auto [up, down] = divergence_shares(problem, layout, seed);
    INFO("seed " << seed << ": D_up / D_glob = " << up);
    CHECK(up < 0.02);
    CHECK(down > 0.98);
  }
}

TEST_CASE("Group-non-IID groups hold one label each; D_down is near 0", "[layout][probe]") {
  // Each group gathers the four workers of one label: D_down is the within-label spread alone,
  // the same small quantity as above, so the same bound (a tenth of the random-grouping
  // expectation of D_down's share, (n - N)/(n - 1) = 0.8, would be far looser).
  for (const std::uint64_t seed : {1u, 2u, 3u}) {
    const Problem problem = one_label_per_worker(seed);
    const auto layout =
        hsgd::group_non_iid_layout(problem.partition, problem.data.labels, classes, std::vector<Index>(4, 4));
    for (const auto& group : layout) CHECK(labels_of(problem, group).size() == 1);
    const auto [up, down] = divergence_shares(problem, layout, seed);
    INFO("seed " << seed << ": D_down / D_glob = " << down);
    CHECK(down < 0.02);
    CHECK(up > 0.98);
  }
}
