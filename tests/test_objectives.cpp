// Objectives: gradients against finite differences, the batch-mean convention, the synthetic
// data of B1 (and the labelling margins it refuses), B1's penalty at the edges of double, and the
// concepts every pluggable part is checked against.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <span>
#include <vector>

#include <catch2/catch.hpp>

#include "data_support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

/// Central differences (f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i), h_i = h max(1, |x_i|).
template <class Objective>
hsgd::Vector<typename Objective::Scalar> central_differences(const Objective& f,
                                                             const hsgd::Vector<typename Objective::Scalar>& x,
                                                             typename Objective::Scalar h) {
  using S = typename Objective::Scalar;
  hsgd::Vector<S> numeric(x.size());
  for (Index i = 0; i < x.size(); ++i) {
    const S step = h * std::max(S(1), std::abs(x(i)));
    hsgd::Vector<S> up = x;
    hsgd::Vector<S> down = x;
    up(i) += step;
    down(i) -= step;
    numeric(i) = (f.value(up) - f.value(down)) / (up(i) - down(i));  // the step actually taken
  }
  return numeric;
}

/// ||grad f(x) - central differences|| / max(1, ||grad f(x)||).
template <class Objective>
double gradient_error(const Objective& f, const hsgd::Vector<typename Objective::Scalar>& x,
                      typename Objective::Scalar h) {
  hsgd::Vector<typename Objective::Scalar> g(x.size());
  f.gradient(x, g);
  const auto numeric = central_differences(f, x, h);
  return double((g - numeric).norm()) / std::max(1.0, double(g.norm()));
}

template <class Scalar = double>
hsgd::Vector<Scalar> random_point(hsgd::Rng& rng, Index d, double scale) {
  hsgd::Vector<Scalar> x(d);
  for (Index i = 0; i < d; ++i) x(i) = Scalar(scale * rng.normal());
  return x;
}

hsgd::B1Data small_data(std::uint64_t seed, double lambda, Index samples = 40, Index dimension = 6) {
  return {.workers = 1, .samples_per_worker = samples, .dimension = dimension, .lambda = lambda, .seed = seed};
}

/// A stochastic quadratic with random curvature in [0.5, 2.5] and `samples` random centres.
hsgd::Quadratic<double> random_quadratic(hsgd::Rng& rng, Index d, Index samples) {
  Vec curvature(d);
  for (Index i = 0; i < d; ++i) curvature(i) = 0.5 + 2.0 * rng.uniform();
  Mat centres(d, samples);
  for (Index k = 0; k < samples; ++k)
    for (Index i = 0; i < d; ++i) centres(i, k) = 3.0 * rng.normal();
  return hsgd::Quadratic<double>::from_samples(curvature, centres);
}

/// The penalty term and its gradient coefficient in their naive form (as B1 first computed them):
/// exact in the ordinary range, NaN once x^2 overflows.
double old_penalty_term(double x) { return x * x / (1 + x * x); }
double old_penalty_slope(double x) { return 2 * x / ((1 + x * x) * (1 + x * x)); }

double relative_error(double value, double reference) {
  if (reference == 0) return std::abs(value);
  return std::abs(value - reference) / std::abs(reference);
}

// ---- types for the concept checks ---------------------------------------------------------------

struct GoodObjective {
  using Scalar = double;
  Index dimension() const { return 1; }
  Index sample_count() const { return 1; }
  double value(hsgd::ConstVectorRef<double>) const { return 0; }
  void gradient(hsgd::ConstVectorRef<double>, hsgd::VectorRef<double>) const {}
  void batch_gradient(hsgd::ConstVectorRef<double>, std::span<const Index>, hsgd::VectorRef<double>) const {}
};

struct SomethingMissingBatchGradient {
  using Scalar = double;
  Index dimension() const { return 1; }
  Index sample_count() const { return 1; }
  double value(hsgd::ConstVectorRef<double>) const { return 0; }
  void gradient(hsgd::ConstVectorRef<double>, hsgd::VectorRef<double>) const {}
};

