// Generators: the Gaussian mixture and LEAF's synthetic(alpha, beta) data, their statistics
// against the exact moments, and the options they refuse (sizes whose products overflow, weights
// that sum to infinity, parameters whose samples would not be finite). Margins: z standard errors
// from the exact moments (data_support.hpp).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include <catch2/catch.hpp>

#include "data_support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

double normal_tail(double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); }  // P(Z >= x)

}  // namespace

TEST_CASE("Gaussian mixture: shapes, labels in range and exact class sizes", "[data]") {
  hsgd::GaussianMixtureOptions options = mixture_options(10, 3, 1003);
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
  hsgd::GaussianMixtureOptions options = mixture_options(4, 5, 4000);
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
  hsgd::GaussianMixtureOptions options = mixture_options(3, 4, 300);
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
  const hsgd::LeafSyntheticOptions options{
      .devices = 6, .classes = 5, .dimension = 8, .sizes = hsgd::DeviceSizes::fixed, .samples_per_device = 50, .seed = 3};
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
  const hsgd::LeafSyntheticOptions options{
      .devices = 4, .classes = 3, .dimension = 6, .sizes = hsgd::DeviceSizes::fixed, .samples_per_device = 2000};
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
    const hsgd::LeafSyntheticOptions options{.devices = 400,
                                             .classes = 2,
                                             .dimension = 4,
                                             .alpha = c.alpha,
                                             .beta = c.beta,
                                             .sizes = hsgd::DeviceSizes::fixed,
                                             .samples_per_device = 1};
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
  const hsgd::LeafSyntheticOptions options{.devices = 400, .classes = 2, .dimension = 1, .max_samples = 200};
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
  hsgd::LeafSyntheticOptions options{.devices = 5, .classes = 3, .dimension = 4, .iid = true};
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

TEST_CASE("Generators refuse sample counts whose features overflow the address range", "[hardening][data]") {
  const Index big = Index{1} << 40;
  REQUIRE_INVALID(mixture_options(10, big, big).validate(),
                  "'samples' (1099511627776) times 'dimension' (1099511627776)");
  REQUIRE_INVALID(hsgd::make_gaussian_mixture(mixture_options(big, big, 1000)),
                  "'classes' (1099511627776) times 'dimension'");
  REQUIRE_INVALID(hsgd::make_leaf_synthetic(hsgd::LeafSyntheticOptions{
                      .devices = big, .sizes = hsgd::DeviceSizes::fixed, .samples_per_device = big}),
                  "'devices' (1099511627776) times 1099511627776 samples each");
  REQUIRE_INVALID(hsgd::LeafSyntheticOptions({.min_samples = (Index{1} << 53) + 1}).validate(),
                  "'min_samples' (9007199254740993) must be at most 2^53");
  REQUIRE_INVALID(hsgd::make_b1_shards<double>({.samples_per_worker = Index{1} << 62, .dimension = 4}),
                  "'samples_per_worker' (4611686018427387904) times 'dimension' (4)");
  hsgd::Rng rng(1);
  REQUIRE_INVALID(hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Zero(4), Index{1} << 62, 1.0, rng),
                  "'samples' (4611686018427387904) times the 4 coordinates");
}

TEST_CASE("Sums of weights that overflow to infinity are named errors", "[hardening][data]") {
  hsgd::GaussianMixtureOptions options = mixture_options(2, 2, 10);
  options.proportions = {1e308, 1e308};
  REQUIRE_INVALID(options.validate(), "'proportions' sum to inf");
  REQUIRE_INVALID(hsgd::make_gaussian_mixture(options), "'proportions' sum to inf");
  options.proportions = {1e307, 1e307};  // finite sum: fine, and balanced
  CHECK(options.class_sizes() == std::vector<Index>{5, 5});

  hsgd::Rng rng(2);
  REQUIRE_INVALID(hsgd::draw_categorical(rng, std::vector<double>{1e308, 1e308}), "'weights' (2 entries) sum to inf");
}

