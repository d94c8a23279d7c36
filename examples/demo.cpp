// hsgd demo: H-SGD on benchmark B1's non-convex logistic problem, next to local SGD with the
// local period I and with the global period G. With a global period G, averaging locally every
// I steps is expected to land between the two (the paper's "sandwich").

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <string_view>
#include <tuple>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include <hsgd/hsgd.hpp>

#include "checkpointing.hpp"
#include "cli.hpp"
#include "problem.hpp"

namespace {

/// Prints progress a few times per run and keeps the time-average of ||grad f(xbar_t)||^2.
class Progress {
 public:
  Progress(hsgd::Index every, hsgd::Index dimension)
      : every_(every), average_(dimension), gradient_(dimension), scratch_(dimension) {}

  template <class Run>
  void after_step(const Run& run) {
    if (run.step_count() % every_ != 0) return;
    run.global_average(average_);
    run.gradient(average_, gradient_, scratch_);
    sum_ += gradient_.squaredNorm();
    ++samples_;
    if (run.step_count() % (every_ * 16) == 0) {
      fmt::print("    step {:>6}  f(xbar) = {:.5f}  ||grad f(xbar)||^2 = {:.3e}\n", run.step_count(), run.loss(average_),
                 gradient_.squaredNorm());
    }
  }

  /// Mean of ||grad f(xbar_t)||^2 over the sampled steps.
  [[nodiscard]] double mean() const { return samples_ > 0 ? sum_ / static_cast<double>(samples_) : 0.0; }

  // Checkpoint part "progress": the running sum, so a resumed run reports the same mean.
  [[nodiscard]] std::string_view checkpoint_name() const { return "progress"; }
  template <class Archive>
  void checkpoint(Archive& archive) {
    archive.real("the sum", sum_);
    archive.index("the sample count", samples_, 0, std::numeric_limits<hsgd::Index>::max());
  }

 private:
  hsgd::Index every_;
  double sum_ = 0;
  hsgd::Index samples_ = 0;
  hsgd::Vector<double> average_, gradient_, scratch_;
};

struct Row {
  std::string scheme;
  double loss, gradient_norm_squared, mean_gradient_norm_squared;
};

}  // namespace

int main(int argc, char** argv) try {
  example::Flags flags(argc, argv, "hsgd demo: H-SGD against local SGD on benchmark B1 (non-convex logistic regression)");
  const auto workers = flags.integer("workers", 64, "n, number of workers");
  const auto groups = flags.integer("groups", 8, "N, number of local servers");
  const auto local_period = flags.integer("local-period", 4, "I, local aggregation period");
  const auto global_period = flags.integer("global-period", 32, "G, global aggregation period");
  const auto steps = flags.integer("steps", 1024, "T, local steps per worker");
  const auto batch = flags.integer("batch", 16, "minibatch size (uniform, with replacement)");
  const auto dimension = flags.integer("dimension", 100, "d, model size");
  const auto samples = flags.integer("samples", 512, "m, samples per worker");
  const double learning_rate = flags.real("lr", 0.05, "gamma, learning rate");
  const double heterogeneity = flags.real("heterogeneity", 1.0, "how non-IID the workers' labels are");
  const auto seed = flags.integer("seed", 1, "seed for data and sampling");
  const auto csv_path = flags.text("csv", "", "write a probe record every 16 steps to this CSV file");
  const auto threads = flags.integer("threads", 1, "threads per run (results do not depend on it)");
  const auto checkpoints = example::CheckpointFlags::read(flags);
  if (flags.help_requested()) return 0;

  hsgd::B1Data data;
  data.workers = workers;
  data.samples_per_worker = samples;
  data.dimension = dimension;
  data.heterogeneity = heterogeneity;
  data.seed = static_cast<std::uint64_t>(seed);
  const auto shards = hsgd::make_b1_shards(data);

  hsgd::Options options;
  options.learning_rate = learning_rate;
  options.steps = steps;
  options.seed = static_cast<std::uint64_t>(seed);
  options.threads = threads;

  const std::vector<std::pair<std::string, hsgd::Topology>> schemes{
      {fmt::format("local SGD, P = I = {}", local_period), hsgd::Topology::local_sgd(workers, local_period)},
      {fmt::format("H-SGD, I = {}, G = {}", local_period, global_period),
       hsgd::Topology::two_level(workers, groups, local_period, global_period)},
      {fmt::format("local SGD, P = G = {}", global_period), hsgd::Topology::local_sgd(workers, global_period)},
  };

  fmt::print("B1: n = {}, N = {}, d = {}, m = {}, batch = {}, gamma = {}, T = {}\n", workers, groups, dimension, samples,
             batch, learning_rate, steps);
  example::Study study(flags, checkpoints, csv_path, {"scheme"}, 2);
  std::vector<Row> rows;
  for (std::size_t k = 0; k < schemes.size(); ++k) {
    const auto& [name, topology] = schemes[k];
    const auto run = static_cast<hsgd::Index>(k);
    fmt::print("  {}\n", name);
    if (!study.finished(run)) {
      hsgd::Engine engine(topology, shards, hsgd::UniformSampler(batch), options, hsgd::Sgd{}, hsgd::ConstantRate{},
                          hsgd::RandomGrouping{});
      Progress progress(std::max<hsgd::Index>(1, steps / 64), dimension);
      if (study.csv() != nullptr) study.csv()->set_tags({name});
      example::RunRecorder recorder{study.csv(), {}};
      auto probe = hsgd::make_probe(engine, {.gradient_every = 16, .model_every = 16, .subsample = 32}, recorder);
      if (!study.run(run, engine, std::tie(progress, probe), progress, probe)) return study.exit_code();
      const hsgd::Vector<double> average = engine.global_average();
      const double loss = engine.loss(average);
      const double gradient_norm_squared = engine.gradient(average).squaredNorm();
      fmt::print("    f(xbar_T) = {:.6f}, ||grad f(xbar_T)||^2 = {:.4e}\n", loss, gradient_norm_squared);
      study.finish(run, {loss, gradient_norm_squared, progress.mean()}, engine, std::tie(progress, probe));
    }
    const auto& result = study.result(run);
    rows.push_back({name, result.at(0), result.at(1), result.at(2)});
  }

  fmt::print("\n{:<28} {:>12} {:>20} {:>22}\n", "scheme", "f(xbar_T)", "||grad f(xbar_T)||^2",
             "mean ||grad f(xbar)||^2");
  for (const auto& row : rows) {
    fmt::print("{:<28} {:>12.6f} {:>20.4e} {:>22.4e}\n", row.scheme, row.loss, row.gradient_norm_squared,
               row.mean_gradient_norm_squared);
  }
  if (study.csv() != nullptr) fmt::print("wrote {}\n", csv_path);
  return 0;
} catch (const std::exception& error) {
  fmt::print(stderr, "demo: {}\n", error.what());
  return 1;
}
