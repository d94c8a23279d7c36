// Theory: the random-grouping identities by exact enumeration, the pure-noise closed form in
// three levels with unequal units and data-size weights, the bound's shape and its sandwich, the
// sandwich check on runs, the estimates of sigma^2 and L, and the input all of these refuse (wrong
// sizes, non-finite values, products that overflow).

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

/// Level terms term_l = sum_{u in level l-1} W_u ||m_u - m_parent(u)||^2 (level 0: the single
/// slots), straight from the definitions, for gradients given in slot order and uniform weights.
std::vector<double> level_terms(const hsgd::Topology& topology, const Mat& slot_gradients) {
  const Index n = topology.workers();
  const auto means = [&](Index level) {  // column u: the mean of unit u's slots
    if (level == 0) return Mat(slot_gradients);
    Mat result(slot_gradients.rows(), topology.units(level));
    const auto offsets = topology.unit_offsets(level);
    for (Index u = 0; u < topology.units(level); ++u) {
      result.col(u) = slot_gradients.middleCols(offsets[u], offsets[u + 1] - offsets[u]).rowwise().mean();
    }
    return result;
  };
  std::vector<double> terms;
  for (Index level = 1; level <= topology.levels(); ++level) {
    const Mat below = means(level - 1);
    const Mat above = means(level);
    double term = 0;
    for (Index slot = 0; slot < n; ++slot) {
      const Index unit_below = level == 1 ? slot : topology.unit_of_slot(level - 1, slot);
      term += (below.col(unit_below) - above.col(topology.unit_of_slot(level, slot))).squaredNorm() / double(n);
    }
    terms.push_back(term);
  }
  return terms;
}

/// Averages the level terms over every assignment of the workers' gradients to the slots.
std::vector<double> mean_over_all_groupings(const hsgd::Topology& topology, const Mat& gradients) {
  std::vector<Index> order(static_cast<std::size_t>(topology.workers()));
  std::iota(order.begin(), order.end(), Index{0});
  std::vector<double> sums(static_cast<std::size_t>(topology.levels()), 0.0);
  double count = 0;
  Mat slotted(gradients.rows(), gradients.cols());
  do {
    for (std::size_t s = 0; s < order.size(); ++s) slotted.col(static_cast<Index>(s)) = gradients.col(order[s]);
    const auto terms = level_terms(topology, slotted);
    for (std::size_t l = 0; l < terms.size(); ++l) sums[l] += terms[l];
    ++count;
  } while (std::next_permutation(order.begin(), order.end()));
  CHECK(count == std::tgamma(double(topology.workers()) + 1));  // every permutation visited
  for (double& sum : sums) sum /= count;
  return sums;
}

double global_divergence(const Mat& gradients) {
  return (gradients.colwise() - gradients.rowwise().mean()).squaredNorm() / double(gradients.cols());
}

Mat random_gradients(Index dimension, Index workers, std::uint64_t seed) {
  hsgd::Rng rng = hsgd::make_stream(seed, hsgd::StreamKind::user, 0);
  Mat gradients(dimension, workers);
  for (Index j = 0; j < workers; ++j) {
    for (Index i = 0; i < dimension; ++i) gradients(i, j) = rng.normal() + double(j % 3);
  }
  return gradients;
}

}  // namespace

TEST_CASE("Random grouping: mean D_down = (n-N)/(n-1) D_glob and mean D_up = (N-1)/(n-1) D_glob, by enumeration",
          "[theory][grouping]") {
  // Every one of the 7! assignments of 7 workers to unequal groups of sizes 1, 2 and 4.
  const hsgd::Topology topology = hsgd::Topology::two_level({1, 2, 4}, 2, 6);
  const Mat gradients = random_gradients(3, 7, 5);
  const double d_glob = global_divergence(gradients);
  const auto expected = mean_over_all_groupings(topology, gradients);
  const auto shares = hsgd::random_grouping_shares(topology);
  REQUIRE(shares.size() == 2);
  CHECK(shares[0] == Approx(4.0 / 6.0).epsilon(1e-15));  // (n - N)/(n - 1)
  CHECK(shares[1] == Approx(2.0 / 6.0).epsilon(1e-15));  // (N - 1)/(n - 1)
  CHECK(std::abs(expected[0] - shares[0] * d_glob) <= 1e-12 * d_glob);
  CHECK(std::abs(expected[1] - shares[1] * d_glob) <= 1e-12 * d_glob);
}

