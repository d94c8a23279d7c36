// Divergence probes: the decomposition identity, the pure-noise closed form, that probing changes
// nothing, and that a probe refuses a run of another shape.

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include <hsgd/testing/catch2.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

/// D_up and D_down straight from their definitions in the paper (two levels), for comparison.
template <class Run>
std::pair<double, double> divergences_by_definition(const Run& run, const Mat& gradients) {
  const Vec& w = run.weights();
  const Vec h = gradients * w;
  double d_up = 0;
  double d_down = 0;
  for (const auto& group : run.units(1)) {
    double weight = 0;
    Vec h_i = Vec::Zero(gradients.rows());
    for (const Index j : group) {
      h_i += w(j) * gradients.col(j);
      weight += w(j);
    }
    h_i /= weight;
    d_up += weight * (h_i - h).squaredNorm();
    for (const Index j : group) d_down += w(j) * (gradients.col(j) - h_i).squaredNorm();
  }
  return {d_up, d_down};
}

}  // namespace

TEST_CASE("D_up + D_down = D_glob at random points, groupings and weights (law of total variance)", "[probe][identity]") {
  hsgd::Rng rng(31);
  for (int trial = 0; trial < 6; ++trial) {
    auto opts = options(static_cast<std::uint64_t>(trial));
    opts.weighting = trial % 2 == 0 ? hsgd::Weighting::uniform : hsgd::Weighting::data_size;
    std::vector<hsgd::Quadratic<double>> shards;
    for (Index j = 0; j < 10; ++j) {
      hsgd::Rng data = hsgd::make_stream(trial, hsgd::StreamKind::user, static_cast<std::uint64_t>(j));
      shards.push_back(hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Zero(4), 1 + j, 1.0, data));
    }
    hsgd::Engine engine(hsgd::Topology::two_level(std::vector<Index>{3, 1, 4, 2}, 2, 4), shards, hsgd::UniformSampler(1),
                        opts, hsgd::Sgd{}, hsgd::ConstantRate{}, hsgd::RandomGrouping{});
    Mat vectors(4, 10);
    for (Index i = 0; i < vectors.size(); ++i) vectors(i) = 10 * rng.normal();
    hsgd::LevelDecomposition<double> split(engine.topology(), 4);
    split.compute(engine, vectors);
    const auto [d_up, d_down] = divergences_by_definition(engine, vectors);
    CHECK(std::abs(split.terms()[0] - d_down) <= 1e-12 * d_down);
    CHECK(std::abs(split.terms()[1] - d_up) <= 1e-12 * d_up);
    CHECK(std::abs(split.terms()[0] + split.terms()[1] - split.total()) <= 1e-12 * split.total());
    // Per-group spreads recombine into D_down with the group weights.
    double recombined = 0;
    const auto groups = engine.units(1);
    for (std::size_t i = 0; i < groups.size(); ++i) {
      double weight = 0;
      for (const Index j : groups[i]) weight += engine.weights()(j);
      recombined += weight * split.unit_spreads()[i];
    }
    CHECK(std::abs(recombined - d_down) <= 1e-12 * d_down);
  }
}

