// Hardening of the data, objective and numeric code (issue 10): every entry point that takes a
// label, index, count or size-bound container checks it before it reads or writes; sizes are
// checked before their products overflow; draws and sums at the edges of double are named
// errors instead of NaN; B1's penalty stays finite for every finite x; non-finite data are
// refused where shards are built, naming the worker and the sample; learning-rate schedules are
// defined at every step. Each case would fail (or, under the sanitizers, crash) without the fix.

#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <hsgd/hsgd.hpp>

using Catch::Matchers::Contains;
using hsgd::Index;

namespace {

using Vec = hsgd::Vector<double>;
using Mat = hsgd::Matrix<double>;

constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_value = std::numeric_limits<double>::infinity();
constexpr double max_double = std::numeric_limits<double>::max();
constexpr Index max_index = std::numeric_limits<Index>::max();
constexpr Index min_index = std::numeric_limits<Index>::min();

// Bad input must throw hsgd::InvalidArgument whose message contains `text`.
#define REQUIRE_INVALID(expression, text)                 \
  do {                                                    \
    REQUIRE_THROWS_AS(expression, hsgd::InvalidArgument); \
    REQUIRE_THROWS_WITH(expression, Contains(text));      \
  } while (false)

/// Three samples in two dimensions, classes 0, 1, 1 of two.
hsgd::Dataset<double> small_dataset() {
  hsgd::Dataset<double> data;
  data.features = Mat(2, 3);
  data.features << 1, 2, 3, 4, 5, 6;
  data.labels = {0, 1, 1};
  data.classes = 2;
  return data;
}

/// Ten samples of two classes in three dimensions whose coordinate 0 is zero for every sample,
/// so a model coordinate that multiplies it does not enter the data term.
hsgd::Dataset<double> dataset_with_silent_feature() {
  hsgd::Rng rng(7);
  hsgd::Dataset<double> data;
  data.classes = 2;
  data.features = Mat::Zero(3, 10);
  for (Index k = 0; k < 10; ++k) {
    data.features(1, k) = rng.normal();
    data.features(2, k) = rng.normal();
    data.labels.push_back(k % 2);
  }
  return data;
}

/// Gaussian-mixture settings with these sizes (designated initialisers would leave `proportions`
/// to -Wmissing-field-initializers).
hsgd::GaussianMixtureOptions mixture_options(Index classes, Index dimension, Index samples) {
  hsgd::GaussianMixtureOptions options;
  options.classes = classes;
  options.dimension = dimension;
  options.samples = samples;
  return options;
}

/// The penalty term and its gradient coefficient as written before the hardening: exact in the
/// ordinary range, NaN once x^2 overflows.
double old_penalty_term(double x) { return x * x / (1 + x * x); }
double old_penalty_slope(double x) { return 2 * x / ((1 + x * x) * (1 + x * x)); }

double relative_error(double value, double reference) {
  if (reference == 0) return std::abs(value);
  return std::abs(value - reference) / std::abs(reference);
}

}  // namespace

// ---- 1. memory safety: labels, indices and shapes --------------------------------------------

TEST_CASE("Dataset: class_counts refuses a label outside the classes instead of writing past the counts",
          "[hardening][data]") {
  hsgd::Dataset<double> data = small_dataset();
  CHECK(data.class_counts() == std::vector<Index>{1, 2});
  data.labels[1] = 5;
  REQUIRE_INVALID(data.class_counts(), "'labels'[1] (5) must be in [0, 2)");
  data.labels[1] = -1;
  REQUIRE_INVALID(data.class_counts(), "'labels'[1] (-1) must be in [0, 2)");
  data.labels[1] = 1;
  data.classes = 0;
  REQUIRE_INVALID(data.class_counts(), "'classes' (0) must be positive");
}