TEST_CASE("Random grouping in three levels: level l takes (N_{l-1} - N_l)/(n-1) of D_glob, by enumeration",
          "[theory][grouping]") {
  // 7 slots: level 1 units {2, 1, 3, 1}, level 2 units {3, 4}, level 3 everything.
  const hsgd::Topology topology(7, {{2, {2, 1, 3, 1}}, {4, {3, 4}}, {8, {7}}});
  const Mat gradients = random_gradients(2, 7, 9);
  const double d_glob = global_divergence(gradients);
  const auto expected = mean_over_all_groupings(topology, gradients);
  const auto shares = hsgd::random_grouping_shares(topology);
  const std::vector<double> by_hand{(7.0 - 4) / 6, (4.0 - 2) / 6, (2.0 - 1) / 6};
  for (std::size_t l = 0; l < 3; ++l) {
    CHECK(shares[l] == Approx(by_hand[l]).epsilon(1e-15));
    CHECK(std::abs(expected[l] - shares[l] * d_glob) <= 1e-12 * d_glob);
  }
  CHECK(std::accumulate(shares.begin(), shares.end(), 0.0) == Approx(1.0).epsilon(1e-15));
}

TEST_CASE("Noise spread factors: (N_{l-1} - N_l)/n with uniform weights; they sum to 1 - sum_j w_j^2", "[theory][noise]") {
  const hsgd::Topology topology(7, {{2, {2, 1, 3, 1}}, {4, {3, 4}}, {8, {7}}});
  const auto uniform = hsgd::noise_spread_factors(topology);
  CHECK(uniform[0] == Approx(3.0 / 7).epsilon(1e-15));
  CHECK(uniform[1] == Approx(2.0 / 7).epsilon(1e-15));
  CHECK(uniform[2] == Approx(1.0 / 7).epsilon(1e-15));

  Vec weights(7);
  weights << 1, 2, 3, 4, 5, 6, 7;
  weights /= weights.sum();
  const auto weighted = hsgd::noise_spread_factors(topology, weights);
  CHECK(std::accumulate(weighted.begin(), weighted.end(), 0.0) == Approx(1 - weights.squaredNorm()).epsilon(1e-14));
  // Level 1's first unit {w0, w1}: w0 + w1 - (w0^2 + w1^2)/(w0 + w1) = 2 w0 w1/(w0 + w1), and so on.
  double level_one = 0;
  for (const auto& [first, size] : std::vector<std::pair<Index, Index>>{{0, 2}, {2, 1}, {3, 3}, {6, 1}}) {
    const auto unit = weights.segment(first, size);
    level_one += unit.sum() - unit.squaredNorm() / unit.sum();
  }
  CHECK(weighted[0] == Approx(level_one).epsilon(1e-14));
  CHECK_THROWS_WITH(hsgd::noise_spread_factors(topology, Vec::Ones(6)), Contains("'slot_weights' has 6 entries"));
}

TEST_CASE("Pure noise closed form: the Monte Carlo reference numbers", "[theory][noise]") {
  // n = 12, N = 3, gamma = 0.1, sigma = 1, d = 1, I = 4, G = 16 (the setting of the probes' Monte Carlo
  // check in test_probes.cpp): 0.01125 and 0.01250.
  const auto spreads = hsgd::pure_noise_spreads(hsgd::Topology::two_level(12, 3, 4, 16), 0.1, 1.0, 1);
  CHECK(spreads[0] == Approx(0.01125).epsilon(1e-12));
  CHECK(spreads[1] == Approx(0.01250).epsilon(1e-12));
  // Local SGD with period P: gamma^2 sigma^2 d (P - 1)/2 (1 - 1/n).
  const auto local = hsgd::pure_noise_spreads(hsgd::Topology::local_sgd(12, 16), 0.1, 2.0, 3);
  CHECK(local[0] == Approx(0.01 * 2 * 3 * 7.5 * (11.0 / 12)).epsilon(1e-12));
}

