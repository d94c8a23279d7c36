// The aggregation schedule: which level averages after which step, checked as exact unit means.
//
// Technique: every shard has a gradient that is zero everywhere, so local steps never move a
// model and only aggregation does. Before each step worker j's model is set to the constant j + 1
// (an integer); after it, a model is either untouched or the weighted mean of its unit, and with
// integer values and integer weights that mean is exact (the sum is exact, the one division is
// correctly rounded), so the comparison is bitwise `==`. An aggregation that read a half-updated
// unit (no snapshot), averaged the wrong unit, the wrong level, or at the wrong step, fails.

#include <functional>
#include <numeric>
#include <span>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;
using Catch::Matchers::Message;

namespace {

/// Units as lists of workers, per level (index 0 = level 1).
using Units = std::vector<std::vector<std::vector<Index>>>;

/// Contiguous units from unit sizes (what ContiguousGrouping gives).
std::vector<std::vector<Index>> blocks(const std::vector<Index>& sizes) {
  std::vector<std::vector<Index>> units;
  Index next = 0;
  for (const Index size : sizes) {
    auto& unit = units.emplace_back();
    for (Index k = 0; k < size; ++k) unit.push_back(next++);
  }
  return units;
}

/// The schedule as the paper defines it, written independently of hsgd::Schedule: steps 1..W of a
/// warm-up aggregate at the top level (average_every_step) or not at all (no_averaging); step
/// t > W aggregates at the highest level l with (t - W) mod P_l == 0, or at none.
Index reference_level(const std::vector<Index>& periods, Index t, Index warmup = 0,
                      hsgd::WarmupMode mode = hsgd::WarmupMode::average_every_step) {
  const auto top = static_cast<Index>(periods.size());
  if (t <= warmup) return mode == hsgd::WarmupMode::average_every_step ? top : 0;
  Index due = 0;
  for (Index level = 1; level <= top; ++level) {
    if ((t - warmup) % periods[static_cast<std::size_t>(level - 1)] == 0) due = level;
  }
  return due;
}

/// A shard whose gradient is zero everywhere, written against the hsgd::Objective concept.
struct ZeroObjective {
  using Scalar = double;
  Index coordinates = 1;
  Index samples = 1;
  [[nodiscard]] Index dimension() const { return coordinates; }
  [[nodiscard]] Index sample_count() const { return samples; }
  [[nodiscard]] double value(hsgd::ConstVectorRef<double> /*x*/) const { return 0.0; }
  void gradient(hsgd::ConstVectorRef<double> /*x*/, hsgd::VectorRef<double> g) const { g.setZero(); }
  void batch_gradient(hsgd::ConstVectorRef<double> /*x*/, std::span<const Index> /*batch*/,
                      hsgd::VectorRef<double> g) const {
    g.setZero();
  }
};
static_assert(hsgd::Objective<ZeroObjective>);

/// Zero-curvature quadratics with non-zero sample centres: the gradient a .* (x - c) is zero only
/// because a = 0. Worker j holds samples[j] centres (1 when `samples` is empty).
std::vector<hsgd::Quadratic<double>> flat_quadratics(Index workers, Index dimension,
                                                     const std::vector<Index>& samples = {}) {
  std::vector<hsgd::Quadratic<double>> shards;
  for (Index j = 0; j < workers; ++j) {
    const Index count = samples.empty() ? 1 : samples[static_cast<std::size_t>(j)];
    Mat centres(dimension, count);
    for (Index k = 0; k < count; ++k) {
      for (Index i = 0; i < dimension; ++i) centres(i, k) = double(3 * j - 2 * k + i) + 0.25;
    }
    shards.push_back(hsgd::Quadratic<double>::from_samples(Vec::Zero(dimension), centres));
  }
  return shards;
}

/// Runs `steps` steps. Before each, worker j's model is the constant j + 1; after it, step()
/// must return level_of(t), and every model must be the exact weighted mean (weights w_j) of its
/// unit at that level, or untouched when the level is 0. Returns how often each level aggregated.
template <class Engine>
std::vector<Index> check_exact_schedule(Engine& engine, const Units& units, const std::vector<double>& weights,
                                        Index steps, const std::function<Index(Index)>& level_of) {
  const Index n = engine.workers();
  const Index d = engine.dimension();
  std::vector<Index> counts(units.size(), 0);
  for (Index t = 1; t <= steps; ++t) {
    for (Index j = 0; j < n; ++j) engine.set_model(j, Vec::Constant(d, double(j + 1)));
    const Index level = engine.step();
    INFO("step " << t);
    REQUIRE(level == level_of(t));
    REQUIRE(engine.step_count() == t);
    std::vector<double> expected(static_cast<std::size_t>(n));
    for (Index j = 0; j < n; ++j) expected[static_cast<std::size_t>(j)] = double(j + 1);
    if (level > 0) {
      ++counts[static_cast<std::size_t>(level - 1)];
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
      INFO("worker " << j << ", level " << level);
      REQUIRE((engine.model(j).array() == expected[static_cast<std::size_t>(j)]).all());
    }
  }
  return counts;
}

std::vector<Index> as_vector(std::span<const Index> values) { return {values.begin(), values.end()}; }

}  // namespace