TEST_CASE("Three levels: the per-level terms add up to the global divergence", "[probe][identity]") {
  hsgd::Rng rng(5);
  const hsgd::Topology topology(12, {{2, {2, 3, 1, 4, 2}}, {4, {6, 6}}, {8, {12}}});
  for (const auto weighting : {hsgd::Weighting::uniform, hsgd::Weighting::data_size}) {
    auto opts = options(3);
    opts.weighting = weighting;
    std::vector<hsgd::Quadratic<double>> shards;
    for (Index j = 0; j < 12; ++j) {
      hsgd::Rng data = hsgd::make_stream(9, hsgd::StreamKind::user, static_cast<std::uint64_t>(j));
      shards.push_back(hsgd::Quadratic<double>::isotropic_noisy(1.0, Vec::Zero(3), 1 + j % 5, 1.0, data));
    }
    hsgd::Engine engine(topology, shards, hsgd::UniformSampler(1), opts, hsgd::Sgd{}, hsgd::ConstantRate{},
                        hsgd::RandomGrouping{});
    Mat vectors(3, 12);
    for (Index i = 0; i < vectors.size(); ++i) vectors(i) = rng.normal();
    hsgd::LevelDecomposition<double> split(topology, 3);
    split.compute(engine, vectors);
    REQUIRE(split.terms().size() == 3);
    const double sum = split.terms()[0] + split.terms()[1] + split.terms()[2];
    CHECK(std::abs(sum - split.total()) <= 1e-12 * split.total());
    for (const double term : split.terms()) CHECK(term > 0);
    // The top term alone: the two level-2 units against the global mean.
    const Vec global = vectors * engine.weights();
    double top = 0;
    for (Index unit = 0; unit < 2; ++unit) {
      double weight = 0;
      Vec mean = Vec::Zero(3);
      for (const Index j : engine.server(2, unit).members()) {
        mean += engine.weights()(j) * vectors.col(j);
        weight += engine.weights()(j);
      }
      top += weight * (mean / weight - global).squaredNorm();
    }
    CHECK(std::abs(split.terms()[2] - top) <= 1e-12 * top);
  }
}

TEST_CASE("Every record of a three-level run, random grouping, data-size weights, satisfies the identity",
          "[probe][identity]") {
  auto opts = options(4, 48, 0.1);
  opts.weighting = hsgd::Weighting::data_size;
  std::vector<hsgd::Quadratic<double>> shards;
  for (Index j = 0; j < 12; ++j) {
    hsgd::Rng data = hsgd::make_stream(2, hsgd::StreamKind::user, static_cast<std::uint64_t>(j));
    shards.push_back(hsgd::Quadratic<double>::isotropic_noisy(0.5 + 0.1 * double(j), Vec::Constant(3, double(j % 4)),
                                                              2 + j % 5, 1.0, data));
  }
  hsgd::Engine engine(hsgd::Topology(12, {{2, {2, 3, 1, 4, 2}}, {4, {6, 6}}, {8, {12}}}), shards,
                      hsgd::UniformSampler(2), opts, hsgd::Sgd{}, hsgd::ConstantRate{}, hsgd::RandomGrouping{});
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, {.gradient_every = 3, .model_every = 1}, memory);
  engine.run(probe);
  REQUIRE(memory.rows.size() == 48);
  for (const auto& row : memory.rows) {
    REQUIRE(row.model_terms.size() == 3);
    CHECK_THAT(row, hsgd::testing::SatisfiesDivergenceIdentity(1e-12));
  }
}

TEST_CASE("Probes do not change the trajectory", "[probe]") {
  const auto models_after = [](bool probed) {
    hsgd::Engine engine(hsgd::Topology::two_level(12, 3, 2, 8), hsgd::make_b1_shards(small_b1()), hsgd::UniformSampler(4),
                        options(4, 64));
    hsgd::MemoryRecorder memory;
    auto probe = hsgd::make_probe(engine, {.gradient_every = 4, .model_every = 1}, memory);
    if (probed) {
      engine.run(probe);
      CHECK(memory.rows.size() == 64);
    } else {
      engine.run();
    }
    return Mat(engine.models());
  };
  CHECK(models_after(true) == models_after(false));
}

TEST_CASE("Model spreads vanish at the aggregations that remove them", "[probe]") {
  hsgd::Engine engine(hsgd::Topology::two_level(12, 3, 2, 8), noisy_quadratics(12, 3, 2), hsgd::UniformSampler(1),
                      options(2, 32, 0.2));
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, {.gradient_every = 0, .model_every = 1}, memory);
  engine.run(probe);
  for (const auto& row : memory.rows) {
    INFO("step " << row.step << ", level " << row.level);
    CHECK(std::isnan(row.d_up));  // gradient space not measured
    CHECK(std::abs(row.c_in + row.c_up - row.c) <= 1e-12 * row.c + 1e-300);
    if (row.level >= 1) CHECK(row.c_in <= 1e-25 * (1 + row.c_up));
    if (row.level == 2) CHECK(row.c <= 1e-25);
    if (row.level == 0) CHECK(row.c_in > 1e-6);  // workers drifted apart since the last average
  }
}

