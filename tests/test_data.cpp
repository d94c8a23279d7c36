// Data: gamma, Dirichlet and categorical draws; the Gaussian-mixture and synthetic(alpha, beta)
// generators; the IID, shard, Dirichlet and two-level Dirichlet partitioners; partition
// statistics and group layouts.
//
// Stochastic checks run on fixed seeds. Their margins come from the statistics of what is
// checked: z = 5 standard errors, computed from the exact moments of the distribution (a correct
// implementation misses one with probability below 1e-6), plus, where samples are cut into
// integer counts, a bound on the rounding.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <hsgd/data/distributions.hpp>
#include <hsgd/data/generators.hpp>
#include <hsgd/data/layout.hpp>
#include <hsgd/data/partition.hpp>
#include <hsgd/hsgd.hpp>

using Catch::Matchers::Contains;
using hsgd::Index;

// Bad input must throw hsgd::InvalidArgument whose message contains `text`.
#define CHECK_INVALID(expression, text)                 \
  do {                                                  \
    CHECK_THROWS_AS(expression, hsgd::InvalidArgument); \
    CHECK_THROWS_WITH(expression, Contains(text));      \
  } while (false)

namespace {

using Vec = hsgd::Vector<double>;
using Groups = std::vector<std::vector<Index>>;

constexpr double z = 5.0;  // standard errors in every Monte Carlo margin

hsgd::Rng test_stream(std::uint64_t id) { return hsgd::make_stream(2022, hsgd::StreamKind::user, id); }

/// Labels 0..C-1 repeated, `per_class` of each, interleaved (k % C).
std::vector<Index> balanced_labels(Index classes, Index per_class) {
  std::vector<Index> labels(static_cast<std::size_t>(classes * per_class));
  for (std::size_t k = 0; k < labels.size(); ++k) labels[k] = static_cast<Index>(k) % classes;
  return labels;
}

/// sizes[c] samples of class c, in a shuffled order.
std::vector<Index> labels_with_sizes(const std::vector<Index>& sizes) {
  std::vector<Index> labels;
  for (std::size_t c = 0; c < sizes.size(); ++c)
    labels.insert(labels.end(), static_cast<std::size_t>(sizes[c]), static_cast<Index>(c));
  test_stream(99).shuffle(std::span<Index>(labels));
  return labels;
}

/// Every sample 0..m-1 in exactly one worker, each worker's list increasing.
void require_exact_cover(const hsgd::Partition& partition, Index samples) {
  std::vector<int> seen(static_cast<std::size_t>(samples), 0);
  for (const auto& worker : partition) {
    REQUIRE(std::is_sorted(worker.begin(), worker.end()));
    REQUIRE(std::all_of(worker.begin(), worker.end(), [&](Index k) { return k >= 0 && k < samples; }));
    for (const Index k : worker) ++seen[static_cast<std::size_t>(k)];
  }
  REQUIRE(std::all_of(seen.begin(), seen.end(), [](int count) { return count == 1; }));
}

Index smallest(const hsgd::Partition& partition) {
  Index least = std::numeric_limits<Index>::max();
  for (const auto& worker : partition) least = std::min(least, static_cast<Index>(worker.size()));
  return least;
}

/// a (a + 1) ... (a + k - 1).
double rising(double a, int k) {
  double product = 1;
  for (int r = 0; r < k; ++r) product *= a + r;
  return product;
}

/// E[prod_i x_i^{k_i}] for x ~ Dir(alpha): prod_i rising(alpha_i, k_i) / rising(A, K).
double dirichlet_moment(std::span<const double> alpha, const std::vector<int>& powers) {
  double numerator = 1;
  int total_power = 0;
  for (std::size_t i = 0; i < alpha.size(); ++i) {
    numerator *= rising(alpha[i], powers[i]);
    total_power += powers[i];
  }
  return numerator / rising(std::accumulate(alpha.begin(), alpha.end(), 0.0), total_power);
}

/// Mean and variance of the Herfindahl index H = sum_i x_i^2 for x ~ Dir(alpha), from the exact
/// moments: E[H] = sum E[x_i^2], E[H^2] = sum_i E[x_i^4] + sum_{i != k} E[x_i^2 x_k^2].
std::pair<double, double> herfindahl_moments(std::span<const double> alpha) {
  const std::size_t k = alpha.size();
  double mean = 0;
  double second = 0;
  for (std::size_t i = 0; i < k; ++i) {
    std::vector<int> powers(k, 0);
    powers[i] = 2;
    mean += dirichlet_moment(alpha, powers);
    powers[i] = 4;
    second += dirichlet_moment(alpha, powers);
    for (std::size_t l = 0; l < k; ++l) {
      if (l == i) continue;
      std::vector<int> pair(k, 0);
      pair[i] = pair[l] = 2;
      second += dirichlet_moment(alpha, pair);
    }
  }
  return {mean, second - mean * mean};
}

/// Shares of a class cut into integer counts: each count is a difference of two floors of the
/// exact share times the total T, so it is off by less than 1 and the share by less than 1/T
/// (2/T once T itself is such a difference). H then moves by at most sum_i (2 x_i e + e^2)
/// <= 2 e + k e^2 with e the bound on one share's error.
struct ShareCases {
  std::vector<double> herfindahl;  // H of each observed share vector
  double rounding = 0;             // summed bound on |H_observed - H_exact|

  void add(const std::vector<Index>& counts, double share_error_numerator) {
    const double total =
        std::accumulate(counts.begin(), counts.end(), 0.0, [](double s, Index c) { return s + double(c); });
    REQUIRE(total > 0);
    double h = 0;
    for (const Index count : counts) h += std::pow(double(count) / total, 2);
    herfindahl.push_back(h);
    const double e = share_error_numerator / total;
    rounding += 2 * e + double(counts.size()) * e * e;
  }

