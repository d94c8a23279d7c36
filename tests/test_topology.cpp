// Topology validation (every check with its message, group sizes whose sum overflows too),
// accessors, and moved-from and self-moved topologies.

#include <numeric>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;
using Catch::Matchers::Message;
using hsgd::Topology;

namespace {

std::vector<Index> offsets_of(const Topology& topology, Index level) {
  const auto offsets = topology.unit_offsets(level);
  return {offsets.begin(), offsets.end()};
}

std::vector<Index> sizes_of(const Topology& topology, Index level) {
  std::vector<Index> sizes;
  for (Index unit = 0; unit < topology.units(level); ++unit) sizes.push_back(topology.unit_size(level, unit));
  return sizes;
}

}  // namespace

TEST_CASE("Topology: periods must be positive", "[topology][validation]") {
  REQUIRE_THROWS_MATCHES(Topology::two_level(8, 2, 0, 8), hsgd::InvalidArgument,
                         Message("'local_period' (0) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(8, 2, -2, 8), hsgd::InvalidArgument,
                         Message("'local_period' (-2) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(8, 2, 4, -8), hsgd::InvalidArgument,
                         Message("'global_period' (-8) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(std::vector<Index>{4, 4}, 4, 0), hsgd::InvalidArgument,
                         Message("'global_period' (0) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology::local_sgd(4, 0), hsgd::InvalidArgument, Message("'period' (0) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology(4, {{0, {2, 2}}, {4, {4}}}), hsgd::InvalidArgument,
                         Message("the period of level 1 (0) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology(4, {{2, {2, 2}}, {-4, {4}}}), hsgd::InvalidArgument,
                         Message("the period of level 2 (-4) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology::from_period_group_sizes(8, {{0, 4}, {8, 8}}), hsgd::InvalidArgument,
                         Message("the period of level 1 (0) must be positive"));
}

TEST_CASE("Topology: periods must strictly increase and each divide the next", "[topology][validation]") {
  REQUIRE_THROWS_MATCHES(Topology::two_level(8, 2, 4, 30), hsgd::InvalidArgument,
                         Message("'global_period' (30) must be a multiple of 'local_period' (4)"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(8, 2, 8, 4), hsgd::InvalidArgument,
                         Message("'global_period' (4) must be a multiple of 'local_period' (8)"));
  REQUIRE_THROWS_MATCHES(Topology(4, {{4, {2, 2}}, {6, {4}}}), hsgd::InvalidArgument,
                         Message("the period of level 2 (6) must be a multiple of, and greater than, the period of "
                                 "level 1 (4)"));
  // Equal periods divide but do not increase.
  REQUIRE_THROWS_MATCHES(Topology(4, {{4, {2, 2}}, {4, {4}}}), hsgd::InvalidArgument,
                         Message("the period of level 2 (4) must be a multiple of, and greater than, the period of "
                                 "level 1 (4)"));
  // Decreasing.
  REQUIRE_THROWS_MATCHES(Topology(4, {{8, {2, 2}}, {4, {4}}}), hsgd::InvalidArgument,
                         Message("the period of level 2 (4) must be a multiple of, and greater than, the period of "
                                 "level 1 (8)"));
  // The third level is checked against the second, not the first (10 is a multiple of 2).
  REQUIRE_THROWS_MATCHES(Topology(4, {{2, {1, 1, 1, 1}}, {4, {2, 2}}, {10, {4}}}), hsgd::InvalidArgument,
                         Message("the period of level 3 (10) must be a multiple of, and greater than, the period of "
                                 "level 2 (4)"));
  REQUIRE_THROWS_MATCHES(Topology::from_period_group_sizes(8, {{4, 4}, {6, 8}}), hsgd::InvalidArgument,
                         Message("the period of level 2 (6) must be a multiple of, and greater than, the period of "
                                 "level 1 (4)"));
  // A valid chain is accepted.
  CHECK_NOTHROW(Topology(4, {{2, {1, 1, 1, 1}}, {4, {2, 2}}, {12, {4}}}));
}

TEST_CASE("Topology: workers and groups must be positive and fit", "[topology][validation]") {
  REQUIRE_THROWS_MATCHES(Topology::two_level(0, 1, 1, 2), hsgd::InvalidArgument,
                         Message("'workers' (0) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology(-3, {{2, {1}}}), hsgd::InvalidArgument, Message("'workers' (-3) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology::local_sgd(0, 2), hsgd::InvalidArgument, Message("'workers' (0) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology::from_period_group_sizes(0, {{2, 1}}), hsgd::InvalidArgument,
                         Message("'workers' (0) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(4, 5, 1, 2), hsgd::InvalidArgument,
                         Message("'groups' (5) must be in [1, 'workers' (4)]"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(4, 0, 1, 2), hsgd::InvalidArgument,
                         Message("'groups' (0) must be in [1, 'workers' (4)]"));
}

TEST_CASE("Topology: every unit and group must be non-empty", "[topology][validation]") {
  REQUIRE_THROWS_MATCHES(Topology(4, {{2, {2, 0, 2}}, {4, {4}}}), hsgd::InvalidArgument,
                         Message("unit 1 of level 1 is empty: every unit needs at least one worker"));
  REQUIRE_THROWS_MATCHES(Topology(4, {{2, {2, 2}}, {4, {2, 0, 2}}, {8, {4}}}), hsgd::InvalidArgument,
                         Message("unit 1 of level 2 is empty: every unit needs at least one worker"));
  REQUIRE_THROWS_MATCHES(Topology(4, {{2, {}}, {4, {4}}}), hsgd::InvalidArgument,
                         Message("level 1 must have at least one unit"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(std::vector<Index>{3, 0, 2}, 1, 2), hsgd::InvalidArgument,
                         Message("group 1 has size 0: every group needs at least one worker"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(std::vector<Index>{3, 2, -1}, 1, 2), hsgd::InvalidArgument,
                         Message("group 2 has size -1: every group needs at least one worker"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(std::vector<Index>{}, 1, 2), hsgd::InvalidArgument,
                         Message("'group_sizes' must name at least one group"));
}

TEST_CASE("Topology: the units of each level must hold exactly the workers", "[topology][validation]") {
  REQUIRE_THROWS_MATCHES(Topology(5, {{2, {2, 2}}, {4, {5}}}), hsgd::InvalidArgument,
                         Message("the units of level 1 hold 4 workers in all, not 'workers' (5)"));
  REQUIRE_THROWS_MATCHES(Topology(5, {{2, {2, 2, 2}}, {4, {5}}}), hsgd::InvalidArgument,
                         Message("the units of level 1 hold 6 workers in all, not 'workers' (5)"));
  REQUIRE_THROWS_MATCHES(Topology(4, {{2, {2, 2}}, {4, {3}}}), hsgd::InvalidArgument,
                         Message("the units of level 2 hold 3 workers in all, not 'workers' (4)"));
}

TEST_CASE("Topology: every unit must lie inside one unit of the level above", "[topology][validation]") {
  // Level 1 = {0,1,2} {3,4,5}; level 2 = {0,1} {2,...,5}: the first level-1 unit straddles slot 2.
  REQUIRE_THROWS_MATCHES(Topology(6, {{2, {3, 3}}, {4, {2, 4}}, {8, {6}}}), hsgd::InvalidArgument,
                         Message("a unit of level 1 straddles slot 2, where level 2 starts a new unit: every unit "
                                 "must lie inside one unit of the level above"));
  // Level 1 boundaries 0, 2, 5, 6, 8; level 2 boundaries 0, 4, 8: the unit {2, 3, 4} straddles slot 4.
  REQUIRE_THROWS_MATCHES(Topology(8, {{2, {2, 3, 1, 2}}, {4, {4, 4}}, {12, {8}}}), hsgd::InvalidArgument,
                         Message("a unit of level 1 straddles slot 4, where level 2 starts a new unit: every unit "
                                 "must lie inside one unit of the level above"));
  // Between levels 2 and 3 of four.
  REQUIRE_THROWS_MATCHES(Topology(6, {{1, {1, 1, 1, 1, 1, 1}}, {2, {3, 3}}, {4, {2, 4}}, {8, {6}}}),
                         hsgd::InvalidArgument,
                         Message("a unit of level 2 straddles slot 2, where level 3 starts a new unit: every unit "
                                 "must lie inside one unit of the level above"));
  // The same sizes nested the right way round are accepted.
  CHECK_NOTHROW(Topology(8, {{2, {2, 3, 1, 2}}, {4, {5, 3}}, {12, {8}}}));
}

TEST_CASE("Topology: the top level must be one unit holding all workers", "[topology][validation]") {
  REQUIRE_THROWS_MATCHES(Topology(4, {{2, {2, 2}}}), hsgd::InvalidArgument,
                         Message("the top level (level 1) must be one unit holding all workers, it has 2 units"));
  REQUIRE_THROWS_MATCHES(Topology(4, {{2, {1, 1, 1, 1}}, {4, {2, 2}}}), hsgd::InvalidArgument,
                         Message("the top level (level 2) must be one unit holding all workers, it has 2 units"));
  REQUIRE_THROWS_MATCHES(Topology(4, {{2, {2, 2}}, {4, {}}}), hsgd::InvalidArgument,
                         Message("the top level (level 2) must be one unit holding all workers, it has 0 units"));
  REQUIRE_THROWS_MATCHES(Topology(4, {}), hsgd::InvalidArgument, Message("a topology needs at least one level"));
}

TEST_CASE("Topology::from_period_group_sizes (PyTorch style) checks its groups and equals two_level",
          "[topology]") {
  REQUIRE_THROWS_MATCHES(Topology::from_period_group_sizes(10, {{2, 4}, {8, 10}}), hsgd::InvalidArgument,
                         Message("group size 4 of level 1 must be positive and divide 'workers' (10)"));
  REQUIRE_THROWS_MATCHES(Topology::from_period_group_sizes(12, {{2, 3}, {4, 5}, {8, 12}}), hsgd::InvalidArgument,
                         Message("group size 5 of level 2 must be positive and divide 'workers' (12)"));
  REQUIRE_THROWS_MATCHES(Topology::from_period_group_sizes(10, {{2, 0}, {8, 10}}), hsgd::InvalidArgument,
                         Message("group size 0 of level 1 must be positive and divide 'workers' (10)"));
  REQUIRE_THROWS_MATCHES(Topology::from_period_group_sizes(10, {}), hsgd::InvalidArgument,
                         Message("'period_group_sizes' must name at least one level"));
  // Equal groups at each level but not nested: 4-blocks under 6-blocks.
  REQUIRE_THROWS_WITH(Topology::from_period_group_sizes(12, {{2, 4}, {4, 6}, {8, 12}}), Contains("straddles"));
  // The last group size must be all workers: the top level is global.
  REQUIRE_THROWS_WITH(Topology::from_period_group_sizes(8, {{2, 2}, {4, 4}}),
                      Contains("the top level (level 2) must be one unit holding all workers"));

  // Happy path: the same topology as two_level(64, 8, 4, 32).
  const auto from_pairs = Topology::from_period_group_sizes(64, {{4, 8}, {32, 64}});
  const auto two_level = Topology::two_level(64, 8, 4, 32);
  REQUIRE(from_pairs.levels() == two_level.levels());
  CHECK(from_pairs.workers() == two_level.workers());
  CHECK(from_pairs.periods() == two_level.periods());
  for (Index level = 1; level <= 2; ++level) {
    CHECK(offsets_of(from_pairs, level) == offsets_of(two_level, level));
  }
  CHECK(sizes_of(from_pairs, 1) == std::vector<Index>(8, 8));

  const auto three = Topology::from_period_group_sizes(16, {{2, 2}, {4, 8}, {16, 16}});
  CHECK(three.levels() == 3);
  CHECK(three.periods() == std::vector<Index>{2, 4, 16});
  CHECK(sizes_of(three, 1) == std::vector<Index>(8, 2));
  CHECK(sizes_of(three, 2) == std::vector<Index>{8, 8});
  CHECK(sizes_of(three, 3) == std::vector<Index>{16});
}

TEST_CASE("Topology::two_level(n, N, I, G) splits workers into near-equal contiguous groups", "[topology]") {
  const auto topology = Topology::two_level(10, 4, 2, 8);
  REQUIRE(topology.levels() == 2);
  CHECK(topology.workers() == 10);
  CHECK(sizes_of(topology, 1) == std::vector<Index>{3, 3, 2, 2});
  CHECK(sizes_of(topology, 2) == std::vector<Index>{10});
  CHECK(Topology::two_level(12, 3, 2, 4).units(1) == 3);
  CHECK(sizes_of(Topology::two_level(12, 3, 2, 4), 1) == std::vector<Index>{4, 4, 4});
  CHECK(sizes_of(Topology::two_level(7, 7, 1, 2), 1) == std::vector<Index>(7, 1));
  CHECK(sizes_of(Topology::two_level(7, 1, 1, 2), 1) == std::vector<Index>{7});
  CHECK(sizes_of(Topology::two_level(11, 3, 1, 2), 1) == std::vector<Index>{4, 4, 3});
  // Every n, N: sizes sum to n, the first n mod N groups hold ceil(n / N), the others floor(n / N).
  for (Index n = 1; n <= 20; ++n) {
    for (Index groups = 1; groups <= n; ++groups) {
      const auto sizes = sizes_of(Topology::two_level(n, groups, 3, 6), 1);
      INFO("n " << n << ", N " << groups);
      REQUIRE(static_cast<Index>(sizes.size()) == groups);
      REQUIRE(std::accumulate(sizes.begin(), sizes.end(), Index{0}) == n);
      for (Index i = 0; i < groups; ++i) {
        REQUIRE(sizes[static_cast<std::size_t>(i)] == n / groups + (i < n % groups ? 1 : 0));
      }
    }
  }
  // The explicit-sizes overload keeps unequal sizes as given.
  const auto unequal = Topology::two_level(std::vector<Index>{1, 5, 2}, 3, 9);
  CHECK(unequal.workers() == 8);
  CHECK(sizes_of(unequal, 1) == std::vector<Index>{1, 5, 2});
  CHECK(unequal.periods() == std::vector<Index>{3, 9});
}

TEST_CASE("Topology::two_level with I == G collapses to local SGD with period G", "[topology]") {
  for (const auto& topology : {Topology::two_level(6, 3, 8, 8), Topology::two_level(std::vector<Index>{2, 3, 1}, 8, 8)}) {
    REQUIRE(topology.levels() == 1);
    CHECK(topology.workers() == 6);
    CHECK(topology.period(1) == 8);
    CHECK(topology.periods() == std::vector<Index>{8});
    CHECK(topology.units(1) == 1);
    CHECK(topology.unit_size(1, 0) == 6);
    REQUIRE_THROWS_MATCHES(topology.period(2), hsgd::InvalidArgument, Message("'level' (2) must be in [1, 1]"));
  }
  const auto local = Topology::local_sgd(6, 8);
  CHECK(offsets_of(local, 1) == offsets_of(Topology::two_level(6, 3, 8, 8), 1));
  // I < G keeps both levels.
  CHECK(Topology::two_level(6, 3, 4, 8).levels() == 2);
}

TEST_CASE("Topology accessors: units, unit sizes, offsets, unit of each slot, periods", "[topology]") {
  const Topology topology(8, {{2, {2, 3, 1, 2}}, {4, {5, 3}}, {12, {8}}});
  CHECK(topology.workers() == 8);
  CHECK(topology.levels() == 3);
  CHECK(topology.periods() == std::vector<Index>{2, 4, 12});
  CHECK(topology.period(1) == 2);
  CHECK(topology.period(2) == 4);
  CHECK(topology.period(3) == 12);
  CHECK(topology.units(1) == 4);
  CHECK(topology.units(2) == 2);
  CHECK(topology.units(3) == 1);
  CHECK(sizes_of(topology, 1) == std::vector<Index>{2, 3, 1, 2});
  CHECK(sizes_of(topology, 2) == std::vector<Index>{5, 3});
  CHECK(sizes_of(topology, 3) == std::vector<Index>{8});
  CHECK(offsets_of(topology, 1) == std::vector<Index>{0, 2, 5, 6, 8});
  CHECK(offsets_of(topology, 2) == std::vector<Index>{0, 5, 8});
  CHECK(offsets_of(topology, 3) == std::vector<Index>{0, 8});
  // Slot -> unit, by hand: slots 0 1 | 2 3 4 | 5 | 6 7 at level 1, 0..4 | 5..7 at level 2.
  const std::vector<Index> level1{0, 0, 1, 1, 1, 2, 3, 3};
  const std::vector<Index> level2{0, 0, 0, 0, 0, 1, 1, 1};
  for (Index slot = 0; slot < 8; ++slot) {
    INFO("slot " << slot);
    CHECK(topology.unit_of_slot(1, slot) == level1[static_cast<std::size_t>(slot)]);
    CHECK(topology.unit_of_slot(2, slot) == level2[static_cast<std::size_t>(slot)]);
    CHECK(topology.unit_of_slot(3, slot) == 0);
  }
  // Consistency with the offsets for a larger near-equal split.
  const auto two = Topology::two_level(10, 4, 2, 8);
  CHECK(offsets_of(two, 1) == std::vector<Index>{0, 3, 6, 8, 10});
  for (Index slot = 0; slot < 10; ++slot) {
    const Index unit = two.unit_of_slot(1, slot);
    const auto offsets = two.unit_offsets(1);
    REQUIRE(offsets[static_cast<std::size_t>(unit)] <= slot);
    REQUIRE(slot < offsets[static_cast<std::size_t>(unit) + 1]);
  }
  // Levels outside 1..L are rejected by every per-level accessor.
  REQUIRE_THROWS_MATCHES(topology.period(0), hsgd::InvalidArgument, Message("'level' (0) must be in [1, 3]"));
  REQUIRE_THROWS_MATCHES(topology.period(4), hsgd::InvalidArgument, Message("'level' (4) must be in [1, 3]"));
  REQUIRE_THROWS_MATCHES(topology.units(4), hsgd::InvalidArgument, Message("'level' (4) must be in [1, 3]"));
  REQUIRE_THROWS_MATCHES(topology.unit_offsets(0), hsgd::InvalidArgument, Message("'level' (0) must be in [1, 3]"));
  REQUIRE_THROWS_MATCHES(topology.unit_size(5, 0), hsgd::InvalidArgument, Message("'level' (5) must be in [1, 3]"));
  REQUIRE_THROWS_MATCHES(topology.unit_of_slot(-1, 0), hsgd::InvalidArgument,
                         Message("'level' (-1) must be in [1, 3]"));
}

TEST_CASE("Topology and engine accessors reject levels, units and slots out of range", "[topology][validation]") {
  const auto topology = hsgd::Topology::two_level(6, 2, 1, 2);
  REQUIRE_THROWS_MATCHES(topology.unit_size(1, 2), hsgd::InvalidArgument, Catch::Matchers::Message("'unit' (2) must be in [0, 2)"));
  REQUIRE_THROWS_MATCHES(topology.unit_of_slot(1, 6), hsgd::InvalidArgument, Catch::Matchers::Message("'slot' (6) must be in [0, 6)"));
  REQUIRE_THROWS_MATCHES(topology.unit_of_slot(2, -1), hsgd::InvalidArgument, Catch::Matchers::Message("'slot' (-1) must be in [0, 6)"));
  std::vector<hsgd::Quadratic<double>> shards(6, hsgd::Quadratic<double>(hsgd::Vector<double>::Ones(1), hsgd::Vector<double>::Zero(1)));
  hsgd::Options options;
  options.threads = 1;
  const hsgd::Engine engine(topology, shards, hsgd::FullBatchSampler(), options);
  REQUIRE_THROWS_MATCHES(engine.units(3), hsgd::InvalidArgument, Catch::Matchers::Message("'level' (3) must be in [1, 2]"));
  REQUIRE_THROWS_MATCHES(engine.unit_of(0, 0), hsgd::InvalidArgument, Catch::Matchers::Message("'level' (0) must be in [1, 2]"));
}

TEST_CASE("A moved-from Topology is empty and the Engine refuses it", "[hardening][moved]") {
  auto topology = hsgd::Topology::two_level(8, 2, 2, 4);
  const hsgd::Topology taken = std::move(topology);
  CHECK(taken.levels() == 2);
  CHECK(topology.levels() == 0);  // NOLINT(bugprone-use-after-move): the state under test
  CHECK(topology.workers() == 0);
  CHECK_THROWS_WITH(hsgd::Engine(topology, quadratics(8), hsgd::UniformSampler(2), options_with()),
                    Contains("'topology' has 0 workers and 0 levels: it is empty (was it moved from?)"));
}

TEST_CASE("Topology survives being moved onto itself", "[hardening][moved]") {
  auto topology = hsgd::Topology::two_level(std::vector<Index>{3, 5}, 2, 6);
  auto& same = topology;
  topology = std::move(same);
  CHECK(topology.workers() == 8);
  CHECK(topology.levels() == 2);
  CHECK(topology.unit_size(1, 1) == 5);
}

TEST_CASE("Group sizes whose sum overflows are refused before they overflow", "[hardening][overflow]") {
  CHECK_THROWS_WITH(hsgd::Topology::two_level(std::vector<Index>{max_index, 1}, 2, 4),
                    Contains("'group_sizes' add up to more than"));
  using Level = hsgd::Topology::Level;
  CHECK_THROWS_WITH(hsgd::Topology(4, {Level{2, {2, max_index}}, Level{4, {4}}}),
                    Contains("the units of level 1 hold more than 9223372036854775807 workers in all, not 'workers' (4)"));
  CHECK_THROWS_WITH(hsgd::Topology(4, {Level{2, {max_index, max_index}}, Level{4, {4}}}),
                    Contains("hold more than 9223372036854775807 workers in all"));
  CHECK_THROWS_WITH(hsgd::Topology(4, {Level{2, {2, 3}}, Level{4, {4}}}),
                    Contains("the units of level 1 hold 5 workers in all, not 'workers' (4)"));
}
