// Bad input: every check names the parameter, its value and the constraint. Non-finite models
// stop the run with the step, worker and level.

#include <limits>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;
using Catch::Matchers::Message;

namespace {

constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
constexpr double infinity = std::numeric_limits<double>::infinity();

auto quadratic_engine(hsgd::Options opts, Index workers = 4) {
  return hsgd::Engine(hsgd::Topology::two_level(workers, 2, 1, 2), noisy_quadratics(workers, 2, 1), hsgd::UniformSampler(2),
                      opts);
}

/// Gradient of (1/2)||x||^2, except worker `bad_worker` returns NaN from its `bad_step`-th call on.
struct FailingObjective {
  using Scalar = double;
  Index worker;
  Index bad_worker;
  Index bad_step;
  mutable Index calls = 0;
  Index dimension() const { return 2; }
  Index sample_count() const { return 1; }
  double value(hsgd::ConstVectorRef<double> x) const { return 0.5 * x.squaredNorm(); }
  void gradient(hsgd::ConstVectorRef<double> x, hsgd::VectorRef<double> g) const { g = x; }
  void batch_gradient(hsgd::ConstVectorRef<double> x, std::span<const Index>, hsgd::VectorRef<double> g) const {
    ++calls;
    g = x;
    if (worker == bad_worker && calls >= bad_step) g(1) = not_a_number;
  }
};

/// A rate that becomes zero from step 4 on.
struct DyingRate {
  double rate(double base, Index step) const { return step < 4 ? base : 0.0; }
  void validate() const {}
};

}  // namespace

TEST_CASE("Options: learning rate, steps, warm-up and threads are checked", "[validation]") {
  const auto with = [](auto change) {
    hsgd::Options opts;
    change(opts);
    return opts;
  };
  REQUIRE_THROWS_MATCHES(with([](auto& o) { o.learning_rate = 0; }).validate(), hsgd::InvalidArgument,
                         Message("'learning_rate' (0) must be finite and positive"));
  REQUIRE_THROWS_MATCHES(with([](auto& o) { o.learning_rate = -0.5; }).validate(), hsgd::InvalidArgument,
                         Message("'learning_rate' (-0.5) must be finite and positive"));
  REQUIRE_THROWS_MATCHES(with([](auto& o) { o.learning_rate = not_a_number; }).validate(), hsgd::InvalidArgument,
                         Message("'learning_rate' (nan) must be finite and positive"));
  REQUIRE_THROWS_MATCHES(with([](auto& o) { o.learning_rate = infinity; }).validate(), hsgd::InvalidArgument,
                         Message("'learning_rate' (inf) must be finite and positive"));
  REQUIRE_THROWS_MATCHES(with([](auto& o) { o.steps = -1; }).validate(), hsgd::InvalidArgument,
                         Message("'steps' (-1) must be non-negative"));
  REQUIRE_THROWS_MATCHES(with([](auto& o) { o.warmup_steps = -3; }).validate(), hsgd::InvalidArgument,
                         Message("'warmup_steps' (-3) must be non-negative"));
  REQUIRE_THROWS_MATCHES(with([](auto& o) { o.threads = -2; }).validate(), hsgd::InvalidArgument,
                         Message("'threads' (-2) must be non-negative (0: one per hardware thread)"));
  CHECK_NOTHROW(hsgd::Options{}.validate());
  // The engine validates its options.
  REQUIRE_THROWS_MATCHES(quadratic_engine(with([](auto& o) { o.learning_rate = not_a_number; })), hsgd::InvalidArgument,
                         Message("'learning_rate' (nan) must be finite and positive"));
}