  /// The mean H of the cases is E[H] for Dir(alpha) within z standard errors plus the rounding.
  void check(std::span<const double> alpha) const {
    const auto [mean, variance] = herfindahl_moments(alpha);
    const double cases = double(herfindahl.size());
    const double observed = std::accumulate(herfindahl.begin(), herfindahl.end(), 0.0) / cases;
    INFO("cases " << cases << ", E[H] " << mean << ", observed " << observed);
    CHECK(std::abs(observed - mean) <= z * std::sqrt(variance / cases) + rounding / cases);
  }
};

/// Bound on the mean TV distance of `units` label mixes from their reference when unit u's share
/// of class c is (1 + delta_uc) / units with sd(delta) = sd_delta (Dirichlet shares): to first
/// order TV_u = (1/2) sum_c ref_c |delta_uc - mean delta|, whose expectation is at most
/// sd_delta / 2 (Jensen) and whose sd is at most sd_delta / 2, so the mean over units lies within
/// sd_delta / 2 (1 + z / sqrt(units)). Integer counts move a mix by at most C / (unit size)
/// in TV.
double tv_bound(double sd_delta, Index classes, Index units, Index smallest_unit) {
  return 0.5 * sd_delta * (1 + z / std::sqrt(double(units))) + double(classes) / double(smallest_unit);
}

/// Groups of the given sizes over workers in `order`.
Groups cut(std::span<const Index> order, const std::vector<Index>& sizes) {
  Groups groups;
  auto next = order.begin();
  for (const Index size : sizes) {
    groups.emplace_back(next, next + size);
    next += size;
  }
  return groups;
}

/// Mean across-group skew over `draws` uniformly random groupings with these sizes.
double random_grouping_across(const hsgd::Partition& partition, std::span<const Index> labels, Index classes,
                              const std::vector<Index>& sizes, hsgd::Weighting weighting, int draws) {
  hsgd::Rng rng = test_stream(7);
  std::vector<Index> order(partition.size());
  std::iota(order.begin(), order.end(), Index{0});
  double total = 0;
  for (int draw = 0; draw < draws; ++draw) {
    rng.shuffle(std::span<Index>(order));
    total += hsgd::group_label_skew(partition, labels, classes, cut(order, sizes), weighting).across;
  }
  return total / draws;
}

double normal_tail(double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); }  // P(Z >= x)

}  // namespace

// ---------------------------------------------------------------------------------------------
// Distributions

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

// ---------------------------------------------------------------------------------------------
// Generators

TEST_CASE("Gaussian mixture: shapes, labels in range and exact class sizes", "[data]") {
  hsgd::GaussianMixtureOptions options;
  options.classes = 10;
  options.dimension = 3;
  options.samples = 1003;
  const auto data = hsgd::make_gaussian_mixture(options);
  CHECK(data.dimension() == 3);
  CHECK(data.size() == 1003);
  CHECK(data.classes == 10);
  CHECK_NOTHROW(data.validate());
  // Balanced: 1003 = 10 * 100 + 3, so the first three classes get 101.
  const std::vector<Index> balanced{101, 101, 101, 100, 100, 100, 100, 100, 100, 100};
  CHECK(data.class_counts() == balanced);
  CHECK(options.class_sizes() == balanced);

  options.classes = 4;
  options.proportions = {1, 2, 3, 4};
  options.samples = 1000;
  CHECK(hsgd::make_gaussian_mixture(options).class_counts() == std::vector<Index>{100, 200, 300, 400});
  options.samples = 1001;
  const auto counts = hsgd::make_gaussian_mixture(options).class_counts();
  CHECK(std::accumulate(counts.begin(), counts.end(), Index{0}) == 1001);
  for (std::size_t c = 0; c < 4; ++c) CHECK(std::abs(double(counts[c]) - 1001.0 * double(c + 1) / 10) < 1);

  options.classes = 2;
  options.proportions = {0, 1};
  CHECK(hsgd::make_gaussian_mixture(options).class_counts() == std::vector<Index>{0, 1001});
}

TEST_CASE("Gaussian mixture: class means on the sphere, samples scattered by the noise", "[data]") {
  hsgd::GaussianMixtureOptions options;
  options.classes = 4;
  options.dimension = 5;
  options.samples = 4000;
  options.separation = 3;
  options.noise = 0.5;
  options.seed = 8;
  const auto data = hsgd::make_gaussian_mixture(options);
  const hsgd::Matrix<double> means = hsgd::gaussian_mixture_means(options);
  REQUIRE(means.rows() == 5);
  REQUIRE(means.cols() == 4);
  for (Index c = 0; c < 4; ++c) CHECK(std::abs(means.col(c).norm() - 3) <= 1e-12);

  hsgd::Matrix<double> sums = hsgd::Matrix<double>::Zero(5, 4);
  double squares = 0;
  for (Index k = 0; k < data.size(); ++k) {
    const Index c = data.labels[static_cast<std::size_t>(k)];
    sums.col(c) += data.features.col(k);
    squares += (data.features.col(k) - means.col(c)).squaredNorm();
  }
  const auto sizes = data.class_counts();
  for (Index c = 0; c < 4; ++c) {
    const double m_c = double(sizes[static_cast<std::size_t>(c)]);
    // Each coordinate of a class mean has standard error sigma / sqrt(m_c).
    CHECK((sums.col(c) / m_c - means.col(c)).lpNorm<Eigen::Infinity>() <= z * options.noise / std::sqrt(m_c));
  }
  // d m squared deviations from the true means: Var(sigma^2 chi^2_1) = 2 sigma^4 each.
  const double values = double(data.size() * data.dimension());
  CHECK(std::abs(squares / values - 0.25) <= z * 0.25 * std::sqrt(2 / values));
}

TEST_CASE("Gaussian mixture: deterministic, per-class streams, shuffling only reorders", "[data]") {
  hsgd::GaussianMixtureOptions options;
  options.classes = 3;
  options.dimension = 4;
  options.samples = 300;
  options.seed = 5;
  const auto a = hsgd::make_gaussian_mixture(options);
  const auto b = hsgd::make_gaussian_mixture(options);
  CHECK(a.features == b.features);
  CHECK(a.labels == b.labels);
  options.seed = 6;
  CHECK(hsgd::make_gaussian_mixture(options).features != a.features);
  options.seed = 5;

  options.shuffle = false;
  const auto sorted = hsgd::make_gaussian_mixture(options);
  CHECK(std::is_sorted(sorted.labels.begin(), sorted.labels.end()));
  CHECK(!std::is_sorted(a.labels.begin(), a.labels.end()));
  // The shuffled data set holds the same samples: per class, the same first coordinates.
  for (Index c = 0; c < 3; ++c) {
    std::vector<double> shuffled_values;
    std::vector<double> sorted_values;
    for (Index k = 0; k < 300; ++k) {
      if (a.labels[static_cast<std::size_t>(k)] == c) shuffled_values.push_back(a.features(0, k));
      if (sorted.labels[static_cast<std::size_t>(k)] == c) sorted_values.push_back(sorted.features(0, k));
    }
    std::sort(shuffled_values.begin(), shuffled_values.end());
    std::sort(sorted_values.begin(), sorted_values.end());
    CHECK(shuffled_values == sorted_values);
  }

  // Each class draws from its own stream: growing class 2 from 100 to 200 samples leaves every
  // sample there was in place (the first 300 columns when sorted) and appends new ones.
  options.samples = 400;
  options.proportions = {1, 1, 2};
  const auto grown = hsgd::make_gaussian_mixture(options);
  CHECK(grown.features.leftCols(300) == sorted.features);
  CHECK(grown.labels[399] == 2);

  // Single precision holds the double samples rounded.
  options.samples = 300;
  options.proportions.clear();
  CHECK(hsgd::make_gaussian_mixture<float>(options).features == sorted.features.cast<float>());
}

