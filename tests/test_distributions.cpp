// Random draws: gamma, Dirichlet and categorical, against their exact moments and distribution
// functions, and the parameters they refuse (concentrations too small for a finite draw too).
// Margins: z standard errors from the exact moments (data_support.hpp).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include <catch2/catch.hpp>

#include "data_support.hpp"

using namespace test;
using Catch::Matchers::Contains;

TEST_CASE("Gamma draws have mean and variance equal to the shape", "[data]") {
  constexpr int n = 40000;
  for (const double shape : {0.05, 0.3, 1.0, 2.5, 9.0}) {
    INFO("shape " << shape);
    hsgd::Rng rng = test_stream(1);
    double sum = 0;
    double squares = 0;
    int bad = 0;
    for (int k = 0; k < n; ++k) {
      const double x = hsgd::draw_gamma(rng, shape);
      bad += std::isfinite(x) && x >= 0 ? 0 : 1;
      sum += x;
      squares += x * x;
    }
    REQUIRE(bad == 0);
    const double mean = sum / n;
    const double variance = (squares - n * mean * mean) / (n - 1);
    // Var(x) = k; the fourth central moment is 3k^2 + 6k, so Var(sample variance) ~ (2k^2 + 6k) / n.
    CHECK(std::abs(mean - shape) <= z * std::sqrt(shape / n));
    CHECK(std::abs(variance - shape) <= z * std::sqrt((2 * shape * shape + 6 * shape) / n));
  }
}

TEST_CASE("Gamma draws follow the exact distribution function (Kolmogorov-Smirnov)", "[data]") {
  // Shapes with closed-form CDFs on both branches of the algorithm. A correct generator exceeds
  // the critical value sqrt(ln(2 / 0.001) / 2) / sqrt(n) with probability 0.001.
  struct Case {
    double shape;
    double (*cdf)(double);
  };
  const Case cases[] = {
      {0.5, [](double x) { return std::erf(std::sqrt(x)); }},  // Gamma(1/2) = Z^2 / 2
      {1.0, [](double x) { return 1 - std::exp(-x); }},
      {2.0, [](double x) { return 1 - std::exp(-x) * (1 + x); }},
  };
  constexpr int n = 20000;
  for (const auto& c : cases) {
    INFO("shape " << c.shape);
    hsgd::Rng rng = test_stream(2);
    std::vector<double> draws(n);
    for (double& x : draws) x = hsgd::draw_gamma(rng, c.shape);
    std::sort(draws.begin(), draws.end());
    double distance = 0;
    for (int k = 0; k < n; ++k) {
      const double f = c.cdf(draws[static_cast<std::size_t>(k)]);
      distance = std::max({distance, f - double(k) / n, double(k + 1) / n - f});
    }
    CHECK(distance <= std::sqrt(std::log(2 / 0.001) / 2) / std::sqrt(double(n)));
  }
}

TEST_CASE("Dirichlet draws match the exact Dirichlet moments", "[data]") {
  const std::vector<double> alpha{0.3, 1.0, 2.7};
  constexpr int n = 40000;
  hsgd::Rng rng = test_stream(3);
  std::vector<double> first(3, 0);
  std::vector<double> second(3, 0);
  double cross = 0;
  int bad = 0;
  for (int k = 0; k < n; ++k) {
    const std::vector<double> x = hsgd::draw_dirichlet(rng, alpha);
    REQUIRE(x.size() == 3);
    const bool simplex = std::all_of(x.begin(), x.end(), [](double v) { return v >= 0; });
    bad += simplex && std::abs(x[0] + x[1] + x[2] - 1) <= 1e-12 ? 0 : 1;
    for (std::size_t i = 0; i < 3; ++i) {
      first[i] += x[i] / n;
      second[i] += x[i] * x[i] / n;
    }
    cross += x[0] * x[1] / n;
  }
  REQUIRE(bad == 0);
  // Each average is checked against its exact value, with the standard error from the exact
  // moment of twice the power.
  auto check_average = [&](double observed, const std::vector<int>& powers) {
    std::vector<int> doubled = powers;
    for (int& p : doubled) p *= 2;
    const double value = dirichlet_moment(alpha, powers);
    const double variance = dirichlet_moment(alpha, doubled) - value * value;
    CHECK(std::abs(observed - value) <= z * std::sqrt(variance / n));
  };
  for (std::size_t i = 0; i < 3; ++i) {
    std::vector<int> powers(3, 0);
    powers[i] = 1;
    check_average(first[i], powers);
    powers[i] = 2;
    check_average(second[i], powers);
  }
  check_average(cross, {1, 1, 0});
}

TEST_CASE("Symmetric Dirichlet draws equal the vector form and survive tiny concentrations", "[data]") {
  hsgd::Rng a = test_stream(4);
  hsgd::Rng b = test_stream(4);
  for (int k = 0; k < 10; ++k)
    CHECK(hsgd::draw_dirichlet(a, 5, 0.7) == hsgd::draw_dirichlet(b, std::vector<double>(5, 0.7)));

  // alpha = 0.001: U^(1/alpha) underflows for U < 0.48, so normalising plain gamma draws would
  // divide 0 by 0 in about 5% of draws of 4 components.
  const std::vector<double> alpha(4, 0.001);
  constexpr int n = 20000;
  hsgd::Rng rng = test_stream(5);
  double second = 0;
  int bad = 0;
  for (int k = 0; k < n; ++k) {
    const std::vector<double> x = hsgd::draw_dirichlet(rng, alpha);
    const bool simplex = std::all_of(x.begin(), x.end(), [](double v) { return std::isfinite(v) && v >= 0; });
    bad += simplex && std::abs(std::accumulate(x.begin(), x.end(), 0.0) - 1) <= 1e-12 ? 0 : 1;
    second += x[0] * x[0] / n;
  }
  REQUIRE(bad == 0);
  const double expected = dirichlet_moment(alpha, {2, 0, 0, 0});
  CHECK(std::abs(second - expected) <=
        z * std::sqrt((dirichlet_moment(alpha, {4, 0, 0, 0}) - expected * expected) / n));
}