TEST_CASE("Pure gradient noise: time-averaged C_in and C_up match the closed form (pure-noise closed form)",
          "[probe][closed-form][statistics]") {
  // n = 12, N = 3 groups of 4, gamma = 0.1, d = 1, I = 4, G = 16, batch 1 with replacement from
  // 4096 centred N(0, 1) samples per worker, so sigma^2 is their empirical variance.
  // E[C_in] = gamma^2 sigma^2 d (I - 1)/2 (1 - N/n), E[C_up] = gamma^2 sigma^2 d (G - 1)/2 (N - 1)/n.
  // Global periods are independent (the global average resets every spread and the noise is
  // fresh), so per-period means are i.i.d.: the margin is 5 standard errors of their average.
  constexpr Index workers = 12;
  constexpr Index global_period = 16;
  constexpr Index periods = 1500;
  std::vector<PureNoise> shards;
  double variance = 0;
  for (Index j = 0; j < workers; ++j) {
    hsgd::Rng rng = hsgd::make_stream(77, hsgd::StreamKind::user, static_cast<std::uint64_t>(j));
    Mat noise(1, 4096);
    for (Index k = 0; k < noise.cols(); ++k) noise(0, k) = rng.normal();
    noise.array() -= noise.mean();
    variance += noise.squaredNorm() / double(noise.cols()) / double(workers);
    shards.push_back({noise});
  }
  hsgd::Engine engine(hsgd::Topology::two_level(workers, 3, 4, global_period), shards, hsgd::UniformSampler(1),
                      options(12, periods * global_period, 0.1));
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, {.gradient_every = 0, .model_every = 1}, memory);
  engine.run(probe);

  const auto check = [&](double (*field)(const hsgd::ProbeRecord&), double expected) {
    std::vector<double> period_means(periods, 0.0);
    for (const auto& row : memory.rows) period_means[static_cast<std::size_t>((row.step - 1) / global_period)] += field(row) / global_period;
    double mean = 0;
    for (const double m : period_means) mean += m / periods;
    double spread = 0;
    for (const double m : period_means) spread += (m - mean) * (m - mean) / (periods - 1);
    const double standard_error = std::sqrt(spread / periods);
    INFO("measured " << mean << ", closed form " << expected << ", standard error " << standard_error);
    CHECK(std::abs(mean - expected) < 5 * standard_error);
    CHECK(standard_error < 0.05 * expected);  // the margin is tight enough to mean something
  };
  const double gamma2_sigma2 = 0.01 * variance;
  check([](const hsgd::ProbeRecord& r) { return r.c_in; }, gamma2_sigma2 * 1.5 * (1 - 3.0 / 12));
  check([](const hsgd::ProbeRecord& r) { return r.c_up; }, gamma2_sigma2 * 7.5 * (2.0 / 12));
}

TEST_CASE("Probes count aggregations, messages and scalars per level", "[probe]") {
  // Level 1 (4 groups): each worker sends up and receives back: 2 x 12 messages. Level 2 adds the
  // 4 local servers' hops: 2 x (12 + 4).
  hsgd::Engine engine(hsgd::Topology::two_level(12, 4, 2, 6), noisy_quadratics(12, 5, 1), hsgd::UniformSampler(1),
                      options(1, 24));
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, {.gradient_every = 24, .model_every = 0}, memory);
  engine.run(probe);
  REQUIRE(memory.rows.size() == 1);
  const auto& row = memory.rows.back();
  CHECK(row.aggregations == std::vector<Index>{8, 4});
  CHECK(row.messages == 8 * 24 + 4 * 32);
  CHECK(row.level_messages == std::vector<Index>{8 * 24, 4 * 32});
  CHECK(row.scalars == double(row.messages) * 5);
  CHECK(std::abs(row.d_up + row.d_down - row.d_glob) <= 1e-12 * row.d_glob);
  CHECK(row.max_d_up == row.d_up);
  const Vec average = engine.global_average();
  CHECK(row.loss == engine.loss(average));
  CHECK(std::abs(row.gradient_norm_squared - engine.gradient(average).squaredNorm()) <=
        1e-12 * row.gradient_norm_squared);
}