TEST_CASE("LEAF synthetic: labels are the argmax of each device's model", "[data]") {
  hsgd::LeafSyntheticOptions options;
  options.devices = 6;
  options.classes = 5;
  options.dimension = 8;
  options.sizes = hsgd::DeviceSizes::fixed;
  options.samples_per_device = 50;
  options.seed = 3;
  const auto federated = hsgd::make_leaf_synthetic(options);
  const auto models = hsgd::leaf_synthetic_models(options);
  REQUIRE(federated.data.size() == 300);
  REQUIRE(federated.data.dimension() == 8);
  REQUIRE(federated.data.classes == 5);
  REQUIRE(federated.partition.size() == 6);
  REQUIRE(models.size() == 6);
  CHECK_NOTHROW(federated.data.validate());
  for (std::size_t k = 0; k < 6; ++k) {
    REQUIRE(models[k].weights.rows() == 5);
    REQUIRE(models[k].weights.cols() == 8);
    REQUIRE(models[k].bias.size() == 5);
    REQUIRE(models[k].input_mean.size() == 8);
    std::vector<Index> expected(50);
    std::iota(expected.begin(), expected.end(), Index(50 * k));
    REQUIRE(federated.partition[k] == expected);
    for (const Index sample : federated.partition[k]) {
      const Vec scores = models[k].weights * federated.data.features.col(sample) + models[k].bias;
      Index best = 0;
      for (Index c = 1; c < 5; ++c) best = scores(c) > scores(best) ? c : best;
      CHECK(federated.data.labels[static_cast<std::size_t>(sample)] == best);
    }
  }
  // Devices differ (they have their own streams), and more than one class occurs.
  CHECK(models[0].weights != models[1].weights);
  const auto counts = federated.data.class_counts();
  CHECK(std::count(counts.begin(), counts.end(), Index{0}) < 4);
  // Labels are computed before rounding, so single precision has the same labels.
  CHECK(hsgd::make_leaf_synthetic<float>(options).data.labels == federated.data.labels);
}

TEST_CASE("LEAF synthetic: inputs scatter around the device means with covariance diag(j^-1.2)", "[data]") {
  hsgd::LeafSyntheticOptions options;
  options.devices = 4;
  options.classes = 3;
  options.dimension = 6;
  options.sizes = hsgd::DeviceSizes::fixed;
  options.samples_per_device = 2000;
  const auto federated = hsgd::make_leaf_synthetic(options);
  const auto models = hsgd::leaf_synthetic_models(options);
  const double n = 2000;
  for (std::size_t k = 0; k < 4; ++k) {
    const auto block = federated.data.features.middleCols(Index(k) * 2000, 2000);
    const Vec mean = block.rowwise().mean();
    for (Index j = 0; j < 6; ++j) {
      const double variance = std::pow(double(j + 1), -1.2);
      const double spread = (block.row(j).array() - mean(j)).square().sum() / (n - 1);
      CHECK(std::abs(mean(j) - models[k].input_mean(j)) <= z * std::sqrt(variance / n));
      CHECK(std::abs(spread - variance) <= z * variance * std::sqrt(2 / (n - 1)));
    }
  }
}

TEST_CASE("LEAF synthetic: alpha and beta are the standard deviations of the device priors", "[data]") {
  // The mean of device k's C d + C model entries is u_k plus the mean of as many N(0, 1) draws,
  // so its variance over devices is alpha^2 + 1 / (C d + C); likewise the mean of v_k has
  // variance beta^2 + 1 / d. A sample variance over K normal values has sd var sqrt(2 / (K - 1)).
  struct Case {
    double alpha;
    double beta;
  };
  for (const Case c : {Case{3.0, 0.5}, Case{0.0, 2.0}}) {
    hsgd::LeafSyntheticOptions options;
    options.devices = 400;
    options.classes = 2;
    options.dimension = 4;
    options.alpha = c.alpha;
    options.beta = c.beta;
    options.sizes = hsgd::DeviceSizes::fixed;
    options.samples_per_device = 1;
    const auto models = hsgd::leaf_synthetic_models(options);
    std::vector<double> model_means;
    std::vector<double> input_means;
    for (const auto& model : models) {
      model_means.push_back((model.weights.sum() + model.bias.sum()) / 10);
      input_means.push_back(model.input_mean.mean());
    }
    auto variance = [](const std::vector<double>& values) {
      const double mean = std::accumulate(values.begin(), values.end(), 0.0) / double(values.size());
      double squares = 0;
      for (const double v : values) squares += (v - mean) * (v - mean);
      return squares / double(values.size() - 1);
    };
    const double expected_model = c.alpha * c.alpha + 0.1;
    const double expected_input = c.beta * c.beta + 0.25;
    INFO("alpha " << c.alpha << ", beta " << c.beta);
    CHECK(std::abs(variance(model_means) - expected_model) <= z * expected_model * std::sqrt(2.0 / 399));
    CHECK(std::abs(variance(input_means) - expected_input) <= z * expected_input * std::sqrt(2.0 / 399));
  }
}

TEST_CASE("LEAF synthetic: lognormal device sizes with the minimum and the cap", "[data]") {
  hsgd::LeafSyntheticOptions options;
  options.devices = 400;
  options.classes = 2;
  options.dimension = 1;
  options.max_samples = 200;
  const auto federated = hsgd::make_leaf_synthetic(options);
  // n_k = 50 + floor(exp(4 + 2 z)) capped at 200: n_k >= 50 + floor(e^4) iff z >= (ln floor(e^4) - 4) / 2,
  // and n_k = 200 iff exp(4 + 2 z) >= 150.
  const double p_median = normal_tail((std::log(std::floor(std::exp(4.0))) - 4) / 2);
  const double p_cap = normal_tail((std::log(150.0) - 4) / 2);
  double above_median = 0;
  double at_cap = 0;
  Index total = 0;
  for (const auto& device : federated.partition) {
    const auto size = static_cast<Index>(device.size());
    REQUIRE(size >= 50);
    REQUIRE(size <= 200);
    above_median += size >= 50 + Index(std::floor(std::exp(4.0))) ? 1 : 0;
    at_cap += size == 200 ? 1 : 0;
    total += size;
  }
  CHECK(total == federated.data.size());
  CHECK(std::abs(above_median / 400 - p_median) <= z * std::sqrt(p_median * (1 - p_median) / 400));
  CHECK(std::abs(at_cap / 400 - p_cap) <= z * std::sqrt(p_cap * (1 - p_cap) / 400));
}

