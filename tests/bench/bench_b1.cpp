// Benchmark B1: n = 64 workers, N = 8 groups of 8, I = 4, G = 32, minibatch 16
// with replacement, gamma = 0.05, m = 512 samples per worker, d = 100 and d = 1000. Figure:
// worker-steps per second (items_per_second). The yardsticks are two hand-written plain-Eigen loops
// of the same arithmetic, run in the same process: as a researcher writes it, and with the next
// sample prefetched as hsgd does. Also: probes every 32 steps, float against double, and two
// large runs (n = 4096 at d = 100, n = 8 at d = 1e6) whose resident memory is compared with the
// README's formula. A table of ratios is printed at the end.

#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "hand_written_b1.hpp"

namespace {

using hsgd::Index;

constexpr Index b1_workers = 64;
constexpr Index b1_groups = 8;
constexpr Index b1_samples = 512;
constexpr Index b1_local_period = 4;
constexpr Index b1_global_period = 32;
constexpr Index b1_batch = 16;
constexpr double b1_learning_rate = 0.05;
constexpr double b1_lambda = 1e-3;

/// One benchmark's shape; the rest is B1's.
struct Shape {
  Index workers = b1_workers;
  Index groups = b1_groups;
  Index dimension = 100;
  Index samples = b1_samples;
  Index threads = 1;
};

template <class Scalar>
std::vector<hsgd::NonconvexLogistic<Scalar>> make_shards(const Shape& shape) {
  hsgd::B1Data data;
  data.workers = shape.workers;
  data.samples_per_worker = shape.samples;
  data.dimension = shape.dimension;
  data.lambda = b1_lambda;
  return hsgd::make_b1_shards<Scalar>(data);
}

/// B1's data, made once per (workers, dimension) and copied into each engine.
template <class Scalar>
const std::vector<hsgd::NonconvexLogistic<Scalar>>& cached_shards(const Shape& shape) {
  static std::map<std::pair<Index, Index>, std::vector<hsgd::NonconvexLogistic<Scalar>>> cache;
  auto [entry, fresh] = cache.try_emplace({shape.workers, shape.dimension});
  if (fresh) entry->second = make_shards<Scalar>(shape);
  return entry->second;
}

template <class Scalar>
auto make_engine(const Shape& shape, std::vector<hsgd::NonconvexLogistic<Scalar>> shards) {
  hsgd::Options options;
  options.learning_rate = b1_learning_rate;
  options.threads = shape.threads;
  return hsgd::Engine(hsgd::Topology::two_level(shape.workers, shape.groups, b1_local_period, b1_global_period),
                      std::move(shards), hsgd::UniformSampler(b1_batch), options);
}

template <class Scalar>
void run_hsgd(benchmark::State& state, Shape shape) {
  auto engine = make_engine<Scalar>(shape, cached_shards<Scalar>(shape));
  for (auto _ : state) engine.step();
  benchmark::DoNotOptimize(engine.models().data());
  state.SetItemsProcessed(state.iterations() * shape.workers);
}

/// Keeps nothing but a count, so that the benchmark measures the probe, not a recorder.
struct CountingRecorder {
  Index rows = 0;
  void record(const hsgd::ProbeRecord& /*row*/) { ++rows; }
};

/// B1 at d = 1000 on one thread with a divergence probe, stepped the way Engine::run() does
/// (run() itself would add its closing summary, a full gradient, to every call).
void run_with_probe(benchmark::State& state, hsgd::ProbeOptions probe_options) {
  const Shape shape{.dimension = 1000};
  auto engine = make_engine<double>(shape, cached_shards<double>(shape));
  CountingRecorder recorder;
  auto probe = hsgd::make_probe(engine, probe_options, recorder);
  for (auto _ : state) {
    const Index level = engine.step();
    if (level > 0) probe.after_aggregation(engine, level);
    probe.after_step(engine);
  }
  benchmark::DoNotOptimize(recorder.rows);
  state.SetItemsProcessed(state.iterations() * shape.workers);
}

hsgd::ProbeOptions probe_every(Index steps, Index subsample) {
  hsgd::ProbeOptions options;
  options.gradient_every = steps;
  options.model_every = steps;
  options.subsample = subsample;
  return options;
}

/// Resident memory of this process, from /proc/self/statm.
double resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  double total_pages = 0;
  double resident_pages = 0;
  statm >> total_pages >> resident_pages;
  return resident_pages * static_cast<double>(sysconf(_SC_PAGESIZE));
}

