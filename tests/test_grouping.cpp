// Grouping policies: who sits in which unit, and that averages follow the grouping in force.

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Message;

namespace {

template <class Grouping>
auto make_engine(const hsgd::Topology& topology, Grouping grouping, std::uint64_t seed = 1,
                 hsgd::Options opts = options()) {
  opts.seed = seed;
  return hsgd::Engine(topology, still_shards(topology.workers(), 1), hsgd::FullBatchSampler(), opts, hsgd::Sgd{},
                      hsgd::ConstantRate{}, std::move(grouping));
}

/// The units of a level as a partition: sets of workers, themselves in a set, so neither the order
/// inside a unit nor the order of units matters.
std::set<std::set<Index>> partition_of(const std::vector<std::vector<Index>>& units) {
  std::set<std::set<Index>> result;
  for (const auto& unit : units) result.emplace(unit.begin(), unit.end());
  return result;
}

/// The grouping in force is consistent: units(l) lists the workers of slot_to_worker() cut at the
/// topology's offsets, unit_of(j, l) names the unit that lists j, and the sizes are the topology's.
template <class Engine>
void check_consistent(const Engine& engine) {
  const auto& topology = engine.topology();
  const auto slots = engine.slot_to_worker();
  std::vector<Index> sorted(slots.begin(), slots.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Index> identity(static_cast<std::size_t>(engine.workers()));
  std::iota(identity.begin(), identity.end(), Index{0});
  REQUIRE(sorted == identity);  // a permutation
  for (Index level = 1; level <= topology.levels(); ++level) {
    const auto units = engine.units(level);
    const auto offsets = topology.unit_offsets(level);
    REQUIRE(static_cast<Index>(units.size()) == topology.units(level));
    for (std::size_t u = 0; u < units.size(); ++u) {
      const std::vector<Index> expected(slots.begin() + offsets[u], slots.begin() + offsets[u + 1]);
      REQUIRE(units[u] == expected);
      for (const Index j : units[u]) REQUIRE(engine.unit_of(j, level) == static_cast<Index>(u));
    }
  }
}

/// Runs `steps` steps with the zero-gradient technique of test_schedule.cpp on a two-level
/// topology: before each step worker j's model is set to v_j = (j + 1)^2; after it, every model
/// must be the exact weighted mean of v over the unit that held it when the step began (groups
/// change only after a global aggregation, whose unit is all workers), or untouched when nothing
/// aggregated. Integer values and weights keep every mean exact, so the comparison is bitwise.
template <class Engine>
void check_exact_means(Engine& engine, const std::vector<double>& weights, Index steps) {
  const Index n = engine.workers();
  REQUIRE(engine.topology().levels() == 2);
  for (Index t = 1; t <= steps; ++t) {
    const auto before = engine.units(1);
    for (Index j = 0; j < n; ++j) engine.set_model(j, Vec::Constant(engine.dimension(), double((j + 1) * (j + 1))));
    const Index level = engine.step();
    INFO("step " << t << ", level " << level);
    std::vector<double> expected(static_cast<std::size_t>(n));
    for (Index j = 0; j < n; ++j) expected[static_cast<std::size_t>(j)] = double((j + 1) * (j + 1));
    if (level > 0) {
      std::vector<std::vector<Index>> units = before;
      if (level == 2) {
        units.assign(1, {});
        for (Index j = 0; j < n; ++j) units[0].push_back(j);
      }
      for (const auto& unit : units) {
        double weighted = 0;
        double total = 0;
        for (const Index j : unit) {
          weighted += weights[static_cast<std::size_t>(j)] * double((j + 1) * (j + 1));
          total += weights[static_cast<std::size_t>(j)];
        }
        for (const Index j : unit) expected[static_cast<std::size_t>(j)] = weighted / total;
      }
    }
    for (Index j = 0; j < n; ++j) {
      INFO("worker " << j);
      REQUIRE((engine.model(j).array() == expected[static_cast<std::size_t>(j)]).all());
    }
  }
}

/// Puts worker 0 in every slot.
struct DuplicatingGrouping {
  void assign(const hsgd::Topology& /*topology*/, std::span<Index> slots, hsgd::Rng& /*rng*/) const {
    for (auto& slot : slots) slot = 0;
  }
  [[nodiscard]] bool regroups_at_global_aggregation() const { return false; }
};

/// Names a worker that does not exist, in slot 1.
struct OutOfRangeGrouping {
  Index bad = -1;
  void assign(const hsgd::Topology& /*topology*/, std::span<Index> slots, hsgd::Rng& /*rng*/) const {
    std::iota(slots.begin(), slots.end(), Index{0});
    slots[1] = bad;
  }
  [[nodiscard]] bool regroups_at_global_aggregation() const { return false; }
};

/// Valid at the first draw, a non-permutation at the first regrouping.
struct GoesBadGrouping {
  mutable int calls = 0;
  void assign(const hsgd::Topology& /*topology*/, std::span<Index> slots, hsgd::Rng& /*rng*/) const {
    std::iota(slots.begin(), slots.end(), Index{0});
    if (++calls > 1) slots[3] = slots[2];
  }
  [[nodiscard]] bool regroups_at_global_aggregation() const { return true; }
};

}  // namespace

TEST_CASE("ContiguousGrouping puts worker j in slot j", "[grouping]") {
  auto engine = make_engine(hsgd::Topology::two_level(std::vector<Index>{2, 3, 1}, 2, 4), hsgd::ContiguousGrouping{});
  const auto slots = engine.slot_to_worker();
  CHECK(std::vector<Index>(slots.begin(), slots.end()) == std::vector<Index>{0, 1, 2, 3, 4, 5});
  CHECK(engine.units(1) == std::vector<std::vector<Index>>{{0, 1}, {2, 3, 4}, {5}});
  CHECK(engine.units(2) == std::vector<std::vector<Index>>{{0, 1, 2, 3, 4, 5}});
  CHECK(engine.unit_of(1, 1) == 0);
  CHECK(engine.unit_of(4, 1) == 1);
  CHECK(engine.unit_of(5, 1) == 2);
  CHECK(engine.unit_of(4, 2) == 0);
  check_consistent(engine);
  // Three levels: worker j's unit at every level is the unit of slot j.
  const hsgd::Topology three(8, {{2, {2, 3, 1, 2}}, {4, {5, 3}}, {12, {8}}});
  auto deep = make_engine(three, hsgd::ContiguousGrouping{});
  for (Index j = 0; j < 8; ++j) {
    for (Index level = 1; level <= 3; ++level) CHECK(deep.unit_of(j, level) == three.unit_of_slot(level, j));
  }
  CHECK(deep.units(2) == std::vector<std::vector<Index>>{{0, 1, 2, 3, 4}, {5, 6, 7}});
  check_consistent(deep);
  // It is the default policy, and it never regroups.
  hsgd::Engine by_default(three, still_shards(8, 1), hsgd::FullBatchSampler(), options());
  CHECK(by_default.units(1) == deep.units(1));
  CHECK_FALSE(hsgd::ContiguousGrouping{}.regroups_at_global_aggregation());
}

TEST_CASE("ExplicitGrouping places the given groups and averages over them", "[grouping]") {
  const std::vector<std::vector<Index>> groups{{0, 5, 7}, {1, 2}, {3, 4, 6}};
  auto engine = make_engine(hsgd::Topology::two_level(std::vector<Index>{3, 2, 3}, 2, 4), hsgd::ExplicitGrouping(groups));
  CHECK(engine.units(1) == groups);
  CHECK(engine.units(2) == std::vector<std::vector<Index>>{{0, 5, 7, 1, 2, 3, 4, 6}});
  const auto slots = engine.slot_to_worker();
  CHECK(std::vector<Index>(slots.begin(), slots.end()) == std::vector<Index>{0, 5, 7, 1, 2, 3, 4, 6});
  // Hand-derived unit of every worker at level 1.
  const std::vector<Index> unit_of_worker{0, 1, 1, 2, 2, 0, 2, 0};
  for (Index j = 0; j < 8; ++j) {
    CHECK(engine.unit_of(j, 1) == unit_of_worker[static_cast<std::size_t>(j)]);
    CHECK(engine.unit_of(j, 2) == 0);
  }
  check_consistent(engine);
  check_exact_means(engine, std::vector<double>(8, 1.0), 8);
  CHECK(engine.units(1) == groups);  // never regroups
  CHECK(engine.regroupings() == 0);
  // Three levels: level-2 units are consecutive runs of the given groups, as the sizes say.
  const hsgd::Topology three(8, {{2, {3, 2, 3}}, {4, {5, 3}}, {8, {8}}});
  auto deep = make_engine(three, hsgd::ExplicitGrouping(groups));
  CHECK(deep.units(2) == std::vector<std::vector<Index>>{{0, 5, 7, 1, 2}, {3, 4, 6}});
  CHECK(deep.unit_of(2, 2) == 0);
  CHECK(deep.unit_of(6, 2) == 1);
}

TEST_CASE("ExplicitGrouping must match the topology and be a permutation", "[grouping][validation]") {
  const auto topology = hsgd::Topology::two_level(std::vector<Index>{3, 2, 3}, 2, 4);
  REQUIRE_THROWS_MATCHES(make_engine(topology, hsgd::ExplicitGrouping({{0, 1, 2}, {3, 4, 5, 6, 7}})),
                         hsgd::InvalidArgument, Message("'groups' has 2 groups but level 1 of the topology has 3 units"));
  REQUIRE_THROWS_MATCHES(make_engine(topology, hsgd::ExplicitGrouping({{0, 1, 2}, {3, 4}, {5, 6}, {7}})),
                         hsgd::InvalidArgument, Message("'groups' has 4 groups but level 1 of the topology has 3 units"));
  REQUIRE_THROWS_MATCHES(make_engine(topology, hsgd::ExplicitGrouping({{0, 1}, {2, 3, 4}, {5, 6, 7}})),
                         hsgd::InvalidArgument, Message("group 0 lists 2 workers but unit 0 of level 1 has size 3"));
  REQUIRE_THROWS_MATCHES(make_engine(topology, hsgd::ExplicitGrouping({{0, 1, 2}, {3, 4}, {5, 6, 7, 8}})),
                         hsgd::InvalidArgument, Message("group 2 lists 4 workers but unit 2 of level 1 has size 3"));
  REQUIRE_THROWS_MATCHES(make_engine(topology, hsgd::ExplicitGrouping({{0, 1, 2}, {3, 4}, {5, 6, 0}})),
                         hsgd::InvalidArgument, Message("the grouping put worker 0 in two slots (0 and 7)"));
  REQUIRE_THROWS_MATCHES(make_engine(topology, hsgd::ExplicitGrouping({{0, 1, 2}, {3, 4}, {5, 6, 9}})),
                         hsgd::InvalidArgument, Message("the grouping put worker 9 in slot 7: no such worker"));
}

TEST_CASE("A grouping policy that does not return a permutation is rejected", "[grouping][validation]") {
  const auto topology = hsgd::Topology::two_level(4, 2, 1, 2);
  REQUIRE_THROWS_MATCHES(make_engine(topology, DuplicatingGrouping{}), hsgd::InvalidArgument,
                         Message("the grouping put worker 0 in two slots (0 and 1)"));
  REQUIRE_THROWS_MATCHES(make_engine(topology, OutOfRangeGrouping{-1}), hsgd::InvalidArgument,
                         Message("the grouping put worker -1 in slot 1: no such worker"));
  REQUIRE_THROWS_MATCHES(make_engine(topology, OutOfRangeGrouping{4}), hsgd::InvalidArgument,
                         Message("the grouping put worker 4 in slot 1: no such worker"));
  // A re-draw is checked too: the first global aggregation (step 2) asks again and gets a repeat.
  auto engine = make_engine(topology, GoesBadGrouping{});
  CHECK(engine.step() == 1);
  REQUIRE_THROWS_MATCHES(engine.step(), hsgd::InvalidArgument,
                         Message("the grouping put worker 2 in two slots (2 and 3)"));
}

TEST_CASE("RandomGrouping draws a size-preserving permutation from the grouping stream, fixed by the seed",
          "[grouping][random]") {
  const std::vector<Index> sizes{4, 1, 3, 4};
  const auto topology = hsgd::Topology::two_level(sizes, 2, 8);
  auto first = make_engine(topology, hsgd::RandomGrouping{}, 7);
  check_consistent(first);  // a permutation, cut at the topology's unit sizes
  const auto units = first.units(1);
  REQUIRE(units.size() == 4);
  for (std::size_t u = 0; u < units.size(); ++u) CHECK(static_cast<Index>(units[u].size()) == sizes[u]);
  // Not the contiguous grouping (chance 1 / 12! for a correct shuffle with this fixed seed).
  CHECK(units != std::vector<std::vector<Index>>{{0, 1, 2, 3}, {4}, {5, 6, 7}, {8, 9, 10, 11}});
  // It is the documented stream (seed, StreamKind::grouping, 0) fed to the policy.
  hsgd::Rng rng = hsgd::make_stream(7, hsgd::StreamKind::grouping, 0);
  std::vector<Index> slots(12);
  hsgd::RandomGrouping{}.assign(topology, slots, rng);
  const auto engine_slots = first.slot_to_worker();
  CHECK(std::vector<Index>(engine_slots.begin(), engine_slots.end()) == slots);
  // Same seed, same grouping; different seeds, different groupings. A partition of 12 workers
  // into labelled groups of sizes 4, 1, 3, 4 is one of 12! / (4! 1! 3! 4!) = 138600, so two
  // correct draws coincide with probability 1 / 138600.
  CHECK(make_engine(topology, hsgd::RandomGrouping{}, 7).units(1) == units);
  for (std::uint64_t seed = 8; seed < 14; ++seed) {
    INFO("seed " << seed);
    CHECK(partition_of(make_engine(topology, hsgd::RandomGrouping{}, seed).units(1)) != partition_of(units));
  }
}

TEST_CASE("RandomGrouping is drawn once by default and re-drawn at each global aggregation on request",
          "[grouping][random]") {
  const auto topology = hsgd::Topology::two_level(12, 3, 2, 4);
  CHECK(hsgd::RandomGrouping{}.redraw == hsgd::RandomGrouping::Redraw::once);
  CHECK_FALSE(hsgd::RandomGrouping{}.regroups_at_global_aggregation());
  CHECK(hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation}.regroups_at_global_aggregation());
  auto fixed = make_engine(topology, hsgd::RandomGrouping{}, 3);
  auto redrawn = make_engine(topology, hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation}, 3);
  const auto initial = redrawn.units(1);
  CHECK(fixed.units(1) == initial);  // same stream, same first draw
  int partition_changes = 0;
  auto previous = initial;
  for (Index t = 1; t <= 40; ++t) {
    fixed.step();
    const Index level = redrawn.step();
    check_consistent(redrawn);
    if (level == 2) {
      partition_changes += partition_of(redrawn.units(1)) != partition_of(previous) ? 1 : 0;
      previous = redrawn.units(1);
    } else {
      REQUIRE(redrawn.units(1) == previous);  // groups change only at global aggregations
    }
    REQUIRE(fixed.units(1) == initial);
  }
  CHECK(fixed.regroupings() == 0);
  // 40 steps with G = 4: 10 global aggregations, one re-draw after each.
  CHECK(redrawn.aggregation_counts()[1] == 10);
  CHECK(redrawn.regroupings() == 10);
  // The groups (as a partition, not just the order within them) really change: 12 workers into 3
  // unlabelled groups of 4 is one of 12! / (4!^3 3!) = 5775 partitions, so a correct re-draw repeats
  // the previous one with probability 1/5775; allowing one repeat in 10 makes a false alarm ~1e-6.
  CHECK(partition_changes >= 9);
}

