// Divergences estimated from fixed subsamples (with the sampling-noise bias removed), and each
// group measured at its own average.

#include <cmath>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

constexpr Index d = 3;
const std::vector<Index> group_sizes{3, 4, 5};

/// 12 stochastic quadratics with their own curvature and centre, m_j = 30 + 5 j samples spread
/// around the centre (so per-sample gradients are noisy), data-size weights.
struct Problem {
  std::vector<hsgd::Quadratic<double>> shards;
  hsgd::Options run_options = options(2);

  Problem() {
    run_options.weighting = hsgd::Weighting::data_size;
    for (Index j = 0; j < 12; ++j) {
      hsgd::Rng rng = hsgd::make_stream(11, hsgd::StreamKind::user, static_cast<std::uint64_t>(j));
      Vec curvature(d);
      Vec centre(d);
      for (Index i = 0; i < d; ++i) {
        curvature(i) = 0.5 + rng.uniform();
        centre(i) = 0.5 * rng.normal();
      }
      Mat centres(d, 30 + 5 * j);
      for (Index k = 0; k < centres.cols(); ++k) centres.col(k) = centre + 2.0 * Vec::NullaryExpr(d, [&] { return rng.normal(); });
      shards.push_back(hsgd::Quadratic<double>::from_samples(curvature, centres));
    }
  }

  /// An engine whose workers hold distinct random models, grouped at random.
  auto engine() const {
    hsgd::Engine engine(hsgd::Topology::two_level(group_sizes, 2, 4), shards, hsgd::UniformSampler(2), run_options,
                        hsgd::Sgd{}, hsgd::ConstantRate{}, hsgd::RandomGrouping{});
    hsgd::Rng rng(5);
    for (Index j = 0; j < 12; ++j) engine.set_model(j, Vec::NullaryExpr(d, [&] { return rng.normal(); }));
    return engine;
  }
};

/// One measurement at the engine's current state.
template <class Run>
hsgd::ProbeRecord measure(const Run& run, hsgd::ProbeOptions probe_options) {
  probe_options.gradient_every = 1;
  probe_options.model_every = 0;
  hsgd::MemoryRecorder recorder;
  auto probe = hsgd::make_probe(run, probe_options, recorder);
  probe.after_step(run);
  return recorder.rows.at(0);
}

/// The quantities a record estimates, in one array.
std::vector<double> quantities(const hsgd::ProbeRecord& r) {
  return {r.d_up,
          r.d_down,
          r.d_glob,
          r.gradient_norm_squared,
          r.group_d_down[0],
          r.d_down_at_group_averages,
          r.group_d_down_at_group_averages[1],
          r.group_gradient_norm_squared[2]};
}

}  // namespace

TEST_CASE("Subsampled divergences with the bias removed are unbiased over the subsample draw",
          "[probe][subsample]") {
  // Each quantity is averaged over R independent subsample draws (k = 6 of 30..85 samples). The
  // corrected estimator is exactly unbiased (see DivergenceProbe), so its mean must sit within
  // 4.5 standard errors (estimated from the same R draws) of the full-gradient value: 8 such
  // checks fail by chance with probability below 1e-4. The uncorrected one is biased upwards by
  // sum_j w_j v_j (...) > 0, of the order of its own spread, hence tens of standard errors.
  const Problem problem;
  const auto engine = problem.engine();
  const auto exact = quantities(measure(engine, {.at_group_averages = true}));
  const Index draws = 1500;
  const std::size_t count = exact.size();
  std::vector<double> sum(count, 0), sum_sq(count, 0), raw_sum(count, 0);
  for (Index draw = 0; draw < draws; ++draw) {
    const auto seed = static_cast<std::uint64_t>(draw);
    const auto corrected = quantities(measure(engine, {.subsample = 6, .subsample_seed = seed, .at_group_averages = true}));
    const auto raw = quantities(
        measure(engine, {.subsample = 6, .subsample_seed = seed, .remove_sampling_bias = false, .at_group_averages = true}));
    for (std::size_t q = 0; q < count; ++q) {
      sum[q] += corrected[q];
      sum_sq[q] += corrected[q] * corrected[q];
      raw_sum[q] += raw[q];
    }
  }
  for (std::size_t q = 0; q < count; ++q) {
    const double mean = sum[q] / double(draws);
    const double standard_error = std::sqrt((sum_sq[q] / double(draws) - mean * mean) / double(draws - 1));
    INFO("quantity " << q << ": exact " << exact[q] << ", corrected mean " << mean << ", raw mean "
                     << raw_sum[q] / double(draws) << ", standard error " << standard_error);
    CHECK(std::abs(mean - exact[q]) < 4.5 * standard_error);
    CHECK(raw_sum[q] / double(draws) - exact[q] > 10 * standard_error);
  }
}

TEST_CASE("A subsample as large as a shard is the full gradient", "[probe][subsample]") {
  const Problem problem;
  const auto engine = problem.engine();
  CHECK(quantities(measure(engine, {.subsample = 100, .at_group_averages = true})) ==
        quantities(measure(engine, {.at_group_averages = true})));
  // A subsample smaller than the shards really subsamples: the estimate moves.
  CHECK(measure(engine, {.subsample = 10}).d_down != measure(engine, {.subsample = 0}).d_down);
}