struct ObjectiveWithoutScalar {
  Index dimension() const { return 1; }
  Index sample_count() const { return 1; }
  double value(hsgd::ConstVectorRef<double>) const { return 0; }
  void gradient(hsgd::ConstVectorRef<double>, hsgd::VectorRef<double>) const {}
  void batch_gradient(hsgd::ConstVectorRef<double>, std::span<const Index>, hsgd::VectorRef<double>) const {}
};

struct GoodSampler {
  void bind(Index) {}
  std::span<const Index> next(hsgd::Rng&) { return {}; }
};

struct SamplerWithoutNext {
  void bind(Index) {}
};

struct SamplerWithoutBind {
  std::span<const Index> next(hsgd::Rng&) { return {}; }
};

struct UncopyableSampler {
  std::unique_ptr<int> state;
  void bind(Index) {}
  std::span<const Index> next(hsgd::Rng&) { return {}; }
};

struct GoodUpdate {
  static constexpr bool has_state = false;
  void apply(hsgd::VectorRef<double>, hsgd::ConstVectorRef<double>, hsgd::VectorRef<double>, double) const {}
  hsgd::StateAtAggregation state_at_aggregation() const { return hsgd::StateAtAggregation::keep; }
  void validate() const {}
};

struct UpdateWithoutApply {
  static constexpr bool has_state = false;
  hsgd::StateAtAggregation state_at_aggregation() const { return hsgd::StateAtAggregation::keep; }
  void validate() const {}
};

struct UpdateWithoutHasState {
  void apply(hsgd::VectorRef<double>, hsgd::ConstVectorRef<double>, hsgd::VectorRef<double>, double) const {}
  hsgd::StateAtAggregation state_at_aggregation() const { return hsgd::StateAtAggregation::keep; }
  void validate() const {}
};

struct GoodRate {
  double rate(double base, Index) const { return base; }
  void validate() const {}
};

struct RateWithoutValidate {
  double rate(double base, Index) const { return base; }
};

struct RateNotConst {
  double rate(double base, Index) { return base; }
  void validate() const {}
};

struct GoodGrouping {
  void assign(const hsgd::Topology&, std::span<Index>, hsgd::Rng&) const {}
  bool regroups_at_global_aggregation() const { return false; }
};

struct GroupingWithoutAssign {
  bool regroups_at_global_aggregation() const { return false; }
};

struct GroupingWithoutRegroups {
  void assign(const hsgd::Topology&, std::span<Index>, hsgd::Rng&) const {}
};

}  // namespace

// ---- gradients against finite differences -------------------------------------------------------

// Step and tolerance in double: a central difference with step h has truncation error
// h^2 |f'''| / 6 and rounding error about eps |f| / h (eps = 2.2e-16). These objectives and their
// derivatives are O(1) at the points used, so h = 1e-5 gives about 2e-11 + 2e-11: a tolerance of
// 1e-7 leaves a wide margin, while a wrong gradient (a sign, a factor 2 in the regulariser with
// lambda = 0.5, the sum instead of the mean) is off by O(0.1) or more.
TEST_CASE("NonconvexLogistic<double>: the gradient matches central differences of the value", "[objective]") {
  hsgd::Rng rng(21);
  for (const double lambda : {0.0, 1e-3, 0.5}) {
    for (const std::uint64_t seed : {1U, 2U, 3U}) {
      const auto f = hsgd::make_b1_shards<double>(small_data(seed, lambda)).front();
      for (const double scale : {0.3, 2.0}) {  // small and large margins: both softplus branches
        CAPTURE(lambda, seed, scale);
        const Vec x = random_point(rng, f.dimension(), scale);
        CHECK(gradient_error(f, x, 1e-5) < 1e-7);
      }
    }
  }
}