TEST_CASE("A probe run with an engine of another shape throws, naming what differs", "[hardening][probe]") {
  hsgd::Engine made_for(hsgd::Topology::two_level(12, 3, 2, 4), noisy_quadratics(12, 2, 1), hsgd::UniformSampler(1),
                        options(1, 4));
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(made_for, {.gradient_every = 2, .model_every = 1}, memory);

  hsgd::Engine more_workers(hsgd::Topology::two_level(16, 4, 2, 4), noisy_quadratics(16, 2, 1),
                            hsgd::UniformSampler(1), options(1, 4));
  CHECK_THROWS_WITH(more_workers.run(probe),
                    Contains("the probe was made for a run of 12 workers but this run has 16"));
  hsgd::Engine wider(hsgd::Topology::two_level(12, 3, 2, 4), noisy_quadratics(12, 5, 1), hsgd::UniformSampler(1),
                     options(1, 4));
  CHECK_THROWS_WITH(wider.run(probe), Contains("dimension 2 but this run's models have dimension 5"));
  hsgd::Engine flat(hsgd::Topology::local_sgd(12, 2), noisy_quadratics(12, 2, 1), hsgd::UniformSampler(1),
                    options(1, 4));
  CHECK_THROWS_WITH(flat.run(probe), Contains("the probe was made for a run of 2 levels but this run has 1"));
  hsgd::Engine regrouped(hsgd::Topology::two_level(12, 4, 2, 4), noisy_quadratics(12, 2, 1), hsgd::UniformSampler(1),
                         options(1, 4));
  CHECK_THROWS_WITH(regrouped.run(probe), Contains("3 units at level 1 but this run has 4"));
  CHECK(memory.rows.empty());  // nothing was measured on a run of the wrong shape

  SECTION("a subsampling probe also checks the shards' sample counts") {
    auto sampled = hsgd::make_probe(made_for, {.gradient_every = 1, .model_every = 0, .subsample = 4}, memory);
    hsgd::Engine fewer(hsgd::Topology::two_level(12, 3, 2, 4), noisy_quadratics(12, 2, 1, 8), hsgd::UniformSampler(1),
                       options(1, 4));
    CHECK_THROWS_WITH(fewer.run(sampled), Contains("worker 0's 32 samples but this run's worker 0 has 8"));
  }

  SECTION("the same shape runs, and is measured") {
    hsgd::Engine twin(hsgd::Topology::two_level(12, 3, 2, 4), noisy_quadratics(12, 2, 2), hsgd::UniformSampler(1),
                      options(1, 4));
    twin.run(probe);
    CHECK(memory.rows.size() == 4);
  }
}

TEST_CASE("LevelDecomposition checks the run, the noise and the indices it is given", "[hardening][probe]") {
  hsgd::Engine engine(hsgd::Topology::two_level(12, 3, 2, 4), noisy_quadratics(12, 2, 1), hsgd::UniformSampler(1),
                      options(1, 4));
  hsgd::Engine other(hsgd::Topology::two_level(12, 4, 2, 4), noisy_quadratics(12, 2, 1), hsgd::UniformSampler(1),
                     options(1, 4));
  hsgd::LevelDecomposition<double> split(engine.topology(), 2);
  const Mat vectors = Mat::Ones(2, 12);
  CHECK_THROWS_WITH(split.compute(other, vectors), Contains("made for 3 units at level 1 but the run has 4"));
  split.compute(engine, vectors);
  CHECK(split.total() == 0);
  const std::vector<double> short_noise(11, 0.0);
  CHECK_THROWS_WITH(split.remove_noise(engine, short_noise), Contains("'noise' has 11 entries but the run has 12"));
  CHECK_THROWS_WITH(split.mean(3, 0), Contains("'level' (3) must be in [1, 2]"));
  CHECK_THROWS_WITH(split.mean(1, 3), Contains("'unit' (3) must be in [0, 3)"));
  CHECK(split.mean(2, 0)(0) == 1.0);
  CHECK_THROWS_WITH(hsgd::LevelDecomposition<double>(engine.topology(), 0),
                    Contains("'dimension' (0) must be positive"));
}

