// Random streams and samplers.

#include <cmath>
#include <numeric>
#include <set>

#include <catch2/catch.hpp>

#include "support.hpp"

using namespace test;
using Catch::Matchers::Contains;

TEST_CASE("Rng: a seed fixes the sequence; streams differ by kind and by id", "[rng]") {
  hsgd::Rng a(42), b(42), c(43);
  bool any_difference = false;
  for (int i = 0; i < 100; ++i) {
    const auto x = a();
    REQUIRE(x == b());
    any_difference |= x != c();
  }
  CHECK(any_difference);
  auto worker = hsgd::make_stream(1, hsgd::StreamKind::worker, 0);
  auto same_worker = hsgd::make_stream(1, hsgd::StreamKind::worker, 0);
  auto other_worker = hsgd::make_stream(1, hsgd::StreamKind::worker, 1);
  auto server = hsgd::make_stream(1, hsgd::StreamKind::server, 0);
  auto other_seed = hsgd::make_stream(2, hsgd::StreamKind::worker, 0);
  CHECK(worker == same_worker);
  const auto first = worker();
  CHECK(first == same_worker());
  CHECK(first != other_worker());
  CHECK(first != server());
  CHECK(first != other_seed());
}

TEST_CASE("Rng::below is in range and uniform", "[rng][statistics]") {
  // 7 bins, 70000 draws: each count is Binomial(70000, 1/7), sd = sqrt(70000 (1/7)(6/7)) = 92.6.
  // 5 sd bounds each bin; with the fixed seed the outcome is deterministic.
  hsgd::Rng rng(7);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) {
    const Index value = rng.below(7);
    REQUIRE(value >= 0);
    REQUIRE(value < 7);
    ++counts[static_cast<std::size_t>(value)];
  }
  for (const int count : counts) CHECK(std::abs(count - 10000) < 5 * 92.6);
  CHECK(rng.below(1) == 0);
}

TEST_CASE("Rng::normal has mean 0 and variance 1", "[rng][statistics]") {
  // N = 200000: the sample mean has sd 1/sqrt(N) = 0.0022, the sample variance sd sqrt(2/N) = 0.0032;
  // bounds of 5 sd.
  hsgd::Rng rng(8);
  constexpr int draws = 200000;
  double sum = 0;
  double squares = 0;
  for (int i = 0; i < draws; ++i) {
    const double x = rng.normal();
    sum += x;
    squares += x * x;
  }
  const double mean = sum / draws;
  CHECK(std::abs(mean) < 5 * 0.0022);
  CHECK(std::abs(squares / draws - mean * mean - 1.0) < 5 * 0.0032);
}

TEST_CASE("Rng::shuffle permutes", "[rng]") {
  hsgd::Rng rng(2);
  std::vector<Index> values(50);
  std::iota(values.begin(), values.end(), Index{0});
  const auto original = values;
  rng.shuffle(std::span<Index>(values));
  CHECK(values != original);
  CHECK(std::set<Index>(values.begin(), values.end()).size() == 50);
}

TEST_CASE("UniformSampler draws batches of the right size from the whole shard", "[sampler]") {
  hsgd::UniformSampler sampler(5);
  sampler.bind(13);
  hsgd::Rng rng(4);
  std::set<Index> seen;
  for (int i = 0; i < 100; ++i) {
    const auto batch = sampler.next(rng);
    REQUIRE(batch.size() == 5);
    for (const Index k : batch) {
      REQUIRE(k >= 0);
      REQUIRE(k < 13);
      seen.insert(k);
    }
  }
  CHECK(seen.size() == 13);  // P(some index never drawn in 500 draws) < 13 (12/13)^500 ~ 1e-16
}

TEST_CASE("ShuffledSampler visits every sample once per epoch, in a new order each epoch", "[sampler]") {
  hsgd::ShuffledSampler sampler(4);
  sampler.bind(12);
  hsgd::Rng rng(6);
  std::vector<std::vector<Index>> epochs;
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<Index> order;
    for (int b = 0; b < 3; ++b) {
      const auto batch = sampler.next(rng);
      REQUIRE(batch.size() == 4);
      order.insert(order.end(), batch.begin(), batch.end());
    }
    CHECK(std::set<Index>(order.begin(), order.end()).size() == 12);
    epochs.push_back(order);
  }
  CHECK(epochs[0] != epochs[1]);
  CHECK(epochs[1] != epochs[2]);
}

TEST_CASE("ShuffledSampler drops the remainder of an epoch rather than repeat a sample in a batch", "[sampler]") {
  hsgd::ShuffledSampler sampler(4);
  sampler.bind(10);  // two batches per epoch, 2 samples left over
  hsgd::Rng rng(1);
  for (int b = 0; b < 50; ++b) {
    const auto batch = sampler.next(rng);
    REQUIRE(std::set<Index>(batch.begin(), batch.end()).size() == 4);
  }
  // Within an epoch the two batches are disjoint.
  hsgd::ShuffledSampler fresh(4);
  fresh.bind(10);
  const auto first = fresh.next(rng);
  const std::vector<Index> first_copy(first.begin(), first.end());
  const auto second = fresh.next(rng);
  std::set<Index> both(first_copy.begin(), first_copy.end());
  both.insert(second.begin(), second.end());
  CHECK(both.size() == 8);
}

TEST_CASE("FullBatchSampler returns every sample and draws nothing", "[sampler]") {
  hsgd::FullBatchSampler sampler;
  sampler.bind(6);
  hsgd::Rng rng(3);
  const hsgd::Rng before = rng;
  const auto batch = sampler.next(rng);
  CHECK(std::vector<Index>(batch.begin(), batch.end()) == std::vector<Index>{0, 1, 2, 3, 4, 5});
  CHECK(rng == before);
}

TEST_CASE("Samplers used before bind throw instead of reading nothing", "[hardening][memory]") {
  hsgd::Rng rng = hsgd::make_stream(1, hsgd::StreamKind::user, 0);
  hsgd::UniformSampler uniform(4);
  CHECK_THROWS_WITH(uniform.next(rng), Contains("call bind(sample_count) before next()"));
  hsgd::ShuffledSampler shuffled(4);
  CHECK_THROWS_WITH(shuffled.next(rng), Contains("call bind(sample_count) before next()"));
  const hsgd::FullBatchSampler full;
  CHECK_THROWS_WITH(full.next(rng), Contains("call bind(sample_count) before next()"));
  uniform.bind(10);
  CHECK(uniform.next(rng).size() == 4);
}
