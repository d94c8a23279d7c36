// Identities between schemes (local SGD and minibatch SGD as cases of H-SGD) and closed forms (the
// mean model under identical curvature, the fixed point of heterogeneous scalar quadratics).

#include <cmath>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;

namespace {

constexpr Index n = 12;
constexpr Index d = 3;

/// Runs `steps` steps of a topology on noisy non-IID quadratics, minibatches of 4 with replacement.
Mat run(const hsgd::Topology& topology, Index steps, std::uint64_t seed = 5) {
  hsgd::Engine engine(topology, noisy_quadratics(topology.workers(), d, 17), hsgd::UniformSampler(4), options(seed));
  for (Index t = 0; t < steps; ++t) engine.step();
  return engine.models();
}

}  // namespace

TEST_CASE("I = G is local SGD with period G", "[equivalence]") {
  CHECK(run(hsgd::Topology::two_level(n, 3, 8, 8), 80) == run(hsgd::Topology::local_sgd(n, 8), 80));
}

TEST_CASE("One group is local SGD with the local period", "[equivalence]") {
  const Mat hsgd = run(hsgd::Topology::two_level(n, 1, 2, 8), 80);
  CHECK(hsgd == run(hsgd::Topology::local_sgd(n, 2), 80));
  CHECK(hsgd != run(hsgd::Topology::local_sgd(n, 8), 80));  // the comparison can tell schemes apart
}

TEST_CASE("Singleton groups are local SGD with the global period", "[equivalence]") {
  CHECK(run(hsgd::Topology::two_level(n, n, 2, 8), 80) == run(hsgd::Topology::local_sgd(n, 8), 80));
  CHECK(run(hsgd::Topology::two_level(std::vector<Index>(n, 1), 4, 16), 80) == run(hsgd::Topology::local_sgd(n, 16), 80));
}

TEST_CASE("Top-level averaging every step is minibatch SGD with n times the batch", "[equivalence]") {
  // Reference: one model; each step every worker draws its minibatch from the same stream the
  // engine gives it, and the model moves by the mean of the n minibatch gradients. The engine
  // instead averages n stepped models, so the two differ by rounding only (1e-12 relative).
  const std::uint64_t seed = 9;
  const auto shards = noisy_quadratics(n, d, 23);
  hsgd::Engine engine(hsgd::Topology::local_sgd(n, 1), shards, hsgd::UniformSampler(4), options(seed));
  std::vector<hsgd::UniformSampler> samplers(n, hsgd::UniformSampler(4));
  std::vector<hsgd::Rng> streams;
  for (Index j = 0; j < n; ++j) {
    samplers[static_cast<std::size_t>(j)].bind(shards[static_cast<std::size_t>(j)].sample_count());
    streams.push_back(hsgd::make_stream(seed, hsgd::StreamKind::worker, static_cast<std::uint64_t>(j)));
  }
  Vec x = Vec::Zero(d);
  Vec g(d);
  Vec mean_gradient(d);
  for (Index t = 1; t <= 60; ++t) {
    mean_gradient.setZero();
    for (Index j = 0; j < n; ++j) {
      const auto batch = samplers[static_cast<std::size_t>(j)].next(streams[static_cast<std::size_t>(j)]);
      shards[static_cast<std::size_t>(j)].batch_gradient(x, batch, g);
      mean_gradient += g / double(n);
    }
    x -= 0.05 * mean_gradient;
    engine.step();
    for (Index j = 0; j < n; ++j) REQUIRE(relative_difference(engine.model(j), x) < 1e-12);
  }
  CHECK(relative_difference(x, Vec::Zero(d)) > 0.5);  // the model did move
}