TEST_CASE("Zero-curvature quadratics are accepted and have an exactly zero gradient", "[schedule][objective]") {
  // The schedule tests rest on this: a local step must leave a model exactly where it is.
  const auto shards = flat_quadratics(3, 2, {1, 4, 7});
  Vec x(2);
  x << 1.5, -7.25;
  Vec g(2);
  for (const auto& shard : shards) {
    g.setConstant(99.0);
    shard.gradient(x, g);
    CHECK((g.array() == 0.0).all());
    g.setConstant(99.0);
    const std::vector<Index> batch{0, 0};
    shard.batch_gradient(x, batch, g);
    CHECK((g.array() == 0.0).all());
  }
  CHECK(shards[2].sample_count() == 7);
  hsgd::Engine engine(hsgd::Topology::local_sgd(3, 5), flat_quadratics(3, 2, {1, 4, 7}), hsgd::UniformSampler(3),
                      options());
  for (Index j = 0; j < 3; ++j) engine.set_model(j, x * double(j + 1));
  for (Index t = 1; t <= 4; ++t) REQUIRE(engine.step() == 0);
  for (Index j = 0; j < 3; ++j) CHECK(engine.model(j) == x * double(j + 1));
}

TEST_CASE("Schedule::level_after: two levels, the highest level whose period divides t", "[schedule]") {
  const hsgd::Schedule schedule(hsgd::Topology::two_level(8, 2, 4, 12));
  CHECK(schedule.top_level() == 2);
  CHECK(schedule.warmup_steps() == 0);
  // Hand-derived: 1-indexed, so nothing after step 1; 4, 8 are local; 12, 24 global; 16 local.
  CHECK(schedule.level_after(1) == 0);
  CHECK(schedule.level_after(3) == 0);
  CHECK(schedule.level_after(4) == 1);
  CHECK(schedule.level_after(8) == 1);
  CHECK(schedule.level_after(12) == 2);
  CHECK(schedule.level_after(16) == 1);
  CHECK(schedule.level_after(24) == 2);
  for (Index t = 1; t <= 48; ++t) {
    const Index want = t % 12 == 0 ? 2 : (t % 4 == 0 ? 1 : 0);
    REQUIRE(schedule.level_after(t) == want);
  }
  // Local period 1: every step aggregates, locally except at multiples of G.
  const hsgd::Schedule every_step(hsgd::Topology::two_level(6, 3, 1, 4));
  for (Index t = 1; t <= 16; ++t) REQUIRE(every_step.level_after(t) == (t % 4 == 0 ? 2 : 1));
  // One level (local SGD): only multiples of the period.
  const hsgd::Schedule local(hsgd::Topology::local_sgd(5, 3));
  CHECK(local.top_level() == 1);
  for (Index t = 1; t <= 15; ++t) REQUIRE(local.level_after(t) == (t % 3 == 0 ? 1 : 0));
}

TEST_CASE("Schedule::level_after: three and four levels aggregate only the highest due level", "[schedule]") {
  const hsgd::Topology three(8, {{2, {2, 3, 1, 2}}, {4, {5, 3}}, {12, {8}}});
  const hsgd::Schedule schedule(three);
  CHECK(schedule.top_level() == 3);
  CHECK(schedule.level_after(2) == 1);
  CHECK(schedule.level_after(4) == 2);
  CHECK(schedule.level_after(6) == 1);
  CHECK(schedule.level_after(8) == 2);
  CHECK(schedule.level_after(12) == 3);
  CHECK(schedule.level_after(14) == 1);
  CHECK(schedule.level_after(13) == 0);
  for (Index t = 1; t <= 48; ++t) REQUIRE(schedule.level_after(t) == reference_level({2, 4, 12}, t));

  const hsgd::Topology four(8, {{1, {1, 1, 1, 1, 1, 1, 1, 1}}, {2, {2, 2, 2, 2}}, {4, {4, 4}}, {8, {8}}});
  const hsgd::Schedule deep(four);
  CHECK(deep.top_level() == 4);
  CHECK(deep.level_after(1) == 1);
  CHECK(deep.level_after(2) == 2);
  CHECK(deep.level_after(4) == 3);
  CHECK(deep.level_after(8) == 4);
  for (Index t = 1; t <= 32; ++t) REQUIRE(deep.level_after(t) == reference_level({1, 2, 4, 8}, t));
}

