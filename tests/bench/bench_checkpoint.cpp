// Checkpoints: saving and loading the state of B1 at d = 1000 (n = 64, after a few steps) and of
// n = 8 workers at d = 1e6, against the yardstick of writing the raw model bytes (d x n doubles)
// to a file in the same directory, in the same process. Durable: both fsync (the checkpoint also
// fsyncs its directory after the rename); not durable: both leave the data in the page cache.
// The files go to a directory made in the current one (on the disk being measured), removed at
// the end. A table of ratios and sizes is printed after Google Benchmark's.

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

namespace {

using hsgd::Index;

struct Shape {
  Index workers;
  Index groups;
  Index dimension;
  Index samples;
};
constexpr Shape b1{64, 8, 1000, 512};
constexpr Shape large{8, 2, 1'000'000, 4};  // a few samples: the data is not part of a checkpoint

const std::filesystem::path directory = std::filesystem::current_path() / "hsgd-bench-checkpoint";

auto make_engine(const Shape& shape) {
  hsgd::B1Data data;
  data.workers = shape.workers;
  data.samples_per_worker = shape.samples;
  data.dimension = shape.dimension;
  hsgd::Options options;
  options.threads = 2;
  options.steps = 8;
  hsgd::Engine engine(hsgd::Topology::two_level(shape.workers, shape.groups, 4, 32), hsgd::make_b1_shards(data),
                      hsgd::UniformSampler(16), options, hsgd::RandomGrouping{});
  engine.run();
  return engine;
}

/// The yardstick: the models' bytes in one write(2), fsync'ed when durable.
void raw_write(benchmark::State& state, const Shape& shape, bool durable) {
  const auto engine = make_engine(shape);
  const std::string path = (directory / "raw.bin").string();
  const auto bytes = static_cast<std::size_t>(engine.models().size()) * sizeof(double);
  for (auto _ : state) {
    const int descriptor = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    hsgd::detail::write_all(descriptor, {reinterpret_cast<const char*>(engine.models().data()), bytes}, path);
    if (durable) hsgd::detail::sync_descriptor(descriptor, path);
    ::close(descriptor);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}

void save(benchmark::State& state, const Shape& shape, bool durable) {
  const auto engine = make_engine(shape);
  const std::string path = (directory / "state.ckpt").string();
  for (auto _ : state) hsgd::save_checkpoint(path, {.durable = durable}, engine);
  state.counters["bytes"] = static_cast<double>(std::filesystem::file_size(path));
  state.counters["model_bytes"] = static_cast<double>(engine.models().size()) * sizeof(double);
}

void load(benchmark::State& state, const Shape& shape) {
  auto engine = make_engine(shape);
  const std::string path = (directory / "state.ckpt").string();
  hsgd::save_checkpoint(path, {.durable = false}, engine);
  for (auto _ : state) hsgd::load_checkpoint(path, engine);
  state.counters["bytes"] = static_cast<double>(std::filesystem::file_size(path));
}

class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs) {
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
      auto& entry = results[run.run_name.str()];
      entry["seconds"] = run.GetAdjustedRealTime() * 1e-9;  // the unit is nanoseconds by default
      for (const auto& [name, counter] : run.counters) entry[name] = counter.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, std::map<std::string, double>> results;
};

double value(const RecordingReporter& reporter, const std::string& name, const std::string& field) {
  const auto run = reporter.results.find(name + "/real_time");
  if (run == reporter.results.end()) return 0.0;
  const auto found = run->second.find(field);
  return found == run->second.end() ? 0.0 : found->second;
}

void print_table(const RecordingReporter& reporter) {
  fmt::print("\n{:<22} {:>12} {:>12} {:>14} {:>14} {:>12} {:>11}\n", "state", "model MiB", "file MiB", "raw write ms",
             "save ms", "save / raw", "load ms");
  for (const auto& [label, name] : {std::pair{"B1 d=1000", "B1/d:1000"}, std::pair{"n=8 d=1e6", "n:8/d:1000000"}}) {
    for (const bool durable : {true, false}) {
      const std::string mode = durable ? "durable" : "cached";
      const double raw = value(reporter, fmt::format("checkpoint/raw-write/{}/{}", name, mode), "seconds");
      const double saved = value(reporter, fmt::format("checkpoint/save/{}/{}", name, mode), "seconds");
      const double loaded = value(reporter, fmt::format("checkpoint/load/{}", name), "seconds");
      if (raw <= 0 || saved <= 0) continue;
      fmt::print("{:<22} {:>12.3f} {:>12.3f} {:>14.3f} {:>14.3f} {:>12.2f} {:>11.3f}\n",
                 fmt::format("{} ({})", label, mode),
                 value(reporter, fmt::format("checkpoint/save/{}/{}", name, mode), "model_bytes") / (1 << 20),
                 value(reporter, fmt::format("checkpoint/save/{}/{}", name, mode), "bytes") / (1 << 20), raw * 1e3,
                 saved * 1e3, saved / raw, loaded * 1e3);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::create_directories(directory);
  for (const bool durable : {true, false}) {
    const std::string mode = durable ? "durable" : "cached";
    for (const auto& [name, shape] : {std::pair{"B1/d:1000", b1}, std::pair{"n:8/d:1000000", large}}) {
      const Shape s = shape;
      benchmark::RegisterBenchmark(fmt::format("checkpoint/raw-write/{}/{}", name, mode).c_str(),
                                   [=](benchmark::State& state) { raw_write(state, s, durable); })
          ->UseRealTime();
      benchmark::RegisterBenchmark(fmt::format("checkpoint/save/{}/{}", name, mode).c_str(),
                                   [=](benchmark::State& state) { save(state, s, durable); })
          ->UseRealTime();
    }
  }
  for (const auto& [name, shape] : {std::pair{"B1/d:1000", b1}, std::pair{"n:8/d:1000000", large}}) {
    const Shape s = shape;
    benchmark::RegisterBenchmark(fmt::format("checkpoint/load/{}", name).c_str(),
                                 [=](benchmark::State& state) { load(state, s); })
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  print_table(reporter);
  std::filesystem::remove_all(directory);
  return 0;
}