TEST_CASE("Averaging preserves the global mean: xbar moves by the mean worker gradient", "[equivalence]") {
  const auto check = [](auto& engine, const Vec& weights) {
    for (Index t = 1; t <= 48; ++t) {
      const Vec before = engine.global_average();
      engine.step();
      const Vec predicted = before - engine.options().learning_rate * engine.gradients() * weights;
      REQUIRE(relative_difference(engine.global_average(), predicted) < 1e-12);
    }
  };
  const auto shards = noisy_quadratics(n, d, 3);
  SECTION("two levels, unequal groups") {
    hsgd::Engine engine(hsgd::Topology::two_level(std::vector<Index>{5, 2, 4, 1}, 2, 6), shards, hsgd::UniformSampler(3),
                        options());
    check(engine, Vec::Constant(n, 1.0 / n));
  }
  SECTION("three levels, random grouping re-drawn") {
    const hsgd::Topology topology(n, {{2, {3, 3, 2, 4}}, {4, {6, 6}}, {12, {12}}});
    hsgd::Engine engine(topology, shards, hsgd::UniformSampler(3), options(), hsgd::Sgd{}, hsgd::ConstantRate{},
                        hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation});
    check(engine, Vec::Constant(n, 1.0 / n));
  }
  SECTION("data-size weights") {
    std::vector<hsgd::Quadratic<double>> uneven;
    for (Index j = 0; j < n; ++j) {
      hsgd::Rng rng = hsgd::make_stream(4, hsgd::StreamKind::user, static_cast<std::uint64_t>(j));
      uneven.push_back(hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Constant(d, double(j)), 2 + j, 0.5, rng));
    }
    auto opts = options();
    opts.weighting = hsgd::Weighting::data_size;
    hsgd::Engine engine(hsgd::Topology::two_level(n, 3, 2, 6), uneven, hsgd::UniformSampler(3), opts);
    Vec weights(n);
    for (Index j = 0; j < n; ++j) weights(j) = double(2 + j);
    check(engine, weights / weights.sum());
  }
}

TEST_CASE("Identical curvature: xbar_t is the same for every schedule, grouping and depth (identical curvature closed form)",
          "[equivalence][closed-form]") {
  // F_j(x) = (a/2)||x - c||^2 over worker j's noisy centres: the mean moves by a (xbar - mean of the
  // batch centres), which does not depend on where the workers are. Worker j's batches come from
  // the stream (seed, worker, j) whatever the schedule, so xbar_T agrees up to summation order.
  std::vector<hsgd::Quadratic<double>> shards;
  for (Index j = 0; j < n; ++j) {
    hsgd::Rng rng = hsgd::make_stream(8, hsgd::StreamKind::user, static_cast<std::uint64_t>(j));
    shards.push_back(hsgd::Quadratic<double>::isotropic_noisy(0.8, Vec::Constant(d, double(j) - 5.0), 16, 1.0, rng));
  }
  const auto average_after = [&](const hsgd::Topology& topology, auto grouping) {
    hsgd::Engine engine(topology, shards, hsgd::UniformSampler(2), options(21), hsgd::Sgd{}, hsgd::ConstantRate{},
                        grouping);
    engine.set_model(Vec::Constant(d, 4.0));
    for (Index t = 0; t < 96; ++t) engine.step();
    return Vec(engine.global_average());
  };
  const Vec reference = average_after(hsgd::Topology::local_sgd(n, 1), hsgd::ContiguousGrouping{});
  CHECK(relative_difference(reference, average_after(hsgd::Topology::two_level(n, 4, 2, 8), hsgd::ContiguousGrouping{})) < 1e-12);
  CHECK(relative_difference(reference, average_after(hsgd::Topology::two_level(n, 3, 4, 16), hsgd::RandomGrouping{})) < 1e-12);
  CHECK(relative_difference(reference, average_after(hsgd::Topology::local_sgd(n, 12), hsgd::ContiguousGrouping{})) < 1e-12);
  CHECK(relative_difference(reference, average_after(hsgd::Topology(n, {{2, {3, 3, 6}}, {4, {6, 6}}, {16, {12}}}),
                                                     hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation})) < 1e-12);
  // Different curvatures would break it: the check is not vacuous.
  hsgd::Engine uneven(hsgd::Topology::two_level(n, 4, 2, 8), noisy_quadratics(n, d, 8), hsgd::UniformSampler(2), options(21));
  hsgd::Engine uneven_sync(hsgd::Topology::local_sgd(n, 1), noisy_quadratics(n, d, 8), hsgd::UniformSampler(2), options(21));
  for (Index t = 0; t < 95; ++t) {
    uneven.step();
    uneven_sync.step();
  }
  CHECK(relative_difference(uneven.global_average(), uneven_sync.global_average()) > 1e-6);
}