TEST_CASE("Pure noise in three levels, unequal units, data-size weights: the engine matches the closed form",
          "[theory][noise][statistics]") {
  // Worker j holds m_j = 512 (1 + j % 3) centred samples rescaled to variance exactly 1, so
  // sigma^2 = 1 per coordinate whatever the shard. Data-size weights make
  // w_j proportional to m_j. Top-level periods are independent (the global average resets every
  // spread, the noise is fresh), so per-period means are i.i.d.: the margin is 5 standard errors.
  const hsgd::Topology topology(7, {{2, {2, 1, 3, 1}}, {4, {3, 4}}, {8, {7}}});
  constexpr Index top_period = 8;
  constexpr Index periods = 3000;
  constexpr Index dimension = 2;
  std::vector<PureNoise> shards;
  for (Index j = 0; j < 7; ++j) shards.push_back(PureNoise::unit_variance(dimension, 512 * (1 + j % 3), 40 + std::uint64_t(j)));
  hsgd::Options settings = options(3, periods * top_period, 0.1);
  settings.weighting = hsgd::Weighting::data_size;
  hsgd::Engine engine(topology, shards, hsgd::UniformSampler(1), settings);
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, {.gradient_every = 0, .model_every = 1}, memory);
  engine.run(probe);

  const auto expected = hsgd::pure_noise_spreads(topology, engine.weights(), 0.1, 1.0, dimension);
  for (std::size_t level = 0; level < 3; ++level) {
    std::vector<double> period_means(periods, 0.0);
    for (const auto& row : memory.rows) {
      period_means[static_cast<std::size_t>((row.step - 1) / top_period)] += row.model_terms[level] / top_period;
    }
    const hsgd::SampleMean measured = hsgd::sample_mean(period_means);
    INFO("level " << level + 1 << ": measured " << measured.mean << " +- " << measured.standard_error
                  << ", closed form " << expected[level]);
    CHECK(std::abs(measured.mean - expected[level]) < 5 * measured.standard_error);
    CHECK(measured.standard_error < 0.05 * expected[level]);  // tight enough to tell a wrong factor
  }
}

TEST_CASE("Bound: one group is local SGD with period I, singleton groups local SGD with period G", "[theory][bound]") {
  const hsgd::ProblemConstants problem{.initial_gap = 2.0, .smoothness = 3.0, .noise_variance = 0.5};
  const double gamma = 0.01;
  const auto one_group = hsgd::two_level_bound(12, 1, 4, 16, gamma, 1000, problem, 0.7, 0.0);
  const auto local_i = hsgd::local_sgd_bound(12, 4, gamma, 1000, problem, 0.7);
  CHECK(one_group.total() == Approx(local_i.total()).epsilon(1e-14));
  const auto singletons = hsgd::two_level_bound(12, 12, 4, 16, gamma, 1000, problem, 0.0, 0.7);
  const auto local_g = hsgd::local_sgd_bound(12, 16, gamma, 1000, problem, 0.7);
  CHECK(singletons.total() == Approx(local_g.total()).epsilon(1e-14));
  // I == G collapses to one level, whose divergence is D_down + D_up.
  const auto same_periods = hsgd::two_level_bound(12, 3, 16, 16, gamma, 1000, problem, 0.3, 0.4);
  CHECK(same_periods.total() == Approx(local_g.total()).epsilon(1e-14));
}