// In float, eps = 1.2e-7 and value() sums 40 softplus terms, so it carries an absolute error of
// up to about 40 eps |f| ~ 2e-5 for |f| ~ 4; with h = 1e-2 that becomes 1e-3 in the difference
// quotient, while truncation is h^2 |f'''| / 6 ~ 2e-5. Tolerance 5e-3: still far below the O(0.1)
// of a wrong gradient. The float gradient is also compared with the double one on the same data.
TEST_CASE("NonconvexLogistic<float>: the gradient matches central differences and the double version",
          "[objective][float]") {
  hsgd::Rng rng(22);
  for (const std::uint64_t seed : {4U, 5U}) {
    const auto data = small_data(seed, 0.5);
    const auto f = hsgd::make_b1_shards<float>(data).front();
    const auto f_double = hsgd::make_b1_shards<double>(data).front();
    for (const double scale : {0.3, 1.5}) {
      CAPTURE(seed, scale);
      const hsgd::Vector<float> x = random_point<float>(rng, f.dimension(), scale);
      CHECK(gradient_error(f, x, 1e-2f) < 5e-3);
      hsgd::Vector<float> g(x.size());
      f.gradient(x, g);
      const Vec g_double = full_gradient(f_double, x.cast<double>());
      CHECK(relative_difference(g.cast<double>(), g_double) < 1e-5);
      CHECK(std::abs(double(f.value(x)) - f_double.value(x.cast<double>())) < 1e-5 * std::max(1.0, f_double.value(x.cast<double>())));
    }
  }
}

TEST_CASE("Quadratic: the gradient matches central differences of the value", "[objective]") {
  // Central differences are exact for a quadratic up to rounding (about eps |f| / h = 1e-10 here).
  hsgd::Rng rng(23);
  const auto stochastic = random_quadratic(rng, 5, 7);
  Vec curvature(5), centre(5);
  curvature << 0.5, 1.0, 1.5, 2.0, 4.0;
  centre << -1, 0, 1, 2, 3;
  const hsgd::Quadratic<double> deterministic(curvature, centre);
  for (int trial = 0; trial < 3; ++trial) {
    const Vec x = random_point(rng, 5, 2.0);
    CHECK(gradient_error(stochastic, x, 1e-5) < 1e-7);
    CHECK(gradient_error(deterministic, x, 1e-5) < 1e-7);
  }
  // And the closed forms: grad = a .* (x - b), value = (1/2) sum a (x - b)^2 with one sample.
  const Vec x = Vec::LinSpaced(5, -2, 2);
  CHECK(relative_difference(full_gradient(deterministic, x), Vec(curvature.array() * (x - centre).array())) < 1e-15);
  CHECK(deterministic.value(x) == Approx(0.5 * (curvature.array() * (x - centre).array().square()).sum()).epsilon(1e-14));
}

// ---- batch gradients ----------------------------------------------------------------------------

TEST_CASE("batch_gradient over every sample equals gradient()", "[objective][batch]") {
  hsgd::Rng rng(31);
  const auto logistic = hsgd::make_b1_shards<double>(small_data(7, 0.5)).front();
  const auto quadratic = random_quadratic(rng, 4, 9);
  const hsgd::Quadratic<double> single(Vec::Constant(4, 2.0), Vec::LinSpaced(4, 0, 3));
  const auto check = [&rng](const auto& f) {
    for (int trial = 0; trial < 3; ++trial) {
      const Vec x = random_point(rng, f.dimension(), 1.5);
      const Vec full = full_gradient(f, x);
      CHECK(relative_difference(batch_gradient(f, x, all_indices(f.sample_count())), full) < 1e-12);
      // Every sample twice (a mean, so the same), and in reverse order.
      auto twice = all_indices(f.sample_count());
      twice.insert(twice.end(), twice.begin(), twice.end());
      CHECK(relative_difference(batch_gradient(f, x, twice), full) < 1e-12);
      auto reversed = all_indices(f.sample_count());
      std::reverse(reversed.begin(), reversed.end());
      CHECK(relative_difference(batch_gradient(f, x, reversed), full) < 1e-12);
    }
  };
  check(logistic);
  check(quadratic);
  check(single);
}