TEST_CASE("CsvRecorder: runs with fewer levels share a file, their extra level cells empty", "[probe][csv]") {
  const std::string path = "probe_levels_test.csv";
  {
    hsgd::CsvRecorder csv(path, {"scheme"}, 2);
    csv.set_tags({"local"});
    hsgd::Engine local(hsgd::Topology::local_sgd(6, 2), noisy_quadratics(6, 2, 1), hsgd::UniformSampler(1), options(1, 2));
    auto probe = hsgd::make_probe(local, {.gradient_every = 2, .model_every = 2}, csv);
    local.run(probe);
    csv.set_tags({"hsgd"});
    hsgd::Engine two(hsgd::Topology::two_level(6, 2, 2, 4), noisy_quadratics(6, 2, 1), hsgd::UniformSampler(1), options(1, 2));
    auto second = hsgd::make_probe(two, {.gradient_every = 2, .model_every = 2}, csv);
    two.run(second);
    hsgd::Engine three(hsgd::Topology(6, {{2, {2, 2, 2}}, {4, {4, 2}}, {8, {6}}}), noisy_quadratics(6, 2, 1),
                       hsgd::UniformSampler(1), options(1, 2));
    auto third = hsgd::make_probe(three, {.gradient_every = 2, .model_every = 2}, csv);
    CHECK_THROWS_WITH(three.run(third), Catch::Matchers::Contains("a record with 3 levels does not fit the CSV's 2"));
  }
  const auto rows = read_csv_cells(path, /*keep_trailing_empty=*/true);
  REQUIRE(rows.size() == 3);  // header, the local run's row, the two-level run's row
  for (const auto& row : rows) CHECK(row.size() == rows[0].size());
  CHECK(rows[0][rows[0].size() - 3] == "messages_level_2");
  CHECK(rows[1][0] == "local");
  CHECK(rows[1][rows[1].size() - 3].empty());  // no level 2 in local SGD
  CHECK_FALSE(rows[1][22].empty());  // d_level_0
  CHECK(rows[1][23].empty());        // d_level_1
  CHECK(rows[2][rows[2].size() - 3] == "0");  // no global round yet after step 2
  CHECK_FALSE(rows[2][23].empty());
  std::remove(path.c_str());
}

TEST_CASE("CsvRecorder writes the documented columns, one flushed row per record", "[probe][csv]") {
  const std::string path = "probe_test.csv";
  {
    hsgd::Engine engine(hsgd::Topology::two_level(6, 2, 2, 4), noisy_quadratics(6, 2, 1), hsgd::UniformSampler(1),
                        options(1, 8));
    hsgd::CsvRecorder csv(path, {"scheme", "seed"});
    csv.set_tags({"hsgd", "1"});
    auto probe = hsgd::make_probe(engine, {.gradient_every = 4, .model_every = 2}, csv);
    engine.run(probe);
    std::ifstream partial(path);  // readable while the recorder is still open: rows are flushed
    std::string header;
    std::getline(partial, header);
    CHECK(header ==
          "scheme,seed,step,level,loss,grad_norm_sq,d_up,d_down,d_glob,c_in,c_up,c,max_d_up,max_d_down,messages,scalars,d_down_at_groups,"
          "test_loss,test_accuracy,sim_seconds,sim_compute_seconds,sim_wait_seconds,sim_dropped,d_level_0,d_level_1,c_level_0,c_level_1,"
          "messages_level_1,messages_level_2,sim_comm_level_1,sim_comm_level_2");
  }
  std::ifstream file(path);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(file, line)) lines.push_back(line);
  REQUIRE(lines.size() == 5);  // header and steps 2, 4, 6, 8
  CHECK(lines[1].rfind("hsgd,1,2,1,,,,,,", 0) == 0);  // step 2: level 1, gradient fields empty
  CHECK(lines[2].rfind("hsgd,1,4,2,", 0) == 0);
  std::stringstream fields(lines[2]);
  std::vector<std::string> cells;
  for (std::string cell; std::getline(fields, cell, ',');) cells.push_back(cell);
  REQUIRE(cells.size() == 30);  // 31 columns, the last (an empty sim_comm_level_2) not split off
  CHECK(cells[27] == "12");  // by step 4: one level-1 round (step 2) of 2 x 6 messages
  CHECK(cells[28] == "16");  // one global round of 2 x (6 + 2)
  const double d_up = std::stod(cells[6]);
  const double d_down = std::stod(cells[7]);
  const double d_glob = std::stod(cells[8]);
  CHECK(std::abs(d_up + d_down - d_glob) <= 1e-12 * d_glob);
  std::remove(path.c_str());
}

