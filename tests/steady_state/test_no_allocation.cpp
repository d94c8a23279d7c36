// The steady state of a run makes no heap allocation. This binary counts both ways memory is
// taken: the global operator new (std containers), replaced below, and Eigen's own aligned
// malloc, which bypasses operator new; Eigen reports those through its EIGEN_RUNTIME_NO_MALLOC
// check, routed here to a counter instead of an abort. It is built on its own, apart from the main
// test binary, because both hooks are global.

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

namespace counting {
inline std::atomic<long> eigen_allocations{0};
inline void eigen_check_failed(const char* condition) {
  if (std::strstr(condition, "heap allocation is forbidden") != nullptr) {
    eigen_allocations.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  throw std::logic_error(condition);  // any other Eigen assertion is a real failure
}
}  // namespace counting

#define EIGEN_RUNTIME_NO_MALLOC
#define eigen_assert(condition)                                 \
  do {                                                          \
    if (!(condition)) counting::eigen_check_failed(#condition); \
  } while (false)

#include <catch2/catch.hpp>

#include "../support.hpp"

// The replacements below pair malloc with free; GCC's mismatch check cannot see through the
// replaced operator new and would flag every delete.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<long> allocations{0};
}  // namespace

// Every replaceable form, so that no allocation escapes the count and every block is freed by
// the function that matches the one that made it (AddressSanitizer checks that pairing).
namespace {
void* counted_allocation(std::size_t size, std::size_t alignment) noexcept {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) size = 1;
  if (alignment <= alignof(std::max_align_t)) return std::malloc(size);
  return std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}
void* counted_or_throw(std::size_t size, std::size_t alignment) {
  if (void* memory = counted_allocation(size, alignment)) return memory;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t size) { return counted_or_throw(size, 0); }
void* operator new[](std::size_t size) { return counted_or_throw(size, 0); }
void* operator new(std::size_t size, std::align_val_t alignment) {
  return counted_or_throw(size, static_cast<std::size_t>(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return counted_or_throw(size, static_cast<std::size_t>(alignment));
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return counted_allocation(size, 0); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return counted_allocation(size, 0); }
void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return counted_allocation(size, static_cast<std::size_t>(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return counted_allocation(size, static_cast<std::size_t>(alignment));
}
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete[](void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete(void* memory, std::align_val_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::align_val_t) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t, std::align_val_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::size_t, std::align_val_t) noexcept { std::free(memory); }
void operator delete(void* memory, const std::nothrow_t&) noexcept { std::free(memory); }
void operator delete[](void* memory, const std::nothrow_t&) noexcept { std::free(memory); }
void operator delete(void* memory, std::align_val_t, const std::nothrow_t&) noexcept { std::free(memory); }
void operator delete[](void* memory, std::align_val_t, const std::nothrow_t&) noexcept { std::free(memory); }

namespace {

/// Heap allocations of either kind made while `body` runs.
template <class Body>
long allocations_during(Body&& body) {
  const long before = allocations.load() + counting::eigen_allocations.load();
  Eigen::internal::set_is_malloc_allowed(false);
  body();
  Eigen::internal::set_is_malloc_allowed(true);
  return allocations.load() + counting::eigen_allocations.load() - before;
}

/// Allocations made by `steps` calls to engine.step(), after `warm_up` steps that may allocate.
template <class Engine>
long allocations_in_steady_state(Engine& engine, int warm_up, int steps) {
  for (int i = 0; i < warm_up; ++i) engine.step();
  return allocations_during([&] {
    for (int i = 0; i < steps; ++i) engine.step();
  });
}

}  // namespace

TEST_CASE("the counters see std and Eigen allocations", "[allocation]") {
  CHECK(allocations_during([] { const std::vector<int> values(100, 1); }) >= 1);
  CHECK(allocations_during([] { const hsgd::Vector<double> values = hsgd::Vector<double>::Ones(100); }) >= 1);
  const hsgd::Matrix<double> a = hsgd::Matrix<double>::Ones(8, 8);
  hsgd::Matrix<double> b(8, 8);
  CHECK(allocations_during([&] { b = a * a; }) >= 1);  // the product's temporary
  CHECK(allocations_during([&] { b.noalias() = a * a; }) == 0);
}

TEST_CASE("H-SGD steps allocate nothing once running, for every thread count", "[allocation]") {
  const auto shards = hsgd::make_b1_shards(test::small_b1());
  for (const hsgd::Index threads : {1, 2, 3}) {
    hsgd::Options options;
    options.threads = threads;
    hsgd::Engine engine(hsgd::Topology::two_level({3, 5, 4}, 2, 6), shards, hsgd::UniformSampler(8), options);
    CHECK(allocations_in_steady_state(engine, 6, 60) == 0);
  }
}

TEST_CASE("momentum, shuffled epochs, data-size weights, re-drawn random groups, 3 levels and a clock allocate nothing",
          "[allocation]") {
  const auto shards = hsgd::make_b1_shards<float>(test::small_b1());
  constexpr double inf = std::numeric_limits<double>::infinity();
  hsgd::Options options;
  options.threads = 2;
  options.weighting = hsgd::Weighting::data_size;
  options.warmup_steps = 3;
  const hsgd::Topology topology(12, {{2, {2, 2, 4, 4}}, {4, {4, 8}}, {8, {12}}});
  hsgd::Engine engine(topology, shards, hsgd::ShuffledSampler(16), options,
                      hsgd::Momentum{.momentum = 0.9, .nesterov = true, .at_aggregation = hsgd::StateAtAggregation::average},
                      hsgd::InverseSqrtDecay{}, hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation},
                      hsgd::SimulatedClock({.compute = {.per_step = 0.01},
                                            .speeds = hsgd::WorkerSpeeds::log_normal(0.5),
                                            .levels = {{}, {{0.001, 1e6}}, {{0.05, 1e5}}},
                                            .deadlines = {0.03, inf, inf}}));
  CHECK(allocations_in_steady_state(engine, 8, 80) == 0);
  CHECK(engine.regroupings() > 0);  // the re-draw path was exercised
  CHECK(engine.clock().seconds() > 0);  // and the clock ran
  CHECK(engine.clock().dropped() > 0);  // with a deadline that left workers out
}

TEST_CASE("a run with an allocation-free observer allocates only its summary", "[allocation]") {
  const auto shards = hsgd::make_b1_shards(test::small_b1());
  hsgd::Options options;
  options.threads = 1;
  options.steps = 200;
  hsgd::Engine engine(hsgd::Topology::two_level(12, 3, 2, 8), shards, hsgd::FullBatchSampler(), options);
  hsgd::Index calls = 0;
  auto count = hsgd::every(10, [&calls](const auto&) { ++calls; });
  engine.step();
  const long during = allocations_during([&] { engine.run(count); });
  CHECK(calls == 20);  // steps 10, 20, ..., 200
  // The summary at the end builds a few vectors (periods, counts, the final average and its
  // gradient); a bound far below the 199 steps shows the loop itself allocates nothing per step.
  CHECK(during < 16);
}

TEST_CASE("a divergence probe allocates nothing after it is attached", "[allocation][probe]") {
  struct Latest {
    double d_glob = 0;
    double test_accuracy = 0;
    hsgd::Index rows = 0;
    void record(const hsgd::ProbeRecord& row) {
      d_glob = row.d_glob;
      if (hsgd::is_measured(row.test_accuracy)) test_accuracy = row.test_accuracy;
      ++rows;
    }
  };
  const auto shards = hsgd::make_b1_shards(test::small_b1());
  hsgd::Options options;
  options.threads = 2;
  options.steps = 200;
  for (const hsgd::Index subsample : {0, 5}) {
    hsgd::Engine engine(hsgd::Topology(12, {{2, {3, 3, 6}}, {4, {6, 6}}, {8, {12}}}), shards, hsgd::UniformSampler(8),
                        options);
    Latest latest;
    auto probe = hsgd::make_probe(
        engine,
        {.gradient_every = 4, .model_every = 1, .subsample = subsample, .at_group_averages = true, .test_every = 3},
        latest, shards.back());  // held-out evaluation on a copy of the last shard
    engine.step();
    const long during = allocations_during([&] { engine.run(probe); });
    CHECK(latest.rows == 199);
    CHECK(latest.d_glob > 0);
    CHECK(latest.test_accuracy > 0.5);  // measured, and better than a coin on B1
    CHECK(during < 16);  // the summary's few vectors only, not one per step or per measurement
  }
}

TEST_CASE("partial participation draws allocate nothing", "[allocation][participation]") {
  const auto shards = hsgd::make_b1_shards(test::small_b1());
  hsgd::Options options;
  options.threads = 2;
  options.participation = 0.5;
  hsgd::Engine engine(hsgd::Topology(12, {{2, {3, 3, 6}}, {4, {6, 6}}, {8, {12}}}), shards, hsgd::UniformSampler(8),
                      options, hsgd::Sgd{}, hsgd::ConstantRate{},
                      hsgd::RandomGrouping{hsgd::RandomGrouping::Redraw::every_global_aggregation});
  CHECK(allocations_in_steady_state(engine, 8, 80) == 0);
  CHECK(engine.regroupings() > 0);
  CHECK(engine.server(1, 2).participants().size() == 3);  // 3 of 6 take part: the draw path ran
}

TEST_CASE("softmax regression and tanh network shards allocate nothing once running", "[allocation][classifier]") {
  // 3 classes around 3 e_c in 4 dimensions; worker j holds the samples k = j mod 12, so only class j mod 3.
  hsgd::Dataset<double> data;
  data.classes = 3;
  data.features.resize(4, 120);
  hsgd::Partition partition(12);
  hsgd::Rng rng = hsgd::make_stream(1, hsgd::StreamKind::user, 0);
  for (hsgd::Index k = 0; k < data.features.cols(); ++k) {
    data.labels.push_back(k % 3);
    for (hsgd::Index i = 0; i < 4; ++i) data.features(i, k) = (i == k % 3 ? 3.0 : 0.0) + rng.normal();
    partition[static_cast<std::size_t>(k % 12)].push_back(k);
  }
  hsgd::Options options;
  options.threads = 2;
  const auto topology = hsgd::Topology::two_level({3, 5, 4}, 2, 6);

  hsgd::Engine softmax(topology, hsgd::make_softmax_shards(data, partition), hsgd::UniformSampler(8), options);
  CHECK(allocations_in_steady_state(softmax, 6, 60) == 0);

  const hsgd::Dataset<float> float_data{data.features.cast<float>(), data.labels, data.classes};
  auto shards = hsgd::make_tanh_network_shards(float_data, partition, 5);
  hsgd::Rng init = hsgd::make_stream(1, hsgd::StreamKind::initial_model, 0);
  const hsgd::Vector<float> start = shards.front().initial_model(init);
  hsgd::Engine network(topology, std::move(shards), hsgd::UniformSampler(8), options);
  network.set_model(start);
  CHECK(allocations_in_steady_state(network, 6, 60) == 0);
  CHECK((network.models().array() != start.array().replicate(1, 12)).any());  // the steps did move the models
}