TEST_CASE("LEAF synthetic: the IID variant shares one model and centred inputs", "[data]") {
  hsgd::LeafSyntheticOptions options;
  options.devices = 5;
  options.classes = 3;
  options.dimension = 4;
  options.iid = true;
  const auto models = hsgd::leaf_synthetic_models(options);
  for (const auto& model : models) {
    CHECK(model.weights == models[0].weights);
    CHECK(model.bias == models[0].bias);
    CHECK(model.input_mean == Vec::Zero(4));
  }
  options.iid = false;
  CHECK(hsgd::leaf_synthetic_models(options)[0].input_mean != Vec::Zero(4));
}

TEST_CASE("Generators reject bad options, naming the field", "[data]") {
  hsgd::GaussianMixtureOptions mixture;
  mixture.classes = 0;
  CHECK_INVALID(mixture.validate(), "'classes' (0) must be positive");
  mixture = {};
  mixture.noise = -1;
  CHECK_INVALID(hsgd::make_gaussian_mixture(mixture), "'noise' (-1)");
  mixture = {};
  mixture.separation = std::nan("");
  CHECK_INVALID(hsgd::gaussian_mixture_means(mixture), "'separation' (nan)");
  mixture = {};
  mixture.proportions = {1, 2};
  CHECK_INVALID(mixture.validate(), "'proportions' has 2 entries but 'classes' is 10");
  mixture.classes = 2;
  mixture.proportions = {1, -1};
  CHECK_INVALID(mixture.validate(), "'proportions'[1] (-1)");
  mixture.proportions = {0, 0};
  CHECK_INVALID(mixture.validate(), "'proportions' must have a positive sum");

  hsgd::LeafSyntheticOptions leaf;
  leaf.devices = 0;
  CHECK_INVALID(hsgd::make_leaf_synthetic(leaf), "'devices' (0)");
  leaf = {};
  leaf.alpha = -1;
  CHECK_INVALID(leaf.validate(), "'alpha' (-1)");
  leaf = {};
  leaf.lognormal_sigma = -2;
  CHECK_INVALID(leaf.validate(), "'lognormal_sigma' (-2)");
  leaf = {};
  leaf.min_samples = 0;
  CHECK_INVALID(leaf.validate(), "'min_samples' (0)");
  leaf = {};
  leaf.max_samples = 10;
  CHECK_INVALID(hsgd::leaf_synthetic_models(leaf),
                "'max_samples' (10) must be 0 (no cap) or at least 'min_samples' (50)");
}

// ---------------------------------------------------------------------------------------------
// Partitioners

namespace {

/// One partitioner of each kind, on labels with unequal classes, as (name, call with a seed).
struct NamedPartitioner {
  const char* name;
  Index min_size;
  std::function<hsgd::Partition(std::uint64_t)> run;
};

std::vector<NamedPartitioner> partitioners(std::span<const Index> labels, Index classes) {
  return {
      {"iid", 1,
       [=](std::uint64_t seed) { return hsgd::partition_iid(labels, classes, {.workers = 7, .seed = seed}); }},
      {"shards", 1,
       [=](std::uint64_t seed) {
         return hsgd::partition_shards(labels, classes, {.workers = 7, .shards_per_worker = 3, .seed = seed});
       }},
      {"dirichlet", 20,
       [=](std::uint64_t seed) {
         return hsgd::partition_dirichlet(labels, classes, {.workers = 7, .alpha = 0.3, .min_size = 20, .seed = seed});
       }},
      {"dirichlet, self-balancing", 20,
       [=](std::uint64_t seed) {
         return hsgd::partition_dirichlet(
             labels, classes, {.workers = 7, .alpha = 0.3, .min_size = 20, .self_balancing = true, .seed = seed});
       }},
      {"two-level dirichlet", 20,
       [=](std::uint64_t seed) {
         return hsgd::partition_two_level_dirichlet(
             labels, classes,
             {.group_sizes = {3, 1, 3}, .alpha_group = 0.5, .alpha_worker = 0.5, .min_size = 20, .seed = seed});
       }},
  };
}

}  // namespace

TEST_CASE("Every partitioner holds every sample exactly once and respects the minimum size", "[data]") {
  const std::vector<Index> labels = labels_with_sizes({300, 50, 120, 7, 523});
  for (const auto& partitioner : partitioners(labels, 5)) {
    INFO(partitioner.name);
    const hsgd::Partition partition = partitioner.run(1);
    REQUIRE(partition.size() == 7);
    require_exact_cover(partition, 1000);
    CHECK_NOTHROW(hsgd::check_partition(partition, 1000));
    CHECK(smallest(partition) >= partitioner.min_size);
  }
}

TEST_CASE("Partitioners are deterministic in the seed", "[data]") {
  const std::vector<Index> labels = labels_with_sizes({300, 50, 120, 7, 523});
  for (const auto& partitioner : partitioners(labels, 5)) {
    INFO(partitioner.name);
    CHECK(partitioner.run(4) == partitioner.run(4));
    CHECK(partitioner.run(4) != partitioner.run(5));
  }
}

TEST_CASE("IID partition: sizes differ by at most one, class counts are hypergeometric", "[data]") {
  const std::vector<Index> few = balanced_labels(1, 1003);
  const auto uneven = hsgd::partition_iid(few, 1, {.workers = 10});
  for (std::size_t j = 0; j < 10; ++j) CHECK(uneven[j].size() == (j < 3 ? 101U : 100U));

  // 10000 samples, 1000 per class, 1000 per worker: a worker's count of a class is
  // hypergeometric with mean 100 and variance 1000 (1/10)(9/10)(9000/9999).
  const std::vector<Index> labels = balanced_labels(10, 1000);
  const auto partition = hsgd::partition_iid(labels, 10, {.workers = 10, .seed = 3});
  const double sd = std::sqrt(1000 * 0.1 * 0.9 * 9000.0 / 9999.0);
  const auto summary = hsgd::summarize(partition, labels, 10);
  for (const auto& counts : summary.class_counts) {
    for (const Index count : counts) CHECK(std::abs(double(count) - 100) <= z * sd);
  }
}

