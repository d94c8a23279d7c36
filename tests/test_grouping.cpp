// Grouping policies: who sits in which unit, and that averages follow the grouping in force.

#include <cmath>
#include <set>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Message;

namespace {

template <class Grouping>
auto make_engine(const hsgd::Topology& topology, Grouping grouping, std::uint64_t seed = 1) {
  return hsgd::Engine(topology, still_shards(topology.workers(), 1), hsgd::FullBatchSampler(), options(seed), hsgd::Sgd{},
                      hsgd::ConstantRate{}, std::move(grouping));
}

/// Level-1 units as sets, for comparisons that ignore order inside a unit.
template <class Engine>
std::vector<std::set<Index>> group_sets(const Engine& engine, Index level = 1) {
  std::vector<std::set<Index>> sets;
  for (const auto& unit : engine.units(level)) sets.emplace_back(unit.begin(), unit.end());
  return sets;
}

/// Checks that averaging after a level-1 step gives exact means over the engine's own groups.
template <class Engine>
void check_means_follow_groups(Engine& engine) {
  for (Index j = 0; j < engine.workers(); ++j) engine.set_model(j, Vec::Constant(1, double(j * j)));
  while (engine.step() != 1) {
    for (Index j = 0; j < engine.workers(); ++j) engine.set_model(j, Vec::Constant(1, double(j * j)));
  }
  for (const auto& unit : engine.units(1)) {
    double sum = 0;
    for (const Index j : unit) sum += double(j * j);
    for (const Index j : unit) REQUIRE(engine.model(j)(0) == sum / double(unit.size()));
  }
}

struct DuplicatingGrouping {
  void assign(const hsgd::Topology&, std::span<Index> slots, hsgd::Rng&) const {
    for (auto& slot : slots) slot = 0;
  }
  bool regroups_at_global_aggregation() const { return false; }
};

}  // namespace

TEST_CASE("ContiguousGrouping puts worker j in slot j", "[grouping]") {
  auto engine = make_engine(hsgd::Topology::two_level(std::vector<Index>{2, 3, 1}, 2, 4), hsgd::ContiguousGrouping{});
  const auto slots = engine.slot_to_worker();
  CHECK(std::vector<Index>(slots.begin(), slots.end()) == std::vector<Index>{0, 1, 2, 3, 4, 5});
  CHECK(engine.units(1) == std::vector<std::vector<Index>>{{0, 1}, {2, 3, 4}, {5}});
  CHECK(engine.unit_of(4, 1) == 1);
  CHECK(engine.unit_of(4, 2) == 0);
}

TEST_CASE("ExplicitGrouping places the given groups and averages over them", "[grouping]") {
  const std::vector<std::vector<Index>> groups{{0, 5, 7}, {1, 2}, {3, 4, 6}};
  auto engine = make_engine(hsgd::Topology::two_level(std::vector<Index>{3, 2, 3}, 2, 4), hsgd::ExplicitGrouping(groups));
  CHECK(engine.units(1) == groups);
  CHECK(engine.unit_of(7, 1) == 0);
  CHECK(engine.unit_of(2, 1) == 1);
  CHECK(engine.unit_of(6, 1) == 2);
  check_means_follow_groups(engine);
}

TEST_CASE("ExplicitGrouping must match the topology and be a permutation", "[grouping][validation]") {
  const auto topology = hsgd::Topology::two_level(std::vector<Index>{3, 2, 3}, 2, 4);
  REQUIRE_THROWS_MATCHES(make_engine(topology, hsgd::ExplicitGrouping({{0, 1, 2}, {3, 4, 5, 6, 7}})), hsgd::InvalidArgument,
                         Message("'groups' has 2 groups but level 1 of the topology has 3 units"));
  REQUIRE_THROWS_MATCHES(make_engine(topology, hsgd::ExplicitGrouping({{0, 1}, {2, 3, 4}, {5, 6, 7}})),
                         hsgd::InvalidArgument, Message("group 0 lists 2 workers but unit 0 of level 1 has size 3"));
  REQUIRE_THROWS_MATCHES(make_engine(topology, hsgd::ExplicitGrouping({{0, 1, 2}, {3, 4}, {5, 6, 0}})),
                         hsgd::InvalidArgument, Message("the grouping put worker 0 in two slots (0 and 7)"));
  REQUIRE_THROWS_MATCHES(make_engine(topology, hsgd::ExplicitGrouping({{0, 1, 2}, {3, 4}, {5, 6, 9}})),
                         hsgd::InvalidArgument, Message("the grouping put worker 9 in slot 7: no such worker"));
}