TEST_CASE("Dataset: subset checks the shapes, the indices and the labels it copies", "[hardening][data]") {
  hsgd::Dataset<double> data = small_dataset();
  const std::vector<Index> last{2};
  const hsgd::Dataset<double> picked = data.subset(last);
  CHECK(picked.labels == std::vector<Index>{1});
  CHECK(picked.features(1, 0) == 6);
  REQUIRE_INVALID(data.subset(std::vector<Index>{0, 3}), "'indices'[1] (3) must be in [0, 3)");
  REQUIRE_INVALID(data.subset(std::vector<Index>{-1}), "'indices'[0] (-1) must be in [0, 3)");

  // Labels shorter than the features: sample 2 has no label to read.
  data.labels.pop_back();
  REQUIRE_INVALID(data.subset(last), "'labels' has 2 entries but 'features' has 3 samples");
  REQUIRE_INVALID(data.class_counts(), "'labels' has 2 entries but 'features' has 3 samples");

  data = small_dataset();
  data.labels[2] = 9;
  REQUIRE_INVALID(data.subset(last), "'labels'[2] (9) must be in [0, 2)");
}

TEST_CASE("worker_datasets validates the data set and names a partition entry out of range", "[hardening][data]") {
  hsgd::Dataset<double> data = small_dataset();
  const auto parts = hsgd::worker_datasets(data, {{0, 2}, {1}});
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].labels == std::vector<Index>{0, 1});
  CHECK(parts[1].features(0, 0) == 2);
  REQUIRE_INVALID(hsgd::worker_datasets(data, {{0}, {7}}), "'partition'[1][0] (7) must be in [0, 3)");

  data.labels = {0, 1};  // one label short
  REQUIRE_INVALID(hsgd::worker_datasets(data, {{0, 1, 2}}), "'labels' has 2 entries but 'features' has 3 samples");
  data = small_dataset();
  data.features(0, 1) = nan_value;
  REQUIRE_INVALID(hsgd::worker_datasets(data, {{0, 1, 2}}), "'features' sample 1 is not finite");
}

TEST_CASE("Dataset::validate refuses non-finite features, naming the sample and the coordinate",
          "[hardening][data]") {
  hsgd::Dataset<double> data = small_dataset();
  REQUIRE_NOTHROW(data.validate());
  data.features(1, 2) = inf_value;
  REQUIRE_INVALID(data.validate(), "'features' sample 2 is not finite: coordinate 1 is inf");
  data.features(1, 2) = 0;
  data.features(0, 0) = nan_value;
  REQUIRE_INVALID(data.validate(), "'features' sample 0 is not finite: coordinate 0 is nan");
  // Labels alone are still checked without a pass over the features.
  REQUIRE_NOTHROW(data.validate_labels());
}

