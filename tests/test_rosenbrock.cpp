// The separable Rosenbrock-type objective.

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;

TEST_CASE("Rosenbrock: gradient against central differences, minimiser at (c, c^2)", "[objective]") {
  const hsgd::Rosenbrock<double> f(6, 0.7, 20.0);
  hsgd::Rng rng(4);
  for (int trial = 0; trial < 5; ++trial) {
    Vec x(6);
    for (Index i = 0; i < 6; ++i) x(i) = rng.normal();
    Vec g(6);
    f.gradient(x, g);
    // Central differences with h = 1e-6: truncation O(h^2 F''') and rounding O(eps F / h) are both
    // near 1e-9 for these O(10..100) values.
    for (Index i = 0; i < 6; ++i) {
      Vec up = x, down = x;
      up(i) += 1e-6;
      down(i) -= 1e-6;
      CHECK(g(i) == Approx((f.value(up) - f.value(down)) / 2e-6).epsilon(1e-6).margin(1e-6));
    }
  }
  Vec minimiser(6);
  minimiser << 0.7, 0.7 * 0.7, 0.7, 0.7 * 0.7, 0.7, 0.7 * 0.7;
  Vec g(6);
  f.gradient(minimiser, g);
  CHECK(g.norm() < 1e-14);
  // Exactly 0 when x(i + 1) - x(i) * x(i) is rounded twice; a compiler that contracts it into a
  // fused multiply-add (Clang does by default, at -O3 even without FMA hardware, by folding it at
  // compile time; GCC with -march=native too) leaves the rounding error of 0.7 * 0.7, about 1e-17,
  // in the valley term, and a value near 20 * 1e-34.
  CHECK(f.value(minimiser) == Approx(0.0).margin(1e-30));
  REQUIRE_THROWS_MATCHES(hsgd::Rosenbrock<double>(5), hsgd::InvalidArgument,
                         Catch::Matchers::Message("'dimension' (5) must be positive and even"));
}

TEST_CASE("Rosenbrock: H-SGD on shifted workers settles where the mean gradient vanishes", "[objective]") {
  std::vector<hsgd::Rosenbrock<double>> shards;
  for (Index j = 0; j < 8; ++j) shards.emplace_back(2, 0.5 + 0.1 * double(j), 5.0);
  hsgd::Engine engine(hsgd::Topology::two_level(8, 2, 2, 8), shards, hsgd::FullBatchSampler(), options(1, 4000, 0.01));
  engine.set_model(Vec::Constant(2, 0.5));
  const auto summary = engine.run();
  // Full gradients and small steps: the averaged model approaches a stationary point of f.
  CHECK(summary.gradient_norm_squared < 1e-4);
  CHECK(std::isfinite(summary.loss));
}
