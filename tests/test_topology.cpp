// Topology validation and accessors.

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;
using Catch::Matchers::Message;
using hsgd::Topology;

TEST_CASE("Topology: the global period must be a multiple of the local period", "[topology][validation]") {
  REQUIRE_THROWS_MATCHES(Topology::two_level(8, 2, 4, 30), hsgd::InvalidArgument,
                         Message("'global_period' (30) must be a multiple of 'local_period' (4)"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(8, 2, 0, 8), hsgd::InvalidArgument,
                         Message("'local_period' (0) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(8, 2, 4, -8), hsgd::InvalidArgument,
                         Message("'global_period' (-8) must be positive"));
}

TEST_CASE("Topology: workers and groups must be positive and fit", "[topology][validation]") {
  REQUIRE_THROWS_MATCHES(Topology::two_level(0, 1, 1, 2), hsgd::InvalidArgument, Message("'workers' (0) must be positive"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(4, 5, 1, 2), hsgd::InvalidArgument,
                         Message("'groups' (5) must be in [1, 'workers' (4)]"));
  REQUIRE_THROWS_MATCHES(Topology::two_level(std::vector<Index>{3, 0, 2}, 1, 2), hsgd::InvalidArgument,
                         Message("group 1 has size 0: every group needs at least one worker"));
  REQUIRE_THROWS_MATCHES(Topology::local_sgd(4, 0), hsgd::InvalidArgument, Message("'period' (0) must be positive"));
}

TEST_CASE("Topology: periods must increase and divide each other", "[topology][validation]") {
  REQUIRE_THROWS_MATCHES(Topology(4, {{4, {2, 2}}, {6, {4}}}), hsgd::InvalidArgument,
                         Message("the period of level 2 (6) must be a multiple of, and greater than, the period of "
                                 "level 1 (4)"));
  REQUIRE_THROWS_MATCHES(Topology(4, {{4, {2, 2}}, {4, {4}}}), hsgd::InvalidArgument,
                         Message("the period of level 2 (4) must be a multiple of, and greater than, the period of "
                                 "level 1 (4)"));
  REQUIRE_THROWS_MATCHES(Topology(4, {{0, {2, 2}}, {4, {4}}}), hsgd::InvalidArgument,
                         Message("the period of level 1 (0) must be positive"));
}

TEST_CASE("Topology: units must be non-empty, cover the workers, nest, and end in one global unit",
          "[topology][validation]") {
  REQUIRE_THROWS_MATCHES(Topology(4, {{2, {2, 0, 2}}, {4, {4}}}), hsgd::InvalidArgument,
                         Message("unit 1 of level 1 is empty: every unit needs at least one worker"));
  REQUIRE_THROWS_MATCHES(Topology(5, {{2, {2, 2}}, {4, {5}}}), hsgd::InvalidArgument,
                         Message("the units of level 1 hold 4 workers in all, not 'workers' (5)"));
  // Level 1 = {0,1,2} {3,4,5}; level 2 = {0,1} {2,...,5}: the first group straddles slot 2.
  REQUIRE_THROWS_MATCHES(Topology(6, {{2, {3, 3}}, {4, {2, 4}}, {8, {6}}}), hsgd::InvalidArgument,
                         Message("a unit of level 1 straddles slot 2, where level 2 starts a new unit: every unit "
                                 "must lie inside one unit of the level above"));
  REQUIRE_THROWS_MATCHES(Topology(4, {{2, {2, 2}}}), hsgd::InvalidArgument,
                         Message("the top level (level 1) must be one unit holding all workers, it has 2 units"));
  REQUIRE_THROWS_MATCHES(Topology(4, {}), hsgd::InvalidArgument, Message("a topology needs at least one level"));
}

TEST_CASE("Topology: two_level splits workers into near-equal contiguous groups", "[topology]") {
  const auto topology = Topology::two_level(10, 4, 2, 8);
  REQUIRE(topology.levels() == 2);
  CHECK(topology.units(1) == 4);
  CHECK(topology.unit_size(1, 0) == 3);
  CHECK(topology.unit_size(1, 1) == 3);
  CHECK(topology.unit_size(1, 2) == 2);
  CHECK(topology.unit_size(1, 3) == 2);
  CHECK(topology.units(2) == 1);
  CHECK(topology.unit_size(2, 0) == 10);
  CHECK(topology.periods() == std::vector<Index>{2, 8});
  const auto offsets = topology.unit_offsets(1);
  CHECK(std::vector<Index>(offsets.begin(), offsets.end()) == std::vector<Index>{0, 3, 6, 8, 10});
  CHECK(topology.unit_of_slot(1, 0) == 0);
  CHECK(topology.unit_of_slot(1, 5) == 1);
  CHECK(topology.unit_of_slot(1, 6) == 2);
  CHECK(topology.unit_of_slot(1, 9) == 3);
  REQUIRE_THROWS_MATCHES(topology.period(3), hsgd::InvalidArgument, Message("'level' (3) must be in [1, 2]"));
}

TEST_CASE("Topology: I == G is local SGD with period G", "[topology]") {
  const auto topology = Topology::two_level(6, 3, 8, 8);
  CHECK(topology.levels() == 1);
  CHECK(topology.period(1) == 8);
  CHECK(topology.units(1) == 1);
}

TEST_CASE("Topology: PyTorch-style period to group size pairs", "[topology]") {
  const auto from_pairs = Topology::from_period_group_sizes(64, {{4, 8}, {32, 64}});
  const auto two_level = Topology::two_level(64, 8, 4, 32);
  REQUIRE(from_pairs.levels() == two_level.levels());
  for (Index level = 1; level <= 2; ++level) {
    CHECK(from_pairs.period(level) == two_level.period(level));
    const auto a = from_pairs.unit_offsets(level);
    const auto b = two_level.unit_offsets(level);
    CHECK(std::vector<Index>(a.begin(), a.end()) == std::vector<Index>(b.begin(), b.end()));
  }
  const auto three = Topology::from_period_group_sizes(16, {{2, 2}, {4, 8}, {16, 16}});
  CHECK(three.units(1) == 8);
  CHECK(three.units(2) == 2);
  REQUIRE_THROWS_MATCHES(Topology::from_period_group_sizes(10, {{2, 4}, {8, 10}}), hsgd::InvalidArgument,
                         Message("group size 4 of level 1 must be positive and divide 'workers' (10)"));
  // Equal groups at each level but not nested: 4-blocks under 6-blocks.
  REQUIRE_THROWS_WITH(Topology::from_period_group_sizes(12, {{2, 4}, {4, 6}, {8, 12}}), Contains("straddles"));
  // The last group size must be all workers: the top level is global.
  REQUIRE_THROWS_WITH(Topology::from_period_group_sizes(8, {{2, 2}, {4, 4}}), Contains("top level"));
}