TEST_CASE("Shard partition: a worker holds only its shards' labels", "[data]") {
  // 10 classes of 200, 20 workers with 2 shards each: 40 shards of 50, 4 per class, none
  // straddling two labels.
  const std::vector<Index> labels = balanced_labels(10, 200);
  const auto partition = hsgd::partition_shards(labels, 10, {.workers = 20, .shards_per_worker = 2, .seed = 9});
  require_exact_cover(partition, 2000);
  const auto summary = hsgd::summarize(partition, labels, 10);
  std::vector<Index> holders(10, 0);
  for (const auto& counts : summary.class_counts) {
    CHECK(std::accumulate(counts.begin(), counts.end(), Index{0}) == 100);
    CHECK(std::count_if(counts.begin(), counts.end(), [](Index n) { return n > 0; }) <= 2);
    for (std::size_t c = 0; c < 10; ++c) {
      CHECK(counts[c] % 50 == 0);  // whole shards
      holders[c] += counts[c] > 0 ? 1 : 0;
    }
  }
  for (const Index h : holders) CHECK(h <= 4);
  // Shards are dealt at random: not every worker holds two copies of one label.
  CHECK(summary.labels_per_worker > 1);
}

TEST_CASE("Dirichlet partition: each class's worker shares follow Dir(alpha)", "[data]") {
  // 20 classes of 1000 over 10 workers, 10 seeds: 200 share vectors per alpha. With min_size 1
  // a re-draw (which would condition the shares) has probability below 0.3% even at alpha 0.05.
  const std::vector<Index> labels = balanced_labels(20, 1000);
  for (const double alpha : {0.05, 1.0, 20.0}) {
    INFO("alpha " << alpha);
    ShareCases cases;
    for (std::uint64_t seed = 0; seed < 10; ++seed) {
      const auto partition =
          hsgd::partition_dirichlet(labels, 20, {.workers = 10, .alpha = alpha, .min_size = 1, .seed = seed});
      require_exact_cover(partition, 20000);
      const auto counts = hsgd::summarize(partition, labels, 20).class_counts;
      for (std::size_t c = 0; c < 20; ++c) {
        std::vector<Index> shares;
        for (const auto& worker : counts) shares.push_back(worker[c]);
        cases.add(shares, 1);
      }
    }
    cases.check(std::vector<double>(10, alpha));
  }
}

TEST_CASE("Dirichlet partition: large alpha keeps label mixes near the global one, small alpha skews them", "[data]") {
  const std::vector<Index> labels = balanced_labels(10, 1000);
  const auto near = hsgd::partition_dirichlet(labels, 10, {.workers = 10, .alpha = 1000, .seed = 2});
  const auto near_summary = hsgd::summarize(near, labels, 10);
  // A worker's share of a class is Beta(alpha, 9 alpha): (1 + delta) / 10, sd(delta) = sqrt(9 / (10 alpha + 1)).
  CHECK(near_summary.label_skew <= tv_bound(std::sqrt(9 / (10 * 1000.0 + 1)), 10, 10, near_summary.size_min));
  CHECK(near_summary.labels_per_worker == 10);

  // alpha = 0.05: each class's Herfindahl index over the workers is E[H] = (alpha + 1) / (10 alpha + 1)
  // = 0.7 (checked exactly above), i.e. a class sits mostly with one worker, and a worker's mix is
  // concentrated on the few classes it dominates. TV 0.5 would mean five of ten classes held evenly.
  const auto skewed = hsgd::partition_dirichlet(labels, 10, {.workers = 10, .alpha = 0.05, .min_size = 1, .seed = 2});
  CHECK(hsgd::summarize(skewed, labels, 10).label_skew > 0.5);
}

TEST_CASE("Dirichlet partition: min_size is met by re-drawing, or the error names min_size and alpha", "[data]") {
  const std::vector<Index> labels = balanced_labels(10, 200);
  const auto partition =
      hsgd::partition_dirichlet(labels, 10, {.workers = 10, .alpha = 0.5, .min_size = 60, .seed = 1});
  require_exact_cover(partition, 2000);
  CHECK(smallest(partition) >= 60);

  // Every worker at exactly m / n = 200 is all but impossible with Dirichlet shares.
  const hsgd::DirichletPartitionOptions impossible{.workers = 10, .alpha = 0.1, .min_size = 200, .max_attempts = 5};
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 10, impossible), "'min_size' (200)");
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 10, impossible), "'alpha' (0.1)");
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 10, impossible), "'max_attempts' (5)");
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 10, {.workers = 10, .min_size = 201}),
                "'min_size' (201) times the 10 workers must not exceed the number of samples (2000)");
}

TEST_CASE("Dirichlet partition: self-balancing stops feeding workers that hold m / n samples", "[data]") {
  // 20 classes of 100 over 10 workers: once a worker holds m / n = 200 samples it gets no share
  // of later classes, so no worker can end above 200 + 100 (one class on top).
  const std::vector<Index> labels = balanced_labels(20, 100);
  const hsgd::DirichletPartitionOptions plain{.workers = 10, .alpha = 0.1, .min_size = 1, .seed = 4};
  hsgd::DirichletPartitionOptions balancing = plain;
  balancing.self_balancing = true;
  const auto balanced = hsgd::partition_dirichlet(labels, 20, balancing);
  require_exact_cover(balanced, 2000);
  CHECK(hsgd::summarize(balanced, labels, 20).size_max < 300);
  // Without balancing this draw does exceed the bound, so the check above has teeth.
  CHECK(hsgd::summarize(hsgd::partition_dirichlet(labels, 20, plain), labels, 20).size_max >= 300);
}