TEST_CASE("Bound: D_down is paid at I^2, D_up at G^2, noise at the paper's factors", "[theory][bound]") {
  const hsgd::ProblemConstants problem{.initial_gap = 1.0, .smoothness = 2.0, .noise_variance = 0.25};
  const hsgd::BoundConstants constants{.optimization = 2, .noise = 1, .drift = 3, .step_limit = 1};
  const double gamma = 0.005;
  const Index n = 12, groups = 3, local = 4, global = 16, steps = 400;
  const auto base = hsgd::two_level_bound(n, groups, local, global, gamma, steps, problem, 0.1, 0.2, constants);
  const auto more_down = hsgd::two_level_bound(n, groups, local, global, gamma, steps, problem, 0.1 + 1, 0.2, constants);
  const auto more_up = hsgd::two_level_bound(n, groups, local, global, gamma, steps, problem, 0.1, 0.2 + 1, constants);
  const double drift_scale = 3 * gamma * gamma * 2 * 2;
  CHECK(more_down.total() - base.total() == Approx(drift_scale * local * local).epsilon(1e-9));
  CHECK(more_up.total() - base.total() == Approx(drift_scale * global * global).epsilon(1e-9));
  CHECK(base.optimization == Approx(2 * 1.0 / (gamma * steps)).epsilon(1e-14));
  CHECK(base.noise == Approx(gamma * 2 * 0.25 / n).epsilon(1e-14));
  const double paper_noise = 0.25 * ((local - 1) * (1 - double(groups) / n) + (global - 1) * (groups - 1.0) / n);
  CHECK(base.drift_noise[0] + base.drift_noise[1] == Approx(drift_scale * paper_noise).epsilon(1e-14));
  CHECK(base.step_condition_holds);  // gamma L G = 0.16 <= 1
  CHECK_THAT(fmt::format("{}", base), Contains(fmt::format("bound {:.4e}", base.total())));
  CHECK_FALSE(hsgd::two_level_bound(n, groups, local, global, 0.1, steps, problem, 0.1, 0.2).step_condition_holds);
}

TEST_CASE("Bound under random grouping lies between local SGD with P_1 and with P_L", "[theory][bound][sandwich]") {
  // Random shapes, periods and constants; a strict ordering whenever the levels differ.
  hsgd::Rng rng = hsgd::make_stream(4, hsgd::StreamKind::user, 0);
  for (int trial = 0; trial < 200; ++trial) {
    const Index n = 2 + static_cast<Index>(rng.below(30));
    const Index groups = 2 + static_cast<Index>(rng.below(static_cast<std::uint64_t>(n - 1)));
    if (groups >= n) continue;
    const Index local = 1 + static_cast<Index>(rng.below(8));
    const Index global = local * (2 + static_cast<Index>(rng.below(6)));
    const hsgd::ProblemConstants problem{.initial_gap = rng.uniform(), .smoothness = 0.1 + rng.uniform(),
                                         .noise_variance = rng.uniform()};
    const double eps = rng.uniform();
    const double gamma = 0.001 + 0.01 * rng.uniform();
    const auto topology = hsgd::Topology::two_level(n, groups, local, global);
    const double middle = hsgd::random_grouping_bound(topology, gamma, 100, problem, eps).total();
    const double lower = hsgd::local_sgd_bound(n, local, gamma, 100, problem, eps).total();
    const double upper = hsgd::local_sgd_bound(n, global, gamma, 100, problem, eps).total();
    INFO("n " << n << " N " << groups << " I " << local << " G " << global);
    CHECK(lower < middle);
    CHECK(middle < upper);
  }
}

TEST_CASE("Bound: bad input is named", "[theory][bound][validation]") {
  const hsgd::ProblemConstants problem;
  const auto topology = hsgd::Topology::two_level(8, 2, 2, 4);
  const double two[] = {0.1, 0.2};
  const double one[] = {0.1};
  CHECK_THROWS_WITH(hsgd::hsgd_bound(topology, 0.1, 10, problem, one), Contains("'divergence_bounds' has 1 entries"));
  CHECK_THROWS_WITH(hsgd::hsgd_bound(topology, -0.1, 10, problem, two), Contains("'learning_rate' (-0.1)"));
  CHECK_THROWS_WITH(hsgd::hsgd_bound(topology, 0.1, 0, problem, two), Contains("'steps' (0) must be positive"));
  CHECK_THROWS_WITH(hsgd::hsgd_bound(topology, 0.1, 10, {.smoothness = 0}, two), Contains("'smoothness' (0)"));
  CHECK_THROWS_WITH(hsgd::hsgd_bound(topology, 0.1, 10, {.noise_variance = -1}, two), Contains("'noise_variance' (-1)"));
  CHECK_THROWS_WITH(hsgd::hsgd_bound(topology, 0.1, 10, problem, two, {.drift = -1}), Contains("'drift' (-1)"));
  const double negative[] = {0.1, -0.2};
  CHECK_THROWS_WITH(hsgd::hsgd_bound(topology, 0.1, 10, problem, negative), Contains("'divergence_bounds'[1] (-0.2)"));
}

