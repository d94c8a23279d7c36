// The Catch2 matchers of hsgd/testing/catch2.hpp: each matches what it should and rejects what
// it should not, on real runs and on records altered by hand.

#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include <hsgd/testing/catch2.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

namespace {

std::vector<hsgd::ProbeRecord> probe_run(Index steps) {
  hsgd::Engine engine(hsgd::Topology::two_level(12, 3, 2, 8), noisy_quadratics(12, 4, 2), hsgd::UniformSampler(4),
                      options(1, steps, 0.1));
  hsgd::MemoryRecorder memory;
  auto probe = hsgd::make_probe(engine, {.gradient_every = 4, .model_every = 1}, memory);
  engine.run(probe);
  return memory.rows;
}

}  // namespace

TEST_CASE("MeanGradientNormBelow compares the time average of the measured ||grad f||^2", "[testing]") {
  const auto rows = probe_run(64);
  const double mean = hsgd::time_average(rows, &hsgd::ProbeRecord::gradient_norm_squared);
  double by_hand = 0;
  int measured = 0;
  for (const auto& row : rows) {
    if (row.step % 4 != 0) continue;  // only every fourth step measured the gradient space
    by_hand += row.gradient_norm_squared;
    ++measured;
  }
  REQUIRE(measured == 16);
  CHECK(mean == Approx(by_hand / measured).epsilon(1e-14));
  CHECK_THAT(rows, hsgd::testing::MeanGradientNormBelow(mean * (1 + 1e-12)));
  CHECK_THAT(rows, !hsgd::testing::MeanGradientNormBelow(mean * (1 - 1e-9)));
  // Without gradient-space records there is nothing to bound: no match.
  std::vector<hsgd::ProbeRecord> model_only(rows.begin(), rows.begin() + 3);
  CHECK_THAT(model_only, !hsgd::testing::MeanGradientNormBelow(1e300));
  const hsgd::testing::MeanGradientNormBelow matcher(1.0);
  (void)matcher.match(rows);
  CHECK_THAT(matcher.describe(), Contains("it is"));
}

TEST_CASE("SatisfiesDivergenceIdentity holds on every record of a run and catches a broken one", "[testing]") {
  const auto rows = probe_run(32);
  for (const auto& row : rows) CHECK_THAT(row, hsgd::testing::SatisfiesDivergenceIdentity());
  auto broken = rows[3];
  REQUIRE(broken.d_up > 0);
  broken.d_up *= 1 + 1e-9;
  CHECK_THAT(broken, !hsgd::testing::SatisfiesDivergenceIdentity());
  auto broken_model = rows[4];
  REQUIRE(broken_model.c_in > 0);
  broken_model.model_terms[0] *= 1.01;
  CHECK_THAT(broken_model, !hsgd::testing::SatisfiesDivergenceIdentity());
}

TEST_CASE("ShowsSandwich needs ordered means and, if asked, gaps of z standard errors", "[testing]") {
  const std::vector<double> lower{1.0, 2.0, 3.0, 4.0};
  const std::vector<double> middle{1.2, 2.3, 3.1, 4.2};
  const std::vector<double> upper{1.5, 2.6, 3.4, 4.6};
  const auto check = hsgd::check_sandwich(lower, middle, upper);
  CHECK_THAT(check, hsgd::testing::ShowsSandwich());
  // Lower gaps 0.2, 0.3, 0.1, 0.2: mean 0.2, standard error 0.041, so 4 standard errors pass and 5
  // fail (the upper gaps, 0.3, 0.3, 0.3, 0.4, are 13 standard errors).
  CHECK_THAT(check, hsgd::testing::ShowsSandwich(4));
  CHECK_THAT(check, !hsgd::testing::ShowsSandwich(5));
  CHECK_THAT(hsgd::check_sandwich(middle, lower, upper), !hsgd::testing::ShowsSandwich());
}
