// The Engine's state: moved-from and self-moved engines, the state a failed step leaves (a NaN, a
// throwing objective, observer or grouping, a refused learning rate), the starting model an
// objective provides, and plug-ins given by role in any order.

#include <span>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "data_support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

/// (1/2)||x||^2 that throws from its `throw_at`-th minibatch gradient on, counted over all
/// workers through a shared counter (the engine runs on one thread here).
struct ThrowingObjective {
  using Scalar = double;
  Index* calls = nullptr;
  Index throw_at = 0;

  [[nodiscard]] Index dimension() const { return 2; }
  [[nodiscard]] Index sample_count() const { return 1; }
  [[nodiscard]] double value(hsgd::ConstVectorRef<double> x) const { return 0.5 * x.squaredNorm(); }
  void gradient(hsgd::ConstVectorRef<double> x, hsgd::VectorRef<double> g) const { g = x; }
  void batch_gradient(hsgd::ConstVectorRef<double> x, std::span<const Index>, hsgd::VectorRef<double> g) const {
    if (++*calls >= throw_at) throw std::runtime_error("the objective's data went away");
    g = x;
  }
};

/// Random grouping that throws at its `throw_at`-th call (the first is the engine's set-up).
struct FailingRegrouping {
  int* calls = nullptr;
  int throw_at = 2;
  void assign(const hsgd::Topology& topology, std::span<Index> slot_to_worker, hsgd::Rng& rng) const {
    if (++*calls >= throw_at) throw std::runtime_error("the grouping service is down");
    hsgd::RandomGrouping{}.assign(topology, slot_to_worker, rng);
  }
  [[nodiscard]] bool regroups_at_global_aggregation() const { return true; }
};

/// Returns NaN at one step and the base rate otherwise.
struct NanRateAt {
  Index bad_step = 3;
  [[nodiscard]] double rate(double base, Index step) const { return step == bad_step ? nan_value : base; }
  void validate() const {}
};

}  // namespace

// ---- moved-from and self-moved engines ---------------------------------------------------------

TEST_CASE("A moved-from Engine throws InvalidState on use", "[hardening][moved]") {
  auto engine = quadratic_engine();
  auto taken = std::move(engine);
  CHECK(taken.step() >= 0);
  const Vec x = Vec::Zero(3);
  // NOLINTBEGIN(bugprone-use-after-move): the state under test
  CHECK_THROWS_AS(engine.step(), hsgd::InvalidState);
  CHECK_THROWS_WITH(engine.run(), Contains("this engine was moved from"));
  CHECK_THROWS_AS(engine.dimension(), hsgd::InvalidState);
  CHECK_THROWS_AS(engine.workers(), hsgd::InvalidState);
  CHECK_THROWS_AS(engine.loss(x), hsgd::InvalidState);
  CHECK_THROWS_AS(engine.gradient(x), hsgd::InvalidState);
  CHECK_THROWS_AS(engine.global_average(), hsgd::InvalidState);
  CHECK_THROWS_AS(engine.model(0), hsgd::InvalidState);
  CHECK_THROWS_AS(engine.set_model(x), hsgd::InvalidState);
  // NOLINTEND(bugprone-use-after-move)
}

TEST_CASE("An Engine moved onto itself, or onto another, goes on with the same bits", "[hardening][moved]") {
  auto reference = quadratic_engine(40);
  auto engine = quadratic_engine(40);
  for (int t = 0; t < 7; ++t) {
    reference.step();
    engine.step();
  }
  auto& same = engine;
  engine = std::move(same);
  auto other = quadratic_engine(3);
  other = std::move(engine);
  reference.run();
  other.run();
  CHECK(other.step_count() == 40);
  CHECK(other.models() == reference.models());
  CHECK(std::vector<Index>(other.slot_to_worker().begin(), other.slot_to_worker().end()) ==
        std::vector<Index>(reference.slot_to_worker().begin(), reference.slot_to_worker().end()));
}

// ---- the state after a failure ----------------------------------------------------------------

TEST_CASE("After a NaN the engine keeps its models and refuses to step, saying where it failed", "[hardening][failure]") {
  // With gamma = 1e10, worker 3's model of 1e300 steps to about -1e310: inf. The others stay finite.
  auto options = options_with(50);
  options.learning_rate = 1e10;
  hsgd::Engine engine(hsgd::Topology::two_level(8, 2, 2, 4), quadratics(8), hsgd::UniformSampler(2), options);
  engine.set_model(3, Vec::Constant(3, 1e300));
  CHECK(engine.failure().empty());
  CHECK_THROWS_AS(engine.step(), hsgd::NumericalError);
  CHECK(engine.step_count() == 1);
  CHECK_THAT(engine.failure(), Contains("failed at step 1: non-finite model at step 1, worker 3, level 0"));
  CHECK_THROWS_WITH(engine.step(), Contains("failed at step 1: non-finite model") && Contains("cannot step again"));
  CHECK_THROWS_AS(engine.run(), hsgd::InvalidState);
  CHECK(engine.step_count() == 1);
  CHECK_FALSE(engine.model(3).allFinite());  // kept for inspection
  CHECK(engine.model(2).allFinite());
}

TEST_CASE("A throwing objective leaves the engine failed at that step", "[hardening][failure]") {
  Index calls = 0;
  std::vector<ThrowingObjective> shards(4, ThrowingObjective{&calls, 4 * 5 + 2});  // worker 1 at step 6
  hsgd::Engine engine(hsgd::Topology::local_sgd(4, 2), std::move(shards), hsgd::UniformSampler(1), options_with(10));
  CHECK_THROWS_WITH(engine.run(), Contains("the objective's data went away"));
  CHECK(engine.step_count() == 6);
  CHECK_THROWS_WITH(engine.step(), Contains("failed at step 6: the objective's data went away"));
}