namespace {

/// A 3-class problem split into a training set over 8 workers (label shards) and a held-out set.
struct HeldOutProblem {
  std::vector<hsgd::SoftmaxRegression<double>> shards;
  hsgd::Dataset<double> test;
};

HeldOutProblem held_out_problem() {
  hsgd::GaussianMixtureOptions mixture;
  mixture.classes = 3;
  mixture.dimension = 4;
  mixture.samples = 8 * 30 + 120;
  mixture.seed = 17;
  auto [train, test] = hsgd::train_test_split(hsgd::make_gaussian_mixture<double>(mixture), 0.25, 5);
  const auto partition = hsgd::partition_shards(train.labels, 3, {.workers = 8, .seed = 3});
  return {hsgd::make_softmax_shards(train, partition), std::move(test)};
}

}  // namespace

TEST_CASE("a held-out objective is evaluated at xbar_t every test_every steps", "[probe][held-out]") {
  const HeldOutProblem problem = held_out_problem();
  const hsgd::SoftmaxRegression<double> test(problem.test);
  const auto make = [&] {
    return hsgd::Engine(hsgd::Topology::two_level(8, 2, 2, 8), problem.shards, hsgd::UniformSampler(4), options(2, 24, 0.2));
  };
  auto engine = make();
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, {.gradient_every = 4, .model_every = 0, .test_every = 3}, memory, test);
  std::vector<Vec> averages(25);  // xbar_t after each step t, taken by an observer of our own
  auto snapshot = hsgd::every(1, [&](const auto& run) { averages[static_cast<std::size_t>(run.step_count())] = run.global_average(); });
  engine.run(probe, snapshot);

  std::vector<Index> steps;
  for (const auto& row : memory.rows) steps.push_back(row.step);
  CHECK(steps == std::vector<Index>{3, 4, 6, 8, 9, 12, 15, 16, 18, 20, 21, 24});  // multiples of 3 or 4
  for (const auto& row : memory.rows) {
    CAPTURE(row.step);
    const Vec& x = averages[static_cast<std::size_t>(row.step)];
    CHECK(hsgd::is_measured(row.loss) == (row.step % 4 == 0));
    if (row.step % 3 != 0) {
      CHECK_FALSE(hsgd::is_measured(row.test_loss));
      CHECK_FALSE(hsgd::is_measured(row.test_accuracy));
      continue;
    }
    CHECK(row.test_loss == test.value(x));  // the same evaluation of the same model: equal bits
    CHECK(row.test_accuracy == test.accuracy(x));
  }
  // A fit of the training shards classifies held-out samples of the same mixture better than a
  // guess (1/3): the evaluation reads the trained average, not the initial zero model.
  CHECK(memory.rows.back().test_accuracy > 0.6);
  CHECK(memory.rows.back().test_loss < memory.rows.front().test_loss);

  auto unprobed = make();  // held-out evaluation only reads the run
  unprobed.run();
  CHECK(unprobed.models() == engine.models());
}