TEST_CASE("RandomGrouping re-drawn during a synchronous warm-up counts one re-draw per global aggregation",
          "[grouping][random][warmup]") {
  auto opts = options();
  opts.warmup_steps = 3;
  auto engine = make_engine(hsgd::Topology::two_level(8, 2, 2, 4),
                            hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation}, 5, opts);
  for (Index t = 1; t <= 11; ++t) engine.step();
  // Global at 1, 2, 3 (warm-up), then 3 + 4 = 7 and 3 + 8 = 11.
  CHECK(engine.aggregation_counts()[1] == 5);
  CHECK(engine.regroupings() == engine.aggregation_counts()[1]);
}

TEST_CASE("RandomGrouping: averages are exact means over the groups in force, with and without re-draws",
          "[grouping][random][schedule]") {
  const std::vector<Index> sizes{4, 1, 3, 4};
  const auto topology = hsgd::Topology::two_level(sizes, 2, 6);
  SECTION("drawn once, uniform weights") {
    auto engine = make_engine(topology, hsgd::RandomGrouping{}, 21);
    check_exact_means(engine, std::vector<double>(12, 1.0), 18);
    CHECK(engine.regroupings() == 0);
  }
  SECTION("re-drawn at every global aggregation, data-size weights that must follow the workers") {
    const std::vector<Index> samples{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8};
    auto opts = options(22);
    opts.weighting = hsgd::Weighting::data_size;
    hsgd::Engine engine(topology, still_shards(12, 2, samples), hsgd::UniformSampler(2), opts, hsgd::Sgd{},
                        hsgd::ConstantRate{},
                        hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation});
    check_exact_means(engine, std::vector<double>(samples.begin(), samples.end()), 30);
    CHECK(engine.regroupings() == 5);
  }
}