TEST_CASE("Partition helpers check counts and group sizes before using them", "[hardening][data]") {
  REQUIRE_INVALID(hsgd::check_partition({}, -1), "'samples' (-1) must be non-negative");

  const std::vector<Index> labels{0, 1, 0, 1, 0, 1, 0, 1};
  const hsgd::Partition partition{{0, 1}, {2, 3}, {4, 5}, {6, 7}};
  // Two huge groups: their running sum would overflow before it could be compared with 4.
  REQUIRE_INVALID(hsgd::group_iid_layout(partition, labels, 2, std::vector<Index>{max_index, max_index}),
                  "'group_sizes' hold more than the partition's 4 workers (at entry 0)");
  REQUIRE_INVALID(hsgd::group_non_iid_layout(partition, labels, 2, std::vector<Index>{2, max_index}),
                  "'group_sizes' hold more than the partition's 4 workers (at entry 1)");
  const auto groups = hsgd::group_iid_layout(partition, labels, 2, std::vector<Index>{2, 2});
  CHECK(groups.size() == 2);

  hsgd::TwoLevelDirichletOptions options;
  options.group_sizes = {max_index, max_index};
  REQUIRE_INVALID(static_cast<void>(options.workers()), "'group_sizes'[1]");
  REQUIRE_INVALID(hsgd::partition_two_level_dirichlet(labels, 2, options), "keep the total below 2^63");
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

// ---- 2. arithmetic at the edges --------------------------------------------------------------

TEST_CASE("Partitioners compare size products by division, so an overflowing product is refused",
          "[hardening][data]") {
  const std::vector<Index> labels(40, 0);
  // 2^62 * 4 wraps to 0 in 64 bits: compared as a product, the check would pass and the shard
  // cut would divide by zero.
  const Index huge = Index{1} << 62;
  REQUIRE_INVALID(hsgd::partition_shards(labels, 1, {.workers = huge, .shards_per_worker = 4}),
                  "'workers' (4611686018427387904) times 'shards_per_worker' (4)");
  REQUIRE_INVALID(hsgd::partition_shards(labels, 1, {.workers = 3, .shards_per_worker = max_index / 2}),
                  "must not exceed the number of samples (40)");
  REQUIRE_INVALID(hsgd::partition_dirichlet(labels, 1, {.workers = huge, .min_size = 4}),
                  "'min_size' (4) times the 4611686018427387904 workers");
  REQUIRE_INVALID(hsgd::partition_two_level_dirichlet(labels, 1, {.group_sizes = {huge, huge / 2}, .min_size = 2}),
                  "'min_size' (2) times the 6917529027641081856 workers");
  // The same checks still accept what fits exactly.
  CHECK(hsgd::partition_shards(labels, 1, {.workers = 10, .shards_per_worker = 4}).size() == 10);
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

// ---- 3. numbers: B1's penalty ------------------------------------------------------------------

TEST_CASE("B1 penalty: value and gradient stay finite for every finite x", "[hardening][data]") {
  const double lambda = 0.75;  // 2 lambda x would itself overflow at the largest double
  Vec x(6);
  x << 1.3e154, 1e200, 1e300, max_double, -max_double, -1.5e154;
  REQUIRE(std::isnan(old_penalty_term(1e300)));  // what the old formula gave
  REQUIRE(std::isnan(old_penalty_slope(max_double)));
  CHECK(hsgd::detail::nonconvex_penalty<double>(x) == 6.0);  // every term has saturated at 1
  Vec g = Vec::Zero(6);
  hsgd::detail::add_nonconvex_penalty_gradient<double>(x, lambda, g);
  REQUIRE(g.allFinite());
  CHECK(g.isZero(0));  // the exact values are below 4 lambda / |x|^3, which underflows here

  // Large but representable slopes are kept: at 2e77, (1 + x^2)^2 overflows (the old form gave
  // 0 there) while 2 x u^2 ~ 4 lambda / x^3 is about 1e-232, with u^2 subnormal (hence the looser
  // tolerance).
  Vec moderate(2);
  moderate << 1e50, -2e77;
  g.setZero(2);
  hsgd::detail::add_nonconvex_penalty_gradient<double>(moderate, lambda, g);
  CHECK(relative_error(g(0), 2 * lambda * 1e-150) < 1e-14);
  CHECK(relative_error(g(1), -2 * lambda / (2e77 * 2e77 * 2e77)) < 1e-12);
  CHECK(old_penalty_slope(-2e77) == 0.0);

  // float saturates near 1.8e19.
  hsgd::Vector<float> xf(3);
  xf << 1e19F, 1e30F, std::numeric_limits<float>::max();
  CHECK(hsgd::detail::nonconvex_penalty<float>(xf) == 3.0F);
  hsgd::Vector<float> gf = hsgd::Vector<float>::Zero(3);
  hsgd::detail::add_nonconvex_penalty_gradient<float>(xf, 0.75F, gf);
  CHECK(gf.allFinite());
}

TEST_CASE("B1 penalty: the hardened forms match the old formula in the ordinary range", "[hardening][data]") {
  std::vector<double> points{0.0, 1e-300, -1e-200, 1e-10, -1e-5, 0.3, -1.0, 1.0, 7.5, -123.0, 1e5, -1e20, 1e76};
  for (int k = 0; k <= 200; ++k) points.push_back(-50.0 + 0.5 * k);
  const Vec x = Eigen::Map<const Vec>(points.data(), static_cast<Index>(points.size()));
  const double lambda = 1e-3;
  Vec g = Vec::Zero(x.size());
  hsgd::detail::add_nonconvex_penalty_gradient<double>(x, lambda, g);
  double old_total = 0;
  for (Index i = 0; i < x.size(); ++i) {
    CAPTURE(x(i));
    CHECK(relative_error(g(i), lambda * old_penalty_slope(x(i))) < 4e-16 * 8);
    old_total += old_penalty_term(x(i));
    const Vec one = Vec::Constant(1, x(i));
    CHECK(relative_error(hsgd::detail::nonconvex_penalty<double>(one), old_penalty_term(x(i))) < 4e-16);
  }
  CHECK(relative_error(hsgd::detail::nonconvex_penalty<double>(x), old_total) < 1e-14);
}

TEST_CASE("B1 penalty: the objectives stay finite at a huge coordinate their data never touch", "[hardening][data]") {
  // Coordinate 0 multiplies a feature that is 0 in every sample: at x_0 = the largest double the
  // data term is what it is at x_0 = 0, the penalty adds lambda (its term is 1) and the gradient
  // in x_0 is 0. Before, value and gradient were NaN there.
  const hsgd::Dataset<double> data = dataset_with_silent_feature();
  Vec labels(data.size());
  for (Index k = 0; k < data.size(); ++k) labels(k) = data.labels[static_cast<std::size_t>(k)] == 1 ? 1.0 : -1.0;
  const double lambda = 0.75;
  const hsgd::NonconvexLogistic<double> logistic(data.features, labels, lambda);
  Vec x(3);
  x << 0.0, 0.4, -0.2;
  Vec huge = x;
  huge(0) = max_double;
  Vec g(3);
  Vec g_huge(3);
  logistic.gradient(huge, g_huge);
  logistic.gradient(x, g);
  REQUIRE(g_huge.allFinite());
  CHECK(g_huge(0) == 0.0);
  CHECK(g_huge.tail(2) == g.tail(2));
  CHECK(logistic.value(huge) == Approx(logistic.value(x) + lambda).epsilon(1e-14));
  const std::vector<Index> batch{0, 3, 3, 8};
  logistic.batch_gradient(huge, batch, g_huge);
  REQUIRE(g_huge.allFinite());
  CHECK(g_huge(0) == 0.0);

  // Softmax regression: x = [W row by row; b] with W (2 x 3); W(0, 0) and W(1, 0) multiply the
  // silent feature.
  const hsgd::SoftmaxRegression<double> softmax(data, lambda);
  Vec w = Vec::Zero(softmax.dimension());
  w(1) = 0.5;
  Vec w_huge = w;
  w_huge(0) = 1e300;
  w_huge(3) = -max_double;
  Vec gs(softmax.dimension());
  Vec gs_huge(softmax.dimension());
  softmax.gradient(w_huge, gs_huge);
  softmax.gradient(w, gs);
  REQUIRE(gs_huge.allFinite());
  CHECK(gs_huge(0) == 0.0);
  CHECK(gs_huge(3) == 0.0);
  CHECK(softmax.value(w_huge) == Approx(softmax.value(w) + 2 * lambda).epsilon(1e-14));

  // The tanh network's first layer: W1 row 0's weight on the silent feature.
  const hsgd::TanhNetwork<double> network(data, 2, lambda);
  hsgd::Rng rng(9);
  Vec v = network.initial_model(rng);
  v(0) = 0.0;
  Vec v_huge = v;
  v_huge(0) = -1e250;
  Vec gn(network.dimension());
  network.gradient(v_huge, gn);
  REQUIRE(gn.allFinite());
  CHECK(gn(0) == 0.0);
  CHECK(network.value(v_huge) == Approx(network.value(v) + lambda).epsilon(1e-14));
}

// ---- 3. numbers: non-finite data are refused where shards are built --------------------------

TEST_CASE("Classifier shards refuse non-finite features, naming the worker and the sample", "[hardening][data]") {
  hsgd::Dataset<double> data = dataset_with_silent_feature();
  data.features(2, 7) = nan_value;
  const hsgd::Partition partition{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}};
  REQUIRE_INVALID(hsgd::make_softmax_shards(data, partition),
                  "worker 1 holds sample 7 ('partition'[1][3]) whose features are not finite: coordinate 2 is nan");
  REQUIRE_INVALID(hsgd::make_tanh_network_shards(data, partition, 3), "worker 1 holds sample 7");
  // A sample no worker holds is still refused, by its index in the data set.
  REQUIRE_INVALID(hsgd::make_softmax_shards(data, hsgd::Partition{{0, 1}, {8}}), "'features' sample 7 is not finite");
  data.features(2, 7) = -inf_value;
  REQUIRE_INVALID(hsgd::SoftmaxRegression<double>(data), "'features' sample 7 is not finite: coordinate 2 is -inf");
  REQUIRE_INVALID(hsgd::TanhNetwork<double>(data, 2), "'features' sample 7");
  data.features(2, 7) = 1.0;
  CHECK(hsgd::make_softmax_shards(data, partition).size() == 3);
}

TEST_CASE("Logistic and quadratic objectives refuse non-finite data, naming the sample or worker",
          "[hardening][data]") {
  Mat features = Mat::Ones(2, 3);
  const Vec labels = Vec::Ones(3);
  features(0, 2) = inf_value;
  REQUIRE_INVALID(hsgd::NonconvexLogistic<double>(features, labels), "'features' sample 2 is not finite: coordinate 0");
  hsgd::Matrix<float> float_features = hsgd::Matrix<float>::Ones(2, 3);
  float_features(1, 1) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_INVALID(hsgd::NonconvexLogistic<float>(float_features, hsgd::Vector<float>::Ones(3)),
                  "'features' sample 1 is not finite: coordinate 1 is nan");

  Mat centres = Mat::Zero(2, 4);
  centres(1, 3) = nan_value;
  REQUIRE_INVALID(hsgd::Quadratic<double>::from_samples(Vec::Ones(2), centres),
                  "the centres must be finite: sample 3 has nan at coordinate 1");
  Mat curvatures = Mat::Ones(2, 3);
  Mat worker_centres = Mat::Zero(2, 3);
  worker_centres(0, 2) = inf_value;
  REQUIRE_INVALID(hsgd::heterogeneous_quadratics(curvatures, worker_centres), "worker 2: 'centres'(0, 2) is inf");
  worker_centres(0, 2) = 0;
  curvatures(1, 1) = nan_value;
  REQUIRE_INVALID(hsgd::heterogeneous_quadratics(curvatures, worker_centres), "worker 1: 'curvatures'(1, 1) is nan");
  hsgd::Rng rng(4);
  REQUIRE_INVALID(hsgd::Quadratic<double>::isotropic_noisy(nan_value, Vec::Zero(2), 3, 1.0, rng),
                  "'curvature' (nan) must be finite");
  REQUIRE_INVALID(hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Zero(2), 3, inf_value, rng),
                  "'sigma' (inf) must be finite");
  REQUIRE_INVALID(hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Constant(2, max_double), 3, 1e308, rng),
                  "the centres must be finite");
}

TEST_CASE("make_b1_shards refuses a labelling margin that is not finite, naming the worker and the sample",
          "[hardening][data]") {
  // signal near the largest double: a.w_j overflows, and a label drawn from sigma(NaN) or
  // sigma(inf) would not follow the documented model.
  REQUIRE_INVALID(hsgd::make_b1_shards<double>({.workers = 2, .samples_per_worker = 64, .dimension = 100,
                                                .signal = 1e308}),
                  "'signal' (1e+308) or 'heterogeneity' (1) is too large");
  REQUIRE_THROWS_WITH(hsgd::make_b1_shards<double>({.workers = 2, .samples_per_worker = 64, .dimension = 100,
                                                    .signal = 1e308}),
                      Contains("worker 0 sample ") && Contains("the labelling margin a.w_j is"));
  CHECK(hsgd::make_b1_shards<double>({.workers = 2, .samples_per_worker = 64, .dimension = 100}).size() == 2);
}