TEST_CASE("batch_gradient is the mean over the batch and counts repeated indices each time", "[objective][batch]") {
  hsgd::Rng rng(32);
  const auto logistic = hsgd::make_b1_shards<double>(small_data(8, 0.5)).front();
  const auto quadratic = random_quadratic(rng, 6, 10);
  const auto check = [&rng](const auto& f) {
    const Vec x = random_point(rng, f.dimension(), 1.0);
    const Index j = 2;
    const Index k = 5;
    const Vec gj = batch_gradient(f, x, {j});
    const Vec gk = batch_gradient(f, x, {k});
    REQUIRE(relative_difference(gj, gk) > 1e-3);  // the two samples really differ
    // {k, k} is the mean of two equal terms: the same as {k} (a sum would double the data term).
    CHECK(relative_difference(batch_gradient(f, x, {k, k}), gk) < 1e-14);
    CHECK(relative_difference(batch_gradient(f, x, {j, k}), (gj + gk) / 2) < 1e-14);
    // A repeated index counts each time it appears (it is not de-duplicated).
    CHECK(relative_difference(batch_gradient(f, x, {j, j, k}), (2 * gj + gk) / 3) < 1e-14);
    CHECK(relative_difference(batch_gradient(f, x, {k, j, k, k}), (gj + 3 * gk) / 4) < 1e-14);
    // The mean over a larger batch is the mean of the single-sample gradients.
    const std::vector<Index> batch{0, 3, 3, 7, 9, 1};
    Vec mean = Vec::Zero(x.size());
    for (const Index i : batch) mean += batch_gradient(f, x, {i});
    CHECK(relative_difference(batch_gradient(f, x, batch), mean / double(batch.size())) < 1e-13);
  };
  check(logistic);
  check(quadratic);
}

TEST_CASE("NonconvexLogistic::batch_value is the mean loss over the batch plus the whole regulariser",
          "[objective][batch]") {
  // value() is the mean over every sample, so a batch of all of them must give it; a repeated
  // index counts each time, and the regulariser is added once, not once per sample.
  const double lambda = 0.5;
  const auto f = hsgd::make_b1_shards<double>(small_data(10, lambda)).front();
  hsgd::Rng rng(34);
  const Vec x = random_point(rng, f.dimension(), 1.0);
  CHECK(f.batch_value(x, all_indices(f.sample_count())) == Approx(f.value(x)).epsilon(1e-13));
  const double regulariser = lambda * (x.array().square() / (1 + x.array().square())).sum();
  const auto sample_loss = [&](Index k) { return std::log1p(std::exp(-f.labels()(k) * f.features().col(k).dot(x))); };
  CHECK(f.batch_value(x, std::vector<Index>{4}) == Approx(sample_loss(4) + regulariser).epsilon(1e-14));
  CHECK(f.batch_value(x, std::vector<Index>{4, 9, 9}) ==
        Approx((sample_loss(4) + 2 * sample_loss(9)) / 3 + regulariser).epsilon(1e-14));
}

TEST_CASE("NonconvexLogistic: a one-sample gradient is the sample's loss gradient plus the whole regulariser's",
          "[objective][batch]") {
  const double lambda = 0.5;
  const auto f = hsgd::make_b1_shards<double>(small_data(9, lambda)).front();
  hsgd::Rng rng(33);
  const Vec x = random_point(rng, f.dimension(), 1.0);
  for (const Index k : {Index{0}, Index{11}, f.sample_count() - 1}) {
    const double y = f.labels()(k);
    const Vec a = f.features().col(k);
    const double sigma = 1.0 / (1.0 + std::exp(y * a.dot(x)));  // sigma(-y a.x)
    const Vec expected = -y * sigma * a + Vec(2 * lambda * x.array() / (1 + x.array().square()).square());
    CHECK(relative_difference(batch_gradient(f, x, {k}), expected) < 1e-13);
  }
}