/// The README's formula for a two-level B1 run with a stateless update (Sgd): data n m (d + 1),
/// models and last gradients 2 n d, servers (N + 1) d, all times sizeof(Scalar); the per-worker
/// bookkeeping (a sampler's b indices, the worker itself) is below a kilobyte and left out.
double predicted_bytes(const Shape& shape, std::size_t scalar_size) {
  const double n = static_cast<double>(shape.workers);
  const double d = static_cast<double>(shape.dimension);
  const double m = static_cast<double>(shape.samples);
  const double servers = static_cast<double>(shape.groups + 1);
  return static_cast<double>(scalar_size) * (n * m * (d + 1) + 2 * n * d + servers * d);
}

/// A large run built from fresh data, whose resident memory (data, engine, after one step) is
/// reported next to the README's prediction as the counters measured_MiB and predicted_MiB.
void run_large(benchmark::State& state, Shape shape) {
  const double before = resident_bytes();
  auto engine = make_engine<double>(shape, make_shards<double>(shape));
  engine.step();
  const double measured = resident_bytes() - before;
  for (auto _ : state) engine.step();
  benchmark::DoNotOptimize(engine.models().data());
  state.SetItemsProcessed(state.iterations() * shape.workers);
  constexpr double mebibyte = 1024.0 * 1024.0;
  state.counters["measured_MiB"] = measured / mebibyte;
  state.counters["predicted_MiB"] = predicted_bytes(shape, sizeof(double)) / mebibyte;
}

void run_hand_written(benchmark::State& state, Index dimension, bool prefetch) {
  std::vector<bench::HandShard> shards;
  for (const auto& shard : cached_shards<double>({.dimension = dimension})) shards.push_back({shard.features(), shard.labels()});
  bench::HandWrittenB1 loop(std::move(shards), b1_groups, b1_local_period, b1_global_period, b1_batch,
                            b1_learning_rate, b1_lambda, 0, prefetch);
  for (auto _ : state) loop.step();
  benchmark::DoNotOptimize(loop.models().data());
  state.SetItemsProcessed(state.iterations() * b1_workers);
}

/// Google Benchmark's own display reporter, the one --benchmark_format (console, json, csv) and
/// --benchmark_color choose, plus a record of every result's counters for the ratio table, by the
/// benchmark's exact name. With --benchmark_repetitions the median aggregate, reported after the
/// repetitions, replaces them; the other aggregates are skipped.
class RecordingReporter : public benchmark::BenchmarkReporter {
 public:
  // CreateDefaultDisplayReporter() (Google Benchmark >= 1.6) makes the reporter the flags ask for;
  // it must be called after benchmark::Initialize(). Owned here, as the library does with it.
  RecordingReporter() : display_(benchmark::CreateDefaultDisplayReporter()) {}

  bool ReportContext(const Context& context) override { return display_->ReportContext(context); }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs) {
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
      auto& counters = results[run.run_name.str()];
      for (const auto& [name, counter] : run.counters) counters[name] = counter.value;
    }
    display_->ReportRuns(runs);
  }
  void Finalize() override { display_->Finalize(); }

  /// True when the output is Google Benchmark's console table, false for json and csv.
  [[nodiscard]] bool console() const { return dynamic_cast<benchmark::ConsoleReporter*>(display_.get()) != nullptr; }

  std::map<std::string, std::map<std::string, double>> results;

 private:
  std::unique_ptr<benchmark::BenchmarkReporter> display_;
};

class RatioTable {
 public:
  explicit RatioTable(const std::map<std::string, std::map<std::string, double>>& results) : results_(results) {}