TEST_CASE("held-out evaluation: no accuracy() leaves test_accuracy empty; shapes and options are checked",
          "[probe][held-out]") {
  hsgd::Engine engine(hsgd::Topology::two_level(6, 2, 2, 4), noisy_quadratics(6, 3, 1), hsgd::UniformSampler(1), options(1, 8));
  const hsgd::Quadratic<double> held_out = noisy_quadratics(1, 3, 99).front();
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, {.gradient_every = 0, .model_every = 0, .test_every = 2}, memory, held_out);
  engine.run(probe);
  REQUIRE(memory.rows.size() == 4);
  CHECK(memory.rows.back().test_loss == held_out.value(engine.global_average()));
  CHECK_FALSE(hsgd::is_measured(memory.rows.back().test_accuracy));
  CHECK_FALSE(hsgd::is_measured(memory.rows.back().loss));

  const hsgd::Quadratic<double> wrong = noisy_quadratics(1, 5, 99).front();
  CHECK_THROWS_WITH(hsgd::make_probe(engine, {}, memory, wrong),
                    Catch::Matchers::Contains("the held-out objective has dimension 5 but the run's models have dimension 3"));
  CHECK_THROWS_WITH(hsgd::make_probe(engine, {.test_every = -1}, memory, held_out),
                    Catch::Matchers::Contains("'test_every' (-1) must be non-negative"));
  // Without a held-out objective the cadence is ignored: no rows at all with the others off.
  hsgd::MemoryRecorder none;
  auto plain = hsgd::make_probe(engine, {.gradient_every = 0, .model_every = 0, .test_every = 1}, none);
  engine.run(plain);
  CHECK(none.rows.empty());
}

TEST_CASE("the CSV has test_loss and test_accuracy columns, empty when not measured", "[probe][held-out][csv]") {
  const TempDir dir;
  const HeldOutProblem problem = held_out_problem();
  {
    hsgd::Engine engine(hsgd::Topology::two_level(8, 2, 2, 8), problem.shards, hsgd::UniformSampler(4), options(2, 4, 0.2));
    hsgd::CsvRecorder csv(dir.file("held_out.csv"), {});
    auto probe = hsgd::make_probe(engine, {.gradient_every = 0, .model_every = 1, .test_every = 2}, csv,
                                  hsgd::SoftmaxRegression<double>(problem.test));
    engine.run(probe);
  }
  const auto rows = read_csv_cells(dir.file("held_out.csv"));
  REQUIRE(rows.size() == 5);  // header and steps 1..4
  CHECK(rows[0][15] == "test_loss");
  CHECK(rows[0][16] == "test_accuracy");
  CHECK(rows[1][15].empty());  // step 1
  CHECK(rows[1][16].empty());
  const double loss = std::stod(rows[2][15]);  // step 2
  const double accuracy = std::stod(rows[2][16]);
  CHECK(loss > 0);
  CHECK(accuracy >= 0);
  CHECK(accuracy <= 1);
  CHECK(accuracy * static_cast<double>(problem.test.size()) == Approx(std::round(accuracy * static_cast<double>(problem.test.size()))));
}

TEST_CASE("NonconvexLogistic's accuracy counts the samples on the right side of the hyperplane", "[probe][held-out]") {
  Mat features(2, 4);
  features << 1, -1, 2, 0.5,  //
      0, 0, 1, -3;
  Vec labels(4);
  labels << 1, -1, -1, 1;
  const hsgd::NonconvexLogistic<double> logistic(features, labels);
  Vec x(2);
  x << 1, 0;  // predicts sign(a_1): +1, -1, +1, +1 -> samples 0, 1 and 3 right
  CHECK(logistic.accuracy(x) == 0.75);
  x << 0, 1;  // sign(a_2), 0 counts as -1: -1, -1, +1, -1 -> only sample 1 right
  CHECK(logistic.accuracy(x) == 0.25);
}