TEST_CASE("Quadratic: a one-sample quadratic ignores the batch", "[objective][batch]") {
  const hsgd::Quadratic<double> f(Vec::Constant(3, 1.5), Vec::LinSpaced(3, -1, 1));
  const Vec x = Vec::Constant(3, 0.25);
  const Vec full = full_gradient(f, x);
  CHECK(batch_gradient(f, x, {0}) == full);
  CHECK(batch_gradient(f, x, {0, 0, 0}) == full);
}

// ---- Quadratic::isotropic_noisy -----------------------------------------------------------------

TEST_CASE("Quadratic::isotropic_noisy: the centre is the mean of the samples, the value the mean loss",
          "[objective][quadratic]") {
  const double a = 2.0;
  const double sigma = 0.8;
  const Index m = 400;
  const Index d = 3;
  const Vec nominal = Vec::LinSpaced(d, -1, 4);
  hsgd::Rng rng(34);
  const hsgd::Rng before = rng;
  const auto f = hsgd::Quadratic<double>::isotropic_noisy(a, nominal, m, sigma, rng);
  CHECK_FALSE(rng == before);  // the samples came from the stream given
  REQUIRE(f.sample_count() == m);
  REQUIRE(f.dimension() == d);
  CHECK(f.curvature() == Vec::Constant(d, a));

  // Recover each sample centre from its one-sample gradient at 0: a (0 - c_k) = g, c_k = -g / a.
  Mat samples(d, m);
  for (Index k = 0; k < m; ++k) samples.col(k) = -batch_gradient(f, Vec::Zero(d), {k}) / a;
  const Vec mean = samples.rowwise().mean();
  CHECK(relative_difference(f.centre(), mean) < 1e-12);
  // The centre is that finite-sample mean, not the nominal centre; the two differ by about
  // sigma / sqrt(m) = 0.04 per coordinate (bound: 5 of those standard deviations).
  CHECK((f.centre() - nominal).norm() > 1e-9);
  CHECK((f.centre() - nominal).cwiseAbs().maxCoeff() < 5 * sigma / std::sqrt(double(m)));
  // The spread is sigma: the pooled variance of the m d deviations has relative standard error
  // sqrt(2 / (m d)) = 0.04; bound 5 of those.
  const double variance = (samples.colwise() - mean).squaredNorm() / double(m * d);
  CHECK(std::abs(variance / (sigma * sigma) - 1) < 5 * std::sqrt(2.0 / double(m * d)));

  // value(x) = (1/m) sum_k (a/2) ||x - c_k||^2.
  for (const Vec& x : {Vec(Vec::Zero(d)), Vec(Vec::LinSpaced(d, 3, -3)), Vec(f.centre())}) {
    double mean_loss = 0;
    for (Index k = 0; k < m; ++k) mean_loss += 0.5 * a * (x - samples.col(k)).squaredNorm();
    mean_loss /= double(m);
    CHECK(f.value(x) == Approx(mean_loss).epsilon(1e-12));
  }
  // sigma = 0 puts every sample on the nominal centre.
  const auto exact = hsgd::Quadratic<double>::isotropic_noisy(a, nominal, 5, 0.0, rng);
  CHECK(exact.centre() == nominal);
  CHECK(exact.value(nominal) == 0.0);
}

// ---- make_b1_shards -----------------------------------------------------------------------------