TEST_CASE("Schedule::level_after with a warm-up: every step or never, then periods from its end",
          "[schedule][warmup]") {
  const auto two = hsgd::Topology::two_level(8, 2, 2, 6);
  const hsgd::Schedule synchronous(two, 5, hsgd::WarmupMode::average_every_step);
  const hsgd::Schedule silent(two, 5, hsgd::WarmupMode::no_averaging);
  CHECK(synchronous.warmup_steps() == 5);
  CHECK(synchronous.warmup_mode() == hsgd::WarmupMode::average_every_step);
  CHECK(silent.warmup_mode() == hsgd::WarmupMode::no_averaging);
  for (Index t = 1; t <= 5; ++t) {
    CHECK(synchronous.level_after(t) == 2);  // top level after each warm-up step
    CHECK(silent.level_after(t) == 0);       // nothing during the warm-up
  }
  // Hand-derived: periods restart at the end of the warm-up, so step 7 (= 5 + 2) is local and step
  // 11 (= 5 + 6) global; step 6 and step 12 (multiples of 6 counted from 0) are not.
  for (const auto* schedule : {&synchronous, &silent}) {
    CHECK(schedule->level_after(6) == 0);
    CHECK(schedule->level_after(7) == 1);
    CHECK(schedule->level_after(9) == 1);
    CHECK(schedule->level_after(11) == 2);
    CHECK(schedule->level_after(12) == 0);
    CHECK(schedule->level_after(17) == 2);
  }
  // Many configurations against the reference.
  const std::vector<std::pair<hsgd::Topology, std::vector<Index>>> topologies{
      {hsgd::Topology::two_level(8, 2, 2, 6), {2, 6}},
      {hsgd::Topology::two_level(6, 3, 1, 4), {1, 4}},
      {hsgd::Topology::local_sgd(4, 3), {3}},
      {hsgd::Topology(8, {{2, {2, 3, 1, 2}}, {4, {5, 3}}, {12, {8}}}), {2, 4, 12}},
  };
  for (const auto& [topology, periods] : topologies) {
    for (const Index warmup : {0, 1, 3, 7}) {
      for (const auto mode : {hsgd::WarmupMode::average_every_step, hsgd::WarmupMode::no_averaging}) {
        const hsgd::Schedule schedule(topology, warmup, mode);
        for (Index t = 1; t <= warmup + 3 * periods.back(); ++t) {
          INFO("periods top " << periods.back() << ", warm-up " << warmup << ", step " << t);
          REQUIRE(schedule.level_after(t) == reference_level(periods, t, warmup, mode));
        }
      }
    }
  }
  REQUIRE_THROWS_MATCHES(hsgd::Schedule(two, -1), hsgd::InvalidArgument,
                         Message("'warmup_steps' (-1) must be non-negative"));
}

TEST_CASE("The schedule is 1-indexed and checks its step and mode", "[hardening][memory]") {
  const hsgd::Schedule schedule(hsgd::Topology::two_level(4, 2, 2, 4));
  CHECK_THROWS_WITH(schedule.level_after(0), Contains("'step' (0) must be at least 1"));
  CHECK(schedule.level_after(4) == 2);
  CHECK_THROWS_WITH(hsgd::Schedule(hsgd::Topology::local_sgd(4, 2), 0, static_cast<hsgd::WarmupMode>(9)),
                    Contains("'warmup_mode' (9) must be"));
}

TEST_CASE("Engine: two levels with unequal groups give exact group and global means at the right steps",
          "[schedule][engine]") {
  const std::vector<Index> sizes{3, 1, 4, 2};
  hsgd::Engine engine(hsgd::Topology::two_level(sizes, 2, 6), flat_quadratics(10, 3), hsgd::FullBatchSampler(),
                      options());
  const auto counts = check_exact_schedule(engine, {blocks(sizes), blocks({10})}, std::vector<double>(10, 1.0), 24,
                                           [](Index t) { return reference_level({2, 6}, t); });
  CHECK(as_vector(engine.aggregation_counts()) == counts);
  // Hand-derived: local at 2, 4, 8, 10, 14, 16, 20, 22; global at 6, 12, 18, 24.
  CHECK(as_vector(engine.aggregation_counts()) == std::vector<Index>{8, 4});
  CHECK(engine.regroupings() == 0);
}