TEST_CASE("With a subsample the loss is estimated from it, without bias, when the objective has batch_value",
          "[probe][subsample]") {
  // B1 shards (12 workers of 64 samples) have batch_value: each draw of k = 8 samples per worker
  // gives sum_j w_j (mean loss over S_j + R), an unbiased estimate of f(xbar). Its mean over R
  // draws must sit within 4.5 standard errors (estimated from the draws) of f(xbar): a chance
  // failure has probability below 1e-5. The draws must also really vary, or the loss was not
  // estimated from the subsample at all.
  auto b1 = hsgd::make_b1_shards<double>(small_b1(6));
  hsgd::Engine engine(hsgd::Topology::two_level(group_sizes, 2, 4), b1, hsgd::UniformSampler(2), options(2));
  hsgd::Rng rng(6);
  for (Index j = 0; j < 12; ++j) engine.set_model(j, Vec::NullaryExpr(6, [&] { return rng.normal(); }));
  const double exact = engine.loss(engine.global_average());
  CHECK(measure(engine, {}).loss == Approx(exact).epsilon(1e-14));
  CHECK(measure(engine, {.subsample = 64}).loss == Approx(exact).epsilon(1e-14));  // the whole shard
  const Index draws = 400;
  double sum = 0;
  double sum_sq = 0;
  for (Index draw = 0; draw < draws; ++draw) {
    const double loss = measure(engine, {.subsample = 8, .subsample_seed = static_cast<std::uint64_t>(draw)}).loss;
    sum += loss;
    sum_sq += loss * loss;
  }
  const double mean = sum / double(draws);
  const double standard_error = std::sqrt((sum_sq / double(draws) - mean * mean) / double(draws - 1));
  INFO("exact " << exact << ", mean " << mean << ", standard error " << standard_error);
  CHECK(standard_error > 1e-4 * exact);
  CHECK(std::abs(mean - exact) < 4.5 * standard_error);

  // Quadratic has no batch_value: its loss is f(xbar) in full, whatever the subsample.
  const Problem problem;
  const auto quadratic = problem.engine();
  CHECK(measure(quadratic, {.subsample = 6}).loss == measure(quadratic, {}).loss);
}

TEST_CASE("Each group measured at its own average matches the definitions", "[probe][group]") {
  const Problem problem;
  const auto engine = problem.engine();
  const auto record = measure(engine, {.at_group_averages = true});
  const Vec& w = engine.weights();
  double weighted_sum = 0;
  for (Index i = 0; i < 3; ++i) {
    const auto members = engine.server(1, i).members();
    double weight = 0;
    Vec average = Vec::Zero(d);
    for (const Index j : members) {
      average += w(j) * engine.model(j);
      weight += w(j);
    }
    average /= weight;
    Mat gradients(d, 12);
    Vec h = Vec::Zero(d);
    for (const Index j : members) {
      Vec g(d);
      problem.shards[static_cast<std::size_t>(j)].gradient(average, g);
      gradients.col(j) = g;
      h += (w(j) / weight) * g;
    }
    double spread = 0;
    for (const Index j : members) spread += (w(j) / weight) * (gradients.col(j) - h).squaredNorm();
    CHECK(std::abs(record.group_d_down_at_group_averages[static_cast<std::size_t>(i)] - spread) <= 1e-12 * spread);
    CHECK(std::abs(record.group_gradient_norm_squared[static_cast<std::size_t>(i)] - h.squaredNorm()) <=
          1e-12 * h.squaredNorm());
    weighted_sum += weight * spread;
  }
  CHECK(std::abs(record.d_down_at_group_averages - weighted_sum) <= 1e-12 * weighted_sum);
  // The group averages differ from the global one here, so the two D_down differ.
  CHECK(std::abs(record.d_down_at_group_averages - record.d_down) > 1e-6 * record.d_down);
}

TEST_CASE("Right after a global aggregation the group averages are the global one", "[probe][group]") {
  const Problem problem;
  auto engine = problem.engine();
  for (Index t = 0; t < 4; ++t) engine.step();  // step 4 closes at the global level
  const auto record = measure(engine, {.at_group_averages = true});
  CHECK(std::abs(record.d_down_at_group_averages - record.d_down) <= 1e-12 * record.d_down);
  for (std::size_t i = 0; i < 3; ++i)
    CHECK(std::abs(record.group_d_down_at_group_averages[i] - record.group_d_down[i]) <= 1e-12 * record.group_d_down[i]);
}

TEST_CASE("ProbeOptions: a subsample of one cannot estimate its own noise", "[probe][validation]") {
  hsgd::ProbeOptions probe_options;
  probe_options.subsample = 1;
  CHECK_THROWS_WITH(probe_options.validate(), Contains("'subsample' (1) must be 0") && Contains("at least 2"));
  probe_options.subsample = 2;
  CHECK_NOTHROW(probe_options.validate());
}