TEST_CASE("make_b1_shards: sizes as requested", "[objective][b1]") {
  const hsgd::B1Data data{.workers = 5, .samples_per_worker = 17, .dimension = 3, .lambda = 0.25};
  const auto shards = hsgd::make_b1_shards<double>(data);
  REQUIRE(shards.size() == 5);
  for (const auto& shard : shards) {
    CHECK(shard.dimension() == 3);
    CHECK(shard.sample_count() == 17);
    CHECK(shard.features().rows() == 3);
    CHECK(shard.features().cols() == 17);
    CHECK(shard.lambda() == 0.25);
    CHECK((shard.labels().array().abs() == 1.0).all());
  }
  // Both labels occur (the labels are not constant).
  const auto& labels = shards.front().labels();
  CHECK((labels.array() > 0).any());
  CHECK((labels.array() < 0).any());
  const auto floats = hsgd::make_b1_shards<float>(data);
  REQUIRE(floats.size() == 5);
  CHECK(floats[4].sample_count() == 17);
  CHECK(floats[4].dimension() == 3);
}

TEST_CASE("make_b1_shards: the seed fixes the data; workers and seeds differ", "[objective][b1]") {
  hsgd::B1Data data{.workers = 4, .samples_per_worker = 30, .dimension = 5, .seed = 77};
  const auto first = hsgd::make_b1_shards<double>(data);
  const auto again = hsgd::make_b1_shards<double>(data);
  for (std::size_t j = 0; j < first.size(); ++j) {
    CHECK(first[j].features() == again[j].features());
    CHECK(first[j].labels() == again[j].labels());
  }
  for (std::size_t j = 0; j < first.size(); ++j) {
    for (std::size_t k = j + 1; k < first.size(); ++k) {
      CAPTURE(j, k);
      CHECK(first[j].features() != first[k].features());
    }
  }
  data.seed = 78;
  const auto other = hsgd::make_b1_shards<double>(data);
  for (std::size_t j = 0; j < first.size(); ++j) CHECK(first[j].features() != other[j].features());
  // float shards hold the same data, rounded.
  data.seed = 77;
  const auto floats = hsgd::make_b1_shards<float>(data);
  for (std::size_t j = 0; j < first.size(); ++j) {
    CHECK(floats[j].features() == first[j].features().cast<float>());
    CHECK(floats[j].labels() == first[j].labels().cast<float>());
  }
}

