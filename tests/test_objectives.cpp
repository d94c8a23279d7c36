// Objectives: gradients against finite differences, the batch-mean convention, and the concepts.

#include <cmath>
#include <numeric>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;

namespace {

/// Largest relative error between grad f and central differences of f at x. With step h the
/// truncation error is O(h^2 f''') and the rounding error O(eps |f| / h); h = 1e-5 balances them
/// near 1e-10 for these smooth, O(1) functions in double.
template <class Objective>
double gradient_error(const Objective& f, const Vec& x, double h = 1e-5) {
  Vec g(x.size());
  f.gradient(x, g);
  Vec numeric(x.size());
  for (Index i = 0; i < x.size(); ++i) {
    Vec up = x;
    Vec down = x;
    up(i) += h;
    down(i) -= h;
    numeric(i) = (f.value(up) - f.value(down)) / (2 * h);
  }
  return (g - numeric).norm() / std::max(1.0, g.norm());
}

hsgd::NonconvexLogistic<double> small_logistic(std::uint64_t seed, double lambda = 0.1) {
  hsgd::B1Data data;
  data.workers = 1;
  data.samples_per_worker = 20;
  data.dimension = 5;
  data.lambda = lambda;
  data.seed = seed;
  return hsgd::make_b1_shards(data).front();
}

std::vector<Index> all_indices(Index count) {
  std::vector<Index> indices(static_cast<std::size_t>(count));
  std::iota(indices.begin(), indices.end(), Index{0});
  return indices;
}

struct MissingBatchGradient {
  using Scalar = double;
  Index dimension() const { return 1; }
  Index sample_count() const { return 1; }
  double value(hsgd::ConstVectorRef<double>) const { return 0; }
  void gradient(hsgd::ConstVectorRef<double>, hsgd::VectorRef<double>) const {}
};

}  // namespace

TEST_CASE("NonconvexLogistic: the gradient matches central differences", "[objective]") {
  hsgd::Rng rng(5);
  for (const std::uint64_t seed : {1U, 2U, 3U}) {
    const auto f = small_logistic(seed);
    Vec x(5);
    for (Index i = 0; i < 5; ++i) x(i) = 2 * rng.normal();
    CHECK(gradient_error(f, x) < 1e-8);
  }
}

TEST_CASE("NonconvexLogistic in float agrees with double", "[objective][scalar]") {
  hsgd::B1Data data;
  data.workers = 1;
  data.samples_per_worker = 20;
  data.dimension = 5;
  const auto in_double = hsgd::make_b1_shards<double>(data).front();
  const auto in_float = hsgd::make_b1_shards<float>(data).front();
  const Vec x = Vec::LinSpaced(5, -1, 1);
  hsgd::Vector<float> g_float(5);
  Vec g_double(5);
  in_float.gradient(x.cast<float>(), g_float);
  in_double.gradient(x, g_double);
  CHECK(relative_difference(g_float.cast<double>(), g_double) < 1e-5);
  CHECK(std::abs(in_float.value(x.cast<float>()) - in_double.value(x)) < 1e-5);
}

TEST_CASE("Quadratic: value, gradient and finite differences", "[objective]") {
  hsgd::Rng rng(9);
  const auto f = hsgd::Quadratic<double>::isotropic_noisy(1.5, Vec::LinSpaced(4, -1, 2), 10, 0.7, rng);
  const Vec x = Vec::Constant(4, 0.3);
  CHECK(gradient_error(f, x) < 1e-8);
  // The centre is the mean of the samples, and the value the mean of the sample losses.
  Vec gradient(4);
  f.gradient(f.centre(), gradient);
  CHECK(gradient.norm() < 1e-14);
  double mean_loss = 0;
  for (Index k = 0; k < f.sample_count(); ++k) {
    Vec g(4);
    const std::vector<Index> one{k};
    f.batch_gradient(Vec::Zero(4), one, g);  // = -a c_k, so c_k = -g / a
    const Vec centre_k = -g / 1.5;
    mean_loss += 0.5 * 1.5 * (x - centre_k).squaredNorm() / double(f.sample_count());
  }
  CHECK(f.value(x) == Approx(mean_loss).epsilon(1e-12));
}