TEST_CASE("Theory helpers check the sizes and values of what they are given", "[hardening][data]") {
  const hsgd::Topology topology = hsgd::Topology::two_level(6, 2, 2, 4);
  Vec weights = Vec::Constant(6, 1.0 / 6);
  REQUIRE(hsgd::noise_spread_factors(topology, weights).size() == 2);
  weights(2) = nan_value;
  REQUIRE_INVALID(hsgd::noise_spread_factors(topology, weights), "'slot_weights'[2] (nan) must be finite");
  weights(2) = -0.5;
  REQUIRE_INVALID(hsgd::noise_spread_factors(topology, weights), "'slot_weights'[2] (-0.5)");
  REQUIRE_INVALID(hsgd::pure_noise_spreads(topology, inf_value, 1.0, 1), "'learning_rate' (inf) must be finite");
  REQUIRE_INVALID(hsgd::pure_noise_spreads(topology, 0.1, inf_value, 1), "'noise_variance' (inf) must be finite");

  const hsgd::ProblemConstants problem{};
  REQUIRE_INVALID(hsgd::local_sgd_bound(4, 2, 0.1, 10, problem, nan_value), "'global_divergence_bound' (nan)");
  REQUIRE_INVALID(hsgd::random_grouping_bound(topology, 0.1, 10, problem, -1.0), "'global_divergence_bound' (-1)");
  REQUIRE_INVALID(hsgd::two_level_bound(6, 2, 4, 4, 0.1, 10, problem, nan_value, 1.0),
                  "'downward_divergence_bound' (nan)");
  REQUIRE_INVALID(hsgd::two_level_bound(6, 2, 4, 4, 0.1, 10, problem, 1.0, inf_value),
                  "'upward_divergence_bound' (inf)");

  const std::vector<double> one{1.0, 2.0};
  const std::vector<double> bad{1.0, nan_value};
  REQUIRE_INVALID(hsgd::check_sandwich(one, bad, one), "'middle'[1] (nan) must be finite");
  REQUIRE_INVALID(hsgd::sample_mean(bad), "'values'[1] (nan) must be finite");

  // estimate_smoothness evaluates every shard at x: a wrong size would be read out of bounds.
  const std::vector<hsgd::Quadratic<double>> shards{hsgd::Quadratic<double>(Vec::Ones(3), Vec::Zero(3))};
  hsgd::Rng rng(3);
  REQUIRE_INVALID(hsgd::estimate_smoothness(shards, Vec::Zero(2), 0.1, 4, rng),
                  "'x' has 2 coordinates but shard 0 has dimension 3");
  CHECK(hsgd::estimate_smoothness(shards, Vec::Zero(3), 0.1, 4, rng) == Approx(1.0).epsilon(1e-12));
}

TEST_CASE("Bounds and closed forms: products that overflow are named, zero factors stay zero", "[hardening][data]") {
  const hsgd::Topology topology = hsgd::Topology::two_level(6, 2, 2, 4);
  // gamma^2 overflows, but with sigma^2 = 0 the spread is exactly 0 (was inf * 0 = NaN).
  for (const double spread : hsgd::pure_noise_spreads(topology, 1e200, 0.0, 3)) CHECK(spread == 0.0);
  REQUIRE_INVALID(hsgd::pure_noise_spreads(topology, 1e200, 1.0, 3), "the level-1 spread overflows");

  const hsgd::ProblemConstants no_noise{.initial_gap = 0.0, .smoothness = 1e200, .noise_variance = 0.0};
  const std::vector<double> zero{0.0, 0.0};
  const hsgd::BoundTerms terms = hsgd::hsgd_bound(topology, 1e200, 10, no_noise, zero);
  CHECK(terms.total() == 0.0);
  CHECK_FALSE(terms.step_condition_holds);
  const hsgd::ProblemConstants noisy{.initial_gap = 1.0, .smoothness = 1e200, .noise_variance = 1.0};
  REQUIRE_INVALID(hsgd::hsgd_bound(topology, 1e200, 10, noisy, zero), "the bound overflows");
}