TEST_CASE("Two-level Dirichlet: group shares follow Dir(alpha_group n_i), shares in a group Dir(alpha_worker)",
          "[data]") {
  // Workers are numbered group by group, so group i is the contiguous block of its n_i workers.
  const std::vector<Index> sizes{3, 5, 2};
  const std::vector<Index> labels = balanced_labels(20, 1000);
  struct Case {
    double alpha_group;
    double alpha_worker;
  };
  for (const Case c : {Case{0.2, 5.0}, Case{5.0, 0.2}, Case{1.0, 1.0}}) {
    INFO("alpha_group " << c.alpha_group << ", alpha_worker " << c.alpha_worker);
    ShareCases group_cases;
    std::vector<ShareCases> inside_cases(3);
    ShareCases worker_cases;
    for (std::uint64_t seed = 0; seed < 10; ++seed) {
      const auto partition = hsgd::partition_two_level_dirichlet(labels, 20,
                                                                 {.group_sizes = sizes,
                                                                  .alpha_group = c.alpha_group,
                                                                  .alpha_worker = c.alpha_worker,
                                                                  .min_size = 1,
                                                                  .seed = seed});
      REQUIRE(partition.size() == 10);
      require_exact_cover(partition, 20000);
      const auto counts = hsgd::summarize(partition, labels, 20).class_counts;
      for (std::size_t k = 0; k < 20; ++k) {
        std::vector<Index> group_counts;
        std::vector<Index> worker_counts;
        std::size_t worker = 0;
        for (std::size_t i = 0; i < 3; ++i) {
          std::vector<Index> inside;
          for (Index j = 0; j < sizes[i]; ++j, ++worker) inside.push_back(counts[worker][k]);
          worker_counts.insert(worker_counts.end(), inside.begin(), inside.end());
          group_counts.push_back(std::accumulate(inside.begin(), inside.end(), Index{0}));
          // Shares inside a group divide by the group's own rounded total: error below 2 / total.
          if (c.alpha_group >= 1) inside_cases[i].add(inside, 2);
        }
        group_cases.add(group_counts, 1);
        worker_cases.add(worker_counts, 1);
      }
    }
    group_cases.check(std::vector<double>{3 * c.alpha_group, 5 * c.alpha_group, 2 * c.alpha_group});
    // Small group shares leave too few samples to cut, so shares inside a group are checked
    // where the groups are well fed.
    if (c.alpha_group >= 1) {
      for (std::size_t i = 0; i < 3; ++i)
        inside_cases[i].check(std::vector<double>(static_cast<std::size_t>(sizes[i]), c.alpha_worker));
    }
    // Aggregation property: equal alphas give the one-level Dir(alpha 1_n) shares.
    if (c.alpha_group == c.alpha_worker) worker_cases.check(std::vector<double>(10, c.alpha_worker));
  }
}

TEST_CASE("Two-level Dirichlet: alpha_group moves the across-group skew, alpha_worker the inside one", "[data]") {
  const std::vector<Index> sizes{5, 5, 5, 5};
  const Groups contiguous{{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}, {10, 11, 12, 13, 14}, {15, 16, 17, 18, 19}};
  const std::vector<Index> labels = balanced_labels(10, 2000);
  struct Measured {
    hsgd::GroupLabelSkew pooled;   // data-size weights: the mixes the alphas control exactly
    hsgd::GroupLabelSkew uniform;  // the engine's default weights
    Index smallest_worker;
    Index smallest_group;
  };
  auto measure = [&](double alpha_group, double alpha_worker) {
    const auto partition = hsgd::partition_two_level_dirichlet(
        labels, 10,
        {.group_sizes = sizes, .alpha_group = alpha_group, .alpha_worker = alpha_worker, .min_size = 5, .seed = 1});
    Index least_group = std::numeric_limits<Index>::max();
    for (const auto& group : contiguous) {
      Index total = 0;
      for (const Index j : group) total += static_cast<Index>(partition[static_cast<std::size_t>(j)].size());
      least_group = std::min(least_group, total);
    }
    return Measured{hsgd::group_label_skew(partition, labels, 10, contiguous, hsgd::Weighting::data_size),
                    hsgd::group_label_skew(partition, labels, 10, contiguous), smallest(partition), least_group};
  };
  const double small = 0.1;
  const double large = 1000;
  const Measured alike_groups = measure(large, small);   // D_up small, D_down large
  const Measured alike_workers = measure(small, large);  // D_up large, D_down small
  const Measured all_alike = measure(large, large);
  const Measured none_alike = measure(small, small);

  // Large alphas: a group's share of a class is Beta(alpha 5, alpha 15) = (1 + delta) / 4 with
  // sd(delta) = sqrt(3 / (20 alpha + 1)); a worker's share of its group's part is
  // Beta(alpha, 4 alpha) = (1 + delta) / 5 with sd(delta) = sqrt(4 / (5 alpha + 1)).
  const double group_sd = std::sqrt(3 / (20 * large + 1));
  const double worker_sd = std::sqrt(4 / (5 * large + 1));
  for (const Measured& m : {alike_groups, all_alike}) {
    CHECK(m.pooled.across <= tv_bound(group_sd, 10, 4, m.smallest_group));
  }
  for (const Measured& m : {alike_workers, all_alike}) {
    CHECK(m.pooled.inside <= tv_bound(worker_sd, 10, 20, m.smallest_worker));
  }
  // Small alphas move each skew far above those bounds, under either weighting.
  const double across_bound = tv_bound(group_sd, 10, 4, all_alike.smallest_group);
  const double inside_bound = tv_bound(worker_sd, 10, 20, all_alike.smallest_worker);
  for (const auto pick : {&Measured::pooled, &Measured::uniform}) {
    for (const Measured& m : {alike_workers, none_alike}) {
      CHECK((m.*pick).across > 5 * across_bound);
      CHECK((m.*pick).across > (alike_groups.*pick).across);
      CHECK((m.*pick).across > (all_alike.*pick).across);
    }
    for (const Measured& m : {alike_groups, none_alike}) {
      CHECK((m.*pick).inside > 5 * inside_bound);
      CHECK((m.*pick).inside > (alike_workers.*pick).inside);
      CHECK((m.*pick).inside > (all_alike.*pick).inside);
    }
  }
}