TEST_CASE("Engine: data-size weights give the exact weighted unit means", "[schedule][engine][weights]") {
  const std::vector<Index> sizes{3, 1, 4, 2};
  const std::vector<Index> samples{1, 3, 5, 2, 4, 7, 1, 6, 2, 9};
  auto opts = options();
  opts.weighting = hsgd::Weighting::data_size;
  hsgd::Engine engine(hsgd::Topology::two_level(sizes, 2, 6), flat_quadratics(10, 2, samples),
                      hsgd::UniformSampler(2), opts);
  const std::vector<double> weights(samples.begin(), samples.end());
  const auto counts = check_exact_schedule(engine, {blocks(sizes), blocks({10})}, weights, 18,
                                           [](Index t) { return reference_level({2, 6}, t); });
  CHECK(counts == std::vector<Index>{6, 3});
  CHECK(as_vector(engine.aggregation_counts()) == counts);
  // The weights the engine reports are the same, normalised (integers: the sum is exact).
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  for (Index j = 0; j < 10; ++j) CHECK(engine.weights()(j) == weights[static_cast<std::size_t>(j)] / total);
  // And they differ from uniform, so the check above is not the uniform case in disguise.
  CHECK(engine.weights()(9) != engine.weights()(0));
}

TEST_CASE("Engine: three levels with unequal units give exact means per level", "[schedule][engine]") {
  const hsgd::Topology topology(8, {{2, {2, 3, 1, 2}}, {4, {5, 3}}, {12, {8}}});
  const Units units{blocks({2, 3, 1, 2}), blocks({5, 3}), blocks({8})};
  SECTION("uniform weights, zero-curvature quadratics") {
    hsgd::Engine engine(topology, flat_quadratics(8, 2), hsgd::FullBatchSampler(), options());
    const auto counts = check_exact_schedule(engine, units, std::vector<double>(8, 1.0), 36,
                                             [](Index t) { return reference_level({2, 4, 12}, t); });
    CHECK(as_vector(engine.aggregation_counts()) == counts);
    // Hand-derived over 36 steps: 18 even steps, 9 multiples of 4, 3 multiples of 12.
    CHECK(as_vector(engine.aggregation_counts()) == std::vector<Index>{18 - 9, 9 - 3, 3});
  }
  SECTION("data-size weights, a zero objective of our own, a random sampler") {
    std::vector<ZeroObjective> shards;
    const std::vector<Index> samples{4, 1, 2, 8, 3, 5, 7, 2};
    for (const Index m : samples) shards.push_back(ZeroObjective{3, m});
    auto opts = options(5);
    opts.weighting = hsgd::Weighting::data_size;
    hsgd::Engine engine(topology, shards, hsgd::UniformSampler(3), opts);
    check_exact_schedule(engine, units, std::vector<double>(samples.begin(), samples.end()), 24,
                         [](Index t) { return reference_level({2, 4, 12}, t); });
    CHECK(as_vector(engine.aggregation_counts()) == std::vector<Index>{6, 4, 2});
  }
}

TEST_CASE("Engine: a synchronous warm-up averages globally every step, then periods count from its end",
          "[schedule][engine][warmup]") {
  const std::vector<Index> sizes{3, 1, 4, 2};
  auto opts = options();
  opts.warmup_steps = 3;
  opts.warmup_mode = hsgd::WarmupMode::average_every_step;
  hsgd::Engine engine(hsgd::Topology::two_level(sizes, 2, 6), flat_quadratics(10, 2), hsgd::FullBatchSampler(), opts);
  const auto counts = check_exact_schedule(engine, {blocks(sizes), blocks({10})}, std::vector<double>(10, 1.0), 21,
                                           [](Index t) { return reference_level({2, 6}, t, 3); });
  CHECK(as_vector(engine.aggregation_counts()) == counts);
  // Hand-derived: global at 1, 2, 3 (warm-up), 9, 15, 21; local at 5, 7, 11, 13, 17, 19.
  CHECK(as_vector(engine.aggregation_counts()) == std::vector<Index>{6, 6});
}