  /// Prints what the run measured to `out`; a line whose benchmarks were filtered out is left out.
  void print(std::FILE* out) const {
    if (results_.empty()) return;  // e.g. --benchmark_list_tests
    fmt::print(out, "\nB1 worker-steps per second, and ratios against the hand-written loops of this run\n");
    fmt::print(out, "{:<6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "d", "hand", "hand+pf", "hsgd 1t",
               "hsgd 2t", "1t/hand", "1t/hand+pf", "2t/hand");
    for (const int d : {100, 1000}) {
      const double hand = rate(fmt::format("B1/hand/d:{}", d));
      const double prefetching = rate(fmt::format("B1/hand-prefetch/d:{}", d));
      const double one = rate(fmt::format("B1/hsgd/d:{}/threads:1", d));
      const double two = rate(fmt::format("B1/hsgd/d:{}/threads:2", d));
      if (hand > 0 && prefetching > 0 && one > 0 && two > 0)
        fmt::print(out, "{:<6} {:>10.4g} {:>10.4g} {:>10.4g} {:>10.4g} {:>10.3f} {:>10.3f} {:>10.3f}\n", d, hand,
                   prefetching, one, two, one / hand, one / prefetching, two / hand);
    }
    const double plain = rate("B1/hsgd/d:1000/threads:1");
    fmt::print(out, "\nProbes at d = 1000, 1 thread, speed as a fraction of the run without a probe:\n");
    for (const char* probe :
         {"off", "every:32", "every:32/subsample:16", "every:32/subsample:32", "every:32/subsample:64"}) {
      const double with_probe = rate(fmt::format("B1/hsgd/d:1000/threads:1/probe:{}", probe));
      if (plain > 0 && with_probe > 0) fmt::print(out, "  {:<24} {:.3f}\n", probe, with_probe / plain);
    }
    const double float_rate = rate("B1/hsgd-float/d:1000/threads:1");
    if (plain > 0 && float_rate > 0)
      fmt::print(out, "\nfloat / double at d = 1000, 1 thread: {:.3f}\n", float_rate / plain);
    fmt::print(out, "\nLarge runs: resident memory against the README's formula\n");
    for (const char* name : {"B1/hsgd/n:4096/d:100/threads:2", "B1/hsgd/n:8/d:1000000/threads:2"}) {
      const double measured = counter(name, "measured_MiB");
      const double predicted = counter(name, "predicted_MiB");
      if (predicted > 0)
        fmt::print(out, "  {:<34} {:>8.1f} MiB measured {:>8.1f} MiB predicted  ratio {:.3f}  {:.4g} worker-steps/s\n",
                   name, measured, predicted, measured / predicted, rate(name));
    }
  }

 private:
  // Exact names (UseRealTime adds "/real_time"): "B1/hand/d:100" must not find "B1/hand/d:1000".
  double counter(const std::string& name, const std::string& counter_name) const {
    const auto run = results_.find(name + "/real_time");
    if (run == results_.end()) return 0.0;
    const auto value = run->second.find(counter_name);
    return value == run->second.end() ? 0.0 : value->second;
  }
  double rate(const std::string& name) const { return counter(name, "items_per_second"); }

  const std::map<std::string, std::map<std::string, double>>& results_;
};

template <class Function>
void add(const std::string& name, Function function) {
  benchmark::RegisterBenchmark(name.c_str(), function)->UseRealTime();
}

void register_benchmarks() {
  for (const Index d : {100, 1000}) {
    for (const Index threads : {1, 2})
      add(fmt::format("B1/hsgd/d:{}/threads:{}", d, threads),
          [=](benchmark::State& state) { run_hsgd<double>(state, {.dimension = d, .threads = threads}); });
    add(fmt::format("B1/hand/d:{}", d), [=](benchmark::State& state) { run_hand_written(state, d, false); });
    add(fmt::format("B1/hand-prefetch/d:{}", d), [=](benchmark::State& state) { run_hand_written(state, d, true); });
  }
  add("B1/hsgd-float/d:1000/threads:1",
      [](benchmark::State& state) { run_hsgd<float>(state, {.dimension = 1000}); });
  add("B1/hsgd/d:1000/threads:1/probe:off", [](benchmark::State& state) { run_with_probe(state, probe_every(0, 0)); });
  for (const Index subsample : {0, 16, 32, 64}) {
    const std::string suffix = subsample == 0 ? "" : fmt::format("/subsample:{}", subsample);
    add("B1/hsgd/d:1000/threads:1/probe:every:32" + suffix,
        [=](benchmark::State& state) { run_with_probe(state, probe_every(32, subsample)); });
  }
  add("B1/hsgd/n:4096/d:100/threads:2", [](benchmark::State& state) {
    run_large(state, {.workers = 4096, .groups = 512, .dimension = 100, .threads = 2});
  });
  // n = 8 at d = 1e6 with m = 32 samples per worker (2 GiB of data), two groups of four.
  add("B1/hsgd/n:8/d:1000000/threads:2", [](benchmark::State& state) {
    run_large(state, {.workers = 8, .groups = 2, .dimension = 1'000'000, .samples = 32, .threads = 2});
  });
}

}  // namespace

int main(int argc, char** argv) {
  // Fixed thresholds, so that every large block is a mapping of its own that goes back to the
  // system when freed. glibc otherwise raises the mmap threshold after large frees, and memory an
  // earlier benchmark freed would be reused in place, hidden from the resident-memory figures.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  // After the console table on stdout; with json or csv, stdout holds only that document (valid
  // for a parser) and the ratio table goes to stderr.
  RatioTable(reporter.results).print(reporter.console() ? stdout : stderr);
  return 0;
}
