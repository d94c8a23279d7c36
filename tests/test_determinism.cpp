// Reproducibility, thread counts, scalar types, optimizer state at aggregation, learning rates.

#include <cmath>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

template <class Scalar = double>
hsgd::Matrix<Scalar> b1_models(std::uint64_t seed, Index threads, Index steps = 64) {
  auto opts = options(seed, steps, 0.1);
  opts.threads = threads;
  hsgd::Engine engine(hsgd::Topology::two_level(std::vector<Index>{5, 3, 4}, 2, 8), hsgd::make_b1_shards<Scalar>(small_b1()),
                      hsgd::UniformSampler(8), opts, hsgd::Momentum{}, hsgd::ConstantRate{},
                      hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation});
  engine.run();
  return engine.models();
}

}  // namespace

TEST_CASE("The same seed gives the same bits; another seed does not", "[determinism]") {
  const Mat first = b1_models(3, 1);
  CHECK(first == b1_models(3, 1));
  CHECK(first != b1_models(4, 1));
}

TEST_CASE("The bits do not depend on the number of threads", "[determinism][threads]") {
  const Mat one = b1_models(3, 1);
  for (const Index threads : {2, 3, 8}) {
    INFO(threads << " threads");
    CHECK(b1_models(3, threads) == one);
  }
}

TEST_CASE("float and double runs agree to float precision", "[determinism][scalar]") {
  const Mat in_double = b1_models<double>(5, 2);
  const hsgd::Matrix<float> in_float = b1_models<float>(5, 2);
  const Mat widened = in_float.cast<double>();
  CHECK(widened != in_double);                                // float arithmetic really ran
  CHECK(relative_difference(widened, in_double) < 1e-4);      // 64 steps of O(1) updates in float
}

TEST_CASE("Momentum state at aggregation: keep, average or reset", "[optimizer]") {
  const auto run_until_local_aggregation = [](hsgd::StateAtAggregation at_aggregation) {
    hsgd::Engine engine(hsgd::Topology::two_level(std::vector<Index>{2, 3}, 3, 6), noisy_quadratics(5, 2, 2),
                        hsgd::UniformSampler(2), options(), hsgd::Momentum{.momentum = 0.8, .at_aggregation = at_aggregation});
    engine.step();
    engine.step();
    REQUIRE(engine.step() == 1);
    return std::pair{Mat(engine.states()), Mat(engine.models())};
  };
  const auto [kept, kept_models] = run_until_local_aggregation(hsgd::StateAtAggregation::keep);
  const auto [averaged, averaged_models] = run_until_local_aggregation(hsgd::StateAtAggregation::average);
  const auto [reset, reset_models] = run_until_local_aggregation(hsgd::StateAtAggregation::reset);
  // Models are averaged the same way in all three.
  CHECK(kept_models == averaged_models);
  CHECK(kept_models == reset_models);
  // keep: the buffers differ inside a group; average: they are the group mean of the kept ones;
  // reset: zero.
  CHECK(kept.col(0) != kept.col(1));
  const Vec mean_first = (kept.col(0) + kept.col(1)) / 2.0;
  const Vec mean_second = (kept.col(2) + kept.col(3) + kept.col(4)) / 3.0;
  for (Index j : {0, 1}) CHECK(relative_difference(averaged.col(j), mean_first) < 1e-15);
  for (Index j : {2, 3, 4}) CHECK(relative_difference(averaged.col(j), mean_second) < 1e-15);
  CHECK(reset.isZero(0));
}

TEST_CASE("Momentum matches the heavy-ball recursion written out", "[optimizer]") {
  const hsgd::Momentum heavy_ball{.momentum = 0.5};
  const hsgd::Momentum nesterov{.momentum = 0.5, .nesterov = true};
  Vec x = Vec::Constant(2, 1.0);
  Vec xn = x;
  Vec velocity = Vec::Zero(2);
  Vec velocity_n = Vec::Zero(2);
  const Vec g = (Vec(2) << 1.0, -2.0).finished();
  heavy_ball.apply<double>(x, g, velocity, 0.1);
  heavy_ball.apply<double>(x, g, velocity, 0.1);
  nesterov.apply<double>(xn, g, velocity_n, 0.1);
  // v1 = g, x1 = x0 - 0.1 g; v2 = 0.5 g + g = 1.5 g, x2 = x1 - 0.15 g = x0 - 0.25 g.
  CHECK(relative_difference(x, Vec(Vec::Constant(2, 1.0) - 0.25 * g)) < 1e-15);
  CHECK(relative_difference(velocity, Vec(1.5 * g)) < 1e-15);
  // Nesterov: v1 = g, x1 = x0 - 0.1 (g + 0.5 v1) = x0 - 0.15 g.
  CHECK(relative_difference(xn, Vec(Vec::Constant(2, 1.0) - 0.15 * g)) < 1e-15);
}