TEST_CASE("check_sandwich judges each gap by its paired per-seed differences", "[theory][sandwich]") {
  const std::vector<double> lower{1.0, 2.0, 3.0};
  const std::vector<double> middle{1.5, 2.4, 3.7};
  const std::vector<double> upper{2.0, 3.0, 4.0};
  const auto check = hsgd::check_sandwich(lower, middle, upper);
  CHECK(check.holds());
  CHECK(check.lower.mean == Approx(2.0));
  CHECK(check.lower_gap.mean == Approx((0.5 + 0.4 + 0.7) / 3));
  // The per-seed gaps 0.5, 0.4, 0.7 have sample standard deviation sqrt(0.07/3 ... ) computed here.
  const double m = (0.5 + 0.4 + 0.7) / 3;
  const double s2 = ((0.5 - m) * (0.5 - m) + (0.4 - m) * (0.4 - m) + (0.7 - m) * (0.7 - m)) / 2;
  CHECK(check.lower_gap.standard_error == Approx(std::sqrt(s2 / 3)));
  CHECK(check.holds_by(3));   // gap 0.53 against a standard error of 0.09
  // The seeds differ a lot (1..3), so unpaired means would not separate; pairing does.
  CHECK(check.middle.standard_error > check.lower_gap.mean);

  const std::vector<double> swapped{2.5, 3.4, 4.7};
  CHECK_FALSE(hsgd::check_sandwich(lower, swapped, upper).holds());
  CHECK_THAT(fmt::format("{}", hsgd::check_sandwich(lower, swapped, upper)), Contains("FAILS"));
  CHECK_THROWS_WITH(hsgd::check_sandwich(lower, middle, std::vector<double>{1.0}), Contains("one value per seed"));
}

TEST_CASE("estimate_gradient_noise is the per-sample variance over the batch size", "[theory][estimate]") {
  // Quadratic samples: grad l_k = a .* (x - c_k), so the per-sample variance is
  // sum_i a_i^2 var_k(c_{k,i}) whatever x is.
  const auto shards = noisy_quadratics(4, 3, 11, 50, 0.7);
  std::vector<double> variances;
  for (const auto& shard : shards) {
    const Mat& centres = shard.sample_centres();
    const Vec mean = centres.rowwise().mean();
    const Vec spread = (centres.colwise() - mean).array().square().rowwise().mean();
    variances.push_back((shard.curvature().array().square() * spread.array()).sum());
  }
  const auto noise = hsgd::estimate_gradient_noise(shards, Vec::Constant(3, 0.3), 5);
  CHECK(noise.mean == Approx(std::accumulate(variances.begin(), variances.end(), 0.0) / 4 / 5).epsilon(1e-12));
  CHECK(noise.maximum == Approx(*std::max_element(variances.begin(), variances.end()) / 5).epsilon(1e-12));
  CHECK_THROWS_WITH(hsgd::estimate_gradient_noise(shards, Vec::Zero(3), 0), Contains("'batch' (0)"));
}

TEST_CASE("estimate_smoothness finds the largest curvature of quadratics from below", "[theory][estimate]") {
  // F_j(x) = (1/2) sum_i a_i (x_i - b_i)^2 has L = max a_i. In d = 2 with curvatures (2, 1), a
  // direction within 0.16 rad of the first axis already gives ||A u|| >= 0.99 * 2; each random
  // direction lands there with probability 0.1, so 200 of them all miss with probability 1e-9.
  Vec curvature(2);
  curvature << 2.0, 1.0;
  const std::vector<hsgd::Quadratic<double>> shards{
      hsgd::Quadratic<double>::from_samples(curvature, Mat::Constant(2, 1, 0.5))};
  hsgd::Rng rng = hsgd::make_stream(8, hsgd::StreamKind::user, 0);
  const double estimate = hsgd::estimate_smoothness(shards, Vec::Zero(2), 0.1, 200, rng);
  CHECK(estimate <= 2.0 * (1 + 1e-12));
  CHECK(estimate >= 0.99 * 2.0);
  CHECK_THROWS_WITH(hsgd::estimate_smoothness(shards, Vec::Zero(2), 0.0, 10, rng), Contains("'radius' (0)"));
}
