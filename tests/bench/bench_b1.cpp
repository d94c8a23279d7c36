// Benchmark B1 (brief section 6): n = 64 workers, N = 8 groups of 8, I = 4, G = 32, minibatch 16
// with replacement, gamma = 0.05, m = 512 samples per worker, d = 100 and d = 1000. Figure:
// worker-steps per second (items_per_second). The yardstick is a hand-written plain-Eigen loop of
// the same arithmetic, run in the same process; the ratios are printed at the end.

#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "hand_written_b1.hpp"

namespace {

constexpr hsgd::Index b1_workers = 64;
constexpr hsgd::Index b1_group_size = 8;
constexpr hsgd::Index b1_local_period = 4;
constexpr hsgd::Index b1_global_period = 32;
constexpr hsgd::Index b1_batch = 16;
constexpr double b1_learning_rate = 0.05;
constexpr double b1_lambda = 1e-3;

template <class Scalar>
const std::vector<hsgd::NonconvexLogistic<Scalar>>& b1_shards(hsgd::Index workers, hsgd::Index dimension,
                                                              hsgd::Index samples = 512) {
  static std::map<std::pair<hsgd::Index, hsgd::Index>, std::vector<hsgd::NonconvexLogistic<Scalar>>> cache;
  auto [entry, fresh] = cache.try_emplace({workers, dimension});
  if (fresh) {
    hsgd::B1Data data;
    data.workers = workers;
    data.samples_per_worker = samples;
    data.dimension = dimension;
    data.lambda = b1_lambda;
    entry->second = hsgd::make_b1_shards<Scalar>(data);
  }
  return entry->second;
}

template <class Scalar>
void run_hsgd(benchmark::State& state, hsgd::Index workers, hsgd::Index dimension, hsgd::Index threads,
              hsgd::Index samples = 512) {
  hsgd::Options options;
  options.learning_rate = b1_learning_rate;
  options.threads = threads;
  hsgd::Engine engine(hsgd::Topology::two_level(workers, workers / b1_group_size, b1_local_period, b1_global_period),
                      b1_shards<Scalar>(workers, dimension, samples), hsgd::UniformSampler(b1_batch), options);
  for (auto _ : state) engine.step();
  benchmark::DoNotOptimize(engine.models().data());
  state.SetItemsProcessed(state.iterations() * workers);
}

void run_hand_written(benchmark::State& state, hsgd::Index dimension) {
  std::vector<bench::HandShard> shards;
  for (const auto& shard : b1_shards<double>(b1_workers, dimension)) shards.push_back({shard.features(), shard.labels()});
  bench::HandWrittenB1 loop(std::move(shards), b1_workers / b1_group_size, b1_local_period, b1_global_period, b1_batch,
                            b1_learning_rate, b1_lambda, 0);
  for (auto _ : state) loop.step();
  benchmark::DoNotOptimize(loop.models().data());
  state.SetItemsProcessed(state.iterations() * b1_workers);
}

/// Console output as usual, plus a record of every result for the ratio table, by the
/// benchmark's exact name. With --benchmark_repetitions the median aggregate, reported after the
/// repetitions, replaces them; the other aggregates are skipped.
class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs) {
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
      const auto rate = run.counters.find("items_per_second");
      if (rate != run.counters.end()) rates[run.run_name.str()] = rate->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> rates;
};

void print_ratios(const std::map<std::string, double>& rates) {
  // Exact names (UseRealTime adds "/real_time"): "B1/hand/d:100" must not find "B1/hand/d:1000".
  const auto find = [&](const std::string& name) {
    const auto found = rates.find(name + "/real_time");
    return found == rates.end() ? 0.0 : found->second;
  };
  fmt::print("\nB1 worker-steps per second, and ratios against the hand-written loop in this run\n");
  fmt::print("{:<10} {:>14} {:>14} {:>14} {:>12} {:>12}\n", "d", "hand", "hsgd 1 thread", "hsgd 2 threads", "1 thr/hand",
             "2 thr/hand");
  for (const int d : {100, 1000}) {
    const double hand = find(fmt::format("B1/hand/d:{}", d));
    const double one = find(fmt::format("B1/hsgd/d:{}/threads:1", d));
    const double two = find(fmt::format("B1/hsgd/d:{}/threads:2", d));
    if (hand <= 0) continue;
    fmt::print("{:<10} {:>14.4g} {:>14.4g} {:>14.4g} {:>12.3f} {:>12.3f}\n", d, hand, one, two, one / hand, two / hand);
  }
  const double float_rate = find("B1/hsgd-float/d:1000/threads:1");
  const double double_rate = find("B1/hsgd/d:1000/threads:1");
  if (float_rate > 0 && double_rate > 0) fmt::print("float / double at d = 1000, 1 thread: {:.3f}\n", float_rate / double_rate);
}

void register_benchmarks() {
  for (const hsgd::Index d : {100, 1000}) {
    for (const hsgd::Index threads : {1, 2}) {
      benchmark::RegisterBenchmark(fmt::format("B1/hsgd/d:{}/threads:{}", d, threads).c_str(),
                                   [=](benchmark::State& state) { run_hsgd<double>(state, b1_workers, d, threads); })
          ->UseRealTime();
    }
    benchmark::RegisterBenchmark(fmt::format("B1/hand/d:{}", d).c_str(),
                                 [=](benchmark::State& state) { run_hand_written(state, d); })
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("B1/hsgd-float/d:1000/threads:1",
                               [](benchmark::State& state) { run_hsgd<float>(state, b1_workers, 1000, 1); })
      ->UseRealTime();
  benchmark::RegisterBenchmark("B1/hsgd/n:4096/d:100/threads:2",
                               [](benchmark::State& state) { run_hsgd<double>(state, 4096, 100, 2); })
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  print_ratios(reporter.rates);
  return 0;
}