TEST_CASE("Learning-rate schedules give the documented rates", "[optimizer]") {
  const hsgd::StepDecay step_decay{.factor = 0.5, .every = 10};
  CHECK(step_decay.rate(0.2, 1) == 0.2);
  CHECK(step_decay.rate(0.2, 10) == 0.2);
  CHECK(step_decay.rate(0.2, 11) == 0.1);
  CHECK(step_decay.rate(0.2, 31) == 0.2 * 0.125);
  const hsgd::InverseSqrtDecay inverse_sqrt{.time_scale = 4.0};
  CHECK(inverse_sqrt.rate(0.3, 1) == 0.3);
  CHECK(inverse_sqrt.rate(0.3, 5) == Approx(0.3 / std::sqrt(2.0)).epsilon(1e-15));
  CHECK(inverse_sqrt.rate(0.3, 13) == Approx(0.15).epsilon(1e-15));

  // The engine uses the schedule: a decayed run moves less than a constant one from the same start.
  const auto distance_travelled = [](auto rate) {
    hsgd::Engine engine(hsgd::Topology::local_sgd(4, 2), noisy_quadratics(4, 2, 6), hsgd::FullBatchSampler(),
                        options(1, 0, 0.1), hsgd::Sgd{}, rate);
    for (int t = 0; t < 30; ++t) engine.step();
    return std::pair{engine.global_average().norm(), engine.learning_rate_at(21)};
  };
  const auto [constant_distance, constant_rate] = distance_travelled(hsgd::ConstantRate{});
  const auto [decayed_distance, decayed_rate] = distance_travelled(step_decay);
  CHECK(constant_rate == 0.1);
  CHECK(decayed_rate == Approx(0.025).epsilon(1e-15));
  CHECK(decayed_distance < constant_distance);
}

TEST_CASE("StepDecay and the other schedules are defined at every step", "[hardening][data]") {
  const hsgd::StepDecay decay{.factor = 0.5, .every = 1};
  CHECK(decay.rate(0.1, max_index) == 0.0);  // 0.5^(2^63 - 2) underflows to 0, defined
  CHECK(decay.rate(0.1, 1) == 0.1);
  CHECK(decay.rate(0.1, 3) == 0.025);
  CHECK(hsgd::StepDecay{.factor = 1.0, .every = 1}.rate(0.1, max_index) == 0.1);
  CHECK(hsgd::StepDecay{.factor = 0.5, .every = max_index}.rate(0.1, max_index) == 0.1);
  CHECK(hsgd::StepDecay{.factor = 0.5, .every = Index{1} << 62}.rate(0.1, max_index) == 0.05);
  // t - 1 at the least Index overflows, and every = 0 divides by zero: both are refused.
  REQUIRE_INVALID(decay.rate(0.1, 0), "'step' (0) must be at least 1");
  REQUIRE_INVALID(decay.rate(0.1, min_index), "'step' (-9223372036854775808) must be at least 1");
  REQUIRE_INVALID((hsgd::StepDecay{.factor = 0.5, .every = 0}.rate(0.1, 5)), "'every' (0) must be positive");
  REQUIRE_INVALID((hsgd::StepDecay{.factor = 0.5, .every = -1}.rate(0.1, max_index)), "'every' (-1) must be positive");
  REQUIRE_INVALID((hsgd::StepDecay{.factor = 0.0, .every = 1}.rate(0.1, 5)), "'factor' (0) must be in (0, 1]");
  REQUIRE_INVALID((hsgd::StepDecay{.factor = 1e308, .every = 1}.rate(0.1, max_index)), "'factor' (1e+308)");

  const hsgd::InverseSqrtDecay inverse{.time_scale = 1000.0};
  const double last = inverse.rate(0.1, max_index);
  CHECK(last == Approx(0.1 / std::sqrt(1.0 + 9.223372036854775806e18 / 1000.0)).epsilon(1e-12));
  REQUIRE_INVALID(inverse.rate(0.1, min_index), "'step' (-9223372036854775808)");
  REQUIRE_INVALID((hsgd::InverseSqrtDecay{.time_scale = 0.0}.rate(0.1, 2)), "'time_scale' (0)");
  CHECK(hsgd::ConstantRate{}.rate(0.1, max_index) == 0.1);
  REQUIRE_INVALID(hsgd::ConstantRate{}.rate(0.1, 0), "'step' (0)");
}