TEST_CASE("RandomGrouping puts each worker in each group with probability n_i / n", "[grouping][statistics]") {
  // Unequal sizes {1, 2, 3, 6}, n = 12: worker w lands in group i with probability p_i = n_i / 12.
  // Over D = 120000 independent draws the count is Binomial(D, p_i) with standard deviation
  // sigma = sqrt(D p_i (1 - p_i)) (from 96 for p = 1/12 to 173 for p = 1/2). We allow 5 sigma: the
  // normal tail beyond 5 sigma is 5.7e-7, so a correct shuffle fails one of the 48 + 66 checks
  // below with probability under 1e-4 (and the seed is fixed, so the outcome is deterministic). The
  // margin is under 5% of the expected count for the rarest cell (5 * 96 / 10000), which a
  // biased shuffle exceeds by far: naive swapping with a uniform index in [0, n), or Sattolo's
  // variant that never leaves a worker in place, both miss by more than 100 sigma here.
  // The same margin is applied to the chance that two given workers share a group,
  // q = sum_i n_i (n_i - 1) / (n (n - 1)) = 38 / 132, which marginals alone would not pin down.
  const std::vector<Index> sizes{1, 2, 3, 6};
  const auto topology = hsgd::Topology::two_level(sizes, 1, 2);
  const hsgd::RandomGrouping policy;
  hsgd::Rng rng = hsgd::make_stream(11, hsgd::StreamKind::grouping, 0);
  constexpr int draws = 120000;
  constexpr std::size_t n = 12;
  std::vector<std::vector<int>> counts(n, std::vector<int>(sizes.size(), 0));
  std::vector<std::vector<int>> together(n, std::vector<int>(n, 0));
  std::vector<Index> slots(n);
  std::vector<Index> group_of(n);
  for (int draw = 0; draw < draws; ++draw) {
    policy.assign(topology, slots, rng);
    for (std::size_t slot = 0; slot < n; ++slot) {
      const Index group = topology.unit_of_slot(1, static_cast<Index>(slot));
      group_of[static_cast<std::size_t>(slots[slot])] = group;
      ++counts[static_cast<std::size_t>(slots[slot])][static_cast<std::size_t>(group)];
    }
    for (std::size_t a = 0; a < n; ++a) {
      for (std::size_t b = a + 1; b < n; ++b) together[a][b] += group_of[a] == group_of[b] ? 1 : 0;
    }
  }
  for (std::size_t worker = 0; worker < n; ++worker) {
    for (std::size_t group = 0; group < sizes.size(); ++group) {
      const double p = double(sizes[group]) / double(n);
      const double sigma = std::sqrt(draws * p * (1 - p));
      INFO("worker " << worker << ", group " << group << ", count " << counts[worker][group]);
      CHECK(std::abs(counts[worker][group] - draws * p) < 5 * sigma);
    }
  }
  const double q = 38.0 / 132.0;
  const double sigma_pair = std::sqrt(draws * q * (1 - q));
  for (std::size_t a = 0; a < n; ++a) {
    for (std::size_t b = a + 1; b < n; ++b) {
      INFO("workers " << a << " and " << b << ", together " << together[a][b]);
      CHECK(std::abs(together[a][b] - draws * q) < 5 * sigma_pair);
    }
  }
}