TEST_CASE("Class sizes from extreme proportions still sum to the sample count", "[hardening][data]") {
  // The sizes index the generator's sample order: they must sum to m exactly, never more, for
  // subnormal weights and sums as much as for ordinary ones.
  for (const std::vector<double>& proportions :
       {std::vector<double>{1e-320, 0}, std::vector<double>{4.9e-324, 4.9e-324, 1e-323},
        std::vector<double>{3e-310, 7e-321, 2e-322}}) {
    hsgd::GaussianMixtureOptions options = mixture_options(static_cast<Index>(proportions.size()), 1, 1000003);
    options.proportions = proportions;
    const std::vector<Index> sizes = options.class_sizes();
    CHECK(std::accumulate(sizes.begin(), sizes.end(), Index{0}) == options.samples);
    for (const Index size : sizes) CHECK(size >= 0);
  }
  hsgd::GaussianMixtureOptions tiny = mixture_options(2, 1, 1000);
  tiny.proportions = {1e-320, 0};
  CHECK(tiny.class_sizes() == std::vector<Index>{1000, 0});
  const hsgd::Dataset<double> data = hsgd::make_gaussian_mixture(tiny);
  CHECK(data.class_counts() == std::vector<Index>{1000, 0});
}

TEST_CASE("LEAF synthetic: log-normal sizes that explode are a named error, not an overflow", "[hardening][data]") {
  // exp(700) samples per device: each is capped at 2^53, and 30 of them times 60 features
  // overflow any byte count. Before, the total itself could overflow (undefined behaviour), and a
  // max_samples near the largest Index made the capped size's conversion undefined.
  hsgd::LeafSyntheticOptions options;
  options.lognormal_mu = 700;
  REQUIRE_INVALID(hsgd::make_leaf_synthetic(options), "the lognormal device sizes ('lognormal_mu' 700");
  REQUIRE_INVALID(hsgd::leaf_synthetic_models(options), "set 'max_samples'");
  options.max_samples = max_index;
  REQUIRE_INVALID(hsgd::make_leaf_synthetic(options), "exploded");
  // A cap that holds them makes the same parameters work.
  options.max_samples = 60;
  const auto capped = hsgd::make_leaf_synthetic(options);
  for (const auto& part : capped.partition) CHECK(part.size() == 60);
  // A max_samples near the largest Index with ordinary sizes is fine too.
  hsgd::LeafSyntheticOptions ordinary;
  ordinary.devices = 5;
  ordinary.max_samples = max_index;
  const auto data = hsgd::make_leaf_synthetic(ordinary);
  for (const auto& part : data.partition) CHECK(static_cast<Index>(part.size()) >= ordinary.min_samples);
}

TEST_CASE("Generators refuse parameters whose features or scores are not finite", "[hardening][data]") {
  // A class mean of norm 1e39 is finite in double but not in float.
  hsgd::GaussianMixtureOptions mixture = mixture_options(2, 1, 4);
  mixture.separation = 1e39;
  REQUIRE_NOTHROW(hsgd::make_gaussian_mixture<double>(mixture));
  REQUIRE_INVALID(hsgd::make_gaussian_mixture<float>(mixture), "'separation' (1e+39) and 'noise' (1)");
  REQUIRE_INVALID(hsgd::make_gaussian_mixture<float>(mixture), "4-byte floating-point type");

  hsgd::LeafSyntheticOptions leaf{.devices = 4, .sizes = hsgd::DeviceSizes::fixed, .samples_per_device = 5};
  leaf.alpha = 1e308;  // model weights near the largest double: the class scores overflow
  REQUIRE_INVALID(hsgd::make_leaf_synthetic(leaf), "'alpha' (1e+308) and 'beta' (1) are too large");
  leaf.alpha = 1.0;
  leaf.beta = 1e39;  // inputs finite in double, infinite in float
  REQUIRE_NOTHROW(hsgd::make_leaf_synthetic<double>(leaf));
  REQUIRE_INVALID(hsgd::make_leaf_synthetic<float>(leaf), "4-byte floating-point type");
}