TEST_CASE("Partitioners reject bad input, naming the parameter", "[data]") {
  const std::vector<Index> labels = balanced_labels(3, 4);
  CHECK_INVALID(hsgd::partition_iid(labels, 3, {.workers = 0}), "'workers' (0) must be positive");
  CHECK_INVALID(hsgd::partition_iid(labels, 3, {.workers = 13}),
                "'workers' (13) must not exceed the number of samples (12)");
  CHECK_INVALID(hsgd::partition_iid(labels, 0, {}), "'classes' (0) must be positive");
  CHECK_INVALID(hsgd::partition_iid(labels, 2, {.workers = 2}), "'labels'[2] (2) must be in [0, 2)");
  CHECK_INVALID(hsgd::partition_shards(labels, 3, {.workers = 2, .shards_per_worker = 0}), "'shards_per_worker' (0)");
  CHECK_INVALID(hsgd::partition_shards(labels, 3, {.workers = 5, .shards_per_worker = 3}),
                "'workers' (5) times 'shards_per_worker' (3) must not exceed the number of samples (12)");
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 3, {.workers = 2, .alpha = 0}),
                "'alpha' (0) must be finite and positive");
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 3, {.workers = 2, .min_size = 0}), "'min_size' (0)");
  CHECK_INVALID(hsgd::partition_dirichlet(labels, 3, {.workers = 2, .min_size = 1, .max_attempts = 0}),
                "'max_attempts' (0)");
  CHECK_INVALID(hsgd::partition_two_level_dirichlet(labels, 3, {.group_sizes = {}}),
                "'group_sizes' must name at least one group");
  CHECK_INVALID(hsgd::partition_two_level_dirichlet(labels, 3, {.group_sizes = {2, 0}}), "'group_sizes'[1] (0)");
  CHECK_INVALID(hsgd::partition_two_level_dirichlet(labels, 3, {.group_sizes = {2}, .alpha_group = -1}),
                "'alpha_group' (-1)");
  CHECK_INVALID(hsgd::partition_two_level_dirichlet(labels, 3, {.group_sizes = {2}, .alpha_worker = std::nan("")}),
                "'alpha_worker' (nan)");
  CHECK_INVALID(hsgd::partition_two_level_dirichlet(labels, 3, {.group_sizes = {2, 2}, .min_size = 4}),
                "'min_size' (4) times the 4 workers must not exceed the number of samples (12)");

  CHECK_INVALID(hsgd::check_partition({{0, 1}, {1, 2}}, 3), "sample 1 appears twice");
  CHECK_INVALID(hsgd::check_partition({{0}, {2}}, 3), "sample 1 is held by no worker");
  CHECK_INVALID(hsgd::check_partition({{0, 1, 2, 3}}, 3), "worker 0 holds sample 3, outside [0, 3)");
}