TEST_CASE("A grouping policy that does not return a permutation is rejected", "[grouping][validation]") {
  REQUIRE_THROWS_MATCHES(make_engine(hsgd::Topology::two_level(4, 2, 1, 2), DuplicatingGrouping{}), hsgd::InvalidArgument,
                         Message("the grouping put worker 0 in two slots (0 and 1)"));
}

TEST_CASE("RandomGrouping keeps unit sizes, depends on the seed only, and averages over its groups", "[grouping]") {
  const auto topology = hsgd::Topology::two_level(std::vector<Index>{4, 1, 3, 4}, 2, 8);
  auto first = make_engine(topology, hsgd::RandomGrouping{}, 7);
  auto again = make_engine(topology, hsgd::RandomGrouping{}, 7);
  auto other = make_engine(topology, hsgd::RandomGrouping{}, 8);
  const auto units = first.units(1);
  REQUIRE(units.size() == 4);
  for (std::size_t u = 0; u < units.size(); ++u) CHECK(static_cast<Index>(units[u].size()) == topology.unit_size(1, static_cast<Index>(u)));
  std::set<Index> everyone;
  for (const auto& unit : units) everyone.insert(unit.begin(), unit.end());
  CHECK(everyone.size() == 12);
  CHECK(again.units(1) == units);
  CHECK(other.units(1) != units);  // two of 12! / (4! 1! 3! 4!) groupings coincide with negligible probability
  CHECK(units != std::vector<std::vector<Index>>{{0, 1, 2, 3}, {4}, {5, 6, 7}, {8, 9, 10, 11}});  // not contiguous
  check_means_follow_groups(first);
}

TEST_CASE("RandomGrouping is drawn once by default and re-drawn at each global aggregation on request",
          "[grouping]") {
  const auto topology = hsgd::Topology::two_level(12, 3, 2, 4);
  auto fixed = make_engine(topology, hsgd::RandomGrouping{}, 3);
  auto redrawn = make_engine(topology, hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation}, 3);
  const auto initial = redrawn.units(1);
  CHECK(fixed.units(1) == initial);  // same stream, same first draw
  int changes = 0;
  auto previous = initial;
  for (Index t = 1; t <= 40; ++t) {
    fixed.step();
    const Index level = redrawn.step();
    if (level == 2) {
      changes += redrawn.units(1) != previous ? 1 : 0;
      previous = redrawn.units(1);
    } else {
      REQUIRE(redrawn.units(1) == previous);  // groups change only at global aggregations
    }
  }
  CHECK(fixed.units(1) == initial);
  CHECK(fixed.regroupings() == 0);
  CHECK(redrawn.regroupings() == 10);
  CHECK(changes >= 9);  // a repeat of the same 3 groups of 4 has probability 1/5775 per draw
}

TEST_CASE("RandomGrouping puts each worker in each group with probability n_i / n", "[grouping][statistics]") {
  // Sizes {1, 2, 3, 6}: worker w lands in group i with probability p_i = n_i / 12. Over D draws the
  // count is Binomial(D, p_i), standard deviation sqrt(D p_i (1 - p_i)); we allow 5 of them, so a
  // correct implementation fails one of the 48 checks with probability below 1e-4 (and the seed
  // is fixed, so the outcome is deterministic).
  const std::vector<Index> sizes{1, 2, 3, 6};
  const auto topology = hsgd::Topology::two_level(sizes, 1, 2);
  const hsgd::RandomGrouping policy;
  hsgd::Rng rng = hsgd::make_stream(11, hsgd::StreamKind::grouping, 0);
  constexpr int draws = 6000;
  std::vector<std::vector<int>> counts(12, std::vector<int>(4, 0));
  std::vector<Index> slots(12);
  for (int draw = 0; draw < draws; ++draw) {
    policy.assign(topology, slots, rng);
    for (Index slot = 0; slot < 12; ++slot) ++counts[static_cast<std::size_t>(slots[static_cast<std::size_t>(slot)])][static_cast<std::size_t>(topology.unit_of_slot(1, slot))];
  }
  for (std::size_t worker = 0; worker < 12; ++worker) {
    for (std::size_t group = 0; group < 4; ++group) {
      const double p = double(sizes[group]) / 12.0;
      const double sigma = std::sqrt(draws * p * (1 - p));
      INFO("worker " << worker << ", group " << group);
      CHECK(std::abs(counts[worker][group] - draws * p) < 5 * sigma);
    }
  }
}