namespace {

/// Fixed point of H-SGD on scalar quadratics F_j = (a_j/2)(x - b_j)^2 with full gradients,
/// observed right after each global aggregation. One local period maps y to
/// b_j + r_j^I (y - b_j), r_j = 1 - gamma a_j; group i therefore maps its value by
/// y -> alpha_i y + beta_i with alpha_i = mean r_j^I, beta_i = mean b_j (1 - r_j^I). K = G / I local
/// rounds from the common y give alpha_i^K y + beta_i (1 - alpha_i^K) / (1 - alpha_i), and the global
/// average (weights n_i / n) makes the affine map y -> A y + c with fixed point c / (1 - A).
double fixed_point(const std::vector<std::vector<Index>>& groups, const Vec& a, const Vec& b, double gamma,
                   Index local_period, Index global_period) {
  const Index rounds = global_period / local_period;
  double total_workers = 0;
  for (const auto& group : groups) total_workers += double(group.size());
  double slope = 0;
  double offset = 0;
  for (const auto& group : groups) {
    double alpha = 0;
    double beta = 0;
    for (const Index j : group) {
      const double contraction = std::pow(1 - gamma * a(j), double(local_period));
      alpha += contraction / double(group.size());
      beta += b(j) * (1 - contraction) / double(group.size());
    }
    const double share = double(group.size()) / total_workers;
    slope += share * std::pow(alpha, double(rounds));
    offset += share * beta * (1 - std::pow(alpha, double(rounds))) / (1 - alpha);
  }
  return offset / (1 - slope);
}

template <class Grouping>
double simulated_fixed_point(const hsgd::Topology& topology, Grouping grouping, const Vec& a, const Vec& b,
                             double gamma) {
  std::vector<hsgd::Quadratic<double>> shards;
  for (Index j = 0; j < a.size(); ++j) shards.emplace_back(Vec::Constant(1, a(j)), Vec::Constant(1, b(j)));
  hsgd::Engine engine(topology, shards, hsgd::FullBatchSampler(), options(1, 0, gamma), hsgd::Sgd{}, hsgd::ConstantRate{},
                      std::move(grouping));
  const Index top = topology.levels();
  double value = 0;
  for (int global_rounds = 0; global_rounds < 400;) {
    if (engine.step() == top) {
      value = engine.model(0)(0);
      ++global_rounds;
    }
  }
  return value;
}

}  // namespace

TEST_CASE("Heterogeneous scalar quadratics converge to the closed-form fixed point (fixed-point closed form)",
          "[equivalence][closed-form]") {
  constexpr Index workers = 6;
  Vec a(workers);
  Vec b(workers);
  a << 0.5, 2.0, 1.0, 3.0, 0.8, 1.5;
  b << -2.0, 1.0, 4.0, 0.5, -1.0, 3.0;
  const double gamma = 0.1;
  const Index local_period = 3;
  const Index global_period = 12;
  const auto topology = hsgd::Topology::two_level(std::vector<Index>{2, 4}, local_period, global_period);

  const double contiguous = fixed_point({{0, 1}, {2, 3, 4, 5}}, a, b, gamma, local_period, global_period);
  CHECK(std::abs(simulated_fixed_point(topology, hsgd::ContiguousGrouping{}, a, b, gamma) - contiguous) <=
        1e-12 * std::abs(contiguous));

  const std::vector<std::vector<Index>> mixed{{1, 4}, {0, 2, 3, 5}};
  const double explicit_point = fixed_point(mixed, a, b, gamma, local_period, global_period);
  CHECK(std::abs(simulated_fixed_point(topology, hsgd::ExplicitGrouping(mixed), a, b, gamma) - explicit_point) <=
        1e-12 * std::abs(explicit_point));
  CHECK(std::abs(contiguous - explicit_point) > 1e-3);  // the grouping matters, so the test can tell

  // Local SGD with period P is the one-group case with I = G = P.
  const double local = fixed_point({{0, 1, 2, 3, 4, 5}}, a, b, gamma, 4, 4);
  CHECK(std::abs(simulated_fixed_point(hsgd::Topology::local_sgd(workers, 4), hsgd::ContiguousGrouping{}, a, b, gamma) -
                 local) <= 1e-12 * std::abs(local));
  // Heterogeneity with a finite gamma moves the fixed point off the minimiser sum a_j b_j / sum a_j.
  CHECK(std::abs(local - a.dot(b) / a.sum()) > 1e-3);
}