TEST_CASE("Engine: one shard per worker, all of one dimension; models of that dimension", "[validation]") {
  REQUIRE_THROWS_MATCHES(hsgd::Engine(hsgd::Topology::two_level(4, 2, 1, 2), noisy_quadratics(3, 2, 1),
                                      hsgd::UniformSampler(2), options()),
                         hsgd::InvalidArgument,
                         Message("'shards' holds 3 objectives but the topology has 4 workers: give one shard per worker"));
  auto shards = noisy_quadratics(4, 2, 1);
  shards[2] = noisy_quadratics(1, 3, 1).front();
  REQUIRE_THROWS_MATCHES(hsgd::Engine(hsgd::Topology::two_level(4, 2, 1, 2), shards, hsgd::UniformSampler(2), options()),
                         hsgd::InvalidArgument, Message("shard 2 has dimension 3 but shard 0 has dimension 2"));
  auto engine = quadratic_engine(options());
  REQUIRE_THROWS_MATCHES(engine.set_model(Vec::Zero(5)), hsgd::InvalidArgument,
                         Message("'x0' has 5 coordinates but the model has 2"));
  REQUIRE_THROWS_MATCHES(engine.set_model(1, Vec::Zero(1)), hsgd::InvalidArgument,
                         Message("'x' has 1 coordinates but the model has 2"));
  REQUIRE_THROWS_MATCHES(engine.set_model(4, Vec::Zero(2)), hsgd::InvalidArgument, Message("'worker' (4) must be in [0, 4)"));
  REQUIRE_THROWS_MATCHES(engine.server(1, 2), hsgd::InvalidArgument, Message("'unit' (2) must be in [0, 2)"));
}

TEST_CASE("Policies check their parameters", "[validation]") {
  REQUIRE_THROWS_MATCHES(hsgd::Momentum{.momentum = 1.0}.validate(), hsgd::InvalidArgument,
                         Message("'momentum' (1) must be in [0, 1)"));
  REQUIRE_THROWS_MATCHES(hsgd::Momentum{.momentum = -0.1}.validate(), hsgd::InvalidArgument,
                         Message("'momentum' (-0.1) must be in [0, 1)"));
  REQUIRE_THROWS_MATCHES((hsgd::StepDecay{.factor = 1.5}.validate()), hsgd::InvalidArgument,
                         Message("'factor' (1.5) must be in (0, 1]"));
  REQUIRE_THROWS_MATCHES((hsgd::StepDecay{.factor = 0.5, .every = 0}.validate()), hsgd::InvalidArgument,
                         Message("'every' (0) must be positive"));
  REQUIRE_THROWS_MATCHES(hsgd::InverseSqrtDecay{.time_scale = 0}.validate(), hsgd::InvalidArgument,
                         Message("'time_scale' (0) must be finite and positive"));
  // The engine validates the policies it is given.
  REQUIRE_THROWS_MATCHES(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), noisy_quadratics(2, 2, 1), hsgd::UniformSampler(1),
                                      options(), hsgd::Momentum{.momentum = 2.0}),
                         hsgd::InvalidArgument, Message("'momentum' (2) must be in [0, 1)"));
  REQUIRE_THROWS_MATCHES(hsgd::every(0, [](const auto&) {}), hsgd::InvalidArgument, Message("'period' (0) must be positive"));
}

TEST_CASE("Samplers check the batch size against the shard", "[validation]") {
  REQUIRE_THROWS_MATCHES(hsgd::UniformSampler(0), hsgd::InvalidArgument, Message("'batch_size' (0) must be positive"));
  REQUIRE_THROWS_MATCHES(hsgd::ShuffledSampler(-4), hsgd::InvalidArgument, Message("'batch_size' (-4) must be positive"));
  // noisy_quadratics hold 32 samples per worker.
  REQUIRE_THROWS_MATCHES(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), noisy_quadratics(2, 2, 1), hsgd::ShuffledSampler(33),
                                      options()),
                         hsgd::InvalidArgument,
                         Message("'batch_size' (33) must not exceed the shard's sample count (32) when sampling without "
                                 "replacement"));
  // With replacement a batch larger than the shard is fine.
  CHECK_NOTHROW(hsgd::Engine(hsgd::Topology::local_sgd(2, 1), noisy_quadratics(2, 2, 1), hsgd::UniformSampler(33), options()));
}

TEST_CASE("A learning rate that stops being finite and positive stops the run, naming the step", "[validation]") {
  hsgd::Engine engine(hsgd::Topology::local_sgd(2, 1), noisy_quadratics(2, 2, 1), hsgd::UniformSampler(1), options(1, 10),
                      hsgd::Sgd{}, DyingRate{});
  REQUIRE_THROWS_MATCHES(engine.run(), hsgd::InvalidArgument,
                         Message("the learning rate at step 4 (0) must be finite and positive"));
  CHECK(engine.step_count() == 4);
}