TEST_CASE("Engine: a warm-up without averaging leaves models alone, then periods count from its end",
          "[schedule][engine][warmup]") {
  const hsgd::Topology topology(8, {{2, {2, 3, 1, 2}}, {4, {5, 3}}, {12, {8}}});
  auto opts = options();
  opts.warmup_steps = 5;
  opts.warmup_mode = hsgd::WarmupMode::no_averaging;
  hsgd::Engine engine(topology, flat_quadratics(8, 1), hsgd::FullBatchSampler(), opts);
  const auto counts = check_exact_schedule(engine, {blocks({2, 3, 1, 2}), blocks({5, 3}), blocks({8})},
                                           std::vector<double>(8, 1.0), 29, [](Index t) {
                                             return reference_level({2, 4, 12}, t, 5, hsgd::WarmupMode::no_averaging);
                                           });
  CHECK(as_vector(engine.aggregation_counts()) == counts);
  // Hand-derived: counted steps 1..24 after the warm-up: 6 at level 1, 4 at level 2, 2 at level 3.
  CHECK(as_vector(engine.aggregation_counts()) == std::vector<Index>{6, 4, 2});
}

TEST_CASE("Engine: step() returns the level it aggregated and run() counts the same", "[schedule][engine]") {
  const hsgd::Topology topology(8, {{2, {2, 3, 1, 2}}, {4, {5, 3}}, {12, {8}}});
  hsgd::Engine stepped(topology, flat_quadratics(8, 1), hsgd::FullBatchSampler(), options(1, 36));
  std::vector<Index> levels;
  for (Index t = 1; t <= 12; ++t) levels.push_back(stepped.step());
  // Hand-derived for periods 2 | 4 | 12.
  CHECK(levels == std::vector<Index>{0, 1, 0, 2, 0, 1, 0, 2, 0, 1, 0, 3});
  CHECK(as_vector(stepped.aggregation_counts()) == std::vector<Index>{3, 2, 1});
  // run() continues to options().steps = 36 in all.
  const auto summary = stepped.run();
  CHECK(stepped.step_count() == 36);
  CHECK(summary.steps == 36);
  CHECK(as_vector(stepped.aggregation_counts()) == std::vector<Index>{9, 6, 3});
  CHECK(summary.aggregations == std::vector<Index>{9, 6, 3});
}

TEST_CASE("Aggregation reads a snapshot: listing a unit's workers in another order gives the same bits",
          "[schedule][engine][snapshot]") {
  // Same partition, members listed in different orders. Values (j + 1)^2 with data-size weights
  // keep every mean exact, so both engines must match the exact mean, hence each other.
  const auto topology = hsgd::Topology::two_level(std::vector<Index>{3, 2, 3}, 2, 4);
  const std::vector<Index> samples{2, 5, 1, 3, 4, 6, 2, 7};
  auto opts = options();
  opts.weighting = hsgd::Weighting::data_size;
  auto make = [&](std::vector<std::vector<Index>> groups) {
    return hsgd::Engine(topology, flat_quadratics(8, 2, samples), hsgd::FullBatchSampler(), opts, hsgd::Sgd{},
                        hsgd::ConstantRate{}, hsgd::ExplicitGrouping(std::move(groups)));
  };
  auto forward = make({{0, 3, 6}, {1, 4}, {2, 5, 7}});
  auto backward = make({{6, 3, 0}, {4, 1}, {7, 5, 2}});
  const std::vector<std::vector<Index>> groups{{0, 3, 6}, {1, 4}, {2, 5, 7}};
  for (Index t = 1; t <= 8; ++t) {
    for (Index j = 0; j < 8; ++j) {
      forward.set_model(j, Vec::Constant(2, double((j + 1) * (j + 1))));
      backward.set_model(j, Vec::Constant(2, double((j + 1) * (j + 1))));
    }
    const Index level = forward.step();
    REQUIRE(backward.step() == level);
    std::vector<double> expected(8);
    for (Index j = 0; j < 8; ++j) expected[static_cast<std::size_t>(j)] = double((j + 1) * (j + 1));
    const auto unit_lists = level == 2 ? std::vector<std::vector<Index>>{{0, 1, 2, 3, 4, 5, 6, 7}} : groups;
    if (level > 0) {
      for (const auto& unit : unit_lists) {
        double weighted = 0;
        double total = 0;
        for (const Index j : unit) {
          weighted += double(samples[static_cast<std::size_t>(j)]) * double((j + 1) * (j + 1));
          total += double(samples[static_cast<std::size_t>(j)]);
        }
        for (const Index j : unit) expected[static_cast<std::size_t>(j)] = weighted / total;
      }
    }
    for (Index j = 0; j < 8; ++j) {
      INFO("step " << t << ", worker " << j);
      REQUIRE((forward.model(j).array() == expected[static_cast<std::size_t>(j)]).all());
      REQUIRE(backward.model(j) == forward.model(j));
    }
  }
}
