// The aggregation schedule: which level averages after which step, checked as exact unit means.

#include <numeric>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;

namespace {

/// Units as lists of workers, per level (index 0 = level 1).
using Units = std::vector<std::vector<std::vector<Index>>>;

/// Contiguous units from unit sizes.
std::vector<std::vector<Index>> contiguous(const std::vector<Index>& sizes) {
  std::vector<std::vector<Index>> units;
  Index next = 0;
  for (const Index size : sizes) {
    auto& unit = units.emplace_back();
    for (Index k = 0; k < size; ++k) unit.push_back(next++);
  }
  return units;
}

/// Before every step, worker j's model is set to the constant j + 1; after it, every model must
/// be the exact weighted mean of its unit at the level due after that step, or untouched.
template <class Engine>
void check_exact_schedule(Engine& engine, const std::vector<Index>& periods, const Units& units,
                          const std::vector<double>& weights, Index steps) {
  const Index n = engine.workers();
  const Index d = engine.dimension();
  for (Index t = 1; t <= steps; ++t) {
    for (Index j = 0; j < n; ++j) engine.set_model(j, Vec::Constant(d, double(j + 1)));
    const Index level = engine.step();
    REQUIRE(level == expected_level(periods, t));
    std::vector<double> expected(static_cast<std::size_t>(n));
    for (Index j = 0; j < n; ++j) expected[static_cast<std::size_t>(j)] = double(j + 1);
    if (level > 0) {
      for (const auto& unit : units[static_cast<std::size_t>(level - 1)]) {
        double weighted = 0;
        double total = 0;
        for (const Index j : unit) {
          weighted += weights[static_cast<std::size_t>(j)] * double(j + 1);
          total += weights[static_cast<std::size_t>(j)];
        }
        for (const Index j : unit) expected[static_cast<std::size_t>(j)] = weighted / total;
      }
    }
    for (Index j = 0; j < n; ++j) {
      INFO("step " << t << ", worker " << j << ", level " << level);
      REQUIRE((engine.model(j).array() == expected[static_cast<std::size_t>(j)]).all());
    }
  }
}

}  // namespace

TEST_CASE("Schedule: after step t the highest level whose period divides t aggregates", "[schedule]") {
  const hsgd::Schedule schedule(hsgd::Topology::two_level(8, 2, 4, 12));
  for (Index t = 1; t <= 48; ++t) {
    const Index want = t % 12 == 0 ? 2 : (t % 4 == 0 ? 1 : 0);
    REQUIRE(schedule.level_after(t) == want);
  }
  CHECK(schedule.level_after(1) == 0);  // 1-indexed: nothing after the first step (PyTorch averages there)
}

TEST_CASE("Schedule: three levels, only the highest due level", "[schedule]") {
  const hsgd::Topology topology(6, {{2, {2, 2, 2}}, {6, {4, 2}}, {12, {6}}});
  const hsgd::Schedule schedule(topology);
  CHECK(schedule.top_level() == 3);
  for (Index t = 1; t <= 36; ++t) REQUIRE(schedule.level_after(t) == expected_level({2, 6, 12}, t));
  CHECK(schedule.level_after(6) == 2);
  CHECK(schedule.level_after(12) == 3);
  CHECK(schedule.level_after(14) == 1);
}

TEST_CASE("Schedule: warm-up steps average every step or never, and periods count from its end", "[schedule]") {
  const auto topology = hsgd::Topology::two_level(8, 2, 2, 6);
  const hsgd::Schedule synchronous(topology, 5, hsgd::WarmupMode::average_every_step);
  const hsgd::Schedule silent(topology, 5, hsgd::WarmupMode::no_averaging);
  for (Index t = 1; t <= 5; ++t) {
    CHECK(synchronous.level_after(t) == 2);
    CHECK(silent.level_after(t) == 0);
  }
  for (Index t = 6; t <= 40; ++t) {
    REQUIRE(synchronous.level_after(t) == expected_level({2, 6}, t - 5));
    REQUIRE(silent.level_after(t) == expected_level({2, 6}, t - 5));
  }
}

TEST_CASE("Engine: two levels with unequal groups give the exact group and global means at the right steps",
          "[schedule]") {
  const std::vector<Index> sizes{3, 1, 4, 2};
  hsgd::Engine engine(hsgd::Topology::two_level(sizes, 2, 6), still_shards(10, 3), hsgd::FullBatchSampler(),
                      options());
  const Units units{contiguous(sizes), contiguous({10})};
  check_exact_schedule(engine, {2, 6}, units, std::vector<double>(10, 1.0), 24);
  CHECK(engine.aggregation_counts()[0] == 8);  // steps 2, 4, 8, 10, 14, 16, 20, 22
  CHECK(engine.aggregation_counts()[1] == 4);  // steps 6, 12, 18, 24
}

TEST_CASE("Engine: data-size weights give the exact weighted means", "[schedule][weights]") {
  const std::vector<Index> sizes{3, 1, 4, 2};
  std::vector<Index> samples;
  for (Index j = 0; j < 10; ++j) samples.push_back(1 + (j * 7) % 5);  // 1, 3, 5, 2, 4, ...
  auto opts = options();
  opts.weighting = hsgd::Weighting::data_size;
  hsgd::Engine engine(hsgd::Topology::two_level(sizes, 2, 6), still_shards(10, 2, samples), hsgd::FullBatchSampler(),
                      opts);
  std::vector<double> weights(samples.begin(), samples.end());
  check_exact_schedule(engine, {2, 6}, {contiguous(sizes), contiguous({10})}, weights, 18);
  // The global weights the engine reports are the same, normalised.
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  for (Index j = 0; j < 10; ++j) CHECK(engine.weights()(j) == weights[static_cast<std::size_t>(j)] / total);
}

TEST_CASE("Engine: three levels with unequal units give exact means per level", "[schedule]") {
  const hsgd::Topology topology(8, {{2, {2, 3, 1, 2}}, {4, {5, 3}}, {12, {8}}});
  hsgd::Engine engine(topology, still_shards(8, 2), hsgd::FullBatchSampler(), options());
  const Units units{contiguous({2, 3, 1, 2}), contiguous({5, 3}), contiguous({8})};
  check_exact_schedule(engine, {2, 4, 12}, units, std::vector<double>(8, 1.0), 36);
  CHECK(engine.aggregation_counts()[0] == 9);  // even steps that are not multiples of 4
  CHECK(engine.aggregation_counts()[1] == 6);  // multiples of 4 that are not multiples of 12
  CHECK(engine.aggregation_counts()[2] == 3);
}

TEST_CASE("Engine: a warm-up with synchronous averaging then the periodic schedule", "[schedule]") {
  auto opts = options();
  opts.warmup_steps = 3;
  hsgd::Engine engine(hsgd::Topology::two_level(6, 2, 2, 4), still_shards(6, 1), hsgd::FullBatchSampler(), opts);
  std::vector<Index> levels;
  for (Index t = 1; t <= 11; ++t) {
    for (Index j = 0; j < 6; ++j) engine.set_model(j, Vec::Constant(1, double(j + 1)));
    levels.push_back(engine.step());
    if (levels.back() == 2) CHECK((engine.models().array() == 3.5).all());
  }
  CHECK(levels == std::vector<Index>{2, 2, 2, 0, 1, 0, 2, 0, 1, 0, 2});
}