TEST_CASE("Worker data sets hold the partition's samples", "[data]") {
  hsgd::GaussianMixtureOptions options;
  options.classes = 3;
  options.dimension = 2;
  options.samples = 60;
  const auto data = hsgd::make_gaussian_mixture(options);
  const auto partition = hsgd::partition_iid(data, {.workers = 4});
  const auto shards = hsgd::worker_datasets(data, partition);
  REQUIRE(shards.size() == 4);
  for (std::size_t j = 0; j < 4; ++j) {
    REQUIRE(shards[j].size() == static_cast<Index>(partition[j].size()));
    CHECK(shards[j].classes == 3);
    for (std::size_t k = 0; k < partition[j].size(); ++k) {
      CHECK(shards[j].labels[k] == data.labels[static_cast<std::size_t>(partition[j][k])]);
      CHECK(shards[j].features.col(Index(k)) == data.features.col(partition[j][k]));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics

TEST_CASE("Partition summary: size percentiles, class counts and label skew by hand", "[data]") {
  // Sizes 1, 2, 3, 10 (one class): numpy-style percentiles sit at positions q (4 - 1) of the
  // sorted sizes: p10 at 0.3 -> 1.3, p50 at 1.5 -> 2.5, p90 at 2.7 -> 3 + 0.7 (10 - 3) = 7.9.
  const std::vector<Index> one_class(16, 0);
  const hsgd::Partition uneven{{0}, {1, 2}, {3, 4, 5}, {6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};
  const auto sizes = hsgd::summarize(uneven, one_class, 1);
  CHECK(sizes.workers == 4);
  CHECK(sizes.samples == 16);
  CHECK(sizes.size_min == 1);
  CHECK(sizes.size_p10 == Approx(1.3));
  CHECK(sizes.size_p50 == Approx(2.5));
  CHECK(sizes.size_p90 == Approx(7.9));
  CHECK(sizes.size_max == 10);
  CHECK(sizes.size_mean == Approx(4.0));
  CHECK(sizes.size_stdev == Approx(std::sqrt((9.0 + 4.0 + 1.0 + 36.0) / 4)));  // population sd
  CHECK(sizes.label_skew == 0);
  CHECK(sizes.labels_per_worker == 1);

  // Two classes, two workers: sorted by class, each worker's mix is (1, 0) or (0, 1), TV 1/2 from
  // (1/2, 1/2); interleaved, both mixes are the global one.
  const std::vector<Index> labels{0, 0, 1, 1};
  const auto apart = hsgd::summarize({{0, 1}, {2, 3}}, labels, 2);
  CHECK(apart.label_skew == Approx(0.5));
  CHECK(apart.labels_per_worker == 1);
  CHECK(apart.class_counts == std::vector<std::vector<Index>>{{2, 0}, {0, 2}});
  const auto mixed = hsgd::summarize({{0, 2}, {1, 3}}, labels, 2);
  CHECK(mixed.label_skew == 0);
  CHECK(mixed.labels_per_worker == 2);
  CHECK(mixed.class_counts == std::vector<std::vector<Index>>{{1, 1}, {1, 1}});

  const std::string report = fmt::format("{}", apart);
  CHECK(report == apart.brief_report());
  CHECK_THAT(report, Contains("2 workers, 4 samples, 2 classes") && Contains("label skew 0.5000"));

  CHECK_INVALID(hsgd::summarize({{0, 1, 2, 3}, {}}, labels, 2), "worker 1 holds no samples");
  CHECK_INVALID(hsgd::summarize({{0, 1, 2, 3, 4}}, labels, 2), "worker 0 holds sample 4, outside [0, 4)");
}

TEST_CASE("Group label skew by hand: across and inside groups, uniform and data-size weights", "[data]") {
  // Worker 0 holds three samples of class 0, worker 1 one of class 0, workers 2 and 3 one of class 1 each.
  const std::vector<Index> labels{0, 0, 0, 0, 1, 1};
  const hsgd::Partition partition{{0, 1, 2}, {3}, {4}, {5}};
  // Uniform weights: mixes (1,0), (1,0), (0,1), (0,1); global (1/2, 1/2).
  const auto by_label = hsgd::group_label_skew(partition, labels, 2, {{0, 1}, {2, 3}});
  CHECK(by_label.across == Approx(0.5));
  CHECK(by_label.inside == 0);
  const auto crossed = hsgd::group_label_skew(partition, labels, 2, {{0, 2}, {1, 3}});
  CHECK(crossed.across == 0);
  CHECK(crossed.inside == Approx(0.5));
  // Data-size weights 3, 1, 1, 1 (W = 6): global (2/3, 1/3); group {0, 2} has (3/4, 1/4) and
  // weight 4, group {1, 3} (1/2, 1/2) and weight 2. across = 4/6 * 1/12 + 2/6 * 1/6 = 1/9;
  // inside = (3 * 1/4 + 1 * 3/4 + 1 * 1/2 + 1 * 1/2) / 6 = 5/12.
  const auto weighted = hsgd::group_label_skew(partition, labels, 2, {{0, 2}, {1, 3}}, hsgd::Weighting::data_size);
  CHECK(weighted.across == Approx(1.0 / 9));
  CHECK(weighted.inside == Approx(5.0 / 12));
  // Singleton groups: no inside skew; one group: no across skew.
  CHECK(hsgd::group_label_skew(partition, labels, 2, {{0}, {1}, {2}, {3}}).inside == 0);
  CHECK(hsgd::group_label_skew(partition, labels, 2, {{0, 1, 2, 3}}).across == 0);

  CHECK_INVALID(hsgd::group_label_skew(partition, labels, 2, {{0, 1}, {2}}), "worker 3 is in no group");
  CHECK_INVALID(hsgd::group_label_skew(partition, labels, 2, {{0, 1}, {1, 2, 3}}), "worker 1 is listed twice");
  CHECK_INVALID(hsgd::group_label_skew(partition, labels, 2, {{0, 1, 2, 3}, {}}), "group 1 is empty");
}

// ---------------------------------------------------------------------------------------------
// Layouts

namespace {

void require_layout(const Groups& groups, const std::vector<Index>& sizes, Index workers) {
  REQUIRE(groups.size() == sizes.size());
  std::vector<Index> all;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    REQUIRE(static_cast<Index>(groups[g].size()) == sizes[g]);
    all.insert(all.end(), groups[g].begin(), groups[g].end());
  }
  std::sort(all.begin(), all.end());
  std::vector<Index> expected(static_cast<std::size_t>(workers));
  std::iota(expected.begin(), expected.end(), Index{0});
  REQUIRE(all == expected);
}

}  // namespace

TEST_CASE("Layouts: group-IID mixes are closer to the global one than random, group-non-IID farther", "[data]") {
  const std::vector<Index> labels = balanced_labels(10, 1200);
  const std::vector<Index> sizes{4, 8, 6, 6};
  struct Case {
    const char* name;
    hsgd::Partition partition;
  };
  const Case cases[] = {
      {"dirichlet", hsgd::partition_dirichlet(labels, 10, {.workers = 24, .alpha = 0.2, .seed = 3})},
      {"shards", hsgd::partition_shards(labels, 10, {.workers = 24, .shards_per_worker = 2, .seed = 3})},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const Groups iid = hsgd::group_iid_layout(c.partition, labels, 10, sizes);
    const Groups non_iid = hsgd::group_non_iid_layout(c.partition, labels, 10, sizes);
    require_layout(iid, sizes, 24);
    require_layout(non_iid, sizes, 24);
    const auto iid_skew = hsgd::group_label_skew(c.partition, labels, 10, iid);
    const auto non_iid_skew = hsgd::group_label_skew(c.partition, labels, 10, non_iid);
    const double random = random_grouping_across(c.partition, labels, 10, sizes, hsgd::Weighting::uniform, 50);
    CHECK(iid_skew.across < random);
    CHECK(non_iid_skew.across > random);
    CHECK(iid_skew.inside > non_iid_skew.inside);

    // Data-size weights: the layout balances the pooled mixes instead.
    const Groups pooled = hsgd::group_iid_layout(c.partition, labels, 10, sizes, hsgd::Weighting::data_size);
    require_layout(pooled, sizes, 24);
    CHECK(hsgd::group_label_skew(c.partition, labels, 10, pooled, hsgd::Weighting::data_size).across <
          random_grouping_across(c.partition, labels, 10, sizes, hsgd::Weighting::data_size, 50));
  }
}

TEST_CASE("Layouts: no swap of two workers improves the group-IID layout", "[data]") {
  const std::vector<Index> labels = balanced_labels(6, 300);
  const std::vector<Index> sizes{3, 5, 4};
  const auto partition = hsgd::partition_dirichlet(labels, 6, {.workers = 12, .alpha = 0.3, .seed = 8});
  const Groups groups = hsgd::group_iid_layout(partition, labels, 6, sizes);
  const double across = hsgd::group_label_skew(partition, labels, 6, groups).across;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (std::size_t h = g + 1; h < groups.size(); ++h) {
      for (std::size_t a = 0; a < groups[g].size(); ++a) {
        for (std::size_t b = 0; b < groups[h].size(); ++b) {
          Groups swapped = groups;
          std::swap(swapped[g][a], swapped[h][b]);
          CHECK(hsgd::group_label_skew(partition, labels, 6, swapped).across >= across - 1e-12);
        }
      }
    }
  }
}

TEST_CASE("Layouts: group-non-IID gathers workers by dominant label; both plug into ExplicitGrouping", "[data]") {
  // Six workers, each holding one class (0, 1, 2, 0, 1, 2): in groups of two, the non-IID layout
  // pairs equal labels, the IID layout never does.
  const std::vector<Index> labels{0, 1, 2, 0, 1, 2};
  const hsgd::Partition partition{{0}, {1}, {2}, {3}, {4}, {5}};
  const std::vector<Index> sizes{2, 2, 2};
  const Groups non_iid = hsgd::group_non_iid_layout(partition, labels, 3, sizes);
  CHECK(non_iid == Groups{{0, 3}, {1, 4}, {2, 5}});
  const Groups iid = hsgd::group_iid_layout(partition, labels, 3, sizes);
  for (const auto& group : iid)
    CHECK(labels[static_cast<std::size_t>(group[0])] != labels[static_cast<std::size_t>(group[1])]);

  const hsgd::Topology topology = hsgd::Topology::two_level(sizes, 2, 4);
  for (const Groups& groups : {iid, non_iid}) {
    std::vector<Index> slots(6, -1);
    hsgd::Rng rng = test_stream(0);
    hsgd::ExplicitGrouping(groups).assign(topology, slots, rng);
    std::vector<Index> sorted_slots = slots;
    std::sort(sorted_slots.begin(), sorted_slots.end());
    CHECK(sorted_slots == std::vector<Index>{0, 1, 2, 3, 4, 5});
  }

  CHECK_INVALID(hsgd::group_iid_layout(partition, labels, 3, std::vector<Index>{2, 2}),
                "'group_sizes' hold 4 workers in all, but the partition has 6");
  CHECK_INVALID(hsgd::group_non_iid_layout(partition, labels, 3, std::vector<Index>{2, 0, 4}), "'group_sizes'[1] (0)");
  CHECK_INVALID(hsgd::group_non_iid_layout(partition, labels, 3, std::vector<Index>{}),
                "'group_sizes' must name at least one group");
}