TEST_CASE("A throwing observer leaves the engine failed after its step", "[hardening][failure]") {
  auto engine = quadratic_engine(30);
  auto fussy = hsgd::every(5, [](const auto& run) {
    if (run.step_count() == 10) throw std::runtime_error("the disk is full");
  });
  CHECK_THROWS_WITH(engine.run(fussy), Contains("the disk is full"));
  CHECK(engine.step_count() == 10);
  CHECK_THROWS_WITH(engine.run(), Contains("failed at step 10: the disk is full"));
}

TEST_CASE("A failed re-draw leaves the grouping in force untouched and the engine failed", "[hardening][failure]") {
  int calls = 0;
  hsgd::Engine engine(hsgd::Topology::two_level(8, 2, 2, 4), quadratics(8), hsgd::UniformSampler(2), options_with(),
                      FailingRegrouping{&calls, 3});
  for (int t = 0; t < 4; ++t) engine.step();  // the global round at step 4 re-draws (call 2)
  const std::vector<Index> before(engine.slot_to_worker().begin(), engine.slot_to_worker().end());
  std::vector<Index> units_before;
  for (Index j = 0; j < 8; ++j) units_before.push_back(engine.unit_of(j, 1));
  for (int t = 0; t < 3; ++t) engine.step();
  CHECK_THROWS_WITH(engine.step(), Contains("the grouping service is down"));
  CHECK(std::vector<Index>(engine.slot_to_worker().begin(), engine.slot_to_worker().end()) == before);
  for (Index j = 0; j < 8; ++j) CHECK(engine.unit_of(j, 1) == units_before[static_cast<std::size_t>(j)]);
  CHECK_THROWS_WITH(engine.step(), Contains("failed at step 8: the grouping service is down"));
}

TEST_CASE("A refused learning rate leaves the engine exactly as before the step", "[hardening][failure]") {
  hsgd::Engine engine(hsgd::Topology::two_level(8, 2, 2, 4), quadratics(8), hsgd::UniformSampler(2), options_with(),
                      NanRateAt{3});
  engine.step();
  engine.step();
  const Mat models = engine.models();
  CHECK_THROWS_WITH(engine.step(), Contains("the learning rate at step 3 (nan"));
  CHECK(engine.step_count() == 2);
  CHECK(engine.models() == models);
  CHECK(engine.failure().empty());
}

// ---- objectives with their own starting point ----------------------------------------------------

TEST_CASE("The engine starts from the objective's own initial model when it has one", "[hardening][initial]") {
  hsgd::GaussianMixtureOptions mixture = mixture_options(2, 3, 64);
  mixture.seed = 2;
  const auto data = hsgd::make_gaussian_mixture(mixture);
  const auto partition = hsgd::partition_iid(data, hsgd::IidPartitionOptions{.workers = 4});
  auto shards = hsgd::make_tanh_network_shards(data, partition, 4);
  auto options = options_with(4);
  hsgd::Rng rng = hsgd::make_stream(options.seed, hsgd::StreamKind::initial_model, 0);
  const auto expected = shards.front().initial_model(rng);
  hsgd::Engine engine(hsgd::Topology::local_sgd(4, 2), std::move(shards), hsgd::UniformSampler(4), options);
  for (Index j = 0; j < 4; ++j) CHECK(engine.model(j) == expected);
  CHECK(expected.squaredNorm() > 0);
  CHECK(engine.gradient(engine.global_average()).squaredNorm() > 0);  // not the saddle at 0

  hsgd::Engine plain(hsgd::Topology::local_sgd(4, 2), quadratics(4), hsgd::UniformSampler(2), options);
  CHECK(plain.models().isZero(0));  // objectives without the hook still start at 0
}

// ---- plug-ins by role -------------------------------------------------------------------------

TEST_CASE("Plug-ins can be given alone and in any order", "[hardening][plugins]") {
  const auto topology = hsgd::Topology::two_level(8, 2, 2, 4);
  const hsgd::RandomGrouping grouping{hsgd::RandomGrouping::Redraw::every_global_aggregation};
  hsgd::Engine only_grouping(topology, quadratics(8), hsgd::UniformSampler(2), options_with(), grouping);
  static_assert(std::is_same_v<decltype(only_grouping),
                               hsgd::Engine<hsgd::Quadratic<double>, hsgd::UniformSampler, hsgd::Sgd, hsgd::ConstantRate,
                                            hsgd::RandomGrouping>>);
  hsgd::Engine spelled(topology, quadratics(8), hsgd::UniformSampler(2), options_with(), hsgd::Sgd{},
                       hsgd::ConstantRate{}, grouping);
  only_grouping.run();
  spelled.run();
  CHECK(only_grouping.models() == spelled.models());

  const hsgd::Momentum momentum{.momentum = 0.5};
  hsgd::Engine shuffled(topology, quadratics(8), hsgd::UniformSampler(2), options_with(), grouping, hsgd::StepDecay{},
                        momentum);
  static_assert(std::is_same_v<decltype(shuffled), hsgd::Engine<hsgd::Quadratic<double>, hsgd::UniformSampler,
                                                                hsgd::Momentum, hsgd::StepDecay, hsgd::RandomGrouping>>);
  hsgd::Engine ordered(topology, quadratics(8), hsgd::UniformSampler(2), options_with(), momentum, hsgd::StepDecay{},
                       grouping);
  shuffled.run();
  ordered.run();
  CHECK(shuffled.models() == ordered.models());
  CHECK_FALSE(shuffled.models() == spelled.models());
}