TEST_CASE("Categorical draws follow the weights and never pick a zero weight", "[data]") {
  const std::vector<double> weights{0, 1, 3, 0, 6};
  constexpr int n = 50000;
  hsgd::Rng rng = test_stream(6);
  std::vector<int> counts(weights.size(), 0);
  for (int k = 0; k < n; ++k) ++counts[static_cast<std::size_t>(hsgd::draw_categorical(rng, weights))];
  CHECK(counts[0] == 0);
  CHECK(counts[3] == 0);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const double p = weights[i] / 10;
    CHECK(std::abs(double(counts[i]) / n - p) <= z * std::sqrt(p * (1 - p) / n));
  }
}

TEST_CASE("Distributions reject bad parameters, naming them", "[data]") {
  hsgd::Rng rng = test_stream(0);
  CHECK_INVALID(hsgd::draw_gamma(rng, 0), "'shape' (0)");
  CHECK_INVALID(hsgd::draw_gamma(rng, std::nan("")), "'shape' (nan)");
  CHECK_INVALID(hsgd::draw_dirichlet(rng, std::vector<double>{}), "'alpha' must have at least one entry");
  CHECK_INVALID(hsgd::draw_dirichlet(rng, std::vector<double>{1, -1}), "'alpha'[1] (-1)");
  CHECK_INVALID(hsgd::draw_dirichlet(rng, 0, 1.0), "'k' (0)");
  CHECK_INVALID(hsgd::draw_dirichlet(rng, 3, 0.0), "'alpha' (0)");
  CHECK_INVALID(hsgd::draw_categorical(rng, std::vector<double>{1, -2}), "'weights'[1] (-2)");
  CHECK_INVALID(hsgd::draw_categorical(rng, std::vector<double>{0, 0}),
                "'weights' (2 entries) must have a positive sum");
}

TEST_CASE("Dirichlet concentrations too small for a finite draw are named errors", "[hardening][data]") {
  hsgd::Rng rng(5);
  // Below about 2e-307, log(U) / alpha overflows to -inf for every component and the
  // normalisation is 0/0: the draw would be NaN.
  REQUIRE_INVALID(hsgd::draw_dirichlet(rng, 3, 1e-310), "'alpha' (1e-310) must be at least 1e-300");
  REQUIRE_INVALID(hsgd::draw_dirichlet(rng, std::vector<double>{1.0, 1e-320}), "'alpha'[1] (1e-320) must be at least");
  const std::vector<Index> labels{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5};
  REQUIRE_INVALID(hsgd::partition_dirichlet(labels, 6, {.workers = 2, .alpha = 1e-310, .min_size = 1}),
                  "'alpha' (1e-310) must be at least 1e-300");
  REQUIRE_INVALID(
      hsgd::partition_two_level_dirichlet(labels, 6, {.group_sizes = {1, 1}, .alpha_group = 1e-310, .min_size = 1}),
      "'alpha_group' (1e-310)");
  REQUIRE_INVALID(
      hsgd::partition_two_level_dirichlet(labels, 6, {.group_sizes = {1, 1}, .alpha_worker = 1e-310, .min_size = 1}),
      "'alpha_worker' (1e-310)");
  REQUIRE_INVALID(hsgd::partition_two_level_dirichlet(labels, 6, {.group_sizes = {2, 2}, .alpha_group = 1e308}),
                  "'alpha_group' (1e+308) times 'group_sizes'[0] (2) overflows");

  // At the smallest accepted concentration every draw is a probability vector: all the mass on
  // one component, the limit of Dir(alpha) as alpha -> 0.
  for (int draw = 0; draw < 200; ++draw) {
    const std::vector<double> x = hsgd::draw_dirichlet(rng, 4, hsgd::detail::min_concentration);
    double total = 0;
    int ones = 0;
    for (const double value : x) {
      REQUIRE(std::isfinite(value));
      total += value;
      ones += value == 1.0 ? 1 : 0;
    }
    CHECK(total == 1.0);
    CHECK(ones == 1);
  }
  // And a partition at that concentration hands every class whole to one worker.
  std::vector<Index> many;
  for (Index c = 0; c < 10; ++c) many.insert(many.end(), 10, c);
  const hsgd::Partition partition =
      hsgd::partition_dirichlet(many, 10, {.workers = 3, .alpha = hsgd::detail::min_concentration, .min_size = 1});
  hsgd::check_partition(partition, 100);
  const hsgd::PartitionSummary summary = hsgd::summarize(partition, many, 10);
  for (Index c = 0; c < 10; ++c) {
    int holders = 0;
    for (const auto& counts : summary.class_counts) holders += counts[static_cast<std::size_t>(c)] > 0 ? 1 : 0;
    CHECK(holders == 1);
  }
}