TEST_CASE("make_b1_shards: heterogeneity 0 labels every worker by the same model", "[objective][b1]") {
  // Observable through the data: for Gaussian features and P(y = 1) = sigma(a.w_j), the mean of
  // y a is c w_j / |w_j| with c = E[tanh(|w_j| z / 2) z] (about 0.8 at signal 20). Each worker's
  // estimate (1/m) sum_k y_k a_k has noise of norm about sqrt(d / m) = 0.05 (d = 8, m = 3000), so
  // with a shared model the estimates of different workers have cosine about 1 - (0.05/0.8)^2 >
  // 0.99 (bound 0.95). With heterogeneity 5 the models are mostly the workers' own random
  // directions (cosine about 1/26 in expectation, spread 1/sqrt(d) = 0.35), so the mean cosine
  // over the 15 pairs stays well below 0.6.
  const auto cosines = [](double heterogeneity) {
    const hsgd::B1Data data{.workers = 6,
                            .samples_per_worker = 3000,
                            .dimension = 8,
                            .signal = 20.0,
                            .heterogeneity = heterogeneity,
                            .seed = 5};
    const auto shards = hsgd::make_b1_shards<double>(data);
    std::vector<Vec> directions;
    for (const auto& shard : shards) {
      const Vec estimate = shard.features() * shard.labels() / double(shard.sample_count());
      directions.push_back(estimate.normalized());
    }
    std::vector<double> result;
    for (std::size_t j = 0; j < directions.size(); ++j)
      for (std::size_t k = j + 1; k < directions.size(); ++k) result.push_back(directions[j].dot(directions[k]));
    return result;
  };
  const auto shared = cosines(0.0);
  CHECK(*std::min_element(shared.begin(), shared.end()) > 0.95);
  const auto separate = cosines(5.0);
  const double mean = std::accumulate(separate.begin(), separate.end(), 0.0) / double(separate.size());
  CHECK(mean < 0.6);
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

// ---- B1's penalty at the edges of double ----------------------------------------------------------

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

// ---- concepts -----------------------------------------------------------------------------------

TEST_CASE("Objective concept", "[objective][concept]") {
  STATIC_REQUIRE(hsgd::Objective<hsgd::Quadratic<double>>);
  STATIC_REQUIRE(hsgd::Objective<hsgd::Quadratic<float>>);
  STATIC_REQUIRE(hsgd::Objective<hsgd::NonconvexLogistic<double>>);
  STATIC_REQUIRE(hsgd::Objective<hsgd::NonconvexLogistic<float>>);
  STATIC_REQUIRE(hsgd::Objective<hsgd::Rosenbrock<double>>);
  STATIC_REQUIRE(hsgd::Objective<GoodObjective>);
  STATIC_REQUIRE_FALSE(hsgd::Objective<SomethingMissingBatchGradient>);
  STATIC_REQUIRE_FALSE(hsgd::Objective<ObjectiveWithoutScalar>);
  STATIC_REQUIRE_FALSE(hsgd::Objective<int>);
}

TEST_CASE("Sampler concept", "[objective][concept]") {
  STATIC_REQUIRE(hsgd::Sampler<hsgd::UniformSampler>);
  STATIC_REQUIRE(hsgd::Sampler<hsgd::ShuffledSampler>);
  STATIC_REQUIRE(hsgd::Sampler<hsgd::FullBatchSampler>);
  STATIC_REQUIRE(hsgd::Sampler<GoodSampler>);
  STATIC_REQUIRE_FALSE(hsgd::Sampler<SamplerWithoutNext>);
  STATIC_REQUIRE_FALSE(hsgd::Sampler<SamplerWithoutBind>);
  STATIC_REQUIRE_FALSE(hsgd::Sampler<UncopyableSampler>);
}

TEST_CASE("UpdatePolicy concept", "[objective][concept]") {
  STATIC_REQUIRE(hsgd::UpdatePolicy<hsgd::Sgd, double>);
  STATIC_REQUIRE(hsgd::UpdatePolicy<hsgd::Sgd, float>);
  STATIC_REQUIRE(hsgd::UpdatePolicy<hsgd::Momentum, double>);
  STATIC_REQUIRE(hsgd::UpdatePolicy<GoodUpdate, double>);
  STATIC_REQUIRE_FALSE(hsgd::UpdatePolicy<UpdateWithoutApply, double>);
  STATIC_REQUIRE_FALSE(hsgd::UpdatePolicy<UpdateWithoutHasState, double>);
}

TEST_CASE("LearningRateSchedule concept", "[objective][concept]") {
  STATIC_REQUIRE(hsgd::LearningRateSchedule<hsgd::ConstantRate>);
  STATIC_REQUIRE(hsgd::LearningRateSchedule<hsgd::StepDecay>);
  STATIC_REQUIRE(hsgd::LearningRateSchedule<hsgd::InverseSqrtDecay>);
  STATIC_REQUIRE(hsgd::LearningRateSchedule<GoodRate>);
  STATIC_REQUIRE_FALSE(hsgd::LearningRateSchedule<RateWithoutValidate>);
  STATIC_REQUIRE_FALSE(hsgd::LearningRateSchedule<RateNotConst>);
}

TEST_CASE("GroupingPolicy concept", "[objective][concept]") {
  STATIC_REQUIRE(hsgd::GroupingPolicy<hsgd::ContiguousGrouping>);
  STATIC_REQUIRE(hsgd::GroupingPolicy<hsgd::RandomGrouping>);
  STATIC_REQUIRE(hsgd::GroupingPolicy<hsgd::ExplicitGrouping>);
  STATIC_REQUIRE(hsgd::GroupingPolicy<GoodGrouping>);
  STATIC_REQUIRE_FALSE(hsgd::GroupingPolicy<GroupingWithoutAssign>);
  STATIC_REQUIRE_FALSE(hsgd::GroupingPolicy<GroupingWithoutRegroups>);
}