TEST_CASE("batch_gradient is the mean over the batch, repeats counting each time", "[objective]") {
  const auto logistic = small_logistic(4);
  hsgd::Rng rng(3);
  const auto quadratic = hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Zero(5), 20, 1.0, rng);
  const Vec x = Vec::LinSpaced(5, -0.5, 0.5);
  const auto check = [&](const auto& f) {
    Vec full(5), batch(5), single(5), doubled(5), pair(5), other(5);
    f.gradient(x, full);
    f.batch_gradient(x, all_indices(f.sample_count()), batch);
    CHECK(relative_difference(batch, full) < 1e-12);
    const std::vector<Index> k{3}, kk{3, 3}, k_and_j{3, 7}, j{7};
    f.batch_gradient(x, k, single);
    f.batch_gradient(x, kk, doubled);
    f.batch_gradient(x, k_and_j, pair);
    f.batch_gradient(x, j, other);
    CHECK(relative_difference(doubled, single) < 1e-15);           // a mean, not a sum
    CHECK(relative_difference(pair, (single + other) / 2) < 1e-14);  // mean of the two
    CHECK(relative_difference(single, other) > 1e-3);               // the samples differ
  };
  check(logistic);
  check(quadratic);
}

TEST_CASE("make_b1_shards: sizes, determinism, and heterogeneity", "[objective][data]") {
  hsgd::B1Data data;
  data.workers = 4;
  data.samples_per_worker = 50;
  data.dimension = 7;
  data.seed = 12;
  const auto shards = hsgd::make_b1_shards(data);
  REQUIRE(shards.size() == 4);
  CHECK(shards[0].dimension() == 7);
  CHECK(shards[0].sample_count() == 50);
  CHECK(shards[0].lambda() == 1e-3);
  const auto again = hsgd::make_b1_shards(data);
  for (std::size_t j = 0; j < 4; ++j) {
    CHECK(again[j].features() == shards[j].features());
    CHECK(again[j].labels() == shards[j].labels());
  }
  CHECK(shards[0].features() != shards[1].features());
  data.seed = 13;
  CHECK(hsgd::make_b1_shards(data)[0].features() != shards[0].features());
}

TEST_CASE("make_b1_shards: heterogeneity moves the workers' minimisers apart", "[objective][data]") {
  // With h = 0 every worker labels with the same model, so their gradients at a common point
  // agree up to sampling noise; with h = 3 they point different ways. Averaged over 8 workers and
  // 2000 samples each, the spread with h = 3 is several times the h = 0 one.
  const auto spread = [](double heterogeneity) {
    hsgd::B1Data data;
    data.workers = 8;
    data.samples_per_worker = 2000;
    data.dimension = 6;
    data.signal = 4.0;
    data.heterogeneity = heterogeneity;
    const auto shards = hsgd::make_b1_shards(data);
    Mat gradients(6, 8);
    for (Index j = 0; j < 8; ++j) {
      Vec g(6);
      shards[static_cast<std::size_t>(j)].gradient(Vec::Zero(6), g);
      gradients.col(j) = g;
    }
    return (gradients.colwise() - gradients.rowwise().mean()).squaredNorm() / 8.0;
  };
  CHECK(spread(3.0) > 4.0 * spread(0.0));
}

TEST_CASE("Concepts accept the shipped parts and reject incomplete ones", "[concepts]") {
  STATIC_REQUIRE(hsgd::Objective<hsgd::Quadratic<double>>);
  STATIC_REQUIRE(hsgd::Objective<hsgd::NonconvexLogistic<float>>);
  STATIC_REQUIRE_FALSE(hsgd::Objective<MissingBatchGradient>);
  STATIC_REQUIRE_FALSE(hsgd::Objective<int>);
  STATIC_REQUIRE(hsgd::Sampler<hsgd::UniformSampler>);
  STATIC_REQUIRE(hsgd::Sampler<hsgd::ShuffledSampler>);
  STATIC_REQUIRE(hsgd::Sampler<hsgd::FullBatchSampler>);
  STATIC_REQUIRE_FALSE(hsgd::Sampler<hsgd::Sgd>);
  STATIC_REQUIRE(hsgd::UpdatePolicy<hsgd::Sgd, double>);
  STATIC_REQUIRE(hsgd::UpdatePolicy<hsgd::Momentum, float>);
  STATIC_REQUIRE_FALSE(hsgd::UpdatePolicy<hsgd::ConstantRate, double>);
  STATIC_REQUIRE(hsgd::LearningRateSchedule<hsgd::StepDecay>);
  STATIC_REQUIRE_FALSE(hsgd::LearningRateSchedule<hsgd::Sgd>);
  STATIC_REQUIRE(hsgd::GroupingPolicy<hsgd::RandomGrouping>);
  STATIC_REQUIRE(hsgd::GroupingPolicy<hsgd::ExplicitGrouping>);
  STATIC_REQUIRE_FALSE(hsgd::GroupingPolicy<hsgd::UniformSampler>);
}