TEST_CASE("Objectives and data check their inputs", "[validation]") {
  REQUIRE_THROWS_MATCHES(hsgd::Quadratic<double>(Vec::Ones(3), Vec::Zero(2)), hsgd::InvalidArgument,
                         Message("'centre' has 2 coordinates but 'curvature' has 3"));
  REQUIRE_THROWS_MATCHES(hsgd::Quadratic<double>::from_samples(Vec::Ones(2), Mat::Zero(2, 0)), hsgd::InvalidArgument,
                         Message("'sample_centres' must hold at least one sample"));
  REQUIRE_THROWS_MATCHES(hsgd::NonconvexLogistic<double>(Mat::Ones(2, 3), Vec::Ones(2)), hsgd::InvalidArgument,
                         Message("'labels' has 2 entries but 'features' has 3 samples"));
  REQUIRE_THROWS_MATCHES(hsgd::NonconvexLogistic<double>(Mat::Ones(2, 2), Vec::Zero(2)), hsgd::InvalidArgument,
                         Message("'labels' must all be -1 or +1"));
  REQUIRE_THROWS_MATCHES(hsgd::NonconvexLogistic<double>(Mat::Ones(2, 2), Vec::Ones(2), -1.0), hsgd::InvalidArgument,
                         Message("'lambda' (-1) must be finite and non-negative"));
  hsgd::B1Data data;
  data.samples_per_worker = 0;
  REQUIRE_THROWS_MATCHES(hsgd::make_b1_shards(data), hsgd::InvalidArgument,
                         Message("'samples_per_worker' (0) must be positive"));
  data = hsgd::B1Data{};
  data.heterogeneity = -1;
  REQUIRE_THROWS_MATCHES(data.validate(), hsgd::InvalidArgument,
                         Message("'heterogeneity' (-1) must be finite and non-negative"));
}

TEST_CASE("A NaN from a worker's step stops the run at that step, worker and level 0", "[validation][nan]") {
  for (const Index threads : {1, 3}) {
    std::vector<FailingObjective> shards;
    for (Index j = 0; j < 6; ++j) shards.push_back({j, 3, 5});
    auto opts = options(1, 20);
    opts.threads = threads;
    hsgd::Engine engine(hsgd::Topology::two_level(6, 2, 2, 4), shards, hsgd::FullBatchSampler(), opts);
    engine.set_model(Vec::Ones(2));
    try {
      engine.run();
      FAIL("no NumericalError");
    } catch (const hsgd::NumericalError& error) {
      CHECK(error.step() == 5);
      CHECK(error.worker() == 3);
      CHECK(error.level() == 0);
      CHECK_THAT(error.what(), Contains("step 5") && Contains("worker 3") && Contains("level 0"));
    }
  }
}

TEST_CASE("An aggregation that overflows stops the run at that step and level", "[validation][nan]") {
  // float models near the largest float: each is finite, but the sum inside the average overflows.
  std::vector<hsgd::Quadratic<float>> shards(4, hsgd::Quadratic<float>(hsgd::Vector<float>::Zero(1), hsgd::Vector<float>::Zero(1)));
  hsgd::Options opts = options(1, 8);
  hsgd::Engine engine(hsgd::Topology::two_level(std::vector<Index>{1, 3}, 2, 4), shards, hsgd::FullBatchSampler(), opts);
  engine.set_model(hsgd::Vector<float>::Constant(1, 0.6f * std::numeric_limits<float>::max()));
  try {
    engine.run();
    FAIL("no NumericalError");
  } catch (const hsgd::NumericalError& error) {
    CHECK(error.step() == 2);
    CHECK(error.level() == 1);
    CHECK(error.worker() == 1);  // the first worker of the unit {1, 2, 3} whose average overflowed
    CHECK_THAT(error.what(), Contains("after aggregation"));
  }
}

TEST_CASE("check_finite = false lets a diverging run go on", "[validation][nan]") {
  std::vector<FailingObjective> shards;
  for (Index j = 0; j < 2; ++j) shards.push_back({j, 0, 1});
  auto opts = options(1, 6);
  opts.check_finite = false;
  hsgd::Engine engine(hsgd::Topology::local_sgd(2, 2), shards, hsgd::FullBatchSampler(), opts);
  const auto summary = engine.run();
  CHECK(summary.steps == 6);
  CHECK(std::isnan(engine.model(0)(1)));
}
